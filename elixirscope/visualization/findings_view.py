"""The Findings view: a run's defects, as ``elixirscope insights`` finds them.

:class:`RunFindings` runs the insights detectors over a run
(``ai.insights.insights_report``: the same detectors, order and folding of a
defect seen again as the command) once per run and keeps the answer until the
run grows; two views asking at once wait for one computation.
:func:`findings_view` adds what the page needs to open each finding: where its
moment is drawn (``visualization.moments``: the call selected, its lane), the
web request that holds it (the requests view) and its chain (the call tree),
and each source line as a person reads it. A detector that failed is named in
``errors``, the others' findings still given.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from elixirscope.visualization.moments import MomentError, locate
from elixirscope.visualization.runmodel import RunModel

__all__ = ["RunFindings", "findings_view"]


class RunFindings:
    """Each run's insights report, computed once per run (again once the run has grown),
    at most ``keep`` runs kept."""

    def __init__(self, data_dir: str | os.PathLike[str], keep: int = 8) -> None:
        self.data_dir = data_dir
        self.keep = keep
        self._held: dict[str, tuple[int, dict[str, Any]]] = {}
        self._shown: dict[str, tuple[int, list[dict[str, Any]]]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def report(self, run: str, events: int) -> dict[str, Any]:
        """The insights report of run ``run`` (its whole id) holding ``events`` events."""
        return self._once(self._held, run, events, lambda: _compute(self.data_dir, run))

    def shown(
        self, run: str, events: int, make: Callable[[], list[dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """The findings as the page opens them (``make``: each located, its requests
        looked up, which reads events from the store), made once per run and size."""
        return self._once(self._shown, run, events, make)

    def _once(self, kept: dict[str, Any], run: str, events: int, make: Callable[[], Any]) -> Any:
        """What ``make`` gives for ``run`` at ``events`` events, kept in ``kept`` (the
        newest ``keep`` runs): one computation per run, who asks meanwhile waits for it."""
        with self._lock:
            lock = self._locks.setdefault(f"{id(kept)}:{run}", threading.Lock())
        with lock:
            held = kept.get(run)
            if held is not None and held[0] == events:
                return held[1]
            made = make()
            with self._lock:
                kept[run] = (events, made)
                while len(kept) > self.keep:
                    del kept[next(iter(kept))]
            return made


def _compute(data_dir: str | os.PathLike[str], run: str) -> dict[str, Any]:
    from elixirscope.ai.insights import DETECTORS, LOOKED_FOR, insights_report
    from elixirscope.ai.settings import InsightSettings

    report = insights_report(data_dir, run, InsightSettings.load())
    report.pop("text", None)
    report["detectors"] = list(DETECTORS)
    report["looked_for"] = LOOKED_FOR  # "Looked for N+1 queries, races, ..."
    return report


def findings_view(
    models: Any, findings: RunFindings, run: str, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The run's findings (most severe first, as ``insights`` orders them), each with
    ``open``: where its moment is drawn and the request and chain that hold it."""
    info = models.info(run)
    report = findings.report(info.id, info.events)
    shown = findings.shown(
        info.id,
        info.events,
        lambda: [_shown(models.model(info.id), models.data_dir, f) for f in report["findings"]],
    )
    return {**report, "findings": shown}


def _shown(model: RunModel, data_dir: Any, finding: dict[str, Any]) -> dict[str, Any]:
    from elixirscope.ai.findings import Location

    where = [
        str(Location(**loc)) + (f"  {loc['role']}" if loc.get("role") else "")
        for loc in finding["locations"]
    ]
    opening = _opening(model, data_dir, finding)
    return {
        **finding,
        "where": where,
        "open": opening,
        "requests": _requests(model, data_dir, finding, opening),
    }


REPEATS_LOCATED = 100
"""A finding's repeats whose requests are looked up (each is an event read from the store)."""
EVIDENCE_LOCATED = 20
"""A finding's events of evidence whose requests are looked up (a race's other writer)."""


def _requests(
    model: RunModel, data_dir: Any, finding: dict[str, Any], opening: dict[str, Any]
) -> list[str]:
    """The web requests that hold the finding's moment, its evidence (the first
    ``EVIDENCE_LOCATED``: a race's two requests) and its repeats' moments (the first
    ``REPEATS_LOCATED``), in that order: the Requests view marks them with it."""
    held = [opening["request"]] if opening.get("request") else []
    if not model.requests:
        return held
    events = [
        *finding.get("evidence", ())[:EVIDENCE_LOCATED],
        *(r["moment"] for r in finding.get("repeats", ())[:REPEATS_LOCATED] if r.get("moment")),
    ]
    for ev in events:
        try:
            found = locate(model, data_dir, ev["producer"], ev["id"], ev["ts"])
        except MomentError:
            continue
        if found.request and found.request not in held:
            held.append(found.request)
    return held


def _opening(model: RunModel, data_dir: Any, finding: dict[str, Any]) -> dict[str, Any]:
    """Where the finding's moment is drawn, the request holding it and its chain (when the
    run's calls hold that chain: the call tree opens it)."""
    moment = finding.get("moment")
    chain = finding.get("correlation_id")
    out: dict[str, Any] = {
        "ts": None,
        "ev": None,
        "row": None,
        "lane": None,
        "request": None,
        # a chain several requests share (an in-process client's): its request, not all of it
        "chain": chain if chain in model.chains and not _shared(finding) else None,
    }
    if not moment:
        return out
    out["ts"] = moment["ts"]
    out["ev"] = f"{moment['producer']}:{moment['id']}"
    try:
        found = locate(model, data_dir, moment["producer"], moment["id"], moment["ts"])
    except MomentError as exc:
        out["why"] = str(exc)
        return out
    out.update(row=found.row, lane=found.lane, request=found.request)
    return out


def _shared(finding: dict[str, Any]) -> bool:
    return bool((finding.get("details") or {}).get("shared_chain"))
