"""Apache Spark as lakeplane's distributed engine: ``local[N]``, a transient cluster, or a master URL.

Spark never touches the catalog. It reads the data files pyiceberg planned for a query (partition
pruning done, the residual filter re-applied by the query itself, columns bound by field id) and
writes Parquet that :class:`~lakeplane.catalog.writer.TableWriter` commits in one Iceberg commit, so
the Iceberg Spark runtime jar is not needed. Files are written with micro-second timestamps
(``TIMESTAMP_MICROS``; Iceberg ``timestamp`` is Spark's ``TIMESTAMP_NTZ``), carry each column's
Iceberg field id (from its ``parquet.field.id`` metadata) and keep their partition columns inside.
Spark writes every column as optional: its file sources read all columns as nullable.

On an S3 lake, a driver with an S3 connector (EMRFS, or ``hadoop-aws`` through ``spark.jars``) reads
the planned files by URI and writes to the table's location; without one, Spark reads a local copy
of the planned files and its output is uploaded (:mod:`lakeplane.engines.spark.s3`). The session's
:attr:`SparkJobSession.io` says which.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pyspark  # noqa: F401 - the 'spark' extra: without it the registry names the extra to install

from lakeplane.config import S3Options, SparkConfig
from lakeplane.engines.base import Capability, Engine, EngineSession, JobSpec, ScanSource, WrittenFiles
from lakeplane.engines.binding import FOOTERS, bind_files, schema_field_ids
from lakeplane.engines.spark import runtime, s3
from lakeplane.engines.spark.cluster import TransientCluster
from lakeplane.engines.spark.metrics import StageSkew, stage_skew, wait_for_listeners
from lakeplane.engines.spark.usage import job_usage
from lakeplane.errors import EngineError
from lakeplane.storage import LakeStorage
from lakeplane.units import parse_size

#: Adaptive execution settings every job gets (``spark.conf`` in lakeplane.yaml overrides them).
ADAPTIVE = {
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.sql.adaptive.skewJoin.enabled": "true",
    "spark.sql.adaptive.skewJoin.skewedPartitionFactor": "3",
    "spark.sql.adaptive.skewJoin.skewedPartitionThresholdInBytes": "32MB",
    "spark.sql.adaptive.advisoryPartitionSizeInBytes": "32MB",
}


class SparkEngine(Engine[SparkConfig]):
    """Spark SQL, with the master from the ``spark`` section of lakeplane.yaml."""

    name = "spark"
    dialect = "spark"
    capabilities = frozenset(
        {Capability.SPILL, Capability.STAGE, Capability.SANDBOX, Capability.STAGE_METRICS, Capability.SHUFFLE}
    )

    def session(self, job: JobSpec) -> SparkJobSession:
        return SparkJobSession(self.storage, job, self.config)

    def shape(self) -> str:
        """How this engine runs jobs, as ``lakeplane run`` reports it."""
        master = str(self.config.master)
        if master == "spark-cluster":
            return (
                f"spark-cluster ({self.config.workers} workers x {self.config.worker_cores} "
                f"cores, {self.config.worker_memory})"
            )
        return master


#: What a driver JVM uses beyond its heap (metaspace, code cache, threads, direct buffers), in bytes.
JVM_NON_HEAP = 512 * 1024 * 1024


def driver_heap(memory_limit: str) -> str:
    """The driver's heap for a job limited to ``memory_limit``: the limit covers the step's whole
    process tree, so the JVM's heap leaves room for its non-heap memory (never below 512 MB)."""
    return f"{max(parse_size(memory_limit) - JVM_NON_HEAP, 512 * 1024 * 1024) // 1024}k"


