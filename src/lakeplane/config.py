"""``lakeplane.yaml``: the project file, parsed into pydantic models that reject unknown keys.

Precedence, highest first: explicit overrides passed to :func:`load_config`, environment variables
``LAKEPLANE__SECTION__KEY``, the project file, the defaults below. Every error names the file, the
key and, when the key is in the file, its line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lakeplane.errors import ConfigError

CONFIG_FILE = "lakeplane.yaml"
ENV_PREFIX = "LAKEPLANE__"
FIELD_TYPES = ("string", "int", "long", "double", "boolean", "date", "timestamp")


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


class CatalogConfig(_Strict):
    """The Iceberg SQL catalog. ``None`` means an SQLite file in the project's state folder."""

    uri: str | None = None
    name: str = "lakeplane"


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
            raise ValueError(f"unknown Spark master '{value}'; expected local[N], spark-cluster, "
                             "spark://host:port, yarn or k8s://https://host:port")
        return value


class PlacementConfig(_Strict):
    """``engine.type: auto``: the input size (catalog file statistics) above which a job moves."""

    spark_above: str = "8GB"
    cluster_above: str = "64GB"


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

    @field_validator("table")
    @classmethod
    def _three_part_name(cls, value: str) -> str:
        if value.count(".") != 2:
            raise ValueError(f"table '{value}' must be written <domain>.<zone>.<name>")
        return value


class IngestConfig(_Strict):
    """Defaults for every ingest step."""

    max_quarantine_rate: float = Field(default=0.05, ge=0, le=1)


class GovernanceConfig(_Strict):
    """Where the policy lives and who pipelines run as."""

    policy: str = "policy.yaml"
    pipeline_principal: str = "pipeline"
    mask_key_env: str = "LAKEPLANE_MASK_KEY"


class LakeConfig(_Strict):
    """The whole project file."""

    name: str = "lake"
    storage: StorageConfig = StorageConfig()
    catalog: CatalogConfig = CatalogConfig()
    engine: EngineConfig = EngineConfig()
    spark: SparkConfig = SparkConfig()
    placement: PlacementConfig = PlacementConfig()
    ingest: IngestConfig = IngestConfig()
    governance: GovernanceConfig = GovernanceConfig()
    datasets: dict[str, DatasetConfig] = {}
    models_dir: str = "models"

    @field_validator("datasets")
    @classmethod
    def _dataset_names(cls, value: dict[str, DatasetConfig]) -> dict[str, DatasetConfig]:
        for name in value:
            if name.count("/") != 1 or not all(name.split("/")):
                raise ValueError(f"dataset '{name}' must be written <source>/<dataset>")
        return value


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false, so keys such as ``on`` and values such as ``no`` stay strings."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load_yaml(text: str) -> Any:
    """Parse YAML the way people who write ``on:`` and ``no`` expect."""
    return yaml.load(text, Loader=_Loader)


def load_config(project_dir: Path, overrides: Mapping[str, Any] | None = None) -> LakeConfig:
    """Read ``lakeplane.yaml`` in ``project_dir`` (absent means all defaults).

    Raises:
        ConfigError: the file is not YAML, or a key is unknown or has a wrong value.
    """
    path = project_dir / CONFIG_FILE
    data: dict[str, Any] = {}
    lines: dict[tuple[str, ...], int] = {}
    if path.exists():
        text = path.read_text(encoding="utf-8")
        try:
            loaded = load_yaml(text)
            lines = key_lines(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark else None
            raise ConfigError(
                f"{path}{f':{line}' if line else ''}: not valid YAML: {exc}", file=str(path), line=line
            ) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of settings", file=str(path), key="")
        data = loaded or {}
    data = merge_settings(data, _env_overrides(os.environ))
    data = merge_settings(data, dict(overrides or {}))
    try:
        return LakeConfig.model_validate(data)
    except ValidationError as exc:
        raise _config_error(path, exc, lines) from None


def _config_error(path: Path, exc: ValidationError, lines: dict[tuple[str, ...], int]) -> ConfigError:
    first = exc.errors()[0]
    loc = tuple(str(part) for part in first["loc"] if not _is_union_tag(part))
    key = ".".join(loc)
    line = nearest_line(loc, lines)
    if first["type"] == "extra_forbidden":
        problem = "unknown key"
    else:
        problem = first["msg"].removeprefix("Value error, ")
        if "input" in first and not isinstance(first["input"], dict | list):
            problem += f" (got {first['input']!r})"
    where = f"{path}:{line}" if line else str(path)
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return ConfigError(f"{where}: {key}: {problem}{more}", file=str(path), key=key, line=line)


def _is_union_tag(part: Any) -> bool:
    return part in ("duckdb",)


def nearest_line(loc: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> int | None:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Map each key path in a YAML document to its 1-based line."""
    found: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, prefix: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                path = (*prefix, str(key_node.value))
                found[path] = key_node.start_mark.line + 1
                walk(value_node, path)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                found[(*prefix, str(index))] = item.start_mark.line + 1
                walk(item, (*prefix, str(index)))

    root = yaml.compose(text)
    if root is not None:
        walk(root, ())
    return found


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]
        if not keys:
            continue
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = yaml.safe_load(value) if value else value
    return out


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
  threads: null              # null: all cores
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
#     fields:
#       event_id: {{type: string, required: true}}
#       event_ts: {{type: timestamp, required: true}}
"""
