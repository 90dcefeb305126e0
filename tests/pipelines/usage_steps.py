"""Python steps for the usage tests, imported by the step processes (``tests.pipelines.usage_steps:NAME``).

Each starts a child process that ends before the step does, so what the child used is measured
only if the step's figures keep the members of its tree that ended.
"""

from __future__ import annotations

import datetime as dt
import resource
import subprocess
import sys
import time
from typing import Any

from lakeplane.pipelines.steps import model_metrics

#: CPU seconds the burning child uses; MB the holding child keeps resident, and for how long.
BURN_S, HOLD_MB, HOLD_S = 2.0, 300, 2.0
#: How long each step goes on after its child ended.
AFTER_S = 0.5

_BURN = f"""
import time
while time.process_time() < {BURN_S}:
    pass
"""
_HOLD = f"""
import time
block = bytearray({HOLD_MB} << 20)
block[::4096] = b"x" * len(block[::4096])
time.sleep({HOLD_S})
"""


def burn_in_child(lake: Any, ds: dt.date) -> dict[str, Any]:
    subprocess.run([sys.executable, "-c", _BURN], check=True)
    time.sleep(AFTER_S)
    return {"rows_out": 0}


def hold_in_child(lake: Any, ds: dt.date) -> dict[str, Any]:
    subprocess.run([sys.executable, "-c", _HOLD], check=True)
    time.sleep(AFTER_S)
    return {}


def hold_nothing(lake: Any, ds: dt.date) -> dict[str, Any]:
    """As :func:`hold_in_child`, with a child that holds nothing: the baseline to compare with."""
    subprocess.run([sys.executable, "-c", f"import time; time.sleep({HOLD_S})"], check=True)
    time.sleep(AFTER_S)
    return {}


def sleep_long(lake: Any, ds: dt.date) -> None:
    subprocess.run([sys.executable, "-c", "import time; time.sleep(60)"], check=True)


def model_on_this_engine(lake: Any, ds: dt.date) -> dict[str, Any]:
    """The daily stats model, with the CPU time of this (the step's Python) process alone."""
    metrics = model_metrics(lake.run_model(lake.model("curated.daily_campaign_stats"), ds))
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {**metrics, "python_cpu_seconds": own.ru_utime + own.ru_stime}
