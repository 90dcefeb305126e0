"""``lakeplane.yaml``: the project file, parsed into pydantic models that reject unknown keys.

Precedence, highest first: explicit overrides passed to :func:`load_config`, environment variables
``LAKEPLANE__SECTION__KEY`` (read by pydantic-settings), the project file, the defaults below. An
error names the key and where its wrong value came from: the file and line, or the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import EnvSettingsSource
from pydantic_settings.exceptions import SettingsError

from lakeplane.config_aws import AwsConfig
from lakeplane.config_base import size_value
from lakeplane.config_compute import CostConfig, PlacementConfig
from lakeplane.config_console import ConsoleConfig
from lakeplane.config_lineage import LineageConfig
from lakeplane.config_maintenance import MaintenanceConfig, RetentionConfig, ZoneLifecycle, ZoneName
from lakeplane.config_observe import AlertsConfig, SloConfig
from lakeplane.documents import Document, first_problem, parse_document, read_document
from lakeplane.errors import ConfigError, LakeplaneError
from lakeplane.units import parse_duration

CONFIG_FILE = "lakeplane.yaml"
ENV_PREFIX = "LAKEPLANE__"
#: ``timestamp`` is an instant, stored in UTC (an offset or zone in the value is applied, none means
#: UTC); ``timestamp_ntz`` is a wall-clock time stored as written.
#: The window of a keyed dataset that sets no ``dedupe_window_days``.
DEFAULT_DEDUPE_WINDOW_DAYS = 7
FIELD_TYPES = ("string", "int", "long", "double", "boolean", "date", "timestamp", "timestamp_ntz")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class S3Options(_Strict):
    """How to reach an S3 (or S3-compatible) endpoint."""

    endpoint: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    path_style: bool = True


class StorageConfig(_Strict):
    """Where the lake lives: a folder (relative to the project) or ``s3://bucket/prefix``."""

    root: str = "lake"
    s3: S3Options = S3Options()
    lifecycle: dict[ZoneName, ZoneLifecycle] = {}  # storage tiers per zone (lakeplane storage lifecycle)
    retention: RetentionConfig = RetentionConfig()


class CatalogConfig(_Strict):
    """The Iceberg SQL catalog. ``None`` means an SQLite file in the project's state folder."""

    uri: str | None = None
    name: str = "lakeplane"
    #: How often a commit that lost a race to another writer is planned again and retried.
    commit_retries: int = Field(default=10, ge=0)


class EngineConfig(_Strict):
    """Which engine runs jobs, and what each job may use.

    ``duckdb`` is the embedded default; ``spark`` runs models and queries on Spark (the ``spark``
    section says where); ``auto`` picks per job from its input size (the ``placement`` section).
    Ingest parsing always runs on DuckDB.
    """

    type: Literal["duckdb", "spark", "auto"] = "duckdb"
    memory_limit: str = "2GB"
    threads: int | None = Field(default=None, ge=1)
    temp_dir: str | None = None


#: Kept for code that names the embedded engine's settings.
DuckDBEngineConfig = EngineConfig

SPARK_MASTER = re.compile(r"^(local(\[(\d+|\*)\])?|spark-cluster|spark://[^\s]+|yarn|k8s://[^\s]+)$")


class SkewConfig(_Strict):
    """How Spark jobs handle a hot key in aggregations (AQE already splits skewed joins).

    A model declaring ``-- hot_key: [...]`` is aggregated in two salted phases; with ``detect``, so
    is a model whose previous Spark run had a stage whose slowest task took ``detect_ratio`` times
    its median (and at least ``detect_min_task_s``).
    """

    salt_buckets: int = Field(default=16, ge=2, le=1024)
    detect: bool = True
    detect_ratio: float = Field(default=4.0, gt=1)
    detect_min_task_s: float = Field(default=2.0, ge=0)


class SparkConfig(_Strict):
    """Apache Spark: ``local[N]``, a transient cluster born per job, or an existing master URL.

    ``spark-cluster`` starts a standalone master and ``workers`` workers on loopback for the job (or
    pipeline run) and stops them afterwards. ``spark://host:port``, ``yarn`` and ``k8s://...`` reach
    an existing cluster; ``conf`` passes any ``spark.*`` setting (EMR or Kubernetes settings go here).
    """

    master: str = "local[2]"
    workers: int = Field(default=2, ge=1, le=64)
    worker_cores: int = Field(default=1, ge=1)
    worker_memory: str = "2g"
    executor_memory: str | None = None
    shuffle_partitions: int = Field(default=8, ge=1)
    start_timeout_s: float = Field(default=60, gt=0)
    conf: dict[str, str | int | float | bool] = {}
    skew: SkewConfig = SkewConfig()

    @field_validator("master")
    @classmethod
    def _known_master(cls, value: str) -> str:
        if not SPARK_MASTER.match(value):
            raise ValueError(
                f"unknown Spark master '{value}'; expected local[N], spark-cluster, "
                "spark://host:port, yarn or k8s://https://host:port"
            )
        return value


