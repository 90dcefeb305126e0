"""Run a pipeline's DAG: each step in its own process, retries with backoff, redrive and backfill.

Only errors that say a retry can help (``LakeplaneError.retryable``, timeouts) are retried. A step
that exceeds its memory limit or time is killed alone, with every process it started: its memory is
that of its whole process tree (a Spark driver's JVM, a program it runs), watched by a
:class:`~lakeplane.pipelines.process_tree.MemoryWatchdog`. Every run and attempt goes to the run store.
Steps commit their output atomically and idempotently, so a runner killed at any moment can be
redriven: it reruns what did not finish and gets the tables an undisturbed run would have.

One run at a time writes a pipeline's day: a run first takes the day's lease
(:mod:`~lakeplane.pipelines.leases`), waiting (recorded as ``waiting``) while another run holds it.
A :class:`Heartbeat` thread proves the runner alive every ``heartbeat_s`` seconds, on the run's row
and on the lease; a runner that stops beating (killed, its machine gone) has its run taken for dead
``dead_after_s`` seconds later, and its lease is free for the next run of the day.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import multiprocessing
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from lakeplane.errors import ConfigError, RunBusy
from lakeplane.pipelines.definition import Pipeline
from lakeplane.pipelines.leases import DayLeases, Lease, this_holder
from lakeplane.pipelines.process_tree import MemoryWatchdog
from lakeplane.pipelines.steps import OpenHost
from lakeplane.pipelines.store import Attempt, RunRecord, RunStore
from lakeplane.pipelines.usage import step_usage
from lakeplane.pipelines.worker import run_step
from lakeplane.units import parse_size

POLL_S = 0.05
#: Called with each run once it has ended (SLOs and alerts); its failure is logged, never the run's.
AfterRun = Callable[[RunRecord], None]
_log = logging.getLogger(__name__)
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
    """Knobs of one run.

    Attributes:
        heartbeat_s: seconds between the runner's heartbeats (each renews the day's lease too).
        dead_after_s: a run whose runner has not beaten for this long is taken for dead, and its
            day's lease is free. Keep it a few heartbeats long: a runner that misses it while alive
            (a stalled machine) finds its run taken for dead and stops its steps.
        wait_s: how long a run waits for another run of the same pipeline and day before it fails
            with a retryable :class:`~lakeplane.errors.RunBusy`.
    """

    overrides: dict[str, Any] = field(default_factory=dict)
    progress: Callable[[str], None] | None = None
    sleep: Callable[[float], None] = time.sleep
    heartbeat_s: float = 5.0
    dead_after_s: float = 15.0
    wait_s: float = 3600.0

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat_s < self.dead_after_s:
            raise ConfigError(
                f"RunOptions.dead_after_s ({self.dead_after_s} s) must be longer than heartbeat_s "
                f"({self.heartbeat_s} s), and both positive: a few heartbeats, so one late beat is "
                "not taken for a dead runner",
                key="dead_after_s",
            )


class Heartbeat(threading.Thread):
    """Proves a run's runner alive every ``heartbeat_s``: beats the run's row and renews its lease.

    ``lost`` says why the run must stop: it was taken for dead (the runner stalled past
    ``dead_after_s``) or another run took its lease over.
    """

    def __init__(self, store: RunStore, leases: DayLeases, run: RunRecord, options: RunOptions) -> None:
        super().__init__(name=f"lakeplane-heartbeat-{run.run_id}", daemon=True)
        self.store, self.leases, self.record = store, leases, run
        self.heartbeat_s, self.dead_after_s = options.heartbeat_s, options.dead_after_s
        #: The day's lease once the run holds it (renewed with each beat).
        self.lease: Lease | None = None
        self.lost: str | None = None
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.heartbeat_s):
            try:
                if not self.store.beat(self.record, self.dead_after_s):
                    self.lost = f"the run was taken for dead: no heartbeat for {self.dead_after_s:g} s"
                    return
                lease = self.lease
                if lease is not None and not self.leases.renew(lease, self.dead_after_s):
                    self.lost = f"another run took over the lease of {lease.label}"
                    return
            except sa.exc.SQLAlchemyError:
                # The database is out of reach for a moment: beat again. If it stays out of reach
                # past dead_after_s, others take the run for dead and the next beat says so.
                continue

    def stop(self) -> None:
        self._done.set()
        if self.is_alive():
            self.join()


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
        after_run: AfterRun | None = None,
    ) -> None:
        self.project_dir = project_dir
        self.pipeline = pipeline
        self.store = store
        self.leases = DayLeases(store.engine)
        self.open_host = open_host
        self.options = options or RunOptions()
        self.after_run = after_run
        self._running: dict[str, _Running] = {}

    def run(self, ds: dt.date, redrive_of: RunRecord | None = None) -> RunRecord:
        """Run every step (or, redriving, every step that did not succeed in ``redrive_of``) once
        this run holds the day's lease.

        Raises:
            RunBusy: another run of the pipeline and day held it for longer than ``wait_s`` (the run
                is recorded as failed with that reason).
        """
        options = self.options
        run = self.store.start_run(
            self.pipeline.name,
            ds.isoformat(),
            redrive_of.run_id if redrive_of else None,
            holder=this_holder(),
            alive_s=options.dead_after_s,
        )
        heartbeat = Heartbeat(self.store, self.leases, run, options)
        heartbeat.start()
        try:
            if self._take_lease(run, heartbeat):
                failed = self._run_steps(run, ds, redrive_of, heartbeat)
            else:
                failed = True
            self.store.finish_run(run, "failed" if failed or heartbeat.lost else "succeeded", heartbeat.lost)
        except BaseException as exc:
            with contextlib.suppress(sa.exc.SQLAlchemyError):  # keep the original error
                reason = str(exc) if isinstance(exc, RunBusy) else f"the runner stopped: {exc!r}"
                self._stop_steps(run, reason)
                self.store.finish_run(run, "failed", reason)
            raise
        finally:
            heartbeat.stop()
            if heartbeat.lease is not None:
                with contextlib.suppress(sa.exc.SQLAlchemyError):  # it expires on its own
                    self.leases.release(heartbeat.lease)
            self._ended(run)
        return run

    def _ended(self, run: RunRecord) -> None:
        if self.after_run is None:
            return
        try:
            self.after_run(run)
        except Exception:
            _log.exception("after run %s ended: observing it failed", run.run_id)

    def _take_lease(self, run: RunRecord, heartbeat: Heartbeat) -> bool:
        """Take the day's lease, waiting while another run holds it; False if this run was taken
        for dead meanwhile."""
        waiting_since, seen = time.monotonic(), None
        while not heartbeat.lost:
            lease = self.leases.acquire(
                run.pipeline, run.ds, run.run_id, run.holder or this_holder(), self.options.dead_after_s
            )
            if lease.run_id == run.run_id:
                heartbeat.lease = lease
                if seen is not None:
                    self.store.reap(seen.run_id)  # the lease expired: its runner died
                    self.store.set_live_state(run, "running")
                    waited = time.monotonic() - waiting_since
                    self._say(f"{lease.label}: took the lease after waiting {waited:.1f} s")
                return True
            if seen is None or seen.run_id != lease.run_id:
                reason = f"waiting for run {lease.run_id} (holder {lease.holder}) on {lease.label}"
                self.store.set_live_state(run, "waiting", reason)
                self._say(reason)
                seen = lease
            waited = time.monotonic() - waiting_since
            if waited > self.options.wait_s:
                raise RunBusy(
                    f"run {run.run_id} gave up after waiting {waited:.1f} s for run {lease.run_id} "
                    f"(holder {lease.holder}) on {lease.label}; run it again once that run has ended",
                    retryable=True,
                    pipeline=run.pipeline,
                    ds=run.ds,
                    holder_run=lease.run_id,
                    holder=lease.holder,
                    run_id=run.run_id,
                    waited_s=round(waited, 1),
                )
            self.options.sleep(min(1.0, self.options.heartbeat_s))
        return False

    def _run_steps(
        self, run: RunRecord, ds: dt.date, redrive_of: RunRecord | None, heartbeat: Heartbeat
    ) -> bool:
        """Run the DAG's steps; True if one failed (or the run was lost and stopped)."""
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
        running = self._running
        order = self.pipeline.order()
        while True:
            if heartbeat.lost:
                self._stop_steps(run, f"the run stopped: {heartbeat.lost}")
                self._say(f"stopped: {heartbeat.lost}")
                return True
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
        return bool(failed)

    def _stop_steps(self, run: RunRecord, reason: str) -> None:
        """Kill the steps still running and record their attempts as failed (a redrive reruns them)."""
        for step, job in list(self._running.items()):
            self._kill(job)
            used = step_usage({}, job.watchdog.usage(), time.monotonic() - job.started)
            self.store.finish_attempt(run, job.attempt, "failed", reason, True, used)
            del self._running[step]

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
            elapsed = time.monotonic() - job.started
            return ok, error, retryable, step_usage(metrics, job.watchdog.usage(), elapsed)
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
