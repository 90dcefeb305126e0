"""What a remote job runs: a pipeline's steps (with their dependencies, retries and gates) or one model."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from lakeplane.errors import ConfigError, did_you_mean
from lakeplane.pipelines.definition import Pipeline, RetryPolicy, StepDefaults
from lakeplane.pipelines.models import Model

JobKind = Literal["pipeline", "model", "workgroup"]


@dataclass(frozen=True)
class RemoteStep:
    """One step as a remote job runs it.

    Attributes:
        gate: the quality gate that can stop this step (a DQDL file, or ``model header`` for the
            gate a model declares), ``None`` when nothing gates it.
    """

    name: str
    kind: str
    depends_on: tuple[str, ...]
    retries: RetryPolicy
    timeout_s: float
    gate: str | None = None


@dataclass(frozen=True)
class JobPlan:
    """A pipeline (``kind`` pipeline) or a single model (``kind`` model) to run remotely, or a
    workgroup of ``workgroups:`` (no steps) that an Athena workgroup is rendered for.

    ``steps`` are in an order that respects their dependencies.
    """

    project: str
    name: str
    kind: JobKind
    steps: tuple[RemoteStep, ...]

    @property
    def slug(self) -> str:
        """``lakeplane-<project>-<name>``, with only the characters every AWS name accepts."""
        return "lakeplane-" + re.sub(r"[^A-Za-z0-9-]+", "-", f"{self.project}-{self.name}").strip("-")

    @property
    def timeout_s(self) -> float:
        """The longest any one run of the whole job may take: every step's timeout, one after another."""
        return sum(step.timeout_s for step in self.steps)

    def levels(self) -> list[list[RemoteStep]]:
        """The steps by depth: each level depends only on earlier levels, so its steps may run at once."""
        depth: dict[str, int] = {}
        for step in self.steps:
            depth[step.name] = 1 + max((depth[d] for d in step.depends_on), default=-1)
        levels: list[list[RemoteStep]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for step in self.steps:
            levels[depth[step.name]].append(step)
        return levels


def resolve_job(project: str, name: str, pipelines: list[Pipeline], models: list[Model]) -> JobPlan:
    """The pipeline called ``name``, else the model building table ``name``.

    Raises:
        ConfigError: ``name`` is neither; the message lists the pipelines and models there are.
    """
    by_model = {m.name: m for m in models}
    for pipeline in pipelines:
        if pipeline.name == name:
            return _pipeline_plan(project, pipeline, by_model)
    matches = [m for m in models if name in (m.name, m.name.split(".", 1)[-1], m.name.rsplit(".", 1)[-1])]
    if len(matches) == 1:
        return _model_plan(project, matches[0])
    known = [p.name for p in pipelines] + sorted(by_model)
    raise ConfigError(
        f"'{name}' is neither a pipeline nor a model{did_you_mean(name, known)} "
        f"(pipelines: {', '.join(p.name for p in pipelines) or 'none'}; "
        f"models: {', '.join(sorted(by_model)) or 'none'})",
        key=name,
    )


def _pipeline_plan(project: str, pipeline: Pipeline, models: dict[str, Model]) -> JobPlan:
    steps = []
    for name in pipeline.order():
        spec = pipeline.steps[name]
        gate: str | None = None
        if spec.kind == "quality" and spec.blocking:
            gate = spec.quality
        elif spec.kind == "model":
            model = _model_named(spec.model or "", models)
            header = model.header.quality if model and model.header.quality_blocking else None
            gate = (spec.quality if spec.blocking else None) or (header and "model header")
        steps.append(
            RemoteStep(
                name=name,
                kind=spec.kind,
                depends_on=tuple(spec.depends_on),
                retries=pipeline.retries(name),
                timeout_s=pipeline.timeout(name),
                gate=gate,
            )
        )
    return JobPlan(project, pipeline.name, "pipeline", tuple(steps))


def _model_named(name: str, models: dict[str, Model]) -> Model | None:
    matches = [m for full, m in models.items() if name in (full, full.split(".", 1)[-1])]
    return matches[0] if len(matches) == 1 else None


def _model_plan(project: str, model: Model) -> JobPlan:
    defaults = StepDefaults()
    step = RemoteStep(
        name=model.name.rsplit(".", 1)[-1],
        kind="model",
        depends_on=(),
        retries=defaults.retries,
        timeout_s=defaults.timeout_s,
        gate="model header" if model.header.quality and model.header.quality_blocking else None,
    )
    return JobPlan(project, model.name, "model", (step,))
