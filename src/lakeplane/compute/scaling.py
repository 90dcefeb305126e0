"""A job's scaling model: its wall time as a function of input bytes and cores, fitted from its runs.

The form is Ernest's (Venkataraman et al., NSDI 2016): time is a non-negative mix of a fixed cost,
work that divides over the cores (``GB / cores``), work that does not (``GB``), and coordination
that grows with the cores (``log(cores)``, ``cores``). Non-negative least squares
(:func:`scipy.optimize.nnls`) keeps every term a cost, so the fitted curve never predicts that more
data takes less time. Rows are weighted by ``1 / seconds``: the fit minimises relative error, as
run times vary by a fraction of themselves, and a two-second run counts as much as a two-hour one.

A fit says how good it is (mean relative error in-sample and leave-one-out) and how sure a
prediction is: a residual bootstrap (the relative residuals resampled onto the fitted times, the
model refitted each time) gives a 90 % interval that includes the run-to-run noise. A prediction
outside the input sizes or core counts the history covered says so, by how much, and its interval
is widened by ``1 + log10(factor)`` per dimension: a fit is evidence only where it has data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import nnls

from lakeplane.errors import ScalingError
from lakeplane.units import human_bytes

GB = 1024**3
#: Fewer runs than this tell nothing about how a job scales.
MIN_RUNS = 3
#: Runs whose input sizes differ by less than this factor cannot show how time grows with volume.
MIN_SIZE_SPREAD = 1.2
#: The terms a fit may use, in the order they are admitted while runs allow (one run more than
#: terms, so a residual remains to judge the fit by).
TERMS = ("fixed", "gb_per_core", "gb", "log_cores", "cores")
#: The terms that can be told apart when every run had the same cores (the others are collinear
#: with these then).
SINGLE_CORE_COUNT_TERMS = ("fixed", "gb_per_core")
LEVEL = 0.9
BOOTSTRAP_SAMPLES = 400


class TimedRun(Protocol):
    """What a fit needs of one run."""

    @property
    def input_bytes(self) -> int: ...

    @property
    def cores(self) -> int: ...

    @property
    def seconds(self) -> float: ...


@dataclass(frozen=True)
class Prediction:
    """The time of one run at ``input_bytes`` on ``cores``, with its 90 % interval.

    Attributes:
        bytes_factor: how far beyond the input sizes seen (1.0: within them; 10.0: ten times the
            largest, or a tenth of the smallest).
        cores_factor: the same for core counts.
        bytes_exponent: d log(time) / d log(bytes) here: 1.0 when time is proportional to input.
        cores_exponent: d log(time) / d log(cores) here: -1.0 when the work divides perfectly.
        notes: what the caller must know (each extrapolation, each assumption it rests on).
    """

    input_bytes: int
    cores: float
    seconds: float
    low: float
    high: float
    bytes_factor: float
    cores_factor: float
    bytes_exponent: float
    cores_exponent: float
    notes: tuple[str, ...] = ()
    level: float = LEVEL

    @property
    def extrapolated(self) -> bool:
        return self.bytes_factor > 1.0 or self.cores_factor > 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_bytes": self.input_bytes,
            "cores": self.cores,
            "seconds": round(self.seconds, 3),
            "low": round(self.low, 3),
            "high": round(self.high, 3),
            "level": self.level,
            "extrapolated": self.extrapolated,
            "bytes_factor": round(self.bytes_factor, 3),
            "cores_factor": round(self.cores_factor, 3),
            "bytes_exponent": round(self.bytes_exponent, 3),
            "cores_exponent": round(self.cores_exponent, 3),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ScalingModel:
    """A fitted model of one job's wall time.

    Attributes:
        job: the pipeline or model it was fitted for.
        terms: the terms used (a subset of :data:`TERMS`).
        coefficients: seconds per unit of each term (``gb_per_core``: seconds per GB per core).
        runs: the runs fitted.
        bytes_range, cores_range: the smallest and largest input and core count seen.
        fit_error: mean relative error over the runs fitted.
        loo_error: mean relative error predicting each run from a fit without it.
        assumptions: what the fit rests on beyond the data.
    """

    job: str
    terms: tuple[str, ...]
    coefficients: tuple[float, ...]
    runs: int
    bytes_range: tuple[int, int]
    cores_range: tuple[int, int]
    fit_error: float
    loo_error: float
    assumptions: tuple[str, ...] = ()
    samples: NDArray[np.float64] = field(repr=False, compare=False, default_factory=lambda: np.zeros((0, 0)))
    residuals: NDArray[np.float64] = field(repr=False, compare=False, default_factory=lambda: np.zeros(0))

    def coefficient(self, term: str) -> float:
        """The coefficient of ``term`` (0.0 for a term the fit did not use)."""
        return self.coefficients[self.terms.index(term)] if term in self.terms else 0.0

    def predict(self, input_bytes: int, cores: float) -> Prediction:
        """The time of a run reading ``input_bytes`` on ``cores``, with a 90 % interval."""
        cores = max(1.0, float(cores))
        row = _features(np.array([float(input_bytes)]), np.array([float(cores)]), self.terms)[0]
        seconds = float(row @ np.array(self.coefficients))
        rng = np.random.default_rng(1)
        spread = (self.samples @ row) * (1.0 + rng.choice(self.residuals, size=len(self.samples)))
        low, high = (
            np.quantile(spread, [(1 - LEVEL) / 2, (1 + LEVEL) / 2]) if len(spread) else (seconds, seconds)
        )
        # The bootstrap is optimistic with few runs: never narrower than the leave-one-out error.
        low, high = (
            min(float(low), seconds * (1 - self.loo_error)),
            max(float(high), seconds * (1 + self.loo_error)),
        )
        bytes_factor = _beyond(float(input_bytes), *self.bytes_range)
        cores_factor = _beyond(float(cores), *self.cores_range)
        widen = (1 + math.log10(bytes_factor)) * (1 + math.log10(cores_factor))
        low, high = seconds - (seconds - low) * widen, seconds + (high - seconds) * widen
        notes = list(self._notes(input_bytes, cores, bytes_factor, cores_factor, widen))
        return Prediction(
            int(input_bytes),
            cores,
            seconds,
            max(low, self.coefficient("fixed"), 0.0),
            high,
            bytes_factor,
            cores_factor,
            *self._exponents(float(input_bytes), float(cores), seconds),
            notes=tuple(notes),
        )

    def seconds_at(self, input_bytes: int) -> Callable[[float], tuple[float, float, float]]:
        """``cores -> (seconds, low, high)`` for a run reading ``input_bytes`` (what the advisor's
        ``JobProfile.seconds_at`` takes)."""

        def at(cores: float) -> tuple[float, float, float]:
            found = self.predict(input_bytes, cores)
            return found.seconds, found.low, found.high

        return at

    def _exponents(self, size: float, cores: float, seconds: float) -> tuple[float, float]:
        gb = size / GB
        d_bytes = self.coefficient("gb_per_core") * gb / cores + self.coefficient("gb") * gb
        d_cores = (
            -self.coefficient("gb_per_core") * gb / cores
            + self.coefficient("log_cores")
            + self.coefficient("cores") * cores
        )
        return (d_bytes / seconds, d_cores / seconds) if seconds > 0 else (0.0, 0.0)

    def _notes(
        self, size: int, cores: float, bytes_factor: float, cores_factor: float, widen: float
    ) -> list[str]:
        notes = []
        low_b, high_b = self.bytes_range
        if bytes_factor > 1:
            edge = f"{bytes_factor:.1f}x the largest input seen ({human_bytes(high_b)})"
            if size < low_b:
                edge = f"1/{bytes_factor:.1f} of the smallest input seen ({human_bytes(low_b)})"
            notes.append(f"input {human_bytes(size)} is {edge}: beyond the data")
        if cores_factor > 1:
            low_c, high_c = self.cores_range
            seen = f"{low_c}" if low_c == high_c else f"{low_c}-{high_c}"
            notes.append(f"{cores:g} cores is {cores_factor:.1f}x beyond the core counts seen ({seen})")
        if widen > 1:
            notes.append(f"interval widened x{widen:.2f} for the extrapolation")
        return notes

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "runs": self.runs,
            "terms": dict(zip(self.terms, (round(c, 6) for c in self.coefficients), strict=True)),
            "bytes_range": list(self.bytes_range),
            "cores_range": list(self.cores_range),
            "fit_error": round(self.fit_error, 4),
            "loo_error": round(self.loo_error, 4),
            "assumptions": list(self.assumptions),
        }


def fit(job: str, runs: Sequence[TimedRun]) -> ScalingModel:
    """Fit ``job``'s scaling model to its ``runs`` (each: input bytes, cores, wall seconds).

    Raises:
        ScalingError: fewer than :data:`MIN_RUNS` usable runs, or every run read about the same
            input, so nothing shows how time grows with it.
    """
    usable = [r for r in runs if r.seconds > 0 and r.input_bytes > 0]
    if len(usable) < MIN_RUNS:
        raise ScalingError(
            f"{job}: {len(usable)} usable run(s) in the history (with input bytes and a time); a scaling "
            f"model needs at least {MIN_RUNS}, at different input sizes",
            job=job,
            runs=len(usable),
            needed=MIN_RUNS,
        )
    size = np.array([float(r.input_bytes) for r in usable])
    cores = np.array([float(max(1, r.cores)) for r in usable])
    seconds = np.array([float(r.seconds) for r in usable])
    if size.max() < size.min() * MIN_SIZE_SPREAD:
        raise ScalingError(
            f"{job}: its {len(usable)} runs all read about {human_bytes(size.mean())}; predicting another "
            f"volume needs runs whose inputs differ by at least {MIN_SIZE_SPREAD}x",
            job=job,
            runs=len(usable),
            needed=MIN_RUNS,
        )
    assumptions = []
    candidates: tuple[str, ...] = TERMS
    if len(set(cores.tolist())) == 1:
        candidates = SINGLE_CORE_COUNT_TERMS
        assumptions.append(
            f"every run had {int(cores[0])} cores: the data-proportional work is assumed to divide "
            "over cores (gb_per_core); other core counts are extrapolations"
        )
    terms = candidates[: max(2, min(len(candidates), len(usable) - 1))]
    if len(terms) < len(candidates):
        waiting = ", ".join(candidates[len(terms) :])
        assumptions.append(f"{len(usable)} runs fit {len(terms)} terms; more runs admit {waiting}")
    features = _features(size, cores, terms)
    coefficients = _solve(features, seconds)
    fitted = features @ coefficients
    relative = seconds / fitted - 1.0
    dof = len(usable) - len(terms)
    inflated = relative * math.sqrt(len(usable) / dof) if dof > 0 else relative
    if not any(coefficients[terms.index(t)] > 0 for t in ("gb_per_core", "gb") if t in terms):
        assumptions.append(
            "the runs' times did not grow with their input: the fit is a fixed cost, and a prediction "
            "at another volume rests on no evidence of how the work grows (see the interval)"
        )
    return ScalingModel(
        job,
        terms,
        tuple(float(c) for c in coefficients),
        len(usable),
        (int(size.min()), int(size.max())),
        (int(cores.min()), int(cores.max())),
        float(np.mean(np.abs(relative))),
        _leave_one_out(features, seconds),
        tuple(assumptions),
        _bootstrap(features, fitted, inflated),
        inflated,
    )


def _features(
    size: NDArray[np.float64], cores: NDArray[np.float64], terms: Sequence[str]
) -> NDArray[np.float64]:
    gb = size / GB
    columns = {
        "fixed": np.ones_like(gb),
        "gb_per_core": gb / cores,
        "gb": gb,
        "log_cores": np.log(cores),
        "cores": cores,
    }
    return np.column_stack([columns[t] for t in terms])


def _solve(features: NDArray[np.float64], seconds: NDArray[np.float64]) -> NDArray[np.float64]:
    """Non-negative coefficients minimising the relative error; columns scaled to unit norm first,
    as terms span many orders of magnitude (GB per core next to a constant)."""
    weighted = features / seconds[:, None]
    norms = np.linalg.norm(weighted, axis=0)
    norms[norms == 0] = 1.0
    solution, _ = nnls(weighted / norms, np.ones(len(seconds)))
    return np.asarray(solution / norms, dtype=np.float64)


def _leave_one_out(features: NDArray[np.float64], seconds: NDArray[np.float64]) -> float:
    errors = []
    for i in range(len(seconds)):
        keep = np.arange(len(seconds)) != i
        predicted = features[i] @ _solve(features[keep], seconds[keep])
        errors.append(abs(predicted - seconds[i]) / seconds[i])
    return float(np.mean(errors))


def _bootstrap(
    features: NDArray[np.float64], fitted: NDArray[np.float64], relative: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Coefficients refitted to the fitted times with resampled relative residuals (seeded: the
    same history always gives the same interval)."""
    rng = np.random.default_rng(0)
    samples = [
        _solve(features, np.maximum(fitted * (1.0 + rng.choice(relative, size=len(fitted))), 1e-9))
        for _ in range(BOOTSTRAP_SAMPLES)
    ]
    return np.array(samples)


def _beyond(value: float, low: float, high: float) -> float:
    if value > high:
        return value / high
    if value < low:
        return low / max(value, 1.0)
    return 1.0
