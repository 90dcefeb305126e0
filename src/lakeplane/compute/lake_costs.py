"""The cost side of one lake: its price table, this machine's price, and its run history priced,
fitted and advised on. The CLI's ``advise PIPELINE|MODEL``, ``cost report`` and ``run-show`` call it."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path

from lakeplane.compute.costs import HereMachine
from lakeplane.compute.here import lake_prices, machine_cores, machine_memory_gb, this_machine
from lakeplane.compute.history import (
    engine_observations,
    from_record,
    observations,
    read_runs,
    resolve_job,
)
from lakeplane.compute.job_advice import HistoryAdvice, advise_job
from lakeplane.compute.prices import PriceTable
from lakeplane.compute.report import CostReport, RunCostDetail, cost_report, parse_since, run_detail
from lakeplane.compute.scaling import ScalingModel, fit
from lakeplane.config import LakeConfig
from lakeplane.errors import JobNotFound, ScalingError
from lakeplane.pipelines.definition import Pipeline
from lakeplane.pipelines.store import RunRecord, RunStore


class LakeCosts:
    """Prices, advice and reports from one lake's run history.

    Args:
        config: the lake's configuration (``cost:`` and ``placement:``).
        project_dir: the project folder (a relative ``cost.prices`` is below it).
        store: the run store.
        pipelines: the project's pipelines.
        model_name: the full name of the model a step or the user names.
    """

    def __init__(
        self,
        config: LakeConfig,
        project_dir: Path,
        store: RunStore,
        pipelines: Callable[[], Sequence[Pipeline]],
        model_name: Callable[[str], str],
    ) -> None:
        self.config = config
        self.project_dir = project_dir
        self.store = store
        self.pipelines = pipelines
        self.model_name = model_name

    @cached_property
    def prices(self) -> PriceTable:
        return lake_prices(self.config.cost, self.project_dir)

    @cached_property
    def here(self) -> HereMachine:
        return HereMachine(this_machine(self.config.cost, self.prices), machine_cores(), machine_memory_gb())

    def advise(
        self,
        name: str,
        multiples: Sequence[float] = (),
        deadline: float | None = None,
        budget: float | None = None,
    ) -> HistoryAdvice:
        """Advise a shape for pipeline or model ``name`` at today's volume and ``multiples`` of it;
        the deadline and budget default to ``placement:``'s.

        Raises:
            JobNotFound: no pipeline or model has that name.
            ScalingError: its history is too short to fit.
        """
        pipelines = list(self.pipelines())
        job = resolve_job(name, pipelines, self.model_name)
        found = observations(job, read_runs(self.store, job.pipelines), machine_cores())
        placement = self.config.placement
        schedules = {p.name: p.schedule for p in pipelines}
        return advise_job(
            job,
            found,
            self.prices,
            self.here,
            multiples=multiples,
            deadline=placement.deadline if deadline is None else deadline,
            budget=placement.budget if budget is None else budget,
            scheduled=any(schedules.get(p) for p in job.pipelines),
        )

    def engine_fits(self, model: str) -> dict[str, ScalingModel]:
        """``model``'s scaling model on each engine it has run on often enough to fit one (a model
        no pipeline runs, or too few runs on an engine, gives none for it)."""
        try:
            job = resolve_job(model, list(self.pipelines()), self.model_name)
        except JobNotFound:
            return {}
        if job.kind != "model":
            return {}
        fits = {}
        grouped = engine_observations(job, read_runs(self.store, job.pipelines), machine_cores())
        for engine, runs in grouped.items():
            with contextlib.suppress(ScalingError):
                fits[engine] = fit(f"{job.name} on {engine}", runs)
        return fits

    def report(self, since: str | None = None, now: dt.datetime | None = None) -> CostReport:
        """What the runs since ``since`` (``7d`` or a date; default: all) cost, and standing versus
        transient."""
        moment = now or dt.datetime.now(dt.UTC)
        start = parse_since(since, moment) if since else None
        return cost_report(read_runs(self.store, since=start), self.prices, self.here.price, start, moment)

    def run_detail(self, run: RunRecord) -> RunCostDetail:
        """``run``'s cost per step attempt and in total, here and on each shape."""
        return run_detail(from_record(run), self.prices, self.here)
