"""What every rendered request takes from the project: names, S3 locations, roles, Spark settings,
the arguments of lakeplane's remote entry, and the keys the config lacks (``warnings``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from lakeplane.aws.jobs import JobPlan
from lakeplane.config import LakeConfig
from lakeplane.config_aws import AwsConfig

#: Files a submit uploads under ``<aws.code_uri>/<project>/``.
ENTRY_SCRIPT = "entry.py"
PROJECT_ARCHIVE = "project.zip"
BOOTSTRAP_SCRIPT = "bootstrap.sh"

#: Adaptive execution at cluster scale, then the settings every lakeplane Spark job runs with.
CLUSTER_SPARK_CONF = {
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.sql.adaptive.skewJoin.enabled": "true",
    "spark.sql.adaptive.skewJoin.skewedPartitionFactor": "3",
    "spark.sql.adaptive.skewJoin.skewedPartitionThresholdInBytes": "256MB",
    "spark.sql.adaptive.advisoryPartitionSizeInBytes": "128MB",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.parquet.fieldId.write.enabled": "true",
    "spark.sql.parquet.fieldId.read.enabled": "true",
    "spark.sql.parquet.compression.codec": "zstd",
    "spark.sql.runSQLOnFiles": "false",
    "spark.sql.variable.substitute": "false",
}


@dataclass
class AwsProject:
    """The project as rendered requests see it, for one job and business date.

    A setting a real request needs and the config does not give renders as ``<aws.key>`` and is
    recorded in ``warnings``, so a render never fails for want of an account.
    """

    config: LakeConfig
    job: JobPlan
    ds: dt.date
    version: str
    warnings: list[str] = field(default_factory=list)

    @property
    def aws(self) -> AwsConfig:
        return self.config.aws

    def need(self, value: str | None, key: str, why: str) -> str:
        """``value``, or the placeholder ``<aws.key>`` with a warning saying what it is for."""
        if value:
            return value
        placeholder = f"<aws.{key}>"
        self.warn(f"aws.{key} is not set ({why}); rendered as {placeholder}")
        return placeholder

    def warn(self, warning: str) -> None:
        """Record ``warning`` once."""
        if warning not in self.warnings:
            self.warnings.append(warning)

    # -- where things are --------------------------------------------------------------------
    @property
    def code_prefix(self) -> str:
        base = self.need(self.aws.code_uri, "code_uri", "where submit uploads the wheel and project")
        return f"{base}/{self.config.name}"

    def code(self, name: str) -> str:
        return f"{self.code_prefix}/{name}"

    @property
    def wheel(self) -> str:
        return self.code(f"lakeplane-{self.version}-py3-none-any.whl")

    @property
    def log_uri(self) -> str:
        return self.need(self.aws.log_uri, "log_uri", "where EMR, Serverless and Glue write logs")

    @property
    def lake_root(self) -> str:
        """Where remote steps find the lake: ``aws.lake_root``, else ``storage.root`` when on S3."""
        if self.aws.lake_root:
            return str(self.aws.lake_root)
        if self.config.storage.root.startswith("s3://"):
            return self.config.storage.root.rstrip("/")
        return self.need(None, "lake_root", f"storage.root is the local folder '{self.config.storage.root}'")

    def check_catalog(self) -> None:
        """Warn when the catalog is an SQLite file, which a remote step cannot reach."""
        uri = self.config.catalog.uri
        if uri is None or uri.startswith("sqlite"):
            self.warn(
                "catalog.uri is an SQLite file on this machine; remote steps need a catalog every run "
                "reaches (catalog.uri: postgresql://...)"
            )

    # -- what runs ---------------------------------------------------------------------------
    def entry_args(self, steps: list[str] | None = None, ds: str | None = None) -> list[str]:
        """The arguments of :mod:`lakeplane.aws.entry`: the project bundle, the lake, the job, the day."""
        args = ["--project", self.code(PROJECT_ARCHIVE), "--lake-root", self.lake_root]
        args += [f"--{self.job.kind}", self.job.name]
        for step in steps or []:
            args += ["--step", step]
        return [*args, "--ds", ds or self.ds.isoformat()]

    def spark_conf(self) -> dict[str, str]:
        """Cluster-scale AQE and lakeplane's settings, then ``spark.conf``, then ``aws.emr.spark_conf``."""
        conf = dict(CLUSTER_SPARK_CONF)
        conf.update({key: _conf_value(value) for key, value in self.config.spark.conf.items()})
        conf.update(self.aws.emr.spark_conf)
        return conf

    def tags(self) -> dict[str, str]:
        return {"lakeplane:project": self.config.name, f"lakeplane:{self.job.kind}": self.job.name}


def _conf_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
