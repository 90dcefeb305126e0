"""Python steps for runner tests, imported by the step processes (``tests.pipelines.steps:NAME``)."""

from __future__ import annotations

import datetime as dt
import fcntl
import time
from typing import Any

from lakeplane.errors import ModelError, StorageError


def _count(lake: Any, name: str) -> int:
    """Count a call in ``<name>.count``, under a lock: step processes of a backfill run at once."""
    path = lake.project_dir / f"{name}.count"
    with open(lake.project_dir / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        count = int(path.read_text()) + 1 if path.exists() else 1
        path.write_text(str(count))
    return count


def marker(lake: Any, ds: dt.date) -> dict[str, Any]:
    return {"calls": _count(lake, "marker"), "rows_out": 1}


def flaky(lake: Any, ds: dt.date) -> dict[str, Any]:
    calls = _count(lake, "flaky")
    if calls <= 2:
        raise StorageError(f"the object store timed out (call {calls})")
    return {"calls": calls}


def broken_until_fixed(lake: Any, ds: dt.date) -> None:
    _count(lake, "broken")
    if not (lake.project_dir / "fixed").exists():
        raise ModelError("the model is wrong")


def hog(lake: Any, ds: dt.date) -> None:
    chunks = []
    for _ in range(60):  # up to 3 GB, 50 MB at a time, touched so it is resident
        chunks.append(bytearray(50 << 20))
        chunks[-1][::4096] = b"x" * len(chunks[-1][::4096])
        time.sleep(0.02)


def sleepy(lake: Any, ds: dt.date) -> None:
    time.sleep(60)
