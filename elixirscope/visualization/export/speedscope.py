"""A run as a speedscope file (https://www.speedscope.app/file-format-schema.json):
one evented profile per thread, for flame graphs and left-heavy views.

Frames are the functions called (name, file, ``def`` line), shared by every
profile. Each profile opens a frame when a call (or a generator's resumed
segment) begins and closes it when it ends or suspends, in nanoseconds from the
run's first event, so its stack always nests — speedscope refuses a file whose
events do not. A call still open when its process stopped is closed at the
profile's end.

The events of many threads arrive interleaved, and the file holds each
thread's profile whole; so each thread's events are spooled to a temporary
file as they come (13 bytes an event) and copied into the file at the end:
memory holds the frames and the open stacks, not the events.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Iterable
from typing import IO, Any

import msgspec

from elixirscope.visualization.export.walk import Call, Close, Item, Lane, Open

__all__ = ["SCHEMA_URL", "write_speedscope"]

SCHEMA_URL = "https://www.speedscope.app/file-format-schema.json"
_RECORD = struct.Struct("<cqI")  # O/C, at (ns from origin), frame
_OPEN_FILES = 64  # spool files kept open at once; others are reopened to append
_encode = msgspec.json.Encoder().encode


class _Profile:
    """One thread's profile while it is written: its spool and its open stack."""

    def __init__(self, lane: Lane, spool: str) -> None:
        self.lane = lane
        self.spool = spool
        self.stack: list[tuple[Call, int]] = []  # (call, frame)
        self.start: int | None = None
        self.last = 0
        self.events = 0


def write_speedscope(
    items: Iterable[Item], out: IO[bytes], *, origin_ns: int, name: str
) -> dict[str, int]:
    """Write ``items`` to ``out``; returns counts (``profiles``, ``frames``, ``events``)."""
    frames: dict[tuple[str, str | None, int], int] = {}
    profiles: dict[tuple[str, int], _Profile] = {}
    handles: dict[str, IO[bytes]] = {}
    with tempfile.TemporaryDirectory(prefix="elixirscope-speedscope-") as spools:

        def record(profile: _Profile, kind: bytes, ts: int, frame: int) -> None:
            at = max(ts - origin_ns, profile.last)
            if profile.start is None:
                profile.start = at
            profile.last = at
            handle = handles.get(profile.spool)
            if handle is None:
                if len(handles) >= _OPEN_FILES:
                    for h in handles.values():
                        h.close()
                    handles.clear()
                handle = handles[profile.spool] = open(profile.spool, "ab")  # noqa: SIM115
            handle.write(_RECORD.pack(kind, at, frame))
            profile.events += 1

        def profile_of(lane: Lane) -> _Profile:
            key = (lane.producer, lane.tid)
            profile = profiles.get(key)
            if profile is None:
                spool = os.path.join(spools, f"{len(profiles)}.bin")
                profile = profiles[key] = _Profile(lane, spool)
            return profile

        for item in items:
            kind = type(item)
            if kind is Open:
                assert isinstance(item, Open)
                call = item.call
                key = (call.function, call.file, call.line)
                frame = frames.get(key)
                if frame is None:
                    frame = frames[key] = len(frames)
                profile = profile_of(item.lane)
                profile.stack.append((call, frame))
                record(profile, b"O", item.ts, frame)
            elif kind is Close:
                assert isinstance(item, Close)
                profile = profile_of(item.lane)
                stack = profile.stack
                if not any(c is item.call for c, _ in stack):
                    continue  # opened on another thread (a generator resumed elsewhere)
                while stack:  # frames above it lost their ends: closed with it
                    call, frame = stack.pop()
                    record(profile, b"C", item.ts, frame)
                    if call is item.call:
                        break
        for profile in profiles.values():
            while profile.stack:
                _, frame = profile.stack.pop()
                record(profile, b"C", profile.last + origin_ns, frame)
        for h in handles.values():
            h.close()
        handles.clear()
        return _assemble(out, frames, list(profiles.values()), name)


def _assemble(
    out: IO[bytes],
    frames: dict[tuple[str, str | None, int], int],
    profiles: list[_Profile],
    name: str,
) -> dict[str, int]:
    write = out.write
    write(
        b'{"$schema":'
        + _encode(SCHEMA_URL)
        + b',"exporter":"elixirscope","name":'
        + _encode(name)
        + b',"activeProfileIndex":0,"profiles":['
    )
    written = [p for p in profiles if p.events]
    events = 0
    for i, profile in enumerate(written):
        lane = profile.lane
        head: dict[str, Any] = {
            "type": "evented",
            "name": f"{lane.name} - {lane.process}",
            "unit": "nanoseconds",
            "startValue": profile.start or 0,
            "endValue": profile.last,
        }
        write((b"," if i else b"") + _encode(head)[:-1] + b',"events":[')
        with open(profile.spool, "rb") as spool:
            sep = b""
            while block := spool.read(_RECORD.size * 65536):
                parts = []
                for kind, at, frame in _RECORD.iter_unpack(block):
                    parts.append(b'{"type":"%s","at":%d,"frame":%d}' % (kind, at, frame))
                write(sep + b",".join(parts))
                sep = b","
                events += len(parts)
        write(b"]}")
    write(b'],"shared":{"frames":[')
    for index, (function, file, line) in enumerate(frames):
        shown: dict[str, Any] = {"name": function}
        if file:
            shown["file"] = file
            shown["line"] = line
        write((b"," if index else b"") + _encode(shown))
    write(b"]}}\n")
    return {"profiles": len(written), "frames": len(frames), "events": events}
