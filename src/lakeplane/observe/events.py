"""What SLOs and metrics count, read from the run store with aggregate queries.

An attempt is *lost* when the process running it went away rather than the step failing on its own
terms: the step's process died or was killed (``died (exit code ...)``, an OOM kill or a ``kill -9``
included), the runner holding it stopped (its heartbeats stopped, or it was stopped), or Spark lost
an executor under it. A step killed by its own memory limit or timeout is not lost: it overran.

An attempt *ran a quality gate* when its metrics hold rule outcomes (a model's gate, a quality step)
or it failed with :class:`~lakeplane.errors.QualityGateFailed`; the gate passed when every rule did.

Attempts 0 (a step kept from a redriven run, or skipped because an upstream step failed) were not
run and count nowhere but in the attempts by state. An attempt belongs to the moment its run started:
a window holds the attempts of the runs started in it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from lakeplane.pipelines.store import ATTEMPTS, RUNS, RunStore

#: Marks in an attempt's error, by why its worker went away.
LOSS_MARKS: dict[str, tuple[str, ...]] = {
    "process_died": ("died (exit code",),
    "runner_lost": ("the runner stopped", "the run stopped"),
    "executor_lost": ("ExecutorLostFailure", "SparkContext was shut down", "FetchFailed"),
}
#: Metrics text that may hold a gate's outcome (only those rows are decoded).
_GATE_MARKS = ('%"quality"%', "%QualityGateFailed%")


def stamp(moment: dt.datetime) -> str:
    """``moment`` as the run store writes times (ISO 8601, UTC), so that stamps compare as text."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def loss_reason(error: str | None) -> str | None:
    """Why a failed attempt's worker went away (a key of :data:`LOSS_MARKS`), or None."""
    for reason, marks in LOSS_MARKS.items():
        if error and any(mark in error for mark in marks):
            return reason
    return None


def gate_rules(metrics: dict[str, Any]) -> tuple[int, int] | None:
    """(passed, failed) rules of the quality gate an attempt ran, or None if it ran none. A failed
    gate records only its failing rules."""
    outcomes = metrics.get("quality")
    if isinstance(outcomes, list) and outcomes:
        passed = sum(1 for o in outcomes if isinstance(o, dict) and o.get("passed"))
        return passed, len(outcomes) - passed
    details = metrics.get("details")
    if isinstance(details, dict) and details.get("error") == "QualityGateFailed":
        return 0, max(1, len(details.get("rules") or []))
    return None


@dataclass(frozen=True)
class Scope:
    """Which attempts count: those of ``pipelines`` or only the (pipeline, step) pairs of ``steps``
    (None: all), of runs started in ``[since, until]``."""

    pipelines: tuple[str, ...] | None = None
    steps: frozenset[tuple[str, str]] | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def where(self) -> sa.ColumnElement[bool]:
        conditions = [ATTEMPTS.c.state != "running", ATTEMPTS.c.attempt >= 1]
        if self.pipelines is not None:
            conditions.append(RUNS.c.pipeline.in_(self.pipelines))
        if self.steps is not None:
            pairs = [(RUNS.c.pipeline == p) & (ATTEMPTS.c.step == s) for p, s in sorted(self.steps)]
            conditions.append(sa.or_(sa.false(), *pairs))
        if self.since is not None:
            conditions.append(RUNS.c.started_at >= stamp(self.since))
        if self.until is not None:
            conditions.append(RUNS.c.started_at <= stamp(self.until))
        return sa.and_(*conditions)


def _joined(*columns: Any) -> sa.Select[Any]:
    return sa.select(*columns).select_from(ATTEMPTS.join(RUNS, RUNS.c.run_id == ATTEMPTS.c.run_id))


def lost_condition() -> sa.ColumnElement[bool]:
    marks = [mark for group in LOSS_MARKS.values() for mark in group]
    return (ATTEMPTS.c.state == "failed") & sa.or_(
        *[ATTEMPTS.c.error.contains(m, autoescape=True) for m in marks]
    )


