"""The price table a lake's ``cost:`` section names, and what an hour of this machine costs."""

from __future__ import annotations

import os
from pathlib import Path

from lakeplane.compute.prices import HerePrice, PriceTable, here_price, load_prices
from lakeplane.config_compute import CostConfig


def machine_cores() -> int:
    return os.cpu_count() or 1


def machine_memory_gb() -> float:
    """This machine's memory in GB (0 when the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError, AttributeError):
        return 0.0


def lake_prices(cost: CostConfig, project_dir: Path | None) -> PriceTable:
    """The price table of ``cost.prices`` (relative to ``project_dir``), or the shipped one, for
    ``cost.region``.

    Raises:
        ConfigError: the file or the region is not there, or the file is malformed.
    """
    path = None
    if cost.prices:
        path = Path(cost.prices)
        if not path.is_absolute() and project_dir is not None:
            path = project_dir / path
    return load_prices(path, cost.region)


def this_machine(cost: CostConfig, prices: PriceTable) -> HerePrice:
    """What an hour of this machine costs (``cost.here``, or the table's instance like it)."""
    return here_price(cost.here, prices, machine_cores(), machine_memory_gb())
