"""A job's runs, read from the run store, as observations a scaling model or a cost report uses.

A job is a pipeline (one observation per run: the bytes its steps read, its wall time, the most
cores any step held, its steps' usage summed) or a model (one observation per pipeline step that
built it, in any pipeline: the bytes that step read, its time, its cores and usage). Only ended
runs are read; a scaling fit takes the succeeded ones, a cost report every attempt, since a failed
attempt used compute too.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from lakeplane.errors import JobNotFound, did_you_mean
from lakeplane.pipelines.definition import Pipeline
from lakeplane.pipelines.store import ATTEMPTS, LIVE, RUNS, RunRecord, RunStore

#: Usage keys (the step metrics the run store holds) that add up over a run's steps.
ADDITIVE = (
    "cpu_seconds",
    "vcpu_seconds",
    "memory_gb_seconds",
    "bytes_read",
    "bytes_written",
    "bytes_scanned",
)
#: Usage keys of which a run holds the largest of its steps'.
PEAK = ("cores", "peak_memory_mb")


@dataclass(frozen=True)
class StepAttempt:
    """One ended attempt of one step, with its metrics as the run store holds them."""

    run_id: str
    pipeline: str
    step: str
    attempt: int
    state: str
    started_at: str
    ended_at: str | None
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """The step's wall time: its ``seconds`` metric, else from its start and end."""
        if "seconds" in self.metrics:
            return float(self.metrics["seconds"])
        return _between(self.started_at, self.ended_at)

    @property
    def skipped(self) -> bool:
        """Its bookmark or ``if_missing: skip`` made it do nothing."""
        return "skipped" in self.metrics


@dataclass(frozen=True)
class RunHistory:
    """One ended run and its attempts, oldest first."""

    run_id: str
    pipeline: str
    ds: str
    state: str
    started_at: str
    ended_at: str | None
    attempts: tuple[StepAttempt, ...] = ()

    @property
    def wall_seconds(self) -> float:
        """From the run's start to its end (steps that ran at once count once)."""
        return _between(self.started_at, self.ended_at) or sum(a.seconds for a in self.attempts)

    def final(self) -> list[StepAttempt]:
        """The last attempt of each step."""
        last: dict[str, StepAttempt] = {}
        for attempt in self.attempts:
            last[attempt.step] = attempt
        return list(last.values())


@dataclass(frozen=True)
class Observation:
    """What one run of a job read, held, took and used.

    Attributes:
        cores_recorded: the run store held the cores; otherwise ``cores`` is the assumed default.
        metrics: usage in the run store's keys (``seconds``, ``cpu_seconds``, ``vcpu_seconds``,
            ``memory_gb_seconds``, ``cores``, ``peak_memory_mb``, ``bytes_*``), summed over steps.
    """

    job: str
    run_id: str
    pipeline: str
    ds: str
    started_at: str
    input_bytes: int
    cores: int
    seconds: float
    cores_recorded: bool
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "ds": self.ds,
            "input_bytes": self.input_bytes,
            "cores": self.cores,
            "cores_recorded": self.cores_recorded,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class Job:
    """A pipeline, or a model and the pipeline steps that build it."""

    name: str
    kind: str  # "pipeline" or "model"
    steps: tuple[tuple[str, str], ...] = ()  # (pipeline, step) that build the model

    @property
    def pipelines(self) -> list[str]:
        return sorted({p for p, _ in self.steps}) if self.kind == "model" else [self.name]


def resolve_job(name: str, pipelines: Sequence[Pipeline], model_name: Callable[[str], str]) -> Job:
    """The job ``name`` stands for: a pipeline of that name, else the model that builds table
    ``name`` (``model_name`` qualifies a model's name as a step writes it).

    Raises:
        JobNotFound: neither a pipeline nor a model any pipeline step builds.
    """
    if any(p.name == name for p in pipelines):
        return Job(name, "pipeline")
    built: dict[str, list[tuple[str, str]]] = {}
    for pipeline in pipelines:
        for step, spec in pipeline.steps.items():
            if spec.model:
                built.setdefault(model_name(spec.model), []).append((pipeline.name, step))
    try:
        wanted = model_name(name)
    except LookupError:
        wanted = name
    except ValueError:  # a ConfigError: no model builds it
        wanted = name
    if wanted in built:
        return Job(wanted, "model", tuple(built[wanted]))
    known = [p.name for p in pipelines] + sorted(built)
    raise JobNotFound(
        f"no pipeline or pipeline-built model named '{name}'{did_you_mean(name, known)} "
        f"(pipelines: {', '.join(p.name for p in pipelines) or 'none'}; models run by a pipeline: "
        f"{', '.join(sorted(built)) or 'none'})",
        job=name,
        known=known,
    )


