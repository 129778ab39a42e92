"""``why`` followed back to code outside any actor says what that code was running for:
the web request (or the WebSocket message) its chain began with — a request handler that
hands a value to an actor, recorded for real under uvicorn."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared programs

from auction_program import elixirscope  # noqa: E402
from served_program import SERVED  # noqa: E402

KEEPER = textwrap.dedent(
    """
    from elixirscope.runtime import GenServer, Reply


    class Keeper(GenServer):
        def init(self, args):
            return {"value": None}

        def handle_call(self, request, from_, state):
            state["value"] = request[1]
            return Reply("kept", state)
    """
)

SERVER = textwrap.dedent(
    """
    import asyncio, contextvars, socket, threading, time
    from concurrent.futures import ThreadPoolExecutor

    import httpx, uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from keeper import Keeper
    from elixirscope.runtime import Runtime

    POOL = ThreadPoolExecutor(1)  # the actors' thread
    RT = POOL.submit(Runtime, "simpleSystemBase").result()
    KEEPER = POOL.submit(RT.start, Keeper, None, path="keeper").result()


    def hand_over(value):
        return RT.call(KEEPER, ("put", value))


    async def put(request):
        ctx = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        said = await loop.run_in_executor(POOL, ctx.run, hand_over, int(request.path_params["n"]))
        return JSONResponse({"said": said})


    app = Starlette(routes=[Route("/put/{n}", put, methods=["POST"])])


    def client(url):
        print(httpx.post(url + "/put/41").json())
    """
) + SERVED + "\nPOOL.submit(RT.shutdown).result()\n"


def test_why_names_the_request_the_value_came_in(tmp_path: Path) -> None:
    (tmp_path / "keeper.py").write_text(KEEPER)
    (tmp_path / "server.py").write_text(SERVER)
    done = elixirscope("run", "--data-dir", "data", "server.py", cwd=tmp_path)
    assert done.returncode == 0 and "kept" in done.stdout, done.stderr
    why = elixirscope("why", "--data-dir", "data", "keeper", "value", cwd=tmp_path)
    assert why.returncode == 0, why.stderr
    last = why.stdout.rstrip().splitlines()[-1]
    assert "(not an actor's state), in the work of the request POST /put/41" in last, why.stdout
