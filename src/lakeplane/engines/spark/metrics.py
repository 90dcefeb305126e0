"""Per-stage task-time skew of a Spark job, from the driver's monitoring REST API.

For each completed stage: the median and the maximum task run time (``executorRunTime``). A stage
whose slowest task took many times its median is skewed: one task got a hot key's rows.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class StageSkew:
    """One completed stage: its tasks and their run-time spread."""

    stage_id: int
    name: str
    tasks: int
    median_task_ms: float
    max_task_ms: float

    @property
    def skew(self) -> float:
        """Slowest task over the median one (1.0 means even)."""
        return round(self.max_task_ms / self.median_task_ms, 2) if self.median_task_ms else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "skew": self.skew}


def stage_skew(spark: Any, first_stage: int = 0) -> list[StageSkew]:
    """The completed stages numbered ``first_stage`` or later, oldest first ([] without a UI)."""
    context = spark.sparkContext
    base = context.uiWebUrl
    if not base:
        return []
    root = f"{base.rstrip('/')}/api/v1/applications/{context.applicationId}"
    stages = _get(f"{root}/stages?status=complete") or []
    found = []
    for stage in sorted(stages, key=lambda s: s["stageId"]):
        if stage["stageId"] < first_stage or not stage.get("numCompleteTasks"):
            continue
        summary = _get(f"{root}/stages/{stage['stageId']}/{stage['attemptId']}/taskSummary"
                       "?quantiles=0.5,1.0") or {}
        median, most = (summary.get("executorRunTime") or [0.0, 0.0])[:2]
        found.append(StageSkew(stage["stageId"], str(stage.get("name", ""))[:80],
                               int(stage["numCompleteTasks"]), float(median), float(most)))
    return found


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return json.load(reply)
    except (OSError, ValueError):
        return None
