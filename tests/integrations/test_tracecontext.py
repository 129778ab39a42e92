"""W3C trace context and recorded URLs: what is adopted, what is refused and why."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from elixirscope.integrations.tracecontext import (
    correlation_from_header,
    format_traceparent,
    header_text,
    new_span_id,
    parse_traceparent,
    trace_id_for,
)
from elixirscope.integrations.urls import clean_query, clean_url, path_text

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def test_a_valid_traceparent_is_adopted() -> None:
    parsed, why = parse_traceparent(f"00-{TRACE}-{SPAN}-01")
    assert why is None and parsed is not None
    assert (parsed.trace_id, parsed.span_id, parsed.flags) == (TRACE, SPAN, "01")
    later, why = parse_traceparent(f"01-{TRACE}-{SPAN}-00-future-stuff")  # a later version
    assert why is None and later is not None and later.trace_id == TRACE


def test_no_traceparent_is_neither_adopted_nor_an_error() -> None:
    assert parse_traceparent(None) == (None, None)


def test_each_malformed_traceparent_says_why() -> None:
    cases = {
        "garbage": "is not version-traceid-spanid-flags",
        f"00-{TRACE.upper()}-{SPAN}-01": "is not version-traceid-spanid-flags",
        f"ff-{TRACE}-{SPAN}-01": "invalid version ff",
        f"00-{TRACE}-{SPAN}-01-extra": "fields after the flags",
        f"00-{'0' * 32}-{SPAN}-01": "all-zero trace id",
        f"00-{TRACE}-{'0' * 16}-01": "all-zero parent id",
        "0" * 600: "longer than 512",
    }
    for header, reason in cases.items():
        parsed, why = parse_traceparent(header)
        assert parsed is None and why is not None and reason in why, header


@given(st.text(max_size=700))
def test_parsing_any_text_never_raises(text: str) -> None:
    parsed, why = parse_traceparent(text)
    assert (parsed is None) != (why is None)  # adopted, or refused with a reason


@given(st.binary(max_size=200))
def test_any_header_bytes_become_encodable_text(raw: bytes) -> None:
    text = header_text(raw)
    assert text is not None
    text.encode("utf-8")  # never a lone surrogate: it must reach msgpack


def test_our_chain_ids_are_trace_ids_and_others_are_digested() -> None:
    assert trace_id_for(TRACE) == TRACE
    digest = trace_id_for("order-17")
    assert len(digest) == 32 and digest == trace_id_for("order-17") and digest != TRACE
    assert len(trace_id_for(None)) == 32
    span = new_span_id()
    assert len(span) == 16 and span != "0" * 16
    assert format_traceparent(TRACE, SPAN) == f"00-{TRACE}-{SPAN}-01"


def test_correlation_ids_from_headers_are_bounded_and_plain() -> None:
    assert correlation_from_header(" req-42 ") == "req-42"
    assert correlation_from_header("x" * 129) is None
    assert correlation_from_header("a b") is None
    assert correlation_from_header("") is None


def test_urls_lose_user_info_and_secret_values() -> None:
    assert (
        clean_url("https://bob:hunter2@api.example:8443/v1/x?page=2&api_key=K&token=T#frag")
        == "https://api.example:8443/v1/x?page=2&api_key=<redacted>&token=<redacted>"
    )
    assert clean_query(b"q=shoes&password=pw") == "q=shoes&password=<redacted>"
    assert clean_query(None) is None and clean_query(b"") is None


def test_non_utf8_paths_and_queries_are_escaped() -> None:
    assert path_text(b"/caf\xe9") == "/caf\\xe9"
    assert path_text("/caf\udce9") == "/caf\\udce9"
    assert clean_query(b"name=caf\xe9") == "name=caf\\xe9"
    assert len(path_text(b"/" + b"a" * 10_000)) == 2048
