"""Reading a job's runs from the run store: pipelines, models across pipelines, retries, skips."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from lakeplane.compute.history import Job, observations, read_runs, resolve_job
from lakeplane.errors import JobNotFound
from lakeplane.lake import Lake
from lakeplane.pipelines.store import RunStore


def record_run(
    store: RunStore,
    pipeline: str,
    ds: str,
    steps: dict[str, list[dict[str, Any] | None]],
    state: str = "succeeded",
) -> str:
    """A run whose steps' attempts end with these metrics (None: the attempt failed)."""
    run = store.start_run(pipeline, ds)
    for step, tries in steps.items():
        for number, metrics in enumerate(tries, start=1):
            attempt = store.start_attempt(run, step, number)
            store.finish_attempt(
                run,
                attempt,
                "failed" if metrics is None else "succeeded",
                metrics=metrics or {"seconds": 1.0},
            )
    store.finish_run(run, state)
    return run.run_id


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(sa.create_engine(f"sqlite:///{tmp_path / 'runs.db'}"))


def test_pipeline_observations_sum_steps_and_take_the_peak(store: RunStore) -> None:
    first = record_run(
        store,
        "nightly",
        "2026-11-01",
        {
            "ingest": [{"seconds": 4.0, "bytes_read": 1000, "vcpu_seconds": 8.0, "cores": 2}],
            "build": [
                None,  # a failed try, retried: the observation holds the last try
                {"seconds": 6.0, "bytes_read": 500, "vcpu_seconds": 24.0, "cores": 4, "peak_memory_mb": 300},
            ],
        },
    )
    record_run(store, "nightly", "2026-11-02", {"ingest": [None]}, state="failed")
    record_run(store, "other", "2026-11-01", {"x": [{"seconds": 1.0, "bytes_read": 7}]})
    runs = read_runs(store)
    assert [r.pipeline for r in runs] == ["nightly", "nightly", "other"]
    assert [len(r.attempts) for r in runs] == [3, 1, 1]  # every attempt, the failed ones too
    found = observations(Job("nightly", "pipeline"), runs, default_cores=16)
    assert len(found) == 1  # the failed run is not a timing
    seen = found[0]
    assert seen.run_id == first and seen.input_bytes == 1500 and seen.cores == 4 and seen.cores_recorded
    assert seen.metrics["vcpu_seconds"] == 32.0 and seen.metrics["peak_memory_mb"] == 300
    assert seen.seconds == runs[0].wall_seconds


def test_model_observations_across_pipelines_skip_what_did_nothing(store: RunStore) -> None:
    record_run(store, "a", "2026-11-01", {"stats": [{"seconds": 2.0, "bytes_read": 10}]})
    record_run(store, "b", "2026-11-01", {"rollup": [{"seconds": 3.0, "bytes_read": 20}]})
    record_run(store, "b", "2026-11-02", {"rollup": [{"skipped": "unchanged inputs", "seconds": 0.1}]})
    record_run(store, "b", "2026-11-03", {"other": [{"seconds": 9.0, "bytes_read": 99}]})
    job = Job("shop.curated.stats", "model", (("a", "stats"), ("b", "rollup")))
    found = observations(job, read_runs(store, job.pipelines), default_cores=3)
    assert [(o.pipeline, o.input_bytes, o.seconds) for o in found] == [("a", 10, 2.0), ("b", 20, 3.0)]
    assert all(o.cores == 3 and not o.cores_recorded for o in found)


def test_since_keeps_later_runs(store: RunStore) -> None:
    record_run(store, "p", "2026-11-01", {"s": [{"seconds": 1.0}]})
    cut = dt.datetime.now(dt.UTC)
    record_run(store, "p", "2026-11-02", {"s": [{"seconds": 1.0}]})
    assert [r.ds for r in read_runs(store, since=cut)] == ["2026-11-02"]
    assert read_runs(store, since=cut + dt.timedelta(days=1)) == []


def test_resolve_pipeline_model_and_unknown(demo_lake: Lake) -> None:
    pipelines = demo_lake.pipelines()

    def model_name(name: str) -> str:
        return demo_lake.model_jobs.get(name).name

    assert resolve_job("nightly", pipelines, model_name) == Job("nightly", "pipeline")
    model = resolve_job("cell_daily", pipelines, model_name)
    assert model.kind == "model" and model.steps == (("nightly", "cell_daily"),)
    assert model.name.endswith("curated.cell_daily")
    with pytest.raises(
        JobNotFound, match="no pipeline or pipeline-built model named 'nighty'; did you mean 'nightly'"
    ):
        resolve_job("nighty", pipelines, model_name)
