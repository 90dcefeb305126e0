"""A pipeline runner in a process of its own, killed as a crash kills one, and what it recorded.

The runner runs in a session of its own, so killing its process group (SIGKILL) takes the runner,
its fork server and every step process at once, as a machine going down or ``kill -9 -PGID`` would.
It is forked from the fork server the runner module sets up, which has lakeplane and its engines
imported already: a fresh interpreter would spend a second of CPU on imports for each runner.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import psutil
import sqlalchemy as sa

from lakeplane.lake import Lake, open_lake
from lakeplane.pipelines.runner import RunOptions
from lakeplane.pipelines.store import ATTEMPTS, RUNS

#: A short heartbeat, so a killed runner's run is taken for dead within a second.
HEARTBEAT_S, DEAD_AFTER_S = 0.1, 0.6


def run_in_own_session(project: str, pipeline: str, ds: str, heartbeat_s: float, dead_after_s: float) -> None:
    """The runner process: a session of its own (its group is killed whole), then the run."""
    os.setsid()
    # What it prints (a traceback if it fails) goes to a file the test shows when it fails.
    log = os.open(Path(project) / "runner.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    options = RunOptions(heartbeat_s=heartbeat_s, dead_after_s=dead_after_s)
    open_lake(project).run_pipeline(pipeline, dt.date.fromisoformat(ds), options)


T = TypeVar("T")


@dataclass
class Seen:
    """The newest run of a project as its store holds it (read without recording deaths)."""

    run_id: str
    state: str
    holder: str | None
    reason: str | None
    attempts: list[tuple[str, str]] = field(default_factory=list)

    def step(self, name: str) -> str | None:
        """The state of ``name``'s last attempt, None if it has none."""
        states = [state for step, state in self.attempts if step == name]
        return states[-1] if states else None


class RunnerProcess:
    """``lakeplane run PIPELINE`` for ``ds`` in a process group of its own."""

    def __init__(
        self,
        lake: Lake,
        pipeline: str,
        ds: dt.date,
        heartbeat_s: float = HEARTBEAT_S,
        dead_after_s: float = DEAD_AFTER_S,
    ) -> None:
        project = self.project = lake.project_dir
        self.started = time.monotonic()
        # Not a daemon: a daemonic process may not start the step processes.
        self.process = multiprocessing.get_context("forkserver").Process(
            target=run_in_own_session,
            args=(str(project), pipeline, ds.isoformat(), heartbeat_s, dead_after_s),
            name=f"lakeplane-runner-{pipeline}",
            daemon=False,
        )
        self.process.start()
        assert self.process.pid is not None
        # The runner's first act is its own session; a kill must not reach the test's group.
        wait_for("the runner in its own session", lambda: _own_group(self.pid), 30, 0.001)
        self._engine = sa.create_engine(lake.catalog.uri)

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def seen(self) -> Seen | None:
        """The newest run in the store, None before the runner recorded one."""
        try:
            with self._engine.connect() as conn:
                run = conn.execute(sa.select(RUNS).order_by(RUNS.c.started_at.desc()).limit(1)).first()
                if run is None:
                    return None
                attempts = conn.execute(
                    sa.select(ATTEMPTS.c.step, ATTEMPTS.c.state)
                    .where(ATTEMPTS.c.run_id == run.run_id)
                    .order_by(ATTEMPTS.c.started_at, ATTEMPTS.c.attempt)
                ).all()
        except sa.exc.OperationalError:  # the tables do not exist yet, or the file is locked
            return None
        return Seen(run.run_id, run.state, run.holder, run.reason, [(a.step, a.state) for a in attempts])

    def reached(self, step: str, state: str = "running") -> Seen | None:
        """The newest run once ``step``'s last attempt is in ``state``, else None."""
        seen = self.seen()
        if seen is not None and seen.step(step) == state:
            return seen
        if self.exited():
            raise AssertionError(f"the runner ended before {step} was {state}: {seen}\n{self.log()}")
        return None

    def log(self) -> str:
        """What the runner printed."""
        path = self.project / "runner.log"
        return path.read_text()[-5000:] if path.exists() else ""

    def kill(self, group: bool = True) -> None:
        """SIGKILL the runner's whole process group (the runner, its fork server, its steps), or
        with ``group=False`` the runner alone, whose step processes must then die with it."""
        with contextlib.suppress(ProcessLookupError):  # it had ended
            if group:
                os.killpg(self.pid, signal.SIGKILL)
            else:
                os.kill(self.pid, signal.SIGKILL)
        self.process.join()
        self._engine.dispose()

    def survivors(self) -> list[str]:
        """Processes of the runner's group (its fork server, its steps) still alive (not zombies)."""
        alive = []
        for process in psutil.process_iter(["pid", "status", "cmdline"]):
            with contextlib.suppress(ProcessLookupError, psutil.Error):
                if os.getpgid(process.pid) == self.pid and process.info["status"] != psutil.STATUS_ZOMBIE:
                    alive.append(f"{process.pid} {' '.join(process.info['cmdline'] or [])[:200]}")
        return alive

    def exited(self) -> bool:
        return not self.process.is_alive()


def _own_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:  # it ended already
        return True


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = 60.0, poll_s: float = 0.01) -> T:
    """The first true value of ``probe()``, polled every ``poll_s``; fails after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        time.sleep(poll_s)
