"""The daemon's Visualization layer: its actor serves the cinema on request (a real
Thespian system, one process per actor), answers its URL, refuses what it must, and stops."""

from __future__ import annotations

import json
import urllib.request

from elixirscope.actors.visualization import VisualizationService

from elixirscope.contracts import Request


def ask(runtime, service, operation, **params):
    return runtime.call(service, Request(operation=operation, to_layer="visualization", params=params))


def test_the_layer_serves_the_cinema_on_request(runtime, cinema_data):
    service = runtime.start(
        VisualizationService,
        {"layer": "visualization", "role": "live_stream", "data_dir": str(cinema_data)},
        path="visualization/live_stream",
    )
    assert ask(runtime, service, "ui_status").data == {"running": False, "url": None, "host": None}
    refused = ask(runtime, service, "ui_start", host="0.0.0.0")
    assert refused.error.code == "invalid_params"
    assert "is not a loopback address" in refused.error.message
    started = ask(runtime, service, "ui_start").data
    assert started["running"] and started["started"]
    url = started["url"]
    base, token = url.split("/?token=")
    with urllib.request.urlopen(f"{base}/api/runs?token={token}") as answer:
        runs = json.load(answer)["runs"]
    assert len(runs) == 2
    again = ask(runtime, service, "ui_start").data
    assert again["url"] == url and not again["started"]  # one server, the same URL
    assert ask(runtime, service, "ui_stop").data == {"stopped": True}
    assert not ask(runtime, service, "ui_status").data["running"]
    assert ask(runtime, service, "ui_stop").data == {"stopped": False}
