"""Run a pipeline's DAG: each step in its own process, retries with backoff, redrive and backfill.

Only errors that say a retry can help (``LakeplaneError.retryable``, timeouts) are retried. A step
that exceeds its memory limit or time is killed alone, with every process it started: its memory is
that of its whole process tree (a Spark driver's JVM, a program it runs), watched by a
:class:`~lakeplane.pipelines.process_tree.MemoryWatchdog`. Every run and attempt goes to the run store.
Steps commit their output atomically and idempotently, so a runner killed at any moment can be
redriven: it reruns what did not finish and gets the tables an undisturbed run would have.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from lakeplane.pipelines.definition import Pipeline
from lakeplane.pipelines.process_tree import MemoryWatchdog
from lakeplane.pipelines.steps import OpenHost
from lakeplane.pipelines.store import Attempt, RunRecord, RunStore
from lakeplane.pipelines.worker import run_step
from lakeplane.units import parse_size

POLL_S = 0.05
#: Steps start from a fork server that has already imported lakeplane and its engines, so a step
#: process is ready in milliseconds instead of the seconds a fresh interpreter needs; the server
#: itself never runs a query, so no engine thread is forked.
_SPAWN = multiprocessing.get_context("forkserver")
_SPAWN.set_forkserver_preload(
    ["lakeplane.pipelines.worker", "lakeplane.lake", "duckdb", "pyarrow", "pyiceberg.table", "sqlglot"]
)  # names, not imports: the server loads them


@dataclass
class _Running:
    step: str
    attempt: Attempt
    process: Any
    pipe: Connection
    started: float
    limit_mb: float | None
    watchdog: MemoryWatchdog


@dataclass
class RunOptions:
    """Knobs of one run."""

    overrides: dict[str, Any] = field(default_factory=dict)
    progress: Callable[[str], None] | None = None
    sleep: Callable[[float], None] = time.sleep


class Runner:
    """Runs one pipeline for one business date; each step's process opens the lake with ``open_host``
    (a module-level function, so the step process can import it by name)."""

    def __init__(
        self,
        project_dir: Path,
        pipeline: Pipeline,
        store: RunStore,
        open_host: OpenHost,
        options: RunOptions | None = None,
    ) -> None:
        self.project_dir = project_dir
        self.pipeline = pipeline
        self.store = store
        self.open_host = open_host
        self.options = options or RunOptions()

    def run(self, ds: dt.date, redrive_of: RunRecord | None = None) -> RunRecord:
        """Run every step (or, redriving, every step that did not succeed in ``redrive_of``)."""
        run = self.store.start_run(
            self.pipeline.name, ds.isoformat(), redrive_of.run_id if redrive_of else None
        )
        done: set[str] = set()
        if redrive_of is not None:
            for step in self.pipeline.steps:
                if redrive_of.step_state(step) in ("succeeded", "kept"):
                    attempt = self.store.start_attempt(run, step, 0)
                    self.store.finish_attempt(run, attempt, "kept", metrics={"from_run": redrive_of.run_id})
                    done.add(step)
        failed: set[str] = set()
        tries: dict[str, int] = {}
        not_before: dict[str, float] = {}
        running: dict[str, _Running] = {}
        order = self.pipeline.order()
        while True:
            for step in order:
                if step in done or step in failed or step in running:
                    continue
                deps = set(self.pipeline.steps[step].depends_on)
                if deps & failed:
                    failed.add(step)
                    attempt = self.store.start_attempt(run, step, 0)
                    self.store.finish_attempt(
                        run, attempt, "skipped", error=f"upstream failed: {', '.join(sorted(deps & failed))}"
                    )
                    continue
                if not deps <= done or len(running) >= self.pipeline.document.concurrency:
                    continue
                if time.monotonic() < not_before.get(step, 0):
                    continue
                tries[step] = tries.get(step, 0) + 1
                running[step] = self._start(run, step, tries[step], ds)
            if not running and all(s in done or s in failed for s in order):
                break
            if not running:  # waiting for a retry's backoff
                self.options.sleep(POLL_S)
                continue
            for step, job in list(running.items()):
                outcome = self._check(job)
                if outcome is None:
                    continue
                del running[step]
                ok, error, retryable, metrics = outcome
                state = "succeeded" if ok else "failed"
                self.store.finish_attempt(run, job.attempt, state, error, retryable, metrics)
                self._say(f"{step}: {state}" + (f" ({error})" if error else ""))
                if ok:
                    done.add(step)
                elif retryable and tries[step] < self.pipeline.retries(step).attempts:
                    delay = self.pipeline.retries(step).delay(tries[step], random.random())
                    not_before[step] = time.monotonic() + delay
                    self._say(f"{step}: retrying in {delay:.1f} s (attempt {tries[step] + 1})")
                else:
                    failed.add(step)
            self.options.sleep(POLL_S)
        self.store.finish_run(run, "failed" if failed else "succeeded")
        return run

    def _say(self, text: str) -> None:
        if self.options.progress:
            self.options.progress(text)

    def _start(self, run: RunRecord, step: str, attempt_no: int, ds: dt.date) -> _Running:
        attempt = self.store.start_attempt(run, step, attempt_no)
        receive, send = _SPAWN.Pipe(duplex=False)
        overrides = dict(self.options.overrides)
        limit = self.pipeline.memory_limit(step)
        if limit:
            overrides.setdefault("engine", {})["memory_limit"] = limit
        process = _SPAWN.Process(
            target=run_step,
            name=f"lakeplane-{step}",
            daemon=True,
            args=(
                str(self.project_dir),
                str(self.pipeline.path),
                step,
                ds.isoformat(),
                overrides,
                send,
                self.open_host,
                os.getpid(),
            ),
        )
        process.start()
        send.close()
        assert process.pid is not None  # start() sets it
        limit_mb = _limit_mb(limit)
        # The engine's own limit bounds its buffers; the processes may use a fixed overhead beyond it.
        watchdog = MemoryWatchdog(process.pid, None if limit_mb is None else limit_mb + PROCESS_OVERHEAD_MB)
        watchdog.start()
        self._say(f"{step}: started (attempt {attempt_no})")
        return _Running(step, attempt, process, receive, time.monotonic(), limit_mb, watchdog)

    def _check(self, job: _Running) -> tuple[bool, str | None, bool, dict[str, Any]] | None:
        """The finished step's outcome, or None while it runs (killing it past its limits)."""
        outcome = self._outcome(job)
        if outcome is not None:
            job.watchdog.stop()
            ok, error, retryable, metrics = outcome
            peak = max(float(metrics.get("peak_memory_mb", 0.0)), job.watchdog.peak_mb)
            if peak:
                metrics = {**metrics, "peak_memory_mb": round(peak, 1)}
            return ok, error, retryable, metrics
        return None

    def _outcome(self, job: _Running) -> tuple[bool, str | None, bool, dict[str, Any]] | None:
        elapsed = time.monotonic() - job.started
        timeout = self.pipeline.timeout(job.step)
        if job.watchdog.exceeded_mb is not None:  # the watchdog has killed the tree already
            job.process.join(timeout=10)
            return (
                False,
                (
                    f"step '{job.step}' and the processes it started used "
                    f"{job.watchdog.exceeded_mb:.0f} MB at peak, over its memory limit of "
                    f"{job.limit_mb:.0f} MB (+{PROCESS_OVERHEAD_MB} MB overhead); it was stopped"
                ),
                False,
                {},
            )
        if elapsed > timeout:
            self._kill(job)
            return False, f"step '{job.step}' timed out after {timeout:.0f} s", True, {}
        if job.pipe.poll():
            try:
                message = job.pipe.recv()
            except EOFError:
                message = None
            job.process.join(timeout=10)
            if message is None:
                return False, f"step '{job.step}' died (exit code {job.process.exitcode})", False, {}
            metrics = dict(message.get("metrics", {}))
            metrics.setdefault("seconds", round(elapsed, 3))
            if message["ok"]:
                return True, None, False, metrics
            return (
                False,
                message["error"],
                bool(message.get("retryable")),
                {k: v for k, v in message.items() if k in ("details", "traceback")},
            )
        if not job.process.is_alive():
            job.process.join()
            return False, f"step '{job.step}' died (exit code {job.process.exitcode})", False, {}
        return None

    @staticmethod
    def _kill(job: _Running) -> None:
        """End the step and every process it started."""
        job.watchdog.stop()
        job.watchdog.tree.kill()
        job.process.join(timeout=10)


PROCESS_OVERHEAD_MB = 400


def _limit_mb(limit: str | None) -> float | None:
    return parse_size(limit) / 2**20 if limit else None
