"""``lakeplane advise PIPELINE|MODEL``: the advisor, asked about a job from its own run history.

The job's scaling model is fitted from its succeeded runs; today's volume is what its latest run
read. For today and each asked multiple of it, a :class:`~lakeplane.compute.jobs.JobProfile` is
built whose run time at any core count comes from the scaling model (with its interval), and the
advisor picks the cheapest shape that meets the deadline and budget. Each answer states the
prediction's interval, whether it extrapolates beyond the runs seen, and whether the choice still
meets the deadline at the high end of the interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lakeplane.compute.advisor import Advice, advise
from lakeplane.compute.costs import HereMachine
from lakeplane.compute.history import Job, Observation
from lakeplane.compute.jobs import JobProfile
from lakeplane.compute.prices import PriceTable
from lakeplane.compute.scaling import Prediction, ScalingModel, fit
from lakeplane.errors import ConfigError
from lakeplane.units import human_bytes

#: A pipeline or model is taken to run nightly unless told otherwise.
RUNS_PER_MONTH = 30.0


@dataclass(frozen=True)
class VolumeAdvice:
    """The advice for one volume: ``multiple`` times today's input."""

    multiple: float
    input_bytes: int
    predicted: Prediction
    advice: Advice
    uncertainty: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "multiple": self.multiple,
            "input_bytes": self.input_bytes,
            "predicted": self.predicted.to_dict(),
            "uncertainty": self.uncertainty,
            **self.advice.to_dict(),
        }


@dataclass(frozen=True)
class HistoryAdvice:
    """The advice for a job at today's volume and the asked multiples, from its history."""

    job: Job
    model: ScalingModel
    observations: tuple[Observation, ...]
    today: Observation
    answers: tuple[VolumeAdvice, ...]
    assumptions: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job.name,
            "kind": self.job.kind,
            "today": self.today.to_dict(),
            "model": self.model.to_dict(),
            "runs": [o.to_dict() for o in self.observations],
            "volumes": [a.to_dict() for a in self.answers],
            "assumptions": list(self.assumptions),
        }


def parse_multiple(text: str) -> float:
    """``10x``, ``10`` or ``2.5x`` → the multiple.

    Raises:
        ConfigError: not a positive number.
    """
    try:
        value = float(text.strip().lower().removesuffix("x"))
    except ValueError:
        value = 0.0
    if value <= 0:
        raise ConfigError(
            f"--volume {text}: expected a positive multiple of today's volume, e.g. 10x", key="volume"
        )
    return value


def advise_job(
    job: Job,
    found: Sequence[Observation],
    prices: PriceTable,
    here: HereMachine | None,
    *,
    multiples: Sequence[float] = (1.0,),
    deadline: float | None = None,
    budget: float | None = None,
    runs_per_month: float = RUNS_PER_MONTH,
    scheduled: bool = True,
) -> HistoryAdvice:
    """Fit ``job``'s scaling model to ``found`` and advise a shape for each multiple of today's volume.

    Raises:
        ScalingError: too few runs, or runs all of one size.
    """
    model = fit(job.name, found)
    today = found[-1]
    peak_gb = float(today.metrics.get("peak_memory_mb", 0.0)) / 1024
    answers = []
    for multiple in dict.fromkeys((1.0, *multiples)):
        size = int(today.input_bytes * multiple)
        predicted = model.predict(size, today.cores)
        profile = JobProfile(
            name=job.name if multiple == 1 else f"{job.name} at {multiple:g}x",
            kind="batch",
            seconds=predicted.seconds,
            cores=today.cores,
            input_bytes=size,
            peak_memory_gb=peak_gb * multiple,
            runs_per_month=runs_per_month,
            arrival="scheduled" if scheduled else "unpredictable",
            deadline=deadline,
            budget=budget,
            seconds_at=model.seconds_at(size),
        )
        advice = advise(profile, prices, here=here)
        answers.append(
            VolumeAdvice(multiple, size, predicted, advice, _uncertainty(predicted, advice, deadline))
        )
    assumptions = (
        *model.assumptions,
        f"today's volume is the latest run's input ({human_bytes(today.input_bytes)}, run {today.run_id})",
        f"peak memory grows with the volume from today's {peak_gb:.2f} GB",
        f"{runs_per_month:g} runs a month, {'scheduled' if scheduled else 'arriving unpredictably'}",
        *(
            []
            if today.cores_recorded
            else [f"the runs did not record their cores: taken as this machine's {today.cores}"]
        ),
    )
    return HistoryAdvice(job, model, tuple(found), today, tuple(answers), assumptions)


def _uncertainty(predicted: Prediction, advice: Advice, deadline: float | None) -> str:
    text = (
        f"{predicted.seconds:,.1f} s on {predicted.cores:g} cores predicted "
        f"({predicted.low:,.1f}-{predicted.high:,.1f} s at {predicted.level:.0%}; the fit's "
        "leave-one-out error is part of the range)"
    )
    if predicted.notes:
        text += "; " + "; ".join(predicted.notes)
    choice = advice.choice
    if choice is not None and deadline is not None:
        high = choice.seconds_high or choice.seconds
        verdict = "still meets" if high <= deadline else "would miss"
        text += (
            f"; at the high end {choice.shape} takes {high:,.0f} s: {verdict} the {deadline:,.0f} s deadline"
        )
    return text