class FieldSpec(_Strict):
    """One declared field of a raw dataset."""

    type: str = "string"
    required: bool = False

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in FIELD_TYPES:
            raise ValueError(f"unknown field type '{value}'; expected one of {', '.join(FIELD_TYPES)}")
        return value


class DatasetConfig(_Strict):
    """A raw dataset (``<source>/<dataset>``) and the processed table its ingest step writes."""

    format: Literal["ndjson", "csv"]
    table: str
    fields: dict[str, FieldSpec]
    key: list[str] = []
    max_quarantine_rate: float | None = Field(default=None, ge=0, le=1)
    #: Accept ``NaN``/``Infinity``/``-Infinity`` in ``double`` fields instead of quarantining them.
    accept_non_finite: bool = False
    #: Accept a record naming a declared field twice (its first value wins) instead of quarantining it.
    accept_duplicate_keys: bool = False
    #: Drop a row whose key the processed table already holds on another day at most this many days
    #: before or after its own (exactly once across days). Unset: 7 for a dataset with a ``key``;
    #: 0 turns it off (a daily full extract whose keys recur every day).
    dedupe_window_days: int | None = Field(default=None, ge=0)

    @field_validator("table")
    @classmethod
    def _three_part_name(cls, value: str) -> str:
        if value.count(".") != 2:
            raise ValueError(f"table '{value}' must be written <domain>.<zone>.<name>")
        return value

    @model_validator(mode="after")
    def _window_needs_key(self) -> DatasetConfig:
        if self.dedupe_window_days and not self.key:
            raise ValueError(
                f"dedupe_window_days: {self.dedupe_window_days} needs a key to find re-delivered "
                f"rows of table '{self.table}' by; add key: [...] or remove dedupe_window_days"
            )
        return self

    @property
    def window_days(self) -> int:
        """Days before and after a row's own that its key must not appear in: 0 means none."""
        if not self.key:
            return 0
        return DEFAULT_DEDUPE_WINDOW_DAYS if self.dedupe_window_days is None else self.dedupe_window_days


class IngestConfig(_Strict):
    """Defaults for every ingest step."""

    max_quarantine_rate: float = Field(default=0.05, ge=0, le=1)


class GovernanceConfig(_Strict):
    """Where the policy lives and who pipelines run as."""

    policy: str = "policy.yaml"
    pipeline_principal: str = "pipeline"
    mask_key_env: str = "LAKEPLANE_MASK_KEY"


# -- workgroups: what a principal's queries may scan and how many run at once ---------------------
class QueueConfig(_Strict):
    """Queries waiting for a running slot: at most ``length`` of them, each for ``timeout_s``."""

    length: int = Field(default=0, ge=0)
    timeout_s: float = Field(default=300, ge=0)

    _duration = field_validator("timeout_s", mode="before")(lambda cls, v: parse_duration(v))


class ResultReuseConfig(_Strict):
    """Whether a workgroup's queries may be answered from an earlier result no older than ``max_age``
    (seconds; ``1h`` is written as such)."""

    enabled: bool = False
    max_age: float = Field(default=3600, ge=0)

    _duration = field_validator("max_age", mode="before")(lambda cls, v: parse_duration(v))


class WorkgroupConfig(_Strict):
    """One workgroup: who is in it (``members`` as a policy's ``to:``) and what its queries may use.

    A size is bytes or ``3TB``/``500GB``/``10MB`` (binary units); an absent limit is no limit.
    """

    members: list[str] = []
    bytes_scanned_cutoff_per_query: int | None = Field(default=None, ge=0)
    bytes_scanned_per_day: int | None = Field(default=None, ge=0)
    max_concurrent: int | None = Field(default=None, ge=1)
    queue: QueueConfig = QueueConfig()
    result_reuse: ResultReuseConfig = ResultReuseConfig()

    _listify = field_validator("members", mode="before")(lambda cls, v: [v] if isinstance(v, str) else v)
    _sizes = field_validator("bytes_scanned_cutoff_per_query", "bytes_scanned_per_day", mode="before")(
        lambda cls, v: size_value(v)
    )


