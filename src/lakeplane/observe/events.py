"""What SLOs and metrics count, read from the run store: step attempts with how each ended.

An attempt is *lost* when the process running it went away rather than the step failing on its own
terms: the step's process died or was killed (``died (exit code ...)``, an OOM kill or a ``kill -9``
included), the runner holding it stopped (its heartbeats stopped, or it was stopped), or Spark lost
an executor under it. A step killed by its own memory limit or timeout is not lost: it overran.

An attempt *ran a quality gate* when its metrics hold rule outcomes (a model's gate, a quality step)
or it failed with :class:`~lakeplane.errors.QualityGateFailed`; the gate passed when every rule did.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from lakeplane.pipelines.store import ATTEMPTS, RUNS, RunStore

#: Marks in an attempt's error, by why its worker went away.
LOSS_MARKS: dict[str, tuple[str, ...]] = {
    "process_died": ("died (exit code",),
    "runner_lost": ("the runner stopped", "the run stopped"),
    "executor_lost": ("ExecutorLostFailure", "SparkContext was shut down", "FetchFailed"),
}


@dataclass(frozen=True)
class AttemptFact:
    """One ended attempt of a step, as the SLOs and metrics read it."""

    run_id: str
    pipeline: str
    step: str
    attempt: int
    state: str
    started_at: str
    ended_at: str | None
    error: str | None
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def tried(self) -> bool:
        """Whether the step was run (attempt 0 marks a step kept from a redriven run, or skipped)."""
        return self.attempt >= 1

    @property
    def loss(self) -> str | None:
        """Why the attempt's worker went away (a key of :data:`LOSS_MARKS`), or None."""
        if self.state != "failed" or not self.error:
            return None
        for reason, marks in LOSS_MARKS.items():
            if any(mark in self.error for mark in marks):
                return reason
        return None

    @property
    def rules(self) -> tuple[int, int] | None:
        """(passed, failed) rules of the quality gate the attempt ran, or None if it ran none."""
        outcomes = self.metrics.get("quality")
        if isinstance(outcomes, list) and outcomes:
            passed = sum(1 for o in outcomes if isinstance(o, dict) and o.get("passed"))
            return passed, len(outcomes) - passed
        details = self.metrics.get("details")
        if isinstance(details, dict) and details.get("error") == "QualityGateFailed":
            return 0, max(1, len(details.get("rules") or []))
        return None

    @property
    def gate_passed(self) -> bool | None:
        """Whether the attempt's quality gate passed (None: it ran none)."""
        rules = self.rules
        return None if rules is None else rules[1] == 0

    @property
    def seconds(self) -> float:
        """The attempt's wall time: as its metrics recorded it, else from its start to its end."""
        if isinstance(self.metrics.get("seconds"), int | float):
            return float(self.metrics["seconds"])
        if self.ended_at is None:
            return 0.0
        return (
            dt.datetime.fromisoformat(self.ended_at) - dt.datetime.fromisoformat(self.started_at)
        ).total_seconds()

    def number(self, key: str) -> float:
        """A numeric metric (0 when absent)."""
        value = self.metrics.get(key)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def stamp(moment: dt.datetime) -> str:
    """``moment`` as the run store writes times (ISO 8601, UTC), so that stamps compare as text."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def read_attempts(
    store: RunStore, pipelines: Iterable[str] | None = None, since: dt.datetime | None = None
) -> list[AttemptFact]:
    """Every ended attempt of the runs (of ``pipelines``) started at or after ``since``, oldest first."""
    store.reap()
    query = (
        sa.select(ATTEMPTS, RUNS.c.pipeline)
        .join(RUNS, RUNS.c.run_id == ATTEMPTS.c.run_id)
        .where(ATTEMPTS.c.state != "running")
        .order_by(ATTEMPTS.c.started_at, ATTEMPTS.c.attempt)
    )
    if pipelines is not None:
        query = query.where(RUNS.c.pipeline.in_(list(pipelines)))
    if since is not None:
        query = query.where(RUNS.c.started_at >= stamp(since))
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        AttemptFact(
            r.run_id,
            r.pipeline,
            r.step,
            r.attempt,
            r.state,
            r.started_at,
            r.ended_at,
            r.error,
            json.loads(r.metrics) if r.metrics else {},
        )
        for r in rows
    ]
