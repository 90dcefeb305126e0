"""``placement:`` and ``cost:`` in ``lakeplane.yaml``: where jobs run, and what compute costs."""

from __future__ import annotations

from pydantic import Field, field_validator

from lakeplane.config_base import Strict, optional_duration


class PlacementConfig(Strict):
    """``engine.type: auto``: the input size (catalog file statistics) above which a job moves, and,
    with ``by_cost``, the deadline and budget the advisor places a job by."""

    spark_above: str = "8GB"
    cluster_above: str = "64GB"
    by_cost: bool = False
    #: A job must finish within this many seconds (``2h`` is written as such); None: no deadline.
    deadline: float | None = Field(default=None, gt=0)
    #: The most one run may cost, in US dollars; None: no budget.
    budget: float | None = Field(default=None, ge=0)

    _duration = field_validator("deadline", mode="before")(lambda cls, v: optional_duration(v))


class HereConfig(Strict):
    """What an hour of this machine costs: a price, or the EC2 instance type it stands for. Neither
    given: the on-demand price of the cheapest instance in the price table with at least this
    machine's cores and memory."""

    per_hour: float | None = Field(default=None, ge=0)
    instance: str | None = None


class CostConfig(Strict):
    """The price table costs are computed from: the shipped one, or ``prices`` (a path relative to
    the project folder), for ``region``."""

    prices: str | None = None
    region: str = "us-east-1"
    here: HereConfig = HereConfig()