def job_conf(
    config: SparkConfig, job: JobSpec, master: str, lake_s3: S3Options | None = None
) -> dict[str, str]:
    """Every Spark setting of a job: lakeplane's defaults (with the S3 connector's settings for a
    lake on S3, ``lake_s3``), then the user's ``spark.conf``."""
    options = runtime.java_options()
    conf = {
        "spark.master": master,
        "spark.app.name": "lakeplane",
        "spark.driver.memory": driver_heap(job.memory_limit),
        "spark.local.dir": str(job.temp_dir / "spark"),
        "spark.sql.warehouse.dir": str(job.temp_dir / "spark-warehouse"),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(config.shuffle_partitions),
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.parquet.fieldId.write.enabled": "true",
        "spark.sql.parquet.fieldId.read.enabled": "true",  # a read schema's ids bind file columns
        "spark.sql.parquet.compression.codec": "zstd",
        "spark.sql.runSQLOnFiles": "false",
        "spark.sql.variable.substitute": "false",  # ${env:...} in SQL text would read the environment
        "spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
        "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
        "spark.ui.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": options,
        "spark.executor.extraJavaOptions": options,
        **ADAPTIVE,
    }
    if master.startswith("local") or master.startswith("spark://127.0.0.1"):
        conf["spark.driver.host"] = conf["spark.driver.bindAddress"] = "127.0.0.1"
    if master.startswith("spark://"):
        conf["spark.executor.memory"] = config.executor_memory or config.worker_memory
        conf["spark.executor.cores"] = str(config.worker_cores)
    if lake_s3 is not None:
        conf.update(s3.connector_conf(lake_s3))
    conf.update(
        {
            name: str(value).lower() if isinstance(value, bool) else str(value)
            for name, value in config.conf.items()
        }
    )
    return conf


