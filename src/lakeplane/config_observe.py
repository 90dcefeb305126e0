"""``slos:`` and ``alerts:`` in ``lakeplane.yaml``: service level objectives of pipelines and tables,
and where breaches and failed runs are announced.

.. code-block:: yaml

    slos:
      stats_fresh: {kind: freshness, table: curated.daily_campaign_stats, objective: 26h}
      nightly_cost: {kind: cost_per_day, pipeline: nightly, objective: 0.50, window: 30d}
      nightly_dq: {kind: dq_pass_rate, pipeline: nightly, objective: 0.95}
      nightly_retries: {kind: retry_rate, pipeline: nightly, objective: 0.10}
      nightly_lost: {kind: worker_loss_rate, pipeline: nightly, objective: 0.02}
    alerts:
      urls: ["json://hooks.example.com/lakeplane", "slack://T000/B000/XXXX"]
      console_url: http://127.0.0.1:8700
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from lakeplane.config_base import Strict, optional_duration
from lakeplane.units import parse_duration

SloKind = Literal["freshness", "cost_per_day", "dq_pass_rate", "retry_rate", "worker_loss_rate"]

#: Kinds whose objective is the most a rate may be (the rest of the rates: the least).
MAX_RATE_KINDS = ("retry_rate", "worker_loss_rate")


class SloConfig(Strict):
    """One SLO of a pipeline or a table (exactly one of ``pipeline`` and ``table``).

    ``objective`` is, by ``kind``: ``freshness`` the longest lag allowed (``26h``); ``cost_per_day``
    the most US dollars a day; ``dq_pass_rate`` the least share of quality gates that pass;
    ``retry_rate`` and ``worker_loss_rate`` the most share of steps retried, of attempts lost.
    ``target`` (freshness only) is the share of the window the lag must stay within the objective.
    ``window`` is the period the objective is judged over and the error budget spent in;
    ``burn_window`` the recent period the burn rate is measured over.
    """

    kind: SloKind
    pipeline: str | None = None
    table: str | None = None
    objective: float
    target: float = Field(default=0.99, gt=0, lt=1)
    window: float = Field(default=30 * 86400, gt=0)
    burn_window: float = Field(default=86400, gt=0)

    _durations = field_validator("window", "burn_window", mode="before")(lambda cls, v: optional_duration(v))

    @field_validator("objective", mode="before")
    @classmethod
    def _objective_value(cls, value: object) -> object:
        # A freshness objective is a duration; a number stays what it is for the other kinds.
        return parse_duration(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_target_and_a_budget(self) -> SloConfig:
        if (self.pipeline is None) == (self.table is None):
            raise ValueError("give exactly one of pipeline and table")
        if self.kind == "cost_per_day" and self.table is not None:
            raise ValueError("cost_per_day is an SLO of a pipeline (its runs are what is priced)")
        if self.kind in (*MAX_RATE_KINDS, "dq_pass_rate") and not 0 < self.objective < 1:
            raise ValueError(f"a {self.kind} objective is a share between 0 and 1, both excluded")
        if self.kind in ("freshness", "cost_per_day") and self.objective <= 0:
            raise ValueError(f"a {self.kind} objective must be above 0")
        if self.burn_window > self.window:
            raise ValueError("burn_window must not be longer than window")
        return self

    @property
    def target_name(self) -> str:
        """The pipeline or table the SLO is of, as written."""
        return self.pipeline or self.table or ""


class AlertsConfig(Strict):
    """Where alerts go: apprise URLs (``json://``, ``form://``, ``slack://``, ``mailto://``, ...)
    and the console's base URL, for the link to the run in each alert."""

    urls: list[str] = Field(default_factory=list)
    console_url: str = "http://127.0.0.1:8700"
    on_failed_run: bool = True
    on_breach: bool = True
    #: Seconds an alert may take to deliver before it is given up (logged, never failing the run).
    timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("console_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")
