"""The issue's bad input: a malformed traceparent, non-UTF-8 paths and headers, a
huge body, bad JSON, a mail service that hangs. TaskFlow answers exactly as it
does under plain python (the ``plain`` server), and the recording says what happened."""

from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from taskflow_server import Served, TaskFlowServer, mail_mode

from elixirscope.examples.taskflow import mail as mail_module


def raw(server: TaskFlowServer, request: bytes) -> tuple[int, bytes, dict[str, str]]:
    """Send bytes as they are (no client would), read the answer to the close."""
    where = urlsplit(server.url)
    with socket.create_connection((where.hostname, where.port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), body, {k.lower(): v for k, v in headers.items()}


def same_answer(recorded: tuple, plain: tuple) -> None:
    assert recorded[0] == plain[0] and recorded[1] == plain[1]


def test_a_malformed_traceparent_is_ignored_and_said_so(
    taskflow: TaskFlowServer, plain: TaskFlowServer
) -> None:
    bad = {"traceparent": "00-not-a-trace-id-zz"}
    recorded = taskflow.client.get("/api/projects", headers=bad)
    unrecorded = plain.client.get("/api/projects", headers=bad)
    assert (recorded.status_code, recorded.json()) == (unrecorded.status_code, unrecorded.json())
    chain = taskflow.recorded(recorded)
    assert chain.request["traceparent_error"]
    assert chain.request["trace_id"] == chain.cid and chain.request["parent_span"] is None


def test_a_non_utf8_path_is_answered_as_without_elixirscope_and_recorded_escaped(
    taskflow: TaskFlowServer, plain: TaskFlowServer
) -> None:
    request = b"GET /api/tasks/%FF%FE HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    recorded, unrecorded = raw(taskflow, request), raw(plain, request)
    same_answer(recorded, unrecorded)
    assert recorded[0] == 400
    chain = taskflow.recorded(recorded[2]["x-correlation-id"])
    assert chain.end["status"] == 400
    # uvicorn decodes the path with replacement characters: recorded as the app saw it
    assert chain.request["path"] == "/api/tasks/\ufffd\ufffd"
    assert json.loads(recorded[1])["error"] == "task_id must be a number, got '\ufffd\ufffd'"


def test_raw_non_ascii_bytes_in_a_path_are_refused_by_the_server_as_without_elixirscope(
    taskflow: TaskFlowServer, plain: TaskFlowServer
) -> None:
    request = b"GET /api/tasks/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    recorded, unrecorded = raw(taskflow, request), raw(plain, request)
    same_answer(recorded, unrecorded)
    assert recorded[0] == 400 and "x-correlation-id" not in recorded[2]  # the app never saw it


def test_a_non_utf8_header_changes_nothing(taskflow: TaskFlowServer, plain: TaskFlowServer) -> None:
    request = b"GET /api/projects HTTP/1.1\r\nHost: x\r\nX-Note: caf\xe9 \xff\r\nConnection: close\r\n\r\n"
    recorded, unrecorded = raw(taskflow, request), raw(plain, request)
    same_answer(recorded, unrecorded)
    assert recorded[0] == 200
    assert taskflow.recorded(recorded[2]["x-correlation-id"]).end["status"] == 200


def test_a_huge_body_is_counted_not_kept(taskflow: TaskFlowServer, plain: TaskFlowServer) -> None:
    text = "x" * (3 * 1024 * 1024)
    body = {"user_id": 1, "body": text}
    recorded = taskflow.client.post("/api/tasks/1/comments", json=body)
    unrecorded = plain.client.post("/api/tasks/1/comments", json=body)
    assert recorded.status_code == unrecorded.status_code == 201
    assert {k: v for k, v in recorded.json().items() if k != "id"} == {
        k: v for k, v in unrecorded.json().items() if k != "id"
    }
    chain = taskflow.recorded(recorded)
    assert chain.end["request_bytes"] == len(recorded.request.content) > len(text)
    (add,) = chain.calls("queries.add_comment")
    assert len(add["args"]["body"]) < 10_000  # cut at the value limits
    assert max(len(json.dumps(e)) for e in chain.events) < 64 * 1024
    assert text[:20_000] not in json.dumps(chain.events)


def test_a_body_that_is_not_json_is_a_400_naming_it(
    taskflow: TaskFlowServer, plain: TaskFlowServer
) -> None:
    recorded = taskflow.client.post("/api/projects", content=b"\xff{not json")
    unrecorded = plain.client.post("/api/projects", content=b"\xff{not json")
    assert (recorded.status_code, recorded.json()) == (unrecorded.status_code, unrecorded.json())
    assert recorded.status_code == 400 and recorded.json()["error"].startswith("body is not JSON")
    chain = taskflow.recorded(recorded)
    assert chain.end["status"] == 400 and chain.end["request_bytes"] == len(b"\xff{not json")


def test_a_mail_service_that_hangs_fails_the_mail_not_the_request(
    taskflow: TaskFlowServer, plain: TaskFlowServer, mail: Served
) -> None:
    servers = (taskflow, plain)
    tasks = [
        s.client.post("/api/projects/3/tasks", json={"title": "never mailed"}).json()
        for s in servers
    ]
    mail_mode(mail, "hang", mail_module.ATTEMPTS * len(servers))
    with ThreadPoolExecutor(len(servers)) as pool:  # both at once: the hangs overlap
        responses = list(
            pool.map(
                lambda st: st[0].client.post(
                    f"/api/tasks/{st[1]['id']}/assign", json={"user_id": 3}
                ),
                zip(servers, tasks, strict=True),
            )
        )
    answers = [(r.status_code, r.json()["email"]) for r in responses]
    assert answers[0] == answers[1] == (200, "failed after 3 attempts: timed out")
    chain = taskflow.recorded(responses[0])
    attempts = chain.of("http")
    assert [(a["attempt"], a["timeout"], a["status"]) for a in attempts] == [
        (1, True, 0),
        (2, True, 0),
        (3, True, 0),
    ]
    assert all("Timeout" in a["error"] for a in attempts)
    (state,) = chain.of("state", actor="taskflow/notifications")
    assert any(d["path"] == "emails_failed" for d in state["delta"])
