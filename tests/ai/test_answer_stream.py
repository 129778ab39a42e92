"""AnswerStream: however the writer's pieces and the reader's reads interleave, the reader
gets the whole text once, in order, and the end only after all of it."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from elixirscope.ai.answer_stream import AnswerStream


@given(
    pieces=st.lists(st.text(max_size=20), max_size=20),
    reads=st.lists(st.integers(0, 20), max_size=20),
    failed=st.booleans(),
)
def test_reads_between_writes_give_the_whole_text_once_then_the_end(pieces, reads, failed) -> None:
    stream, got, offset = AnswerStream(), "", 0
    for i, piece in enumerate(pieces):
        stream.write(piece)
        for _ in range(reads[i] if i < len(reads) else 0):  # read any number of times
            part = stream.read(offset)
            assert not part["done"] and "report" not in part
            got, offset = got + part["text"], part["offset"]
    assert stream.ready(offset) == (got != "".join(pieces))  # something left to read, or not
    stream.finish(None if failed else {"answer": "".join(pieces)},
                  {"code": "invalid_params", "message": "cut"} if failed else None)
    assert stream.ready(offset)
    end = stream.read(offset)
    assert got + end["text"] == "".join(pieces) and end["done"]
    assert (end["report"] is None) == failed and (end["error"] is not None) == failed
    assert stream.read(end["offset"])["text"] == ""


def test_a_writer_thread_and_a_reader_agree_and_a_bad_offset_is_refused() -> None:
    stream = AnswerStream()
    stream.context("# the context")
    pieces = [f"piece {i} " for i in range(500)]

    def write() -> None:
        for piece in pieces:
            stream.write(piece)
        stream.finish({"answer": "".join(pieces)})

    writer = threading.Thread(target=write)
    writer.start()
    got, offset, part = "", 0, {"done": False}
    while not part["done"]:
        part = stream.read(offset, context=True)
        assert part["context"] == "# the context"
        got, offset = got + part["text"], part["offset"]
    writer.join()
    assert got == "".join(pieces)
    with pytest.raises(ValueError, match="offset must be >= 0, got -1"):
        stream.read(-1)
