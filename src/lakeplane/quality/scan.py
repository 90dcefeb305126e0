"""Shared scans: every rule's aggregates over the table in as few SQL statements as possible.

:class:`AggregateScan` puts every simple aggregate of a ruleset (counts, means, failing-row counts
of row-level rules, each with its ``where`` as a ``FILTER``) into one ``SELECT`` over the table.
:class:`FrequencyScan` computes value-frequency statistics (uniqueness, distinct values, entropy) with
one ``GROUP BY`` per distinct column set and ``where``, shared by every rule about that set, and also
answers the other rules on a column it groups by. If a shared statement fails (a ``where`` clause
naming a column that does not exist, say), each rule's part runs alone so that only the broken rule
reports an error.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from lakeplane.engines.base import EngineSession
from lakeplane.errors import EngineError
from lakeplane.quality.sql import quote_ident


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

    def run(self, session: EngineSession) -> tuple[dict[str, Any], dict[int, str]]:
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
                errors[owner] = engine_problem(exc)
        return values, errors

    def _select(self, session: EngineSession, aliases: dict[str, str]) -> dict[str, Any]:
        columns = ", ".join(f"{expression} AS {alias}" for expression, alias in aliases.items())
        # aliased p: row-level rules correlate subqueries with the row under test (CustomSql)
        row = session.execute(f"SELECT {columns} FROM {self.relation} AS p")[0]
        return dict(zip(aliases.values(), row, strict=True))


@dataclass(frozen=True)
class Frequencies:
    """How the values of a column set are distributed among the rows in scope.

    Statistics of values leave out rows with a NULL in the set; ``scoped_rows`` counts those too.
    """

    rows: int  # rows with no NULL in the column set
    distinct: int  # distinct values
    singletons: int  # values that occur exactly once
    entropy: float  # -sum(p * ln p) over the values (NaN unless asked for)
    scoped_rows: int = 0  # every row in scope, NULLs included

    @property
    def duplicate_rows(self) -> int:
        """Rows whose value occurs more than once."""
        return self.rows - self.singletons

    @property
    def uniqueness(self) -> float:
        """Share of rows whose value occurs once (Glue's ``Uniqueness``)."""
        return self.singletons / self.rows if self.rows else 1.0

    @property
    def unique_value_ratio(self) -> float:
        """Share of distinct values that occur once (Glue's ``UniqueValueRatio``)."""
        return self.singletons / self.distinct if self.distinct else 1.0

    @property
    def null_rows(self) -> int:
        """Rows in scope with a NULL in the column set."""
        return self.scoped_rows - self.rows


FrequencyKey = tuple[str | None, tuple[str, ...]]
COUNT = "__dq_n"  # the row count of each group, named so that no column is shadowed


class FrequencyScan:
    """Value frequencies of column sets over one relation: one ``GROUP BY`` per column set and ``where``.

    Every rule about the same column set (``IsUnique``, ``IsPrimaryKey``, ``Uniqueness``,
    ``UniqueValueRatio``, ``DistinctValuesCount``, ``Entropy``) reads the one grouping. Column sets
    are grouped each in its own statement rather than together in ``GROUPING SETS``: one hash table
    per statement, sized for its own set, is much cheaper than a shared one where a high-cardinality
    key (an event id) makes every set pay for its millions of groups.

    Row checks on a grouped column (``IsComplete``, ``ColumnValues``, ``ColumnLength``...) can ride
    along (:meth:`add_check`): their predicate is evaluated once per distinct value and weighted by
    its count, so the table scan no longer reads or tests that column row by row.
    """

    def __init__(self, relation: str) -> None:
        self.relation = relation
        self._owners: dict[FrequencyKey, list[int]] = defaultdict(list)
        self._checks: dict[FrequencyKey, dict[str, tuple[str, list[int]]]] = defaultdict(dict)
        self._entropy: set[FrequencyKey] = set()
        self._count = 0

    def add(
        self, owner: int, columns: tuple[str, ...], where: str | None, entropy: bool = False
    ) -> FrequencyKey:
        """Ask for the frequencies of ``columns`` among the rows meeting ``where`` (with their
        ``entropy``: a logarithm per distinct value, so only when a rule needs it)."""
        key = (where, columns)
        self._owners[key].append(owner)
        if entropy:
            self._entropy.add(key)
        return key

    def add_check(self, owner: int, key: FrequencyKey, passes: str) -> str:
        """Count the rows of grouping ``key`` failing ``passes``, a predicate on its columns only.

        Returns:
            The key of the failing-row count among the checks' results.
        """
        checks = self._checks[key]
        if passes not in checks:
            self._count += 1
            checks[passes] = (f"c{self._count}", [])
        checks[passes][1].append(owner)
        return checks[passes][0]

    def run(
        self, session: EngineSession
    ) -> tuple[dict[FrequencyKey, Frequencies], dict[str, int], dict[int, str]]:
        """Frequencies by key, failing-row counts by check, and an error for each rule that failed.

        A statement that fails runs again without its checks, then each check alone, so that only
        the broken rule reports an error.
        """
        found: dict[FrequencyKey, Frequencies] = {}
        failing: dict[str, int] = {}
        errors: dict[int, str] = {}
        for key in dict.fromkeys([*self._owners, *self._checks]):
            checks = {predicate: alias for predicate, (alias, _) in self._checks.get(key, {}).items()}
            try:
                found[key], counts = self._query(session, key, checks)
                failing.update(counts)
                continue
            except EngineError:
                pass
            try:
                found[key], _ = self._query(session, key, {})
            except EngineError as exc:
                checked = [o for _, owners in self._checks.get(key, {}).values() for o in owners]
                errors.update(dict.fromkeys(self._owners.get(key, []) + checked, engine_problem(exc)))
                continue
            for predicate, (alias, owners) in self._checks.get(key, {}).items():
                try:
                    failing.update(self._query(session, key, {predicate: alias})[1])
                except EngineError as exc:
                    errors.update(dict.fromkeys(owners, engine_problem(exc)))
        return found, failing, errors

    def _query(
        self, session: EngineSession, key: FrequencyKey, checks: dict[str, str]
    ) -> tuple[Frequencies, dict[str, int]]:
        where, columns = key
        listed = ", ".join(quote_ident(c) for c in columns)
        complete = " AND ".join(f"{quote_ident(c)} IS NOT NULL" for c in columns)
        n = COUNT
        # Entropy without a window over the groups: -sum(p ln p) = ln N - sum(n ln n) / N, where
        # values seen once add nothing (ln 1 = 0).
        entropy = (
            f"coalesce(sum({n} * ln({n})) FILTER (WHERE {complete} AND {n} > 1), 0)"
            if key in self._entropy
            else "0"
        )
        failing = "".join(f", coalesce(sum({n}) FILTER (WHERE NOT ({predicate})), 0)" for predicate in checks)
        row = session.execute(f"""
            SELECT coalesce(sum({n}), 0), coalesce(sum({n}) FILTER (WHERE {complete}), 0),
                   count(*) FILTER (WHERE {complete}), count(*) FILTER (WHERE {complete} AND {n} = 1),
                   {entropy}{failing}
            FROM (SELECT {listed}, count(*) AS {n} FROM {self.relation}
                  {f"WHERE {where}" if where else ""} GROUP BY {listed}) AS grouped""")[0]
        scoped, rows, distinct, singletons, n_ln_n = row[:5]
        entropy_value = (
            math.nan
            if key not in self._entropy
            else (_clean(math.log(rows) - float(n_ln_n) / rows) if rows else 0.0)
        )
        stats = Frequencies(int(rows), int(distinct), int(singletons), entropy_value, int(scoped))
        return stats, {alias: int(count) for alias, count in zip(checks.values(), row[5:], strict=True)}


def _clean(entropy: float) -> float:
    return 0.0 if math.isclose(entropy, 0.0, abs_tol=1e-9) else entropy


def engine_problem(exc: EngineError) -> str:
    """The engine's message without the job prefix and the LINE/caret context DuckDB adds."""
    text = str(exc).split(": ", 1)[-1]
    return text.split("\n", 1)[0].strip()
