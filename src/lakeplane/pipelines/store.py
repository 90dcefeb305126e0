"""The run store: every pipeline run and every step attempt, in the catalog's database.

SQLite in the lake by default, PostgreSQL when the catalog is: whoever shares the catalog shares the
history.

A live run proves it is alive: its runner writes ``heartbeat_at`` every few seconds and with it
``alive_until``, the moment after which the run is to be taken for dead. A run still ``running`` or
``waiting`` past its ``alive_until`` lost its runner (killed, its machine gone): whoever reads it
first records it as ``failed``, with the reason, and its running attempts as failed too, in one
conditional UPDATE that only one reader can win, so the death is decided once. Redrive then treats
those attempts as not done.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from lakeplane.catalog.state import ensure_tables
from lakeplane.pipelines.leases import database_now, stamp

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
    sa.Column("holder", sa.String(200)),
    sa.Column("heartbeat_at", sa.String(40)),
    sa.Column("alive_until", sa.String(40)),
    sa.Column("reason", sa.Text),
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


#: States of a run whose runner is (or was, if it stopped heart-beating) at work.
LIVE = ("running", "waiting")


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
    #: ``host:pid`` of the runner.
    holder: str | None = None
    heartbeat_at: str | None = None
    #: Past this moment without a heartbeat the run is taken for dead (None: a run from before
    #: runners heart-beat, whose liveness is unknown).
    alive_until: str | None = None
    #: Why it is waiting, or why it failed when its runner could not say (it died, it gave up waiting).
    reason: str | None = None
    attempts: list[Attempt] = field(default_factory=list)

    def step_state(self, step: str) -> str:
        """The state of the step's last attempt (``pending`` if never tried)."""
        tries = [a for a in self.attempts if a.step == step]
        return tries[-1].state if tries else "pending"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_RUN_FIELDS = (
    "run_id",
    "pipeline",
    "ds",
    "state",
    "started_at",
    "ended_at",
    "redrive_of",
    "holder",
    "heartbeat_at",
    "alive_until",
    "reason",
)


