"""The loop that calls a helper issuing a query, found from the caller's recorded first
line — which for a decorated function (a route) is its first decorator's."""

from __future__ import annotations

import textwrap

from elixirscope.ai.source import loop_calling

ROUTES = textwrap.dedent(
    """
    def route(f):
        return f


    @route
    def authors(c):
        rows = c.execute("SELECT id FROM authors").fetchall()
        return [books_of(c, a) for (a,) in rows]


    def plain(c):
        for a in range(3):
            books_of(c, a)
    """
)


def test_the_loop_calling_a_helper_from_a_decorated_functions_first_line(tmp_path) -> None:
    (tmp_path / "routes.py").write_text(ROUTES)
    lines = ROUTES.splitlines()
    decorator = lines.index("@route") + 1
    comprehension = lines.index("    return [books_of(c, a) for (a,) in rows]") + 1
    path = str(tmp_path / "routes.py")
    assert loop_calling(path, decorator, "app.books_of") == comprehension
    assert loop_calling(path, decorator + 1, "books_of") == comprehension  # its def line too
    plain = lines.index("def plain(c):") + 1
    assert loop_calling(path, plain, "books_of") == plain + 1
    assert loop_calling(path, plain, "other") is None
