"""Per-stage task-time skew of a Spark job, read from the driver's status store.

For each completed stage: the median and the maximum task run time (``executorRunTime``), and the
bytes its tasks spilled to disk. A stage whose slowest task took many times its median is skewed:
one task got a hot key's rows.

The numbers come from the status store that the driver's monitoring REST API serves, read through
the JVM gateway rather than over HTTP: the REST API's first answer in a driver takes seconds (its web
service starts on first use: 5 s on an idle machine here, 14 s with both cores busy), which made the
metrics depend on the machine's load. A listener fills the store from the scheduler's events on a
queue of its own, so right after an action returns its last tasks may not be in the store yet; Spark
posts every event of a job before the action returns, and :func:`wait_for_listeners` waits until the
queue is empty, so the store then holds every job run so far, whatever the load. A Spark whose store
has other method signatures is asked through the REST API instead.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any

#: The most to wait for the driver's listeners to catch up (they take milliseconds when idle).
LISTENER_WAIT_S = 60.0
#: The REST API's first answer in a driver starts its web service: seconds, more on a busy machine.
REST_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class StageSkew:
    """One completed stage: its tasks and their run-time spread."""

    stage_id: int
    name: str
    tasks: int
    median_task_ms: float
    max_task_ms: float
    #: Bytes the stage's tasks spilled to disk (Spark's ``diskBytesSpilled``).
    spilled_bytes: int = 0

    @property
    def skew(self) -> float:
        """Slowest task over the median one (1.0 means even)."""
        return round(self.max_task_ms / self.median_task_ms, 2) if self.median_task_ms else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "skew": self.skew}


def wait_for_listeners(spark: Any, timeout_s: float = LISTENER_WAIT_S) -> bool:
    """Wait until the driver's listeners have handled every event posted so far.

    Returns:
        False when they had not after ``timeout_s`` seconds, or the driver offers no such wait.
    """
    from py4j.protocol import Py4JError

    try:
        # LiveListenerBus is private to Spark's Scala packages but public in the JVM, and it is
        # what Spark's own tests wait on before they read the status store.
        spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty(int(timeout_s * 1000))
    except (Py4JError, AttributeError):  # a TimeoutException, a stopped or remote driver
        return False
    return True


def stage_skew(spark: Any, first_stage: int = 0) -> list[StageSkew]:
    """The completed stages numbered ``first_stage`` or later, oldest first.

    Call it after the job's actions returned: it waits for their events to reach the status store.
    """
    from py4j.protocol import Py4JError

    wait_for_listeners(spark)
    try:
        stages = _from_status_store(spark)
    except Py4JError:  # a Spark version whose store methods differ: its REST API is stable
        stages = _from_rest_api(spark)
    return sorted((s for s in stages if s.stage_id >= first_stage and s.tasks), key=lambda s: s.stage_id)


def _from_status_store(spark: Any) -> list[StageSkew]:
    context = spark.sparkContext
    jvm, gateway = context._jvm, context._gateway
    store = context._jsc.sc().statusStore()
    statuses = jvm.java.util.ArrayList()
    statuses.add(jvm.org.apache.spark.status.api.v1.StageStatus.COMPLETE)
    # stageList(statuses, details, withSummaries, unsortedQuantiles, taskStatus): Scala defaults
    # cannot be left out through the gateway.
    listed = store.stageList(
        statuses, False, False, gateway.new_array(jvm.double, 0), jvm.java.util.Collections.emptyList()
    )
    quantiles = gateway.new_array(jvm.double, 2)
    quantiles[0], quantiles[1] = 0.5, 1.0
    found = []
    for stage in jvm.scala.jdk.javaapi.CollectionConverters.asJava(listed):
        summary = store.taskSummary(stage.stageId(), stage.attemptId(), quantiles)
        run_time = summary.get().executorRunTime() if summary.isDefined() else None
        median, most = (float(run_time.apply(0)), float(run_time.apply(1))) if run_time else (0.0, 0.0)
        found.append(
            StageSkew(
                int(stage.stageId()),
                str(stage.name())[:80],
                int(stage.numCompleteTasks()),
                median,
                most,
                int(stage.diskBytesSpilled()),
            )
        )
    return found


def _from_rest_api(spark: Any) -> list[StageSkew]:
    context = spark.sparkContext
    base = context.uiWebUrl
    if not base:  # no UI, no REST API
        return []
    root = f"{base.rstrip('/')}/api/v1/applications/{context.applicationId}"
    found = []
    for stage in _get(f"{root}/stages?status=complete") or []:
        if not stage.get("numCompleteTasks"):
            continue
        summary = (
            _get(f"{root}/stages/{stage['stageId']}/{stage['attemptId']}/taskSummary?quantiles=0.5,1.0") or {}
        )
        median, most = (summary.get("executorRunTime") or [0.0, 0.0])[:2]
        found.append(
            StageSkew(
                stage["stageId"],
                str(stage.get("name", ""))[:80],
                int(stage["numCompleteTasks"]),
                float(median),
                float(most),
                int(stage.get("diskBytesSpilled") or 0),
            )
        )
    return found


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=REST_TIMEOUT_S) as reply:
            return json.load(reply)
    except (OSError, ValueError):
        return None