def read_runs(
    store: RunStore, pipelines: Iterable[str] | None = None, since: dt.datetime | None = None
) -> list[RunHistory]:
    """Every ended run (of ``pipelines``, started at or after ``since``), oldest first, with its
    ended attempts."""
    store.reap()
    query = sa.select(RUNS).where(RUNS.c.state.not_in(LIVE)).order_by(RUNS.c.started_at)
    if pipelines is not None:
        query = query.where(RUNS.c.pipeline.in_(list(pipelines)))
    if since is not None:
        query = query.where(RUNS.c.started_at >= since.astimezone(dt.UTC).isoformat(timespec="milliseconds"))
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
        ids = [r.run_id for r in rows]
        attempts: dict[str, list[StepAttempt]] = {i: [] for i in ids}
        for chunk in range(0, len(ids), 500):
            for a in conn.execute(
                sa.select(ATTEMPTS, RUNS.c.pipeline)
                .join(RUNS, RUNS.c.run_id == ATTEMPTS.c.run_id)
                .where(ATTEMPTS.c.run_id.in_(ids[chunk : chunk + 500]) & (ATTEMPTS.c.state != "running"))
                .order_by(ATTEMPTS.c.started_at, ATTEMPTS.c.attempt)
            ):
                attempts[a.run_id].append(
                    StepAttempt(
                        a.run_id,
                        a.pipeline,
                        a.step,
                        a.attempt,
                        a.state,
                        a.started_at,
                        a.ended_at,
                        _metrics(a.metrics),
                    )
                )
    return [
        RunHistory(r.run_id, r.pipeline, r.ds, r.state, r.started_at, r.ended_at, tuple(attempts[r.run_id]))
        for r in rows
    ]


def observations(job: Job, runs: Iterable[RunHistory], default_cores: int) -> list[Observation]:
    """``job``'s succeeded runs as observations, oldest first; a run whose steps did not record
    their cores is taken to have had ``default_cores``."""
    found = []
    for run in runs:
        if run.state != "succeeded":
            continue
        if job.kind == "pipeline":
            if run.pipeline == job.name:
                done = [a for a in run.final() if a.state == "succeeded"]
                found.append(_observation(job.name, run, done, run.wall_seconds, default_cores))
            continue
        for attempt in run.final():
            if (
                (run.pipeline, attempt.step) in job.steps
                and attempt.state == "succeeded"
                and not attempt.skipped
            ):
                found.append(_observation(job.name, run, [attempt], attempt.seconds, default_cores))
    return found


def engine_observations(
    job: Job, runs: Iterable[RunHistory], default_cores: int
) -> dict[str, list[Observation]]:
    """A model's succeeded, not skipped step runs grouped by the engine each ran on (its metrics'
    ``engine``), oldest first; a pipeline job has none."""
    found: dict[str, list[Observation]] = {}
    for run in runs:
        for attempt in run.final() if run.state == "succeeded" else ():
            engine = attempt.metrics.get("engine")
            if (
                (run.pipeline, attempt.step) in job.steps
                and attempt.state == "succeeded"
                and not attempt.skipped
                and isinstance(engine, str)
            ):
                found.setdefault(engine, []).append(
                    _observation(job.name, run, [attempt], attempt.seconds, default_cores)
                )
    return found


def usage_metrics(attempts: Sequence[StepAttempt], seconds: float) -> dict[str, Any]:
    """The usage of ``attempts`` taken together over ``seconds`` of wall time: additive keys summed,
    cores and peak memory the largest."""
    summed: dict[str, Any] = {"seconds": seconds}
    for key in ADDITIVE:
        summed[key] = sum(_number(a.metrics.get(key)) for a in attempts)
    for key in PEAK:
        summed[key] = max((_number(a.metrics.get(key)) for a in attempts), default=0.0)
    return summed


def _observation(
    job: str, run: RunHistory, attempts: Sequence[StepAttempt], seconds: float, default_cores: int
) -> Observation:
    metrics = usage_metrics(attempts, seconds)
    recorded = bool(metrics["cores"])
    cores = int(metrics["cores"]) if recorded else default_cores
    return Observation(
        job,
        run.run_id,
        run.pipeline,
        run.ds,
        run.started_at,
        int(metrics["bytes_read"]),
        cores,
        seconds,
        recorded,
        {**metrics, "cores": cores},
    )


def _metrics(text: str | None) -> dict[str, Any]:
    loaded = json.loads(text) if text else {}
    return loaded if isinstance(loaded, dict) else {}


def _number(value: Any) -> float:
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


def _between(start: str | None, end: str | None) -> float:
    if not start or not end:
        return 0.0
    return max(0.0, (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds())


def from_record(run: RunRecord) -> RunHistory:
    """A run as the run store gave it, with its ended attempts."""
    return RunHistory(
        run.run_id,
        run.pipeline,
        run.ds,
        run.state,
        run.started_at,
        run.ended_at,
        tuple(
            StepAttempt(
                run.run_id, run.pipeline, a.step, a.attempt, a.state, a.started_at, a.ended_at, a.metrics
            )
            for a in run.attempts
            if a.state != "running"
        ),
    )