@dataclass(frozen=True)
class StepCounts:
    """Steps run, their attempts, and the attempts lost."""

    steps: int
    attempts: int
    lost: int

    @property
    def retries(self) -> int:
        """Attempts beyond the first of each step."""
        return self.attempts - self.steps


def step_counts(store: RunStore, scope: Scope) -> StepCounts:
    """Count the steps run in ``scope``, their attempts and the attempts lost."""
    key = ATTEMPTS.c.run_id + "/" + ATTEMPTS.c.step
    lost = sa.func.coalesce(sa.func.sum(sa.case((lost_condition(), 1), else_=0)), 0)
    query = _joined(sa.func.count(sa.distinct(key)), sa.func.count(), lost).where(scope.where())
    with store.engine.connect() as conn:
        steps, attempts, lost_n = conn.execute(query).one()
    return StepCounts(int(steps), int(attempts), int(lost_n))


def gate_outcomes(store: RunStore, scope: Scope) -> list[tuple[str, str, str, tuple[int, int]]]:
    """(pipeline, step, run start, (passed, failed) rules) of each quality gate run in ``scope``."""
    marked = sa.or_(*[ATTEMPTS.c.metrics.like(m) for m in _GATE_MARKS])
    query = _joined(RUNS.c.pipeline, ATTEMPTS.c.step, RUNS.c.started_at, ATTEMPTS.c.metrics).where(
        scope.where() & marked
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    found = []
    for pipeline, step, started, text in rows:
        rules = gate_rules(json.loads(text))
        if rules is not None:
            found.append((pipeline, step, started, rules))
    return found


def lost_attempts(store: RunStore, scope: Scope) -> list[tuple[str, str, str]]:
    """(pipeline, step, why) of each attempt lost in ``scope``."""
    query = _joined(RUNS.c.pipeline, ATTEMPTS.c.step, ATTEMPTS.c.error).where(
        scope.where() & lost_condition()
    )
    with store.engine.connect() as conn:
        return [(p, s, loss_reason(e) or "") for p, s, e in conn.execute(query)]


def json_number(engine: sa.Engine, key: str) -> sa.ColumnElement[Any]:
    """The number at ``key`` of an attempt's metrics, in SQL (NULL when absent)."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql  # only for a PostgreSQL run store: it loads psycopg

        value = sa.cast(ATTEMPTS.c.metrics, postgresql.JSONB)[key]
        return sa.case((sa.func.jsonb_typeof(value) == "number", value.astext.cast(sa.Float)), else_=None)
    # Step metrics hold numbers at these keys; SQLite's sum() reads anything else as 0.
    return sa.func.json_extract(ATTEMPTS.c.metrics, f'$."{key}"')


def step_sums(store: RunStore, keys: Iterable[str]) -> dict[tuple[str, str], dict[str, float]]:
    """Per (pipeline, step): the attempts run (``count``) and the sum of each numeric metric in ``keys``."""
    keys = list(keys)
    engine = store.engine
    sums = [sa.func.coalesce(sa.func.sum(json_number(engine, k)), 0) for k in keys]
    query = (
        _joined(RUNS.c.pipeline, ATTEMPTS.c.step, sa.func.count(), *sums)
        .where(Scope().where())
        .group_by(RUNS.c.pipeline, ATTEMPTS.c.step)
    )
    with engine.connect() as conn:
        return {
            (row[0], row[1]): {
                "count": float(row[2]),
                **{k: float(v) for k, v in zip(keys, row[3:], strict=True)},
            }
            for row in conn.execute(query)
        }


def attempts_by_state(store: RunStore) -> dict[tuple[str, str, str], int]:
    """How many attempts (run or not) each (pipeline, step) has in each state."""
    query = _joined(RUNS.c.pipeline, ATTEMPTS.c.step, ATTEMPTS.c.state, sa.func.count()).group_by(
        RUNS.c.pipeline, ATTEMPTS.c.step, ATTEMPTS.c.state
    )
    with store.engine.connect() as conn:
        return {(p, s, state): int(n) for p, s, state, n in conn.execute(query)}