class ServeConfig(_Strict):
    """``lakeplane serve``: where SQL clients connect (options on the command line win)."""

    host: str = "127.0.0.1"
    pg_port: int = Field(default=5433, ge=0, le=65535)
    flight_port: int = Field(default=8815, ge=0, le=65535)  # 0: no Flight SQL listener
    tls_cert: str | None = None  # PEM certificate (chain); with tls_key, clients may use TLS
    tls_key: str | None = None
    grace_s: float = Field(default=30.0, ge=0)  # how long statements in flight may finish on stop


class LakeConfig(_Strict):
    """The whole project file."""

    name: str = "lake"
    storage: StorageConfig = StorageConfig()
    catalog: CatalogConfig = CatalogConfig()
    engine: EngineConfig = EngineConfig()
    spark: SparkConfig = SparkConfig()
    placement: PlacementConfig = PlacementConfig()
    cost: CostConfig = CostConfig()
    slos: dict[str, SloConfig] = Field(default_factory=dict)
    alerts: AlertsConfig = AlertsConfig()
    aws: AwsConfig = AwsConfig()
    ingest: IngestConfig = IngestConfig()
    governance: GovernanceConfig = GovernanceConfig()
    workgroups: dict[str, WorkgroupConfig] = {}
    serve: ServeConfig = ServeConfig()
    console: ConsoleConfig = ConsoleConfig()
    lineage: LineageConfig = LineageConfig()
    maintenance: MaintenanceConfig = MaintenanceConfig()
    datasets: dict[str, DatasetConfig] = {}
    models_dir: str = "models"

    @field_validator("datasets")
    @classmethod
    def _dataset_names(cls, value: dict[str, DatasetConfig]) -> dict[str, DatasetConfig]:
        for name in value:
            if name.count("/") != 1 or not all(name.split("/")):
                raise ValueError(f"dataset '{name}' must be written <source>/<dataset>")
        return value


def load_config(project_dir: Path, overrides: Mapping[str, Any] | None = None) -> LakeConfig:
    """Read ``lakeplane.yaml`` in ``project_dir`` (absent means all defaults), under the environment
    variables ``LAKEPLANE__SECTION__KEY`` and then ``overrides``.

    Raises:
        ConfigError: the file is not YAML, or a key is unknown or has a wrong value. It names where
            the wrong value came from: the file and line, the environment variable, or the overrides.
    """
    path = project_dir / CONFIG_FILE
    document = (
        read_document(path, error=ConfigError)
        if path.exists()
        else parse_document("", source=str(path), error=ConfigError)
    )
    environment = read_environment()
    explicit = dict(overrides or {})
    data = merge_settings(merge_settings(document.data, environment.data), explicit)
    try:
        return LakeConfig.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, data, document, environment, explicit) from None


def _config_error(
    exc: ValidationError,
    data: dict[str, Any],
    document: Document,
    environment: Environment,
    explicit: dict[str, Any],
) -> LakeplaneError:
    """The first problem, blamed on the layer its value came from."""
    loc, problem = first_problem(exc, data)
    key = ".".join(loc)
    origin = _origin(loc, {"overrides": explicit, "environment": environment.data, "file": document.data})
    if origin == "overrides":
        return ConfigError(f"overrides: {key}: {problem}", key=key)
    if origin == "environment":
        variable = environment.variable(loc)
        return ConfigError(f"environment {variable}: {key}: {problem}", key=key, variable=variable)
    return document.error(loc, problem)


@dataclass(frozen=True)
class Environment:
    """Settings from ``LAKEPLANE__SECTION__KEY`` environment variables, and the variable of each key."""

    data: dict[str, Any]
    variables: dict[tuple[str, ...], str]

    def variable(self, loc: tuple[str, ...]) -> str | None:
        """The variable that set ``loc`` (or the section holding it, given as JSON)."""
        for end in range(len(loc), 0, -1):
            if loc[:end] in self.variables:
                return self.variables[loc[:end]]
        return None


