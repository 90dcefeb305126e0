"""A job as the cost model and the advisor see it: its work, its size and what it must meet."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

#: Seconds a job takes on ``cores`` vCPUs: ``(seconds, low, high)``, the estimate and its range.
SecondsAt = Callable[[float], tuple[float, float, float]]

#: The serial fraction assumed when no scaling model was fitted: 5 % of the work does not spread.
DEFAULT_SERIAL_FRACTION = 0.05

#: Spark reads a file in splits of this many bytes (``spark.sql.files.maxPartitionBytes``), one task
#: each: a job cannot keep more vCPUs busy than its input has splits.
SPLIT_BYTES = 128 * 2**20

KINDS = ("batch", "query")
ARRIVALS = ("scheduled", "unpredictable")


@dataclass(frozen=True)
class AmdahlScaling:
    """Near-linear scaling with a serial fraction: ``T(c) = T0 * (s + (1 - s) * c0 / c)``.

    ``max_cores`` caps the vCPUs the work can use (its input's splits): more run no faster.
    ``spread`` widens the estimate into a range (0.25: ±25 %); 0 says the range is unknown.
    """

    seconds: float
    cores: float
    serial_fraction: float = DEFAULT_SERIAL_FRACTION
    spread: float = 0.0
    max_cores: float | None = None

    def __call__(self, cores: float) -> tuple[float, float, float]:
        cap = math.inf if self.max_cores is None else self.max_cores
        ratio = min(self.cores, cap) / max(min(cores, cap), 1e-9)
        estimate = self.seconds * (self.serial_fraction + (1 - self.serial_fraction) * ratio)
        return estimate, estimate * (1 - self.spread), estimate * (1 + self.spread)

    def describe(self) -> str:
        text = (
            f"{self.seconds:,.0f} s at {self.cores:g} vCPUs, scaled as "
            f"T(c) = T0 * ({self.serial_fraction:g} + {1 - self.serial_fraction:g} * {self.cores:g} / c)"
        )
        if self.max_cores is not None:
            text += f", no faster beyond {self.max_cores:g} vCPUs (one task per 128 MB input split)"
        return text


@dataclass(frozen=True)
class JobProfile:
    """A job to place: its work, data, memory, how often and how it arrives, and what it must meet.

    Attributes:
        name: what the job is called.
        kind: ``batch`` (a Spark/DuckDB job) or ``query`` (SQL an analyst waits for; Athena can run it).
        seconds: measured or predicted run seconds at ``cores`` vCPUs.
        cores: the reference vCPU count ``seconds`` was measured or predicted at.
        input_bytes: bytes the job reads.
        bytes_scanned: bytes a query scans (what Athena bills); 0 for batch jobs.
        peak_memory_gb: the memory the job holds at its peak, all executors together.
        runs_per_month: how often it runs.
        arrival: ``scheduled`` (start-up can be begun ahead of the planned start) or ``unpredictable``
            (start-up is waited for).
        deadline: seconds from the planned start (scheduled) or from arrival by which it must end.
        start_latency: seconds a person can wait for it to start (interactive work), or None.
        urgent: Glue Flex (spare capacity, start not guaranteed) is allowed only when not urgent.
        budget: the most one run may cost, USD, or None.
        concurrency: how many runs a standing cluster must hold at once (peak).
        seconds_at: the scaling model, ``seconds_at(cores) -> (seconds, low, high)``; None: an
            :class:`AmdahlScaling` from ``seconds`` and ``cores``.
    """

    name: str
    kind: Literal["batch", "query"] = "batch"
    seconds: float = 0.0
    cores: float = 1.0
    input_bytes: float = 0.0
    bytes_scanned: float = 0.0
    peak_memory_gb: float = 0.0
    runs_per_month: float = 30.0
    arrival: Literal["scheduled", "unpredictable"] = "scheduled"
    deadline: float | None = None
    start_latency: float | None = None
    urgent: bool = False
    budget: float | None = None
    concurrency: int = 1
    seconds_at: SecondsAt | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if self.arrival not in ARRIVALS:
            raise ValueError(f"arrival must be one of {ARRIVALS}, not {self.arrival!r}")
        if self.cores <= 0:
            raise ValueError("cores must be positive")

    def run_seconds(self, cores: float) -> tuple[float, float, float]:
        """Run seconds on ``cores`` vCPUs: ``(estimate, low, high)``, from ``seconds_at`` when given."""
        return (self.seconds_at or self.default_scaling())(cores)

    def default_scaling(self) -> AmdahlScaling:
        """Near-linear scaling from ``seconds`` at ``cores``, capped at the input's splits."""
        splits = math.ceil(self.input_bytes / SPLIT_BYTES) if self.input_bytes > 0 else None
        return AmdahlScaling(self.seconds, self.cores, max_cores=splits)

    def describe_scaling(self) -> str:
        if self.seconds_at is None:
            return self.default_scaling().describe()
        describe = getattr(self.seconds_at, "describe", None)
        return str(describe()) if callable(describe) else "the job's fitted scaling model"
