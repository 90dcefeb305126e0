"""One step in its own process: the child opens the lake, runs the step, and reports back.

A step that runs away (memory, time) is killed alone; the runner and the other steps go on.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import sys
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil

from lakeplane.errors import LakeplaneError
from lakeplane.pipelines.definition import load_pipeline
from lakeplane.pipelines.steps import OpenHost, execute_step


def run_step(
    project_dir: str,
    pipeline_path: str,
    step: str,
    ds: str,
    overrides: dict[str, Any],
    report: Connection,
    open_host: OpenHost,
    runner_pid: int | None = None,
) -> None:
    """Entry point of the child process: open the lake with ``open_host``, run ``step`` for ``ds``
    and send a result dict."""
    _die_with_parent()
    if runner_pid is not None and not psutil.pid_exists(runner_pid):
        # The runner died while this step was being forked, maybe before the death signal was
        # armed: a redrive will run the step; running it here too would race that run's commits.
        os._exit(1)
    try:
        try:
            metrics = _execute(
                Path(project_dir), Path(pipeline_path), step, dt.date.fromisoformat(ds), overrides, open_host
            )
        finally:
            _stop_engines()
        metrics["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        report.send({"ok": True, "metrics": metrics})
    except LakeplaneError as exc:
        report.send(
            {
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "retryable": exc.retryable,
                "details": exc.to_dict(),
            }
        )
    except BaseException as exc:
        report.send(
            {
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "retryable": False,
                "traceback": traceback.format_exc(limit=20),
            }
        )
    finally:
        report.close()


def _stop_engines() -> None:
    """Stop a Spark driver the step started before reporting: a step process ends with os._exit,
    which runs no exit handlers, and its JVM must not outlive it."""
    runtime = sys.modules.get("lakeplane.engines.spark.runtime")
    if runtime is not None:
        runtime.stop_driver()


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the runner dies, so no orphan step commits later."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the runner's redrive still tolerates orphans
        pass


def _execute(
    project_dir: Path,
    pipeline_path: Path,
    step: str,
    ds: dt.date,
    overrides: dict[str, Any],
    open_host: OpenHost,
) -> dict[str, Any]:
    spec = load_pipeline(pipeline_path).steps[step]
    return execute_step(open_host(project_dir, overrides or None), spec, ds)
