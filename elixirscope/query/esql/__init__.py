"""ESQL: one small query language over everything recorded.

``run(query, data_dir=...)`` answers a query as rows; ``parse`` reads one into
its syntax tree. The language is documented in docs/esql.md; the modules, in
the order a query passes through them: ``lexer`` and ``parser`` (text ->
``syntax``), ``planner`` (fields from ``fields``, conditions from
``predicates``, what the store's indexes answer), ``evaluator`` (the read,
over ``rows`` and their context), ``render`` (table, CSV, JSON), ``api``.
"""

from elixirscope.query.esql.api import DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT_S, Result, esql_report, run
from elixirscope.query.esql.cache import RESULTS, ResultCache
from elixirscope.query.esql.errors import EsqlCancelled, EsqlError, EsqlTimeout
from elixirscope.query.esql.parser import parse

__all__ = [
    "DEFAULT_MAX_ROWS",
    "DEFAULT_TIMEOUT_S",
    "RESULTS",
    "EsqlCancelled",
    "EsqlError",
    "EsqlTimeout",
    "Result",
    "ResultCache",
    "esql_report",
    "parse",
    "run",
]
