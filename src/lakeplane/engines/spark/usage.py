"""What a Spark job's executors held and used, read from the driver's status store.

For the executors that served the job: how many, their cores, the memory each holds (heap plus
overhead, what a cluster node must give it), the CPU time its tasks used (``executorCpuTime`` and
``executorDeserializeCpuTime`` of the job's stages) and the executors' lifetime within the job's
span (memory GB-seconds). The store is read through the JVM gateway, as
:mod:`lakeplane.engines.spark.metrics` does, after the listeners have caught up.

Whether these figures add to the step's is the caller's choice: executors inside the driver's JVM
(``local[N]``) or in a transient cluster the step started are processes of the step, measured as
such, so ``outside`` is true only for executors of a cluster given by its master URL.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import Any

from lakeplane.engines.spark.metrics import wait_for_listeners

#: Spark's own default of ``spark.executor.memory``.
DEFAULT_EXECUTOR_MEMORY = "1g"
#: Spark's floor and fraction of ``spark.executor.memoryOverhead`` when it is not set.
OVERHEAD_MIN_MB, OVERHEAD_FRACTION = 384, 0.10
_SIZE_POWERS = {"k": 1, "m": 2, "g": 3, "t": 4}


@dataclass(frozen=True)
class ExecutorUsage:
    """The executors of one Spark job.

    Attributes:
        count: executors that were alive during the job (the driver's own, in local mode).
        cores: their cores, summed.
        memory_mb: the memory each held (heap plus overhead), in MiB.
        cpu_seconds: CPU time of the job's tasks.
        memory_gb_seconds: each executor's memory times its lifetime within the job's span.
        outside: the executors run outside the step's processes (their figures add to the step's).
    """

    count: int
    cores: int
    memory_mb: float
    cpu_seconds: float
    memory_gb_seconds: float
    outside: bool

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def spark_mb(size: str) -> float:
    """A Spark size (``2g``, ``512m``, ``4096k``, a bare number of MiB) in MiB."""
    text = size.strip().lower().removesuffix("b")
    power = _SIZE_POWERS.get(text[-1:])
    if power is None:
        return float(text)
    return float(text[:-1]) * 1024 ** (power - 2)


def executor_memory_mb(conf: dict[str, str], local: bool) -> float:
    """What one executor holds: in local mode the driver's heap (the executor is the driver), else
    ``spark.executor.memory`` plus ``spark.executor.memoryOverhead`` (by default 10 %, at least 384 MB)."""
    if local:
        return spark_mb(conf.get("spark.driver.memory", DEFAULT_EXECUTOR_MEMORY))
    heap = spark_mb(conf.get("spark.executor.memory", DEFAULT_EXECUTOR_MEMORY))
    overhead = conf.get("spark.executor.memoryOverhead")
    return heap + (spark_mb(overhead) if overhead else max(OVERHEAD_MIN_MB, heap * OVERHEAD_FRACTION))


def overlap_s(start_ms: float, end_ms: float | None, since_ms: float, until_ms: float) -> float:
    """Seconds of ``[start_ms, end_ms]`` (an open end: still alive) within ``[since_ms, until_ms]``."""
    end = until_ms if end_ms is None else min(end_ms, until_ms)
    return max(end - max(start_ms, since_ms), 0.0) / 1000


def executor_usage(spark: Any, first_stage: int, since_ms: float, outside: bool) -> ExecutorUsage:
    """The executors of the job that ran stages ``first_stage`` on, since ``since_ms`` (epoch ms).

    Returns zeros when the driver's store cannot be read (a remote or stopped driver).
    """
    from py4j.protocol import Py4JError

    until_ms = time.time() * 1000
    wait_for_listeners(spark)
    context = spark.sparkContext
    local = str(context.master).startswith("local")
    conf = {str(k): str(v) for k, v in context.getConf().getAll()}
    memory_mb = executor_memory_mb(conf, local)
    try:
        jvm = context._jvm
        store = context._jsc.sc().statusStore()
        listed = jvm.scala.jdk.javaapi.CollectionConverters.asJava(store.executorList(False))
        count = cores = 0
        gb_seconds = 0.0
        for executor in listed:
            if not local and str(executor.id()) == "driver":  # it runs no tasks off local mode
                continue
            removed = executor.removeTime()
            end = float(removed.get().getTime()) if removed.isDefined() else None
            held = overlap_s(float(executor.addTime().getTime()), end, since_ms, until_ms)
            if not held:
                continue
            count += 1
            cores += int(executor.totalCores())
            gb_seconds += memory_mb / 1024 * held
        cpu_ns = 0
        stages = store.stageList(
            jvm.java.util.ArrayList(),
            False,
            False,
            context._gateway.new_array(jvm.double, 0),
            jvm.java.util.Collections.emptyList(),
        )
        for stage in jvm.scala.jdk.javaapi.CollectionConverters.asJava(stages):
            if int(stage.stageId()) >= first_stage:
                cpu_ns += int(stage.executorCpuTime()) + int(stage.executorDeserializeCpuTime())
    except Py4JError:
        return ExecutorUsage(0, 0, memory_mb, 0.0, 0.0, outside)
    return ExecutorUsage(count, cores, memory_mb, cpu_ns / 1e9, gb_seconds, outside)


def local_cores(master: str) -> int:
    """The cores of a ``local``, ``local[N]`` or ``local[*]`` master (``local[N,F]`` too)."""
    if not master.startswith("local["):
        return 1
    threads = master[len("local[") :].split("]")[0].split(",")[0].strip()
    return (os.cpu_count() or 1) if threads == "*" else int(threads)


def job_usage(spark: Any, first_stage: int, since_ms: float, transient: bool) -> dict[str, Any]:
    """A Spark job's step metrics: the ``cores`` it held and its ``spark_executors``.

    In local mode the cores are ``local[N]``'s; on a cluster, the executors' and the driver's
    (``spark.driver.cores``). ``transient``: the cluster was started by the step (its executors are
    processes of the step, not to be added again).
    """
    master = str(spark.sparkContext.master)
    local = master.startswith("local")
    executors = executor_usage(spark, first_stage, since_ms, outside=not (local or transient))
    if local:
        cores = local_cores(master)
    else:
        cores = executors.cores + int(spark.sparkContext.getConf().get("spark.driver.cores", "1"))
    return {"cores": cores, "spark_executors": executors.to_dict()}