class SparkJobSession(EngineSession):
    """One job on Spark: temp views for its scans, dropped when it closes."""

    dialect = "spark"

    def __init__(self, storage: LakeStorage, job: JobSpec, config: SparkConfig) -> None:
        self.storage = storage
        self.job = job
        self.config = config
        self.work_dir = job.temp_dir / f"{job.name}-{uuid.uuid4().hex[:8]}"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.cluster: TransientCluster | None = None
        self._views: list[str] = []
        self._opened_ms = time.time() * 1000  # executors count from here (a driver may outlive jobs)
        #: How Spark reaches the lake's files: :data:`~lakeplane.engines.spark.s3.DIRECT` or
        #: :data:`~lakeplane.engines.spark.s3.LOCAL_COPY` (an S3 lake without a connector).
        self.io = s3.DIRECT
        #: The scheme Spark opens an S3 lake's files by (``s3`` or ``s3a``); ``None`` copies them.
        self.s3_scheme: str | None = None
        master = str(config.master)
        if master == "spark-cluster":
            self.cluster = TransientCluster(
                config.workers,
                config.worker_cores,
                config.worker_memory,
                self.work_dir / "cluster",
                config.start_timeout_s,
            )
            master = self.cluster.launch()  # the driver starts while the workers come up
        try:
            lake_s3 = None if storage.is_local else storage.s3 or S3Options()
            self.spark = runtime.driver(job_conf(config, job, master, lake_s3))
            if lake_s3 is not None:
                self.s3_scheme = s3.connector_scheme(self.spark)
                if self.s3_scheme == "s3a":
                    s3.use_default_credentials(self.spark, lake_s3)
                self.io = s3.DIRECT if self.s3_scheme else s3.LOCAL_COPY
            if self.cluster is not None:
                self.cluster.wait_alive()
        except BaseException:
            self.close()
            raise
        self._first_stage = self._next_stage_id()

    # -- reading -------------------------------------------------------------------------
    def register_scan(self, alias: str, source: ScanSource) -> None:
        """A temp view binding each file's columns by field id (:mod:`lakeplane.engines.binding`).

        Files that carry field ids are read in one scan whose schema gives each column its id
        (``parquet.field.id``, read by id under ``spark.sql.parquet.fieldId.read.enabled``); files
        without ids are read per group under their own column names, then renamed and cast.
        """
        from pyspark.sql import DataFrame
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_schema
        from pyspark.sql.types import StructField, StructType

        schema = from_arrow_schema(source.schema)
        if not source.files:
            frame = self.spark.createDataFrame([], schema)
            frame.createOrReplaceTempView(alias)
            self._views.append(alias)
            return
        local = dict(zip(source.files, self._readable(source.files), strict=True))
        FOOTERS.prefetch(self.storage, source.files)
        groups = bind_files(source, lambda uri: FOOTERS.schema(self.storage, uri))
        frames: list[DataFrame] = []
        by_id = [local[f] for group in groups if group.by_id for f in group.files]
        if by_id:
            ids = schema_field_ids(source.schema, source.table)
            with_ids = StructType(
                [
                    StructField(f.name, f.dataType, f.nullable, {"parquet.field.id": i})
                    for f, i in zip(schema.fields, ids, strict=True)
                ]
            )
            frames.append(self.spark.read.schema(with_ids).parquet(*by_id))
        for group in groups:
            if group.by_id:
                continue
            files = self.spark.read.schema(from_arrow_schema(group.physical_schema()))
            columns = []
            for column, kind in zip(group.columns, schema.fields, strict=True):
                if column.source is None:
                    value = F.lit(None).cast(kind.dataType)
                elif column.promoted:
                    value = F.col(self.quote(column.source)).cast(kind.dataType)
                else:
                    value = F.col(self.quote(column.source))
                columns.append(value.alias(column.name))
            frames.append(files.parquet(*[local[f] for f in group.files]).select(*columns))
        frame = frames[0]
        for more in frames[1:]:
            frame = frame.union(more)
        frame.createOrReplaceTempView(alias)
        self._views.append(alias)

    def _readable(self, files: list[str]) -> list[str]:
        """Paths Spark can open: the lake's own, an S3 lake's URIs under the connector's scheme, or
        local copies of an S3 lake's files (no connector)."""
        if self.storage.is_local:
            return [self.storage.fs_path(f) for f in files]
        if self.s3_scheme:
            return [s3.spark_uri(f, self.s3_scheme) for f in files]
        copies = []
        folder = self.work_dir / "in" / uuid.uuid4().hex  # one per scan: Spark reads them lazily
        for number, uri in enumerate(files):
            local = folder / f"{number:06d}.parquet"
            local.parent.mkdir(parents=True, exist_ok=True)
            self.storage.get_file(uri, local)
            copies.append(str(local))
        return copies

    def sandbox(self) -> None:
        """Queries reach only registered tables: no SQL on files (``spark.sql.runSQLOnFiles``) and no
        ``${...}`` substitution of settings or environment variables (``spark.sql.variable.substitute``)."""
        for setting in ("spark.sql.runSQLOnFiles", "spark.sql.variable.substitute"):
            if self.spark.conf.get(setting) != "false":
                raise EngineError(f"{setting} must stay false for governed queries")

    def arrow_reader(self, sql: str) -> pa.RecordBatchReader:
        table = self._run(lambda: self.spark.sql(sql).toArrow(), sql)
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())

    def result_schema(self, sql: str) -> pa.Schema:
        from pyspark.sql.pandas.types import to_arrow_schema

        return to_arrow_schema(self._run(lambda: self.spark.sql(sql).schema, sql))

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        return self._run(lambda: [tuple(row) for row in self.spark.sql(sql).collect()], sql)

    def stage(self, name: str, sql: str) -> None:
        """Compute ``sql`` once and keep it as ``name`` for the rest of the job."""

        def cache() -> None:
            frame = self.spark.sql(sql).cache()
            frame.count()
            frame.createOrReplaceTempView(name)

        self._run(cache, sql)
        self._views.append(name)

    def quote(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    # -- writing -------------------------------------------------------------------------
    def write_parquet(
        self, sql: str, target_dir: str, partition_by: list[str], field_ids: Mapping[str, int]
    ) -> WrittenFiles:
        from pyspark.sql import functions as F

        direct = not self.storage.is_local and self.s3_scheme is not None
        local_dir = (
            Path(self.storage.path(target_dir))
            if self.storage.is_local
            else self.work_dir / "out" / uuid.uuid4().hex
        )
        if direct:
            output = s3.spark_uri(self.storage.uri(target_dir), str(self.s3_scheme))
        else:
            local_dir.parent.mkdir(parents=True, exist_ok=True)
            output = str(local_dir)
        # Spark's partitionBy moves partition columns out of the files: write copies of them as the
        # folder keys instead and keep the originals inside, then name the folders as Iceberg does.
        staged = {column: f"__lakeplane_part_{i}" for i, column in enumerate(partition_by)}

        def write() -> None:
            frame = self.spark.sql(sql)
            if field_ids:  # written as PARQUET:field_id (spark.sql.parquet.fieldId.write.enabled)
                frame = frame.select(
                    *[
                        F.col(self.quote(c)).alias(c, metadata={"parquet.field.id": field_ids[c]})
                        if c in field_ids
                        else F.col(self.quote(c))
                        for c in frame.columns
                    ]
                )
            if staged:
                frame = frame.select("*", *[F.col(f"`{c}`").alias(a) for c, a in staged.items()])
                frame.write.partitionBy(*staged.values()).parquet(output)
            else:
                frame.write.parquet(output)

        self._run(write, sql)
        if direct:
            renames = {f"{alias}=": f"{column}=" for column, alias in staged.items()}
            return s3.collect_written(self.storage, target_dir, renames)
        return self._collect_written(local_dir, target_dir, staged)

    def _collect_written(self, local_dir: Path, target_dir: str, staged: dict[str, str]) -> WrittenFiles:
        written = WrittenFiles()
        if not local_dir.exists():
            return written
        renames = {f"{alias}=": f"{column}=" for column, alias in staged.items()}
        for path in sorted(local_dir.rglob("*.parquet")):
            rows = pq.read_metadata(path).num_rows
            if rows == 0:  # Spark writes an empty file for an empty result: commit nothing
                path.unlink()
                continue
            relative = path.relative_to(local_dir).as_posix()
            for old, new in renames.items():
                relative = relative.replace(old, new)
            final = local_dir / relative
            if final != path:
                final.parent.mkdir(parents=True, exist_ok=True)
                path.rename(final)
            written.rows += rows
            written.bytes += final.stat().st_size
            if not self.storage.is_local:
                self.storage.put_file(final, f"{target_dir}/{relative}", move=True)
            written.paths.append(f"{target_dir}/{relative}")
        return written

    # -- metrics and lifetime ------------------------------------------------------------
    def stage_skew(self) -> list[StageSkew]:
        """Task-time skew (max / median) of each stage this job ran so far."""
        return stage_skew(self.spark, self._first_stage)

    def usage(self) -> dict[str, Any]:
        """Cores the job held and what its executors used (:mod:`lakeplane.engines.spark.usage`)."""
        return job_usage(self.spark, self._first_stage, self._opened_ms, transient=self.cluster is not None)

    def _next_stage_id(self) -> int:
        """The id the next stage will get: one past the stages of the jobs this driver ran before."""
        wait_for_listeners(self.spark)  # the tracker reads the status store, which may lag
        tracker = self.spark.sparkContext.statusTracker()
        ids = [
            s
            for j in tracker.getJobIdsForGroup(None) or []
            for s in (tracker.getJobInfo(j).stageIds if tracker.getJobInfo(j) else [])
        ]
        return max(ids, default=-1) + 1

    def _run(self, action: Any, sql: str) -> Any:
        from py4j.protocol import Py4JError
        from pyspark.errors import PySparkException

        try:
            return action()
        except (PySparkException, Py4JError) as exc:
            raise EngineError(
                f"job '{self.job.name}' on Spark: {_first_line(exc)}", sql=sql, retryable=_lost_compute(exc)
            ) from None

    def close(self) -> None:
        try:
            spark = getattr(self, "spark", None)
            if spark is not None:
                for view in self._views:
                    spark.catalog.dropTempView(view)
                spark.catalog.clearCache()
                if self.cluster is not None:  # the driver belongs to this job's cluster
                    runtime.stop_driver()
        except Exception:
            runtime.stop_driver()
        finally:
            if self.cluster is not None:
                self.cluster.stop()
            shutil.rmtree(self.work_dir, ignore_errors=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        if line.strip() and not line.startswith("JVM stacktrace"):
            return line.strip()[:2000]
    return type(exc).__name__


def _lost_compute(exc: BaseException) -> bool:
    """Whether Spark failed because compute went away (worth a retry), not because of the query."""
    text = str(exc)
    return any(
        mark in text
        for mark in (
            "ExecutorLostFailure",
            "SparkContext was shut down",
            "FetchFailed",
            "Connection refused",
            "Py4JNetworkError",
        )
    )
