"""A short scripted session against a running TaskFlow: one request for each planted defect.

``drive(url, mail_url, say)`` makes the requests over real HTTP (httpx), in
this order: the N+1 listing, a new task, two concurrent assignments of it
(the race), a bad estimate (the crash), an assignment while the mail service
hangs twice (the retries), the slow report, and an unknown user's summary
(the 500). It returns each step's name and the response's correlation id, and
tells ``say`` one line per step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

__all__ = ["drive"]


def drive(url: str, mail_url: str | None, say: Callable[[str], object]) -> dict[str, str]:
    chains: dict[str, str] = {}
    with httpx.Client(base_url=url, timeout=60.0) as client:

        def step(name: str, response: httpx.Response, what: str) -> httpx.Response:
            request = response.request
            say(f"{request.method} {request.url.path} -> {response.status_code}  {what}")
            chains[name] = response.headers.get("x-correlation-id", "")
            return response

        listed = client.get("/api/projects/with-tasks")
        step("n_plus_one", listed, f"{len(listed.json())} projects with their tasks")
        created = client.post("/api/projects/1/tasks", json={"title": "ship the demo", "hours": 3})
        task = step("create", created, "a new task").json()
        first, second = asyncio.run(_assign_twice(url, task["id"]))
        for name, response in (("race_1", first), ("race_2", second)):
            step(name, response, f"assigned to user {response.json()['assignee_id']}")
        crashed = client.post("/api/projects/2/estimate", json={"hours_per_day": 0})
        step("crash", crashed, crashed.json().get("error", ""))
        if mail_url:
            httpx.post(f"{mail_url}/mode", json={"mode": "hang", "times": 2}, timeout=10.0)
        other = client.post("/api/projects/3/tasks", json={"title": "mail me"})
        other = step("mail_task", other, "a task to assign while the mail service hangs").json()
        mailed = client.post(f"/api/tasks/{other['id']}/assign", json={"user_id": 1})
        step("retries", mailed, f"email: {mailed.json()['email']}")
        report = client.get("/api/reports/projects")
        step("report", report, f"{len(report.json())} report rows")
        step("error", client.get("/api/users/99/summary"), "an unknown user")
    return chains


async def _assign_twice(url: str, task_id: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as client:
        return list(
            await asyncio.gather(
                *(client.post(f"/api/tasks/{task_id}/assign", json={"user_id": u}) for u in (1, 2))
            )
        )
