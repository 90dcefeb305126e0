"""Spark over an S3 lake: the planned files read by their URIs, the output written to the table's
location, when the driver has an S3 connector.

Two connectors serve S3 to Spark. On EMR, EMRFS serves ``s3://`` itself (``fs.s3.impl`` is set),
so the catalog's URIs are read as they are. Elsewhere ``hadoop-aws``'s ``S3AFileSystem`` serves
``s3a://``, configured here from ``storage.s3`` (endpoint, region, keys, path-style) through
``spark.hadoop.fs.s3a.*``; the URIs are rewritten to ``s3a://`` for Spark and committed under their
``s3://`` names. Without either, the session copies the planned files to the driver's disk and
uploads its output (:data:`LOCAL_COPY`), which only works while executors share that disk.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lakeplane.config import S3Options
from lakeplane.engines.base import WrittenFiles
from lakeplane.storage import LakeStorage

#: The class of ``hadoop-aws`` that serves ``s3a://``.
CONNECTOR = "org.apache.hadoop.fs.s3a.S3AFileSystem"
#: Spark reads and writes the lake's objects itself (a local lake's files count as direct too).
DIRECT = "direct"
#: Spark reads copies on the driver's disk and its output is uploaded from there.
LOCAL_COPY = "local-copy"

#: Hadoop 3.4 and later give these as durations ("60s"), which hadoop-aws 3.3 parses as plain numbers
#: and fails on; plain numbers in the units both read (seconds or milliseconds) keep the defaults.
DURATIONS = {
    "fs.s3a.threads.keepalivetime": "60",  # seconds
    "fs.s3a.connection.timeout": "200000",  # milliseconds
    "fs.s3a.connection.establish.timeout": "30000",  # milliseconds
    "fs.s3a.connection.ttl": "300000",  # milliseconds
    "fs.s3a.multipart.purge.age": "86400",  # seconds
}
#: The credentials chain of the AWS SDK v2 (hadoop-aws 3.4+) and of v1 (hadoop-aws 3.3).
SDK_V2_CHAIN = "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider"
SDK_V1_CHAIN = "com.amazonaws.auth.DefaultAWSCredentialsProviderChain"
PROVIDER = "fs.s3a.aws.credentials.provider"
_SCHEME = re.compile(r"^s3[an]?://")


def connector_conf(options: S3Options) -> dict[str, str]:
    """The ``spark.hadoop.fs.s3a.*`` settings that reach the lake's endpoint as ``storage.s3`` says."""
    conf = {
        "fs.s3a.endpoint.region": options.region,
        "fs.s3a.path.style.access": str(options.path_style).lower(),
        # Upload blocks are buffered off-heap: the disk buffer needs Hadoop's checksummed local
        # filesystem, which lakeplane replaces by the raw one (fs.file.impl).
        "fs.s3a.fast.upload.buffer": "bytebuffer",
        **DURATIONS,
    }
    if options.endpoint:
        conf["fs.s3a.endpoint"] = options.endpoint
        conf["fs.s3a.connection.ssl.enabled"] = str(not options.endpoint.startswith("http://")).lower()
    if options.access_key_id:
        conf["fs.s3a.access.key"] = options.access_key_id
        conf["fs.s3a.secret.key"] = options.secret_access_key or ""
        conf[PROVIDER] = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
    return {f"spark.hadoop.{name}": value for name, value in conf.items()}


def connector_scheme(spark: Any) -> str | None:
    """The scheme by which this driver's Spark reaches S3: ``s3`` where ``fs.s3.impl`` serves it
    (EMRFS on EMR), ``s3a`` where :data:`CONNECTOR` loads, else ``None`` (no connector)."""
    if spark.sparkContext._jsc.hadoopConfiguration().get("fs.s3.impl"):
        return "s3"
    return "s3a" if loads(spark, CONNECTOR) else None


def loads(spark: Any, class_name: str) -> bool:
    """Whether ``class_name`` loads in the driver JVM (with the jars of ``spark.jars``)."""
    from py4j.protocol import Py4JError

    jvm = spark.sparkContext._jvm
    try:
        jvm.java.lang.Class.forName(
            class_name, False, jvm.java.lang.Thread.currentThread().getContextClassLoader()
        )
    except Py4JError:
        return False
    return True


def default_provider(options: S3Options, configured: bool, loads: Callable[[str], bool]) -> str | None:
    """The credentials provider to set when ``storage.s3`` has no keys: Hadoop 3.4+'s default names
    SDK v2 classes, which a hadoop-aws 3.3 (SDK v1) cannot load, so it gets the v1 chain instead.
    ``None`` when keys are given, the user set one (``configured``), or the default loads."""
    if options.access_key_id or configured or loads(SDK_V2_CHAIN):
        return None
    return SDK_V1_CHAIN if loads(SDK_V1_CHAIN) else None


def use_default_credentials(spark: Any, options: S3Options) -> None:
    """Set :func:`default_provider`'s choice on the driver's Hadoop settings, which jobs ship to
    their executors."""
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    configured = spark.sparkContext.getConf().contains(f"spark.hadoop.{PROVIDER}")
    provider = default_provider(options, configured, lambda name: loads(spark, name))
    if provider:
        hadoop.set(PROVIDER, provider)


def spark_uri(uri: str, scheme: str) -> str:
    """``uri`` (``s3://``, ``s3a://`` or ``s3n://``) under ``scheme``, as Spark's connector opens it."""
    return _SCHEME.sub(f"{scheme}://", uri, count=1)


def collect_written(storage: LakeStorage, target_dir: str, renames: dict[str, str]) -> WrittenFiles:
    """The Parquet files Spark wrote below ``target_dir`` of an S3 lake, in their final places.

    Empty files (Spark writes one for an empty result) are deleted; folders named after staged
    partition columns are renamed (``renames``: old ``key=`` prefix to new) by server-side copies,
    and the staged folders removed (pyarrow leaves a folder marker behind a moved file).
    """
    written = WrittenFiles()
    selector = pafs.FileSelector(storage.path(target_dir), recursive=True, allow_not_found=True)
    prefix = storage.path(target_dir) + "/"
    found = sorted(
        (info.path[len(prefix) :], int(info.size or 0))
        for info in storage.fs.get_file_info(selector)
        if info.type == pafs.FileType.File
        and info.path.endswith(".parquet")
        and "/_temporary/" not in info.path
    )
    for relative, size in found:
        path = f"{target_dir}/{relative}"
        with storage.fs.open_input_file(storage.path(path)) as source:
            rows = pq.read_metadata(source).num_rows
        if rows == 0:
            storage.delete(path)
            continue
        final = relative
        for old, new in renames.items():
            final = final.replace(old, new)
        if final != relative:
            storage.move(path, f"{target_dir}/{final}")
        written.rows += rows
        written.bytes += size
        written.paths.append(f"{target_dir}/{final}")
    staged = {relative.split("/", 1)[0] for relative, _ in found}
    for folder in sorted(f for f in staged if f.startswith(tuple(renames))):
        storage.delete_folder(f"{target_dir}/{folder}")
    if not written.paths:  # an empty result: no folder marker left behind either
        storage.delete_folder(target_dir)
    return written
