"""Insights: every detector over one run, as findings grouped by severity.

:func:`find` runs the detectors over a :class:`Recording`; :func:`insights_report`
reads a run from a data dir and returns the report ``elixirscope insights``,
the console and the AI layer's actor answer with (``findings`` as data, ``text``
for a person). A detector that fails is named in ``errors`` and the others'
findings are still given: one defect in a detector never hides the rest.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from typing import Any

from elixirscope.ai.findings import SEVERITIES, Finding, clock_text, fold_repeats
from elixirscope.ai.recording import Recording, load_recording
from elixirscope.ai.settings import InsightSettings

__all__ = [
    "DETECTORS",
    "cinema_url",
    "find",
    "find_finding",
    "insights_report",
    "render_findings",
]


def _detectors() -> dict[str, Callable[[Recording, InsightSettings], list[Finding]]]:
    from elixirscope.ai.blocking import detect_blocked_loop
    from elixirscope.ai.http_calls import detect_http
    from elixirscope.ai.http_loops import detect_http_loops
    from elixirscope.ai.latency import detect_latency
    from elixirscope.ai.lost_updates import detect_lost_updates
    from elixirscope.ai.mailbox import detect_mailbox_growth
    from elixirscope.ai.nplusone import detect_n_plus_one
    from elixirscope.ai.poison import detect_poison_messages
    from elixirscope.ai.races import detect_races
    from elixirscope.ai.retries import detect_retries
    from elixirscope.ai.row_writes import detect_row_writes
    from elixirscope.ai.server_errors import detect_server_errors
    from elixirscope.ai.slow import detect_slow
    from elixirscope.ai.supervision import detect_supervision
    from elixirscope.ai.uncaught import detect_uncaught
    from elixirscope.ai.undelivered import detect_undelivered

    return {
        "n_plus_one": detect_n_plus_one,
        "row_writes": detect_row_writes,
        "races": detect_races,
        "lost_updates": detect_lost_updates,
        "latency": detect_latency,
        "supervision": detect_supervision,
        "mailbox": detect_mailbox_growth,
        "poison_messages": detect_poison_messages,
        "undelivered": detect_undelivered,
        "http": detect_http,
        "http_loops": detect_http_loops,
        "retries": detect_retries,
        "slow": detect_slow,
        "server_errors": detect_server_errors,
        "uncaught": detect_uncaught,
        "blocked_loop": detect_blocked_loop,
    }


DETECTORS = (
    "n_plus_one",
    "row_writes",
    "races",
    "lost_updates",
    "latency",
    "supervision",
    "mailbox",
    "poison_messages",
    "undelivered",
    "http",
    "http_loops",
    "retries",
    "slow",
    "server_errors",
    "uncaught",
    "blocked_loop",
)


def find(
    recording: Recording, settings: InsightSettings | None = None
) -> tuple[list[Finding], dict[str, str]]:
    """Every finding in ``recording``, most severe first, then in time, a defect seen
    again folded into its first (``Finding.repeats``); and the detectors that failed
    (name -> what went wrong)."""
    settings = settings or InsightSettings()
    findings: list[Finding] = []
    errors: dict[str, str] = {}
    for name, detect in _detectors().items():
        try:
            findings.extend(detect(recording, settings))
        except Exception as exc:  # noqa: BLE001 - one detector's fault must not hide the others
            errors[name] = f"{type(exc).__name__}: {exc}"[:500]
    order = {s: i for i, s in enumerate(SEVERITIES)}
    findings.sort(key=lambda f: (order[f.severity], f.moment.ts if f.moment else 0, f.id))
    shared = recording.shared_chains
    for f in findings:  # its calltree command shows the request's part of such a chain
        if f.correlation_id in shared:
            f.details["shared_chain"] = True
    return fold_repeats(findings), errors


def insights_report(
    data_dir: str | os.PathLike[str],
    run: str | None = None,
    settings: InsightSettings | None = None,
) -> dict[str, Any]:
    """The findings of ``run`` (default: the latest) under ``data_dir``."""
    from elixirscope.query.runs import select_run

    recording = load_recording(data_dir, run)
    findings, errors = find(recording, settings)
    scope = select_run(data_dir, recording.run) if recording.run else None
    header = scope.header() if scope is not None else f"all events under {data_dir}"
    return {
        "run": recording.run,
        "events": len(recording.events),
        "findings": [f.to_dict() for f in findings],
        "counts": {s: sum(f.severity == s for f in findings) for s in SEVERITIES},
        "errors": errors,
        "warnings": recording.warnings,
        "text": render_findings(
            findings,
            header,
            errors,
            (settings or InsightSettings()).ui_url,
            data_dir=os.fspath(data_dir),
        ),
    }


def all_runs_report(
    data_dir: str | os.PathLike[str], settings: InsightSettings | None = None
) -> dict[str, Any]:
    """Every run's findings under ``data_dir``, newest first: each run's report (as
    :func:`insights_report` makes it) under ``runs``, their texts one after another."""
    from elixirscope.query.runs import list_runs

    reports = [insights_report(data_dir, info.id, settings) for info in list_runs(data_dir)]
    if not reports:  # nothing recorded, or a data dir from before runs: one report says it
        return insights_report(data_dir, None, settings)
    counts = {s: sum(r["counts"][s] for r in reports) for s in SEVERITIES}
    said = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no findings"
    head = f"all {len(reports)} runs: {said}"
    return {
        "runs": reports,
        "counts": counts,
        "text": "\n\n".join([head, *(r["text"] for r in reports)]),
    }


LOOKED_FOR = (
    "N+1 queries or HTTP calls, row-by-row writes, races, latency anomalies, slow handlers or requests, server errors, "
    "uncaught exceptions, crashes, messages a Thespian actor failed on or the runtime dropped "
    "undelivered, restart storms, crash "
    "loops, mailbox growth, retry loops, "
    "slow/retried calls, blocked event loops or lost updates of an object's attributes across "
    "threads (attribute writes: --level full)"
)
"""What the detectors look for, as a sentence says it (``no findings: no ...``)."""

OTHER_RUNS_SEARCHED = 20
"""Runs (the newest) ``explain`` looks in for a finding id not in the latest run."""


def find_finding(
    data_dir: str | os.PathLike[str],
    finding: str,
    run: str | None = None,
    settings: InsightSettings | None = None,
) -> tuple[Finding, Recording]:
    """The finding whose id starts with ``finding`` in ``run``; with no run given, in the
    latest, else in the other runs newest first (a server and the service it calls
    recorded into one data dir: an id ``insights --all-runs`` printed names either's)."""
    prefix = finding.lower()

    def look_in(run_id: str | None) -> tuple[Recording, list[Finding], list[Finding]]:
        recording = load_recording(data_dir, run_id)
        heads, _ = find(recording, settings)
        every = [f for head in heads for f in (head, *head.repeats)]
        return recording, heads, [f for f in every if f.id.lower().startswith(prefix)]

    recording, findings, matches = look_in(run)
    if not matches and run is None:
        from elixirscope.query.runs import list_runs

        for other in list_runs(data_dir)[:OTHER_RUNS_SEARCHED]:
            if other.id != recording.run:
                there = look_in(other.id)
                if there[2]:
                    recording, findings, matches = there
                    break
    if not matches:
        known = ", ".join(f.id for f in findings[:5]) or "none"
        raise LookupError(
            f"no finding {finding!r} in run {(recording.run or '?')[:8]} (its findings: {known}); "
            "`elixirscope insights` lists them"
        )
    if len(matches) > 1:
        raise LookupError(f"finding {finding!r} is ambiguous: {', '.join(f.id for f in matches)}")
    return matches[0], recording


WIDTH = 96


OPEN_HINT = "open: paste a link after the URL `elixirscope ui` prints (--ui URL prints it whole)"


def cinema_url(link: str, ui_url: str = "") -> str:
    """A finding's cinema link, whole when the cinema's URL is known (any fragment it
    had replaced), else the part to paste after it."""
    return ui_url.partition("#")[0] + link if ui_url else link


def render_findings(
    findings: list[Finding],
    header: str = "",
    errors: dict[str, str] | None = None,
    ui_url: str = "",
    *,
    data_dir: str | None = None,
) -> str:
    """Findings grouped by severity, each with where, when, its cinema link, the fix and
    what to run next (reading ``data_dir``, when given); without the cinema's URL, one
    line says how to open the links."""
    lines = [header] if header else []
    counts = {s: sum(f.severity == s for f in findings) for s in SEVERITIES}
    if not findings:
        lines.append(f"no findings: no {LOOKED_FOR}")
    else:
        said = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        seen = sum(len(f.repeats) for f in findings)
        again = f" ({len(findings) + seen} occurrences)" if seen else ""
        lines.append(f"{len(findings)} finding{'s' * (len(findings) != 1)}{again}: {said}")
    for severity in SEVERITIES:
        group = [f for f in findings if f.severity == severity]
        if not group:
            continue
        lines.append("")
        lines.append(f"{severity.upper()} ({len(group)})")
        for f in group:
            lines.extend(_render_one(f, ui_url, data_dir))
    if not ui_url and any(f.cinema_link() for f in findings):
        lines.append("")
        lines.append(OPEN_HINT)
    for name, error in (errors or {}).items():
        lines.append(f"note: the {name} detector failed ({error}); its findings are missing")
    return "\n".join(lines)


def _wrap(label: str, text: str) -> list[str]:
    pad = " " * 4
    first = f"{pad}{label:<8}" if label else pad
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=first,
        subsequent_indent=pad + (" " * 8 if label else ""),
        break_on_hyphens=False,
        break_long_words=False,
    ) or [first]


