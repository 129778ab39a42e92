"""How the detectors read SQL: statements that differ only in their values have one shape;
a read and a write of a row are told apart, with the values that select the row."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from elixirscope.ai.sql import Access, access, literals, normalize, parameter_values

values = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=8).map(
        lambda s: "'" + s.replace("'", "''") + "'"),
)


@given(values, values)
def test_statements_differing_only_in_literals_have_one_shape(a: str, b: str) -> None:
    template = "select name from items where order_id = {} and  note = 'x'"
    assert normalize(template.format(a)) == normalize(template.format(b))
    assert normalize(template.format(a)) == "SELECT name FROM items WHERE order_id = ? AND note = ?"
    assert literals(template.format(a)) == [a, "'x'"]


@given(st.text(max_size=80))
def test_normalize_is_idempotent_and_never_fails(statement: str) -> None:
    once = normalize(statement)
    assert normalize(once) == once


def test_placeholder_styles_and_in_lists_are_one_shape() -> None:
    shapes = {normalize(s) for s in (
        "SELECT * FROM t WHERE id IN (?, ?, ?)",
        "SELECT * FROM t WHERE id IN (%s, %s)",
        "SELECT * FROM t WHERE id IN (:a, :b)",
        "SELECT * FROM t WHERE id IN ($1)",
        "select * from t where id in (1, 2, 3, 4);",
    )}
    assert shapes == {"SELECT * FROM t WHERE id IN (?)"}


def test_reads_and_writes_of_a_row() -> None:
    assert access("SELECT balance FROM accounts WHERE id = ?", "(1,)") == Access(
        "read", "accounts", "WHERE id = ?", ("1",))
    assert access("UPDATE accounts SET balance = ?, seen = 'y' WHERE id = ?", "(5, 1)") == Access(
        "write", "accounts", "WHERE id = ?", ("1",), frozenset({"balance", "seen"}))
    assert access("UPDATE accounts SET balance = 5 WHERE id = 2", None) == Access(
        "write", "accounts", "WHERE id = ?", ("2",), frozenset({"balance"}))
    redacted = access("UPDATE accounts SET balance = ? WHERE id = ?", "(<redacted>, <redacted>)")
    assert redacted is not None and redacted.key is None  # the row is not known
    for other in ("INSERT INTO t VALUES (1)", "UPDATE t SET a = 1", "SELECT * FROM t",
                  "SELECT * FROM a JOIN b ON a.id = b.id WHERE a.id = 1", "DELETE FROM t"):
        assert access(other, None) is None


def test_parameters_as_recorded() -> None:
    assert parameter_values("(1, 'a')") == ["1", "'a'"]
    assert parameter_values("{'b': 2, 'a': 1}") == ["1", "2"]
    assert parameter_values("(<redacted>,)") is None
    assert parameter_values(None) is None


def _queries(statement: str, *parameters: str | None) -> list:
    from types import SimpleNamespace

    return [SimpleNamespace(event=SimpleNamespace(statement=statement, parameters=p))
            for p in parameters]


def test_which_parameter_varies_or_why_it_cannot_be_said() -> None:
    from elixirscope.ai.query_groups import varying

    sql = "SELECT * FROM items WHERE order_id = ? AND kind = ?"
    said = varying(_queries(sql, "(1, 'a')", "(2, 'a')", "(3, 'a')"))
    assert said["positions"] == ["parameter 1"] and said["column"] == "order_id"
    assert said["text"] == "Between them, parameter 1 (order_id) varies (1, 2, 3)."
    said = varying(_queries(sql, *["(<redacted>, <redacted>)"] * 3))
    assert said["positions"] == [] and 'record with "values"' in said["text"]
    said = varying(_queries("SELECT 1", None, None))
    assert said["text"] == "Nothing recorded differs between them: the very same query ran again."


def test_the_key_a_fix_lists_is_the_varying_column_else_the_only_placeholder_one() -> None:
    """Redacted parameters say nothing of what varies, yet a statement with one placeholder
    names the column its IN (...) lists; two placeholders name none."""
    from elixirscope.ai.query_groups import QueryGroup, varying

    one = _queries("SELECT sku FROM lines WHERE order_id = ?", *["(<redacted>,)"] * 3)
    group = QueryGroup("p", "SELECT sku FROM lines WHERE order_id = ?", None, 0, one)
    assert group.key_column(varying(one)) == "order_id"
    lazy = _queries("SELECT tasks.id FROM tasks WHERE ? = tasks.project_id", "(<redacted>,)")
    assert QueryGroup("p", "s", None, 0, lazy).key_column(varying(lazy)) == "tasks.project_id"
    two = _queries("SELECT * FROM items WHERE order_id = ? AND kind = ?", *["(<redacted>, <redacted>)"] * 3)
    assert QueryGroup("p", "s", None, 0, two).key_column(varying(two)) is None
    known = _queries("SELECT * FROM items WHERE order_id = ? AND kind = ?", "(1, 'a')", "(1, 'b')")
    assert QueryGroup("p", "s", None, 0, known).key_column(varying(known)) == "kind"
