"""One recorded TaskFlow server for the whole directory (and a plain one, for
answers to compare), with the mock mail service they both send through."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from taskflow_server import Served, TaskFlowServer, start_mail


@pytest.fixture(scope="session")
def mail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = start_mail(tmp_path_factory.mktemp("mail"))
    yield served
    served.stop()


@pytest.fixture(scope="session")
def launched(
    tmp_path_factory: pytest.TempPathFactory, mail: Served
) -> Iterator[dict[str, TaskFlowServer]]:
    """Both servers, started at once (each waited for when first used)."""
    servers = {
        "recorded": TaskFlowServer.start(
            tmp_path_factory.mktemp("recorded"), recorded=True, mail_url=mail.url
        ),
        "plain": TaskFlowServer.start(
            tmp_path_factory.mktemp("plain"), recorded=False, mail_url=mail.url
        ),
    }
    yield servers
    servers["plain"].stop()


@pytest.fixture(scope="session")
def taskflow(launched: dict[str, TaskFlowServer]) -> Iterator[TaskFlowServer]:
    """TaskFlow under ``elixirscope run``, on SQLite."""
    server = launched["recorded"]
    yield server
    assert server.stop() == 0, server.served.log.read_text()
    said = [
        line for line in server.served.log.read_text().splitlines() if "elixirscope run:" in line
    ]
    assert not said  # no recording errors swallowed, no events dropped


@pytest.fixture(scope="session")
def plain(tmp_path_factory: pytest.TempPathFactory, mail: Served) -> Iterator[TaskFlowServer]:
    """The same TaskFlow under plain ``python``: what it answers without ElixirScope."""
    server = TaskFlowServer.start(
        tmp_path_factory.mktemp("plain"), recorded=False, mail_url=mail.url
    )
    yield server
    server.stop()
