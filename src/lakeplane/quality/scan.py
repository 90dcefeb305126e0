"""Shared scans: every rule's aggregates over the table in as few SQL statements as possible.

:class:`AggregateScan` puts every simple aggregate of a ruleset (counts, means, failing-row counts
of row-level rules, each with its ``where`` as a ``FILTER``) into one ``SELECT`` over the table.
:class:`FrequencyScan` computes value-frequency statistics (uniqueness, entropy) for many column sets
in one ``GROUP BY GROUPING SETS`` statement per distinct ``where`` clause. If a shared statement fails
(a ``where`` clause naming a column that does not exist, say), each rule's part runs alone so that
only the broken rule reports an error.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from lakeplane.engines.duckdb import DuckDBSession, quote_ident
from lakeplane.errors import EngineError


class AggregateScan:
    """Aggregates over one relation, computed together in a single ``SELECT``."""

    def __init__(self, relation: str) -> None:
        self.relation = relation
        self._aliases: dict[str, str] = {}  # SQL expression -> its column alias
        self._owners: dict[int, list[str]] = defaultdict(list)  # rule -> its aliases

    def add(self, owner: int, expression: str) -> str:
        """Ask for ``expression`` (an aggregate) for rule ``owner``; returns the key of its value."""
        alias = self._aliases.setdefault(expression, f"m{len(self._aliases)}")
        self._owners[owner].append(alias)
        return alias

    def run(self, session: DuckDBSession) -> tuple[dict[str, Any], dict[int, str]]:
        """Values by key, and an error message for each rule whose aggregates could not run."""
        if not self._aliases:
            return {}, {}
        try:
            return self._select(session, self._aliases), {}
        except EngineError:
            pass
        values: dict[str, Any] = {}
        errors: dict[int, str] = {}
        by_alias = {alias: expression for expression, alias in self._aliases.items()}
        for owner, aliases in self._owners.items():
            try:
                values.update(self._select(session, {by_alias[a]: a for a in aliases}))
            except EngineError as exc:
                errors[owner] = _engine_problem(exc)
        return values, errors

    def _select(self, session: DuckDBSession, aliases: dict[str, str]) -> dict[str, Any]:
        columns = ", ".join(f"{expression} AS {alias}" for expression, alias in aliases.items())
        # aliased p: row-level rules correlate subqueries with the row under test (CustomSql)
        row = session.execute(f"SELECT {columns} FROM {self.relation} AS p")[0]
        return dict(zip(aliases.values(), row, strict=True))


@dataclass(frozen=True)
class Frequencies:
    """How the values of a column set are distributed (rows with a NULL in the set left out)."""

    rows: int  # rows with no NULL in the column set
    distinct: int  # distinct values
    singletons: int  # values that occur exactly once
    duplicate_rows: int  # rows whose value occurs more than once
    entropy: float  # -sum(p * ln p) over the values

    @property
    def uniqueness(self) -> float:
        """Share of rows whose value occurs once (Glue's ``Uniqueness``)."""
        return self.singletons / self.rows if self.rows else 1.0

    @property
    def unique_value_ratio(self) -> float:
        """Share of distinct values that occur once (Glue's ``UniqueValueRatio``)."""
        return self.singletons / self.distinct if self.distinct else 1.0


EMPTY = Frequencies(0, 0, 0, 0, 0.0)
FrequencyKey = tuple[str | None, tuple[str, ...]]


class FrequencyScan:
    """Value frequencies of many column sets over one relation: one statement per ``where``."""

    def __init__(self, relation: str) -> None:
        self.relation = relation
        self._sets: dict[str | None, dict[tuple[str, ...], list[int]]] = defaultdict(dict)

    def add(self, owner: int, columns: tuple[str, ...], where: str | None) -> FrequencyKey:
        """Ask for the frequencies of ``columns`` among the rows meeting ``where``."""
        self._sets[where].setdefault(columns, []).append(owner)
        return where, columns

    def run(self, session: DuckDBSession) -> tuple[dict[FrequencyKey, Frequencies], dict[int, str]]:
        """Frequencies by key, and an error message for each rule whose statement failed."""
        found: dict[FrequencyKey, Frequencies] = {}
        errors: dict[int, str] = {}
        for where, sets in self._sets.items():
            try:
                found.update({(where, s): f for s, f in self._query(session, where, list(sets)).items()})
                continue
            except EngineError:
                pass
            for column_set, owners in sets.items():  # find the broken rule
                try:
                    found[(where, column_set)] = self._query(session, where, [column_set])[column_set]
                except EngineError as exc:
                    errors.update(dict.fromkeys(owners, _engine_problem(exc)))
        return found, errors

    def _query(self, session: DuckDBSession, where: str | None,
               sets: list[tuple[str, ...]]) -> dict[tuple[str, ...], Frequencies]:
        columns = sorted({c for s in sets for c in s})
        width = len(columns)

        def grouping_id(column_set: tuple[str, ...]) -> int:  # a 1 bit for each column not grouped
            return sum(1 << (width - 1 - i) for i, c in enumerate(columns) if c not in column_set)

        complete = " OR ".join(
            f"(g = {grouping_id(s)} AND {' AND '.join(f'{quote_ident(c)} IS NOT NULL' for c in s)})"
            for s in sets)
        grouping = ", ".join(f"({', '.join(quote_ident(c) for c in s)})" for s in sets)
        listed = ", ".join(quote_ident(c) for c in columns)
        sql = f"""
            WITH groups AS (
                SELECT GROUPING({listed}) AS g, {listed}, count(*) AS n
                FROM {self.relation} {f'WHERE {where}' if where else ''}
                GROUP BY GROUPING SETS ({grouping})
            ), kept AS (
                SELECT g, n, n / sum(n) OVER (PARTITION BY g) AS p FROM groups WHERE {complete}
            )
            SELECT g, sum(n), count(*), count(*) FILTER (WHERE n = 1),
                   coalesce(sum(n) FILTER (WHERE n > 1), 0), -sum(p * ln(p))
            FROM kept GROUP BY g"""
        rows = {int(r[0]): r for r in session.execute(sql)}
        out = {}
        for column_set in sets:
            row = rows.get(grouping_id(column_set))
            out[column_set] = EMPTY if row is None else Frequencies(
                int(row[1]), int(row[2]), int(row[3]), int(row[4]), _clean(float(row[5])))
        return out


def _clean(entropy: float) -> float:
    return 0.0 if math.isclose(entropy, 0.0, abs_tol=1e-12) else entropy


def _engine_problem(exc: EngineError) -> str:
    """DuckDB's message without the job prefix and the LINE/caret context it adds."""
    text = str(exc).split(": ", 1)[-1]
    return text.split("\n", 1)[0].strip()
