"""What a pipeline step used, in the units compute is billed in: the step metrics keys.

A step's own report (what it held: ``cores``; what it moved: bytes; a Spark job's executors) is
merged with what its process tree was measured using (:class:`~lakeplane.pipelines.process_tree.TreeUsage`)
into one metrics dict. The keys are described in ``docs/usage-metrics.md``:

``seconds``, ``cpu_seconds``, ``vcpu_seconds``, ``memory_gb_seconds``, ``peak_memory_mb``,
``cores``, ``bytes_read``, ``bytes_written``, ``bytes_scanned`` and, for Spark steps,
``spark_executors``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from types import TracebackType
from typing import Any, Self

from lakeplane.compute.here import machine_cores
from lakeplane.pipelines.process_tree import MemoryWatchdog, TreeUsage

#: Byte counts every step records, 0 when the step moved none.
BYTE_KEYS = ("bytes_read", "bytes_written", "bytes_scanned")


def step_usage(reported: Mapping[str, Any], tree: TreeUsage, seconds: float) -> dict[str, Any]:
    """``reported`` (a step's metrics) with the usage keys set from ``tree`` and ``seconds``.

    Spark executors outside the step's processes (a cluster given by ``spark.master``) add their CPU
    time and memory to the tree's; those inside it (``local[N]``, a transient cluster the step
    started) are counted once, as the processes they are.

    Args:
        reported: what the step reported (its ``cores``, bytes, ``spark_executors``); may be empty
            (a step killed or failed).
        tree: what its processes used.
        seconds: the step's wall time (``seconds`` unless the step reported its own).
    """
    metrics = dict(reported)
    executors = metrics.get("spark_executors")
    cpu, gb_seconds = tree.cpu_seconds, tree.memory_gb_seconds
    if isinstance(executors, Mapping) and executors.get("outside"):
        cpu += float(executors.get("cpu_seconds", 0.0))
        gb_seconds += float(executors.get("memory_gb_seconds", 0.0))
    cores = int(metrics.get("cores") or machine_cores())
    peak = max(float(metrics.get("peak_memory_mb", 0.0)), tree.peak_mb)
    wall = float(metrics.setdefault("seconds", round(seconds, 3)))
    metrics.update(
        cpu_seconds=round(cpu, 3),
        cores=cores,
        vcpu_seconds=round(cores * wall, 3),
        memory_gb_seconds=round(gb_seconds, 4),
        peak_memory_mb=round(peak, 1),
    )
    for key in BYTE_KEYS:
        metrics.setdefault(key, 0)
    return metrics


class StepMeter:
    """Measures a step run in this process (the nightly run without step processes): this process
    and the processes it starts, from entering the block to leaving it.

    The CPU time is what the tree used during the block (a Spark driver's JVM kept from an earlier
    step counts for what it did meanwhile); memory is the whole process's, as a step process's is.
    Threads of this process doing other work meanwhile are counted too.
    """

    def __init__(self) -> None:
        self.watchdog = MemoryWatchdog(os.getpid(), None)
        self.used = TreeUsage(0.0, 0.0, 0.0, 0.0)
        self._cpu_before = 0.0

    def __enter__(self) -> Self:
        self.watchdog.sample()
        self._cpu_before = self.watchdog.tree.cpu_seconds()
        self.watchdog.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.watchdog.stop()
        self.watchdog.sample()
        used = self.watchdog.usage()
        self.used = replace(used, cpu_seconds=max(used.cpu_seconds - self._cpu_before, 0.0))

    def metrics(self, reported: Mapping[str, Any]) -> dict[str, Any]:
        """``reported`` with the usage keys of the block (see :func:`step_usage`)."""
        return step_usage(reported, self.used, self.used.seconds)
