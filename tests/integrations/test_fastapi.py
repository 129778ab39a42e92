"""A FastAPI application recorded by ``elixirscope run`` with nothing added to it:
FastAPI's ``__call__`` reaches Starlette's, which ``integrations.starlette`` wraps."""

from __future__ import annotations

from pathlib import Path

from served_program import SERVED
from web_programs import calltree, elixirscope, events

PROGRAM = r"""
import socket
import threading
import time

import httpx
import uvicorn
from fastapi import FastAPI, HTTPException

app = FastAPI()


def discount(price):
    return round(price * 0.9, 2)


@app.get("/price/{sku}")
async def price(sku: str):
    if sku == "none":
        raise HTTPException(status_code=404, detail="no such sku")
    return {"sku": sku, "price": discount(10.0)}


def client(base):
    print(httpx.get(base + "/price/tea").json(), httpx.get(base + "/price/none").status_code)
""" + SERVED


def test_a_fastapi_route_is_recorded_with_its_handler_nested(tmp_path: Path) -> None:
    (tmp_path / "shop_api.py").write_text(PROGRAM)
    done = elixirscope("run", "--data-dir", str(tmp_path / "data"), "shop_api.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{'sku': 'tea', 'price': 9.0} 404"
    ends = events(tmp_path / "data", "reqend")
    assert [(e["route"], e["path"], e["status"]) for e in ends] == [
        ("/price/{sku}", "/price/tea", 200),
        ("/price/{sku}", "/price/none", 404),
    ]
    tree = calltree(tmp_path / "data", ends[0]["correlation_id"])
    lines = tree.splitlines()
    at = next(  # under the client's call that sent it (an in-process client)
        i for i, line in enumerate(lines) if line.lstrip().startswith("request GET /price/{sku} -> 200")
    )
    pad = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    assert lines[at + 2].startswith(pad + "  price(") and lines[at + 3].startswith(pad + "    discount(")
