"""Python steps of the observe tests, imported by the step processes (``tests.observe.steps:NAME``)."""

from __future__ import annotations

import datetime as dt
import os
import signal
from typing import Any

from lakeplane.errors import ModelError, QualityGateFailed, StorageError


def _count(lake: Any, name: str) -> int:
    path = lake.project_dir / f"{name}.count"
    count = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(count))
    return count


def marker(lake: Any, ds: dt.date) -> dict[str, Any]:
    return {"rows_out": 1}


def flaky(lake: Any, ds: dt.date) -> dict[str, Any]:
    """Fails with a retryable error on every odd call: each run needs two attempts."""
    if _count(lake, "flaky") % 2:
        raise StorageError("the object store timed out")
    return {"rows_out": 2}


def killed(lake: Any, ds: dt.date) -> None:
    """The worker is killed under the step (as the OOM killer or an operator would)."""
    os.kill(os.getpid(), signal.SIGKILL)


def broken(lake: Any, ds: dt.date) -> None:
    raise ModelError("the model is wrong")


def gate_passes(lake: Any, ds: dt.date) -> dict[str, Any]:
    """Reports a gate of two passing rules, as a quality step does, and bytes it moved."""
    rules = [{"rule": "RowCount > 0", "passed": True}, {"rule": "IsComplete x", "passed": True}]
    return {"quality": rules, "bytes_read": 1000, "bytes_written": 10, "quarantined": 3}


def gate_fails(lake: Any, ds: dt.date) -> None:
    raise QualityGateFailed("quality gate on t failed", rules=[{"rule": "RowCount > 10", "passed": False}])
