"""Choosing a shape: the cheapest one that meets every limit of the job, with the reasons.

No rule maps a kind of job to a shape. Each shape is priced at the size that meets the job's
deadline (:func:`~lakeplane.compute.costs.price_job`), checked against its start-up latency,
capacity, memory, urgency and budget, and the cheapest feasible one per month wins. The reference
decision table (steady large nightly → transient EMR with Spot; spiky → EMR Serverless; routine
incremental → Glue, Flex when not urgent; ad-hoc interactive → Athena) falls out of those inputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lakeplane.compute.costs import HereMachine, cheapest, price_job
from lakeplane.compute.jobs import AmdahlScaling, JobProfile
from lakeplane.compute.prices import PriceTable
from lakeplane.compute.shapes import SHAPES, ShapeCost

__all__ = ["Advice", "AmdahlScaling", "JobProfile", "advise"]


def _month(cost: ShapeCost) -> float:
    return cost.usd_per_month if cost.usd_per_month is not None else cost.usd


@dataclass(frozen=True)
class Advice:
    """The advisor's answer for one job.

    Attributes:
        job: the job advised on.
        choice: the cheapest feasible shape, or None when no shape meets the job's limits.
        runner_up: the next cheapest feasible shape.
        candidates: every shape priced, feasible or not, cheapest feasible first.
        reasons: sentences with figures: why the choice wins and why each other shape lost.
    """

    job: JobProfile
    choice: ShapeCost | None
    runner_up: ShapeCost | None
    candidates: tuple[ShapeCost, ...]
    reasons: tuple[str, ...]

    def candidate(self, shape: str) -> ShapeCost:
        """The priced candidate ``shape``."""
        for cost in self.candidates:
            if cost.shape == shape:
                return cost
        raise KeyError(shape)

    def to_dict(self) -> dict[str, Any]:
        job = self.job
        return {
            "job": job.name,
            "kind": job.kind,
            "arrival": job.arrival,
            "runs_per_month": job.runs_per_month,
            "deadline": job.deadline,
            "start_latency": job.start_latency,
            "urgent": job.urgent,
            "budget": job.budget,
            "choice": None if self.choice is None else self.choice.shape,
            "runner_up": None if self.runner_up is None else self.runner_up.shape,
            "usd_per_run": None if self.choice is None else round(self.choice.usd, 6),
            "usd_per_month": None if self.choice is None else round(_month(self.choice), 2),
            "reasons": list(self.reasons),
            "candidates": [c.to_dict() for c in self.candidates],
        }


def advise(
    job: JobProfile,
    prices: PriceTable,
    here: HereMachine | None = None,
    shapes: Iterable[str] | None = None,
) -> Advice:
    """The cheapest shape (per month at the job's runs per month) that meets every limit of ``job``,
    the runner-up, and why each other shape lost or could not run it."""
    costs = price_job(job, prices, here=here, shapes=SHAPES if shapes is None else shapes)
    feasible = sorted((c for c in costs if c.feasible), key=lambda c: (_month(c), c.usd))
    rejected = [c for c in costs if not c.feasible]
    choice = cheapest(costs)
    runner_up = feasible[1] if len(feasible) > 1 else None
    return Advice(
        job=job,
        choice=choice,
        runner_up=runner_up,
        candidates=(*feasible, *rejected),
        reasons=tuple(_reasons(job, feasible, rejected)),
    )


def _reasons(job: JobProfile, feasible: list[ShapeCost], rejected: list[ShapeCost]) -> list[str]:
    if not feasible:
        return [
            f"no shape can run {job.name} within its limits",
            *(f"{c.shape} cannot: {c.why_not}" for c in rejected),
        ]
    best = feasible[0]
    limits = []
    if job.deadline is not None:
        begun = " (start-up begun ahead of the planned start)" if job.arrival == "scheduled" else ""
        limits.append(f"within the {job.deadline:,.0f} s deadline{begun}")
    if job.start_latency is not None and job.arrival == "unpredictable":
        limits.append(f"starting within {job.start_latency:,.0f} s")
    reasons = [
        f"{best.shape} is the cheapest shape that can run {job.name}: ${best.usd:,.4f} a run, "
        f"${_month(best):,.2f} a month at {job.runs_per_month:g} runs on {best.size}, "
        f"{best.seconds:,.0f} s including {best.start_seconds:,.0f} s of start-up"
        + (f" ({', '.join(limits)})" if limits else "")
    ]
    for other in feasible[1:]:
        extra = _month(other) - _month(best)
        ratio = _month(other) / _month(best) if _month(best) > 0 else float("inf")
        reasons.append(
            f"{other.shape} costs ${_month(other):,.2f} a month (${other.usd:,.4f} a run on "
            f"{other.size}): ${extra:,.2f} more, {ratio:,.2f}x the choice"
        )
    reasons.extend(f"{c.shape} cannot run it: {c.why_not}" for c in rejected)
    return reasons
