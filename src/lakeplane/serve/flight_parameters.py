"""Parameters of prepared statements: ``?`` by position, ``:name`` by the bound column's name.

lakeplane binds ``:name`` placeholders (typed literals, never spliced text); a Flight SQL client binds a
batch of parameter rows, positionally (ADBC's driver) or by column name. ``?`` placeholders are renamed
``:flight_param_1``, ``:flight_param_2``... so both forms reach the same binding.
"""

from __future__ import annotations

from typing import Any

from sqlglot.dialects.dialect import Dialect
from sqlglot.tokens import TokenType

from lakeplane.errors import QueryError

#: What ``?`` placeholders become, numbered from 1.
POSITIONAL_PREFIX = "flight_param_"


def parameter_sets(sql: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One parameter set per bound row (one empty set when none is bound), ``?`` by position."""
    count = sum(1 for t in _tokens(sql) if t.token_type == TokenType.PLACEHOLDER and t.text == "?")
    if count and not rows:
        raise QueryError(f"the statement has {count} '?' parameter(s) and no value was bound")
    return [
        {**row, **{f"{POSITIONAL_PREFIX}{i}": v for i, v in enumerate(row.values(), start=1)}}
        for row in rows or [{}]
    ]


def positional_to_named(sql: str) -> str:
    """``?`` placeholders as ``:flight_param_1``, ``:flight_param_2``... (strings and comments kept)."""
    marks = [t for t in _tokens(sql) if t.token_type == TokenType.PLACEHOLDER and t.text == "?"]
    for number, token in reversed(list(enumerate(marks, start=1))):
        sql = f"{sql[: token.start]}:{POSITIONAL_PREFIX}{number}{sql[token.end + 1 :]}"
    return sql


def _tokens(sql: str) -> list[Any]:
    try:
        return list(Dialect.get_or_raise("trino").tokenize(sql))
    except Exception:  # the compiler reports SQL that does not tokenize, with its position
        return []