def _render_one(f: Finding, ui_url: str = "", data_dir: str | None = None) -> list[str]:
    out = [f"  {f.id}  {f.title}"]
    out.extend(_wrap("", f.explanation))
    if f.repeats:
        seen = sorted(g.moment.ts for g in f.repeats if g.moment)  # the others' times
        out.extend(
            _wrap(
                "again",
                f"{len(f.repeats)} more time{'s' * (len(f.repeats) != 1)} in this run"
                + (
                    f", from {clock_text(seen[0])} to {clock_text(seen[-1])}"
                    if len(seen) > 1
                    else ""
                )
                + (f", at {clock_text(seen[0])}" if len(seen) == 1 else "")
                + ("; the worst shown" if any(r.weight != f.weight for r in f.repeats) else "")
                + f" ({', '.join(r.id for r in f.repeats[:3])}"
                + (", …" if len(f.repeats) > 3 else "")
                + "; `insights --json` lists each, `explain` takes any id)",
            )
        )
    for loc in f.locations:
        out.append(f"    {'where':<8}{loc}{'  ' + loc.role if loc.role else ''}")
    moment = f.moment
    if moment is not None:
        out.append(
            f"    {'moment':<8}event {moment.id} ({moment.type}) at {clock_text(moment.ts)}"
            + (f", {len(f.evidence)} events of evidence" if len(f.evidence) > 1 else "")
        )
    link = f.cinema_link()
    if link:
        out.append(f"    {'open':<8}{cinema_url(link, ui_url)}")
    out.extend(_wrap("fix", f.fix))
    for i, command in enumerate(f.commands(data_dir)):
        out.append(f"    {'look' if i == 0 else '':<8}{command}")
    return out