class RunStore:
    """Reads and writes runs and attempts.

    Args:
        engine: the catalog's database (``lake.catalog.state_engine``); the tables are created in it
            if they are missing, and columns added since a table was created are added to it.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        ensure_tables(engine, RUNS, ATTEMPTS)
        _add_missing_columns(engine, RUNS)

    def start_run(
        self,
        pipeline: str,
        ds: str,
        redrive_of: str | None = None,
        holder: str | None = None,
        alive_s: float | None = None,
    ) -> RunRecord:
        """Record a new ``running`` run; with ``alive_s``, it is taken for dead unless its runner
        calls :meth:`beat` within that many seconds, and every ``alive_s`` after."""
        run = RunRecord(
            f"{pipeline}-{ds}-{uuid.uuid4().hex[:8]}",
            pipeline,
            ds,
            "running",
            now(),
            redrive_of=redrive_of,
            holder=holder,
        )
        with self.engine.begin() as conn:
            if alive_s is not None:
                moment = database_now(conn)
                run.heartbeat_at = stamp(moment)
                run.alive_until = stamp(moment + dt.timedelta(seconds=alive_s))
            conn.execute(
                RUNS.insert().values(
                    {name: getattr(run, name) for name in _RUN_FIELDS if name not in ("ended_at", "reason")}
                )
            )
        return run

    def beat(self, run: RunRecord, alive_s: float) -> bool:
        """The runner of ``run`` is alive: keep the run alive for ``alive_s`` more seconds.

        Returns:
            False if the run is no longer running or waiting: it was taken for dead (its runner
            stalled past ``alive_until``) and must not go on.
        """
        with self.engine.begin() as conn:
            moment = database_now(conn)
            beat_at, until = stamp(moment), stamp(moment + dt.timedelta(seconds=alive_s))
            alive = conn.execute(
                RUNS.update()
                .where((RUNS.c.run_id == run.run_id) & RUNS.c.state.in_(LIVE))
                .values(heartbeat_at=beat_at, alive_until=until)
            ).rowcount
        if alive:
            run.heartbeat_at, run.alive_until = beat_at, until
        return bool(alive)

    def set_live_state(self, run: RunRecord, state: str, reason: str | None = None) -> bool:
        """Move a live run to ``state`` (``running`` or ``waiting``, with why); False if it is not live."""
        with self.engine.begin() as conn:
            changed = conn.execute(
                RUNS.update()
                .where((RUNS.c.run_id == run.run_id) & RUNS.c.state.in_(LIVE))
                .values(state=state, reason=reason)
            ).rowcount
        if changed:
            run.state, run.reason = state, reason
        return bool(changed)

    def finish_run(self, run: RunRecord, state: str, reason: str | None = None) -> None:
        """End ``run`` as ``state``, unless it was taken for dead already: then ``run`` gets the
        state and reason recorded then."""
        ended, row = now(), None
        with self.engine.begin() as conn:
            changed = conn.execute(
                RUNS.update()
                .where((RUNS.c.run_id == run.run_id) & RUNS.c.state.in_(LIVE))
                .values(state=state, ended_at=ended, reason=reason)
            ).rowcount
            if not changed:
                row = conn.execute(sa.select(RUNS).where(RUNS.c.run_id == run.run_id)).first()
        if changed:
            run.state, run.ended_at, run.reason = state, ended, reason
        elif row is not None:
            run.state, run.ended_at, run.reason = row.state, row.ended_at, row.reason

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

    def reap(self, run_id: str | None = None) -> list[str]:
        """Record every live run (or ``run_id``) whose runner stopped heart-beating as failed.

        The UPDATE is conditional on the run being live and past ``alive_until`` at that moment, so
        of two readers that see the same dead run only one records its death, and a runner that
        beats in between keeps its run.

        Returns:
            the runs this call recorded as failed.
        """
        with self.engine.connect() as conn:
            query = sa.select(RUNS.c.run_id, RUNS.c.heartbeat_at, RUNS.c.holder).where(
                RUNS.c.state.in_(LIVE) & (RUNS.c.alive_until < stamp(database_now(conn)))
            )
            if run_id is not None:
                query = query.where(RUNS.c.run_id == run_id)
            dead = conn.execute(query).all()
        reaped = []
        for row in dead:
            reason = f"runner stopped heart-beating at {row.heartbeat_at} ({row.holder})"
            with self.engine.begin() as conn:
                if not conn.execute(
                    RUNS.update()
                    .where(
                        (RUNS.c.run_id == row.run_id)
                        & RUNS.c.state.in_(LIVE)
                        & (RUNS.c.alive_until < stamp(database_now(conn)))
                    )
                    .values(state="failed", ended_at=row.heartbeat_at, reason=reason)
                ).rowcount:
                    continue  # it beat again, or another reader recorded its death first
                conn.execute(
                    ATTEMPTS.update()
                    .where((ATTEMPTS.c.run_id == row.run_id) & (ATTEMPTS.c.state == "running"))
                    .values(state="failed", ended_at=row.heartbeat_at, error=f"the {reason}", retryable=True)
                )
            reaped.append(row.run_id)
        return reaped

    def get(self, run_id: str) -> RunRecord | None:
        """Run ``run_id`` with its attempts (recorded as failed first if its runner died)."""
        self.reap(run_id)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(RUNS).where(RUNS.c.run_id == run_id)).first()
            if row is None:
                return None
            attempts = conn.execute(
                sa.select(ATTEMPTS)
                .where(ATTEMPTS.c.run_id == run_id)
                .order_by(ATTEMPTS.c.started_at, ATTEMPTS.c.attempt)
            ).all()
        run = _record(row)
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
        """The newest runs first (those whose runner died recorded as failed first)."""
        self.reap()
        query = sa.select(RUNS).order_by(RUNS.c.started_at.desc()).limit(limit)
        if pipeline:
            query = query.where(RUNS.c.pipeline == pipeline)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_record(r) for r in rows]

    def last_run(self, pipeline: str) -> RunRecord | None:
        found = self.runs(pipeline, limit=1)
        return found[0] if found else None


def _record(row: sa.Row[Any]) -> RunRecord:
    return RunRecord(**{name: row._mapping[name] for name in _RUN_FIELDS})


def _add_missing_columns(engine: sa.Engine, table: sa.Table) -> None:
    """Add ``table``'s nullable columns that its stored table lacks (it was created by an older
    lakeplane); a process that loses the race to add one sees the winner's column and carries on."""
    present = {c["name"] for c in sa.inspect(engine).get_columns(table.name)}
    for column in table.columns:
        if column.name in present:
            continue
        kind = column.type.compile(engine.dialect)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))
        except sa.exc.DatabaseError:
            if column.name not in {c["name"] for c in sa.inspect(engine).get_columns(table.name)}:
                raise
