"""Pipeline files: ``pipelines/<name>.yaml``, a DAG of steps with retries, timeouts and a schedule.

.. code-block:: yaml

    schedule: "0 2 * * *"          # cron, in UTC
    concurrency: 2                 # steps running at once
    defaults:
      retries: {attempts: 3, interval_s: 2, backoff_rate: 2.0, max_delay_s: 60, jitter: true}
      timeout_s: 3600
      memory_limit: 2GB
    steps:
      impressions: {ingest: partner/impressions}
      campaigns: {ingest: crm/campaigns, if_missing: skip}   # landed only when it changes
      daily_stats:
        model: curated.daily_campaign_stats   # gated by the model's own header (-- quality: ...)
        depends_on: [impressions, clicks]
        quality: quality/daily_stats.dqdl     # optional: one more ruleset for this step's gate
      notify:
        python: mypackage.hooks:notify        # called as notify(lake, ds)
        depends_on: [daily_stats]
      housekeeping:
        maintain: all                         # or {tables: [...], actions: [compact, expire]}
        depends_on: [daily_stats]
"""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lakeplane.documents import read_document
from lakeplane.errors import ConfigError, PipelineError, did_you_mean
from lakeplane.pipelines.schedule import Cron

PIPELINES_DIR = "pipelines"
STEP_KINDS = ("ingest", "model", "quality", "python", "maintain")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryPolicy(_Strict):
    """How a step that failed with a retryable error is tried again."""

    attempts: int = Field(default=3, ge=1, le=50)
    interval_s: float = Field(default=2.0, ge=0)
    backoff_rate: float = Field(default=2.0, ge=1)
    max_delay_s: float = Field(default=60.0, ge=0)
    jitter: bool = True

    def delay(self, attempt: int, rand: float) -> float:
        """Seconds to wait before try ``attempt + 1`` (``rand`` in [0, 1) when jitter is on)."""
        base = min(self.interval_s * self.backoff_rate ** (attempt - 1), self.max_delay_s)
        return base * (0.5 + rand / 2) if self.jitter else base


class StepDefaults(_Strict):
    retries: RetryPolicy = RetryPolicy()
    timeout_s: float = Field(default=3600, gt=0)
    memory_limit: str | None = None


class MaintainSpec(_Strict):
    """A housekeeping step: ``maintain all`` on ``tables`` (default: every table), limited to
    ``actions`` (``compact``, ``rewrite-manifests``, ``expire``, ``orphans``; default: all), each
    only where the table's ``maintenance:`` policy says it is due."""

    tables: list[str] = []
    actions: list[Literal["compact", "rewrite-manifests", "expire", "orphans"]] = []
    dry_run: bool = False


class StepSpec(_Strict):
    """One step: exactly one of ``ingest``, ``model``, ``quality`` (with ``table``), ``python`` or
    ``maintain`` (``all``, or a :class:`MaintainSpec`).

    On a model step, ``quality`` adds a ruleset to the model's own gate (its header's ``quality``),
    blocking unless ``blocking: false``; the model's gate applies whether or not the step names one.
    """

    ingest: str | None = None
    model: str | None = None
    quality: str | None = None
    table: str | None = None
    python: str | None = None
    maintain: MaintainSpec | None = None
    depends_on: list[str] = []
    retries: RetryPolicy | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    memory_limit: str | None = None
    blocking: bool = True
    if_missing: Literal["fail", "skip"] = "fail"

    @field_validator("maintain", mode="before")
    @classmethod
    def _maintain_all(cls, value: object) -> object:
        if isinstance(value, str):
            if value != "all":
                raise ValueError(f"maintain: '{value}': write all, or {{tables: [...], actions: [...]}}")
            return {}
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> StepSpec:
        kinds = [k for k in ("ingest", "model", "python", "maintain") if getattr(self, k)]
        if self.quality and not self.model:  # a model's quality is its gate; otherwise a check step
            kinds.append("quality")
        if len(kinds) != 1 or (kinds == ["quality"]) != bool(self.table):
            raise ValueError(
                "a step is exactly one of ingest, model, python, maintain, or quality with table"
            )
        return self

    @property
    def kind(self) -> str:
        for kind in ("ingest", "model", "python", "maintain"):
            if getattr(self, kind):
                return kind
        return "quality"


class PipelineDocument(_Strict):
    schedule: str | None = None
    concurrency: int = Field(default=1, ge=1, le=64)
    defaults: StepDefaults = StepDefaults()
    steps: dict[str, StepSpec]

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        """A schedule that can never be read fails when the file loads, not when it is due."""
        if value is not None:
            Cron.parse(value)  # a ConfigError is a ValueError: reported with the file and line
        return value


class Pipeline:
    """A validated pipeline: its steps in an order that respects their dependencies."""

    def __init__(self, name: str, path: Path, document: PipelineDocument) -> None:
        self.name = name
        self.path = path
        self.document = document
        self.steps = document.steps

    @property
    def schedule(self) -> str | None:
        return self.document.schedule

    def retries(self, step: str) -> RetryPolicy:
        return self.steps[step].retries or self.document.defaults.retries

    def timeout(self, step: str) -> float:
        return self.steps[step].timeout_s or self.document.defaults.timeout_s

    def memory_limit(self, step: str) -> str | None:
        return self.steps[step].memory_limit or self.document.defaults.memory_limit

    def order(self) -> list[str]:
        graph = {name: set(spec.depends_on) for name, spec in self.steps.items()}
        return list(TopologicalSorter(graph).static_order())

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), **self.document.model_dump(exclude_none=True)}


def load_pipeline(path: Path) -> Pipeline:
    """Read and validate one pipeline file.

    Raises:
        ConfigError: naming the file, the line and the problem: unknown keys or wrong values, or (a
            :class:`~lakeplane.errors.PipelineError`) a step that depends on a step that does not
            exist, or steps depending on each other in a cycle.
    """
    source = read_document(path, error=ConfigError)
    document = source.validate(PipelineDocument)
    for name, spec in document.steps.items():
        for dependency in spec.depends_on:
            if dependency not in document.steps:
                loc = ("steps", name, "depends_on")
                line = source.line(loc)
                raise PipelineError(
                    f"{path}{f':{line}' if line else ''}: step '{name}' depends on unknown step "
                    f"'{dependency}'{did_you_mean(dependency, document.steps)}",
                    file=str(path),
                    line=line,
                    key=".".join(loc),
                    step=name,
                )
    pipeline = Pipeline(path.stem, path, document)
    try:
        pipeline.order()
    except CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise PipelineError(
            f"{path}: steps depend on each other in a cycle: {cycle}", file=str(path), cycle=list(exc.args[1])
        ) from None
    return pipeline


def find_pipeline(project_dir: Path, name: str) -> Pipeline:
    """The pipeline called ``name`` in ``project_dir/pipelines/``."""
    folder = project_dir / PIPELINES_DIR
    path = folder / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        raise ConfigError(
            f"unknown pipeline '{name}'{did_you_mean(name, known)} "
            f"(in {folder}: {', '.join(known) or 'none'})",
            file=str(path),
        )
    return load_pipeline(path)


def all_pipelines(project_dir: Path) -> list[Pipeline]:
    return [load_pipeline(p) for p in sorted((project_dir / PIPELINES_DIR).glob("*.yaml"))]
