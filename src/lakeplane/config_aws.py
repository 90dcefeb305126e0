"""``aws:`` in ``lakeplane.yaml``: the account, region, roles and shapes that rendered job requests name.

Every key has a default that lets ``lakeplane aws render`` work on a project without an ``aws:``
section; a key a real submit needs and the config does not give (a role, a bucket, an application
id) is rendered as ``<aws.key>`` and named in the render's ``warnings``.

.. code-block:: yaml

    aws:
      region: eu-west-1
      code_uri: s3://acme-code/lakeplane        # submit uploads the wheel, project and entry script here
      log_uri: s3://acme-logs/lakeplane
      lake_root: s3://acme-lake/lake            # where remote steps find the lake (default storage.root)
      emr:
        service_role: EMR_DefaultRole_V2
        instance_profile: EMR_EC2_DefaultRole
        task_types: {r6g.2xlarge: 1, r6i.2xlarge: 1, r5.2xlarge: 1, m6g.2xlarge: 1, r6g.4xlarge: 2}
        task_capacity: 8
      serverless: {application_id: 00fabc123, execution_role: arn:aws:iam::111122223333:role/emr-jobs}
      glue: {role: GlueJobRole, worker_type: G.1X, workers: 4, flex: true}
      stepfunctions: {role: arn:aws:iam::111122223333:role/sfn-lakeplane, runs_on: glue}
      athena: {output_location: s3://acme-athena/results/}
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from lakeplane.config_base import Strict
from lakeplane.units import parse_duration


def _seconds(value: object) -> object:
    return parse_duration(value) if isinstance(value, str) else value


#: Fleet instance types and their weighted capacity: Graviton (r6g, m6g) and Intel (r6i, r5), so a
#: shortage of one family's Spot capacity leaves the others.
PRIMARY_TYPES = {"m6g.xlarge": 1, "m6i.xlarge": 1}
CORE_TYPES = {"r6g.2xlarge": 1, "r6i.2xlarge": 1, "r5.2xlarge": 1}
TASK_TYPES = {
    "r6g.2xlarge": 1,
    "r6i.2xlarge": 1,
    "r5.2xlarge": 1,
    "m6g.2xlarge": 1,
    "r6g.4xlarge": 2,
    "r6i.4xlarge": 2,
}


class EmrConfig(Strict):
    """Transient EMR on EC2: On-Demand primary and core fleets, a diversified Spot task fleet.

    Fleet types map an instance type to its weighted capacity (the units a fleet's target counts).
    """

    release_label: str = "emr-7.5.0"
    service_role: str = "EMR_DefaultRole_V2"
    instance_profile: str = "EMR_EC2_DefaultRole"
    primary_types: dict[str, int] = Field(default_factory=lambda: dict(PRIMARY_TYPES))
    core_types: dict[str, int] = Field(default_factory=lambda: dict(CORE_TYPES))
    core_capacity: int = Field(default=2, ge=1)
    task_types: dict[str, int] = Field(default_factory=lambda: dict(TASK_TYPES))
    task_capacity: int = Field(default=4, ge=0)
    #: Minutes the task fleet waits for Spot capacity before it launches On-Demand instead.
    spot_timeout_minutes: int = Field(default=10, ge=5, le=1440)
    idle_timeout_s: float = Field(default=900, ge=60, le=604800)
    min_capacity: int = Field(default=3, ge=1)
    max_capacity: int = Field(default=20, ge=1)
    max_on_demand_capacity: int = Field(default=3, ge=1)
    subnets: list[str] = Field(default_factory=list)
    #: Spark settings for every EMR, EMR Serverless and Glue job, over lakeplane's own.
    spark_conf: dict[str, str] = Field(default_factory=dict)

    _duration = field_validator("idle_timeout_s", mode="before")(lambda cls, v: _seconds(v))


class ServerlessConfig(Strict):
    """EMR Serverless: an existing Spark application and the role its job runs take."""

    application_id: str | None = None
    execution_role: str | None = None
    #: A packed virtualenv (``venv-pack``) with lakeplane's dependencies, as ``spark.archives``.
    python_env: str | None = None


class GlueConfig(Strict):
    """AWS Glue Spark jobs (``glueetl``, Glue 5.0); ``flex`` runs non-urgent jobs on spare capacity."""

    role: str | None = None
    version: str = "5.0"
    worker_type: Literal["G.1X", "G.2X", "G.4X", "G.8X"] = "G.1X"
    workers: int = Field(default=2, ge=2)
    flex: bool = False


class StepFunctionsConfig(Strict):
    """Step Functions: the role of a pipeline's state machine and what runs each of its steps."""

    role: str | None = None
    runs_on: Literal["emr-serverless", "glue", "emr"] = "emr-serverless"


class AthenaConfig(Strict):
    """Athena workgroups rendered from ``workgroups:``."""

    output_location: str | None = None
    engine_version: str = "Athena engine version 3"


class AwsConfig(Strict):
    """Where ``lakeplane aws render|submit`` sends requests; ``endpoint`` points boto3 elsewhere
    (an emulator)."""

    region: str = "us-east-1"
    endpoint: str | None = None
    code_uri: str | None = None
    log_uri: str | None = None
    lake_root: str | None = None
    emr: EmrConfig = EmrConfig()
    serverless: ServerlessConfig = ServerlessConfig()
    glue: GlueConfig = GlueConfig()
    stepfunctions: StepFunctionsConfig = StepFunctionsConfig()
    athena: AthenaConfig = AthenaConfig()

    @field_validator("code_uri", "log_uri", "lake_root")
    @classmethod
    def _s3_uri(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("s3://"):
            raise ValueError(f"'{value}' is not an s3:// URI")
        return value.rstrip("/") if value else value
