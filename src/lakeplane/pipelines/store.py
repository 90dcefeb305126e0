"""The run store: every pipeline run and every step attempt, in the catalog's database.

SQLite in the lake by default, PostgreSQL when the catalog is: whoever shares the catalog shares the
history. A run whose runner died leaves attempts marked ``running``; redrive treats them as not done.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from lakeplane.catalog.state import ensure_tables

_META = sa.MetaData()
RUNS = sa.Table(
    "lakeplane_runs",
    _META,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("pipeline", sa.String(200), nullable=False),
    sa.Column("ds", sa.String(10), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("started_at", sa.String(40), nullable=False),
    sa.Column("ended_at", sa.String(40)),
    sa.Column("redrive_of", sa.String(40)),
)
ATTEMPTS = sa.Table(
    "lakeplane_step_attempts",
    _META,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("step", sa.String(200), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("started_at", sa.String(40), nullable=False),
    sa.Column("ended_at", sa.String(40)),
    sa.Column("error", sa.Text),
    sa.Column("retryable", sa.Boolean),
    sa.Column("metrics", sa.Text),
)


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@dataclass
class Attempt:
    """One try of one step."""

    step: str
    attempt: int
    state: str
    started_at: str
    ended_at: str | None = None
    error: str | None = None
    retryable: bool | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunRecord:
    """One run of a pipeline for one business date, with its attempts."""

    run_id: str
    pipeline: str
    ds: str
    state: str
    started_at: str
    ended_at: str | None = None
    redrive_of: str | None = None
    attempts: list[Attempt] = field(default_factory=list)

    def step_state(self, step: str) -> str:
        """The state of the step's last attempt (``pending`` if never tried)."""
        tries = [a for a in self.attempts if a.step == step]
        return tries[-1].state if tries else "pending"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RunStore:
    """Reads and writes runs and attempts.

    Args:
        engine: the catalog's database (``lake.catalog.state_engine``); the tables are created in it
            if they are missing.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        ensure_tables(engine, RUNS, ATTEMPTS)

    def start_run(self, pipeline: str, ds: str, redrive_of: str | None = None) -> RunRecord:
        run = RunRecord(
            f"{pipeline}-{ds}-{uuid.uuid4().hex[:8]}", pipeline, ds, "running", now(), redrive_of=redrive_of
        )
        with self.engine.begin() as conn:
            conn.execute(
                RUNS.insert().values(
                    run_id=run.run_id,
                    pipeline=pipeline,
                    ds=ds,
                    state="running",
                    started_at=run.started_at,
                    redrive_of=redrive_of,
                )
            )
        return run

    def finish_run(self, run: RunRecord, state: str) -> None:
        run.state, run.ended_at = state, now()
        with self.engine.begin() as conn:
            conn.execute(
                RUNS.update().where(RUNS.c.run_id == run.run_id).values(state=state, ended_at=run.ended_at)
            )

    def start_attempt(self, run: RunRecord, step: str, attempt: int) -> Attempt:
        record = Attempt(step, attempt, "running", now())
        with self.engine.begin() as conn:
            conn.execute(
                ATTEMPTS.insert().values(
                    run_id=run.run_id,
                    step=step,
                    attempt=attempt,
                    state="running",
                    started_at=record.started_at,
                )
            )
        run.attempts.append(record)
        return record

    def finish_attempt(
        self,
        run: RunRecord,
        attempt: Attempt,
        state: str,
        error: str | None = None,
        retryable: bool | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        attempt.state, attempt.ended_at, attempt.error = state, now(), error
        attempt.retryable, attempt.metrics = retryable, metrics or {}
        with self.engine.begin() as conn:
            conn.execute(
                ATTEMPTS.update()
                .where(
                    (ATTEMPTS.c.run_id == run.run_id)
                    & (ATTEMPTS.c.step == attempt.step)
                    & (ATTEMPTS.c.attempt == attempt.attempt)
                )
                .values(
                    state=state,
                    ended_at=attempt.ended_at,
                    error=error,
                    retryable=retryable,
                    metrics=json.dumps(attempt.metrics, default=str),
                )
            )

    def get(self, run_id: str) -> RunRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(RUNS).where(RUNS.c.run_id == run_id)).first()
            if row is None:
                return None
            attempts = conn.execute(
                sa.select(ATTEMPTS)
                .where(ATTEMPTS.c.run_id == run_id)
                .order_by(ATTEMPTS.c.started_at, ATTEMPTS.c.attempt)
            ).all()
        run = RunRecord(
            **{
                k: row._mapping[k]
                for k in ("run_id", "pipeline", "ds", "state", "started_at", "ended_at", "redrive_of")
            }
        )
        run.attempts = [
            Attempt(
                a.step,
                a.attempt,
                a.state,
                a.started_at,
                a.ended_at,
                a.error,
                a.retryable,
                json.loads(a.metrics) if a.metrics else {},
            )
            for a in attempts
        ]
        return run

    def runs(self, pipeline: str | None = None, limit: int = 50) -> list[RunRecord]:
        query = sa.select(RUNS).order_by(RUNS.c.started_at.desc()).limit(limit)
        if pipeline:
            query = query.where(RUNS.c.pipeline == pipeline)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            RunRecord(
                **{
                    k: r._mapping[k]
                    for k in ("run_id", "pipeline", "ds", "state", "started_at", "ended_at", "redrive_of")
                }
            )
            for r in rows
        ]

    def last_run(self, pipeline: str) -> RunRecord | None:
        found = self.runs(pipeline, limit=1)
        return found[0] if found else None