def read_environment() -> Environment:
    """This process's ``LAKEPLANE__`` variables, read by pydantic-settings' environment source: names
    are case-insensitive, ``__`` separates nested keys, a value is the string it is (``no`` stays
    ``no``; a boolean field reads it as false), a section or mapping may be given whole as JSON, and
    ``null`` is None.

    Raises:
        ConfigError: naming the variable, when it names no section or its JSON does not parse.
    """
    variables: dict[tuple[str, ...], str] = {}
    for name in os.environ:
        if not name.upper().startswith(ENV_PREFIX):
            continue
        loc = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part)
        if loc and loc[0] not in LakeConfig.model_fields:
            raise ConfigError(
                f"environment {name}: {'.'.join(loc)}: unknown key", key=".".join(loc), variable=name
            )
        if loc:
            variables[loc] = name
    # LakeConfig is a plain model, not a BaseSettings: constructing it never reads the environment.
    source = EnvSettingsSource(
        LakeConfig,  # type: ignore[arg-type]
        case_sensitive=False,
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_parse_none_str="null",
    )
    try:
        data = source()
    except SettingsError as exc:  # a section given as JSON that does not parse
        field = re.search(r'field "([^"]+)"', str(exc))
        variable = variables.get((field[1],)) if field else None
        raise ConfigError(
            f"environment {variable or ENV_PREFIX + '*'}: {field[1] if field else ''}: not valid JSON",
            key=field[1] if field else None,
            variable=variable,
        ) from None
    return Environment(data, variables)


_MISSING = object()


def _origin(loc: tuple[str, ...], layers: dict[str, dict[str, Any]]) -> str | None:
    """The name of the first of ``layers`` (highest precedence first) holding the deepest part of
    ``loc`` that any of them holds: where the value at ``loc`` came from."""
    for end in range(len(loc), 0, -1):
        for name, layer in layers.items():
            node: Any = layer
            for part in loc[:end]:
                node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
            if node is not _MISSING:
                return name
    return None


def merge_settings(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` laid over ``base``, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_settings(merged[key], value)
        else:
            merged[key] = value
    return merged


DEFAULT_CONFIG = """\
# lakeplane project file. Every key is optional; unknown keys are rejected.
# Environment variables override it: LAKEPLANE__ENGINE__MEMORY_LIMIT=4GB, LAKEPLANE__STORAGE__ROOT=...

name: {name}                 # default domain for SQL models

storage:
  root: lake                 # a folder (relative to this file) or s3://bucket/prefix
  # s3:                      # only for s3:// roots
  #   endpoint: http://127.0.0.1:9000
  #   region: us-east-1
  #   access_key_id: ...
  #   secret_access_key: ...

catalog:
  uri: null                  # null: SQLite file in .lakeplane/; or postgresql://user@host:5432/db

engine:
  type: duckdb               # duckdb (embedded), spark, or auto (placement by input size)
  memory_limit: 2GB          # per job; DuckDB spills to temp_dir above it; Spark's driver memory
  threads: null              # null: all cores; DuckDB runs at most one per 64MB of memory_limit
  temp_dir: null             # null: .lakeplane/tmp

spark:                       # used when a job runs on Spark (pip install 'lakeplane[spark]', Java 17)
  master: local[2]           # local[N] | spark-cluster (transient, on loopback) | spark://host:port
  workers: 2                 # spark-cluster: workers started for the job
  worker_cores: 1
  worker_memory: 2g
  conf: {{}}                   # any spark.* setting, e.g. spark.executor.instances for YARN/EMR

placement:                   # engine.type: auto
  spark_above: 8GB           # input (catalog file sizes) above this runs on Spark local
  cluster_above: 64GB        # above this on spark.master if it names a cluster, else spark-cluster

ingest:
  max_quarantine_rate: 0.05  # fail a step when more than 5 % of a batch is malformed

models_dir: models           # SQL models: models/<zone>/<table>.sql

governance:                  # enforced when the policy file exists
  policy: policy.yaml        # grants, tags, masks, row filters (see README)
  pipeline_principal: pipeline   # who SQL models run as
  mask_key_env: LAKEPLANE_MASK_KEY   # hash-mask key; else .lakeplane/mask.key is created

datasets: {{}}
# datasets:
#   partner/impressions:          # <source>/<dataset>, as given to `lakeplane land`
#     format: ndjson              # ndjson or csv, optionally gzipped
#     table: adtech.processed.impressions
#     key: [event_id]             # duplicates on the key are dropped (first delivery wins)
#     dedupe_window_days: 7       # also drop a key already published on another day up to 7 days
#                                 # before or after (default 7 with a key; 0: within the day only,
#                                 # for daily full extracts whose keys recur every day)
#     fields:
#       event_id: {{type: string, required: true}}
#       event_ts: {{type: timestamp, required: true}}   # UTC; timestamp_ntz keeps wall-clock times
#       price: {{type: double}}
#     accept_non_finite: false    # true: NaN/Infinity load instead of being quarantined
#     accept_duplicate_keys: false   # true: a repeated JSON key loads (the first value wins)
"""
