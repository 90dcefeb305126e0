"""The engine interface, its capability flags and the registry of engines by name.

An engine opens one :class:`EngineSession` per job, sized for that job (memory, threads, spill
folder). A session reads Iceberg tables as the files pyiceberg planned (:class:`ScanSource`), runs
SQL already compiled to its dialect, and writes results as Parquet files that the caller commits to
Iceberg in one commit. Engines never commit to the catalog themselves, so every engine gets the same
atomic, idempotent commits.
"""

from __future__ import annotations

import enum
import importlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar

from pydantic import BaseModel

from lakeplane.errors import EngineError, MissingDependencyError, UnknownNameError, did_you_mean

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeplane.storage import LakeStorage


class Capability(enum.Enum):
    """What an engine can do; a job names what it needs, checked before it starts."""

    PARSE_RAW_FILES = "parse raw partner files (ingest)"
    SPILL = "spill to disk past its memory limit"
    STAGE = "stage intermediate results (merge models)"
    SANDBOX = "sandbox governed queries to the registered tables"
    STAGE_METRICS = "report per-stage task times (skew detection)"
    SHUFFLE = "shuffle rows between tasks by key (a hot key's rows meet in one task)"


@dataclass(frozen=True)
class JobSpec:
    """What one job may use: its name, memory limit, threads and spill folder."""

    name: str
    memory_limit: str
    threads: int | None
    temp_dir: Path
    #: Whether the job's session records what its statements spill (:attr:`EngineSession.spill_bytes`):
    #: pipeline steps do; queries, which it would only slow, do not.
    record_spill: bool = False


@dataclass(frozen=True)
class ScanSource:
    """A table as an engine reads it: the data files left after pyiceberg's planning.

    Engines bind the columns of each file by Iceberg field id, never by name: ``schema`` is the
    schema read (the snapshot's, for time travel), each field carrying its id as ``PARQUET:field_id``
    metadata; a file without field ids is bound through ``name_mapping`` (the table's
    ``schema.name-mapping.default``: a name written in such files to its field id). So a renamed
    column keeps its data, a dropped one vanishes, a column added (or dropped and added again under
    an old name) is NULL in files written before, and a promoted type (int to long, float to double,
    a wider decimal) is read as the current type.
    """

    table: str
    files: list[str]
    schema: pa.Schema
    bytes: int = 0
    records: int = 0
    name_mapping: Mapping[str, int] = field(default_factory=dict)
    #: With :func:`~lakeplane.catalog.scan.plan_scan`'s ``bounds_of``: the lowest and highest value
    #: of that column in ``files`` by their statistics (a string's bounds may be truncated, the low
    #: one down and the high one up, so they still enclose every value); None when a file has none.
    bounds: tuple[Any, Any] | None = None


@dataclass
class WrittenFiles:
    """Parquet files an engine wrote, relative to the lake root once placed."""

    paths: list[str] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0


class EngineSession(ABC):
    """One job's connection to an engine. Use as a context manager: leaving it frees everything.

    SQL given to a session is in the engine's dialect (:attr:`dialect`).
    """

    dialect: ClassVar[str] = "duckdb"
    #: What the job may use (memory, threads, spill folder).
    job: JobSpec
    #: A folder of this job's own on local disk (spill files, local copies of remote raw files).
    spill_dir: Path
    #: Seconds spent inside the engine's statements so far (0 for engines that do not time them):
    #: the rest of a step's time is lakeplane's own (planning, commits, Python).
    engine_seconds: float = 0.0
    #: Bytes the job's statements spilled to disk so far (None: this engine does not say).
    spill_bytes: int | None = None

    @abstractmethod
    def register_scan(self, alias: str, source: ScanSource) -> None:
        """Make ``alias`` name ``source`` in the SQL this session runs: the columns of
        ``source.schema`` in its order, each bound by field id in every file (see :class:`ScanSource`)."""

    @abstractmethod
    def arrow_reader(self, sql: str) -> pa.RecordBatchReader:
        """Run a read-only query; batches stream, nothing is held whole."""

    @abstractmethod
    def result_schema(self, sql: str) -> pa.Schema:
        """The schema a query would return, without running it."""

    @abstractmethod
    def write_parquet(
        self, sql: str, target_dir: str, partition_by: list[str], field_ids: Mapping[str, int]
    ) -> WrittenFiles:
        """Write a query's rows as Parquet below ``target_dir`` (relative to the lake root).

        Each column named in ``field_ids`` carries that Iceberg field id (``PARQUET:field_id``) in
        the files, so readers that resolve columns by id (every Iceberg reader but lakeplane's own)
        find it. ``field_ids`` names result columns only.
        """

    @abstractmethod
    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        """Run a statement in the engine's own dialect and return its (small) result."""

    @abstractmethod
    def stage(self, name: str, sql: str) -> None:
        """Compute ``sql`` once and keep its rows as ``name`` for the rest of the job."""

    @abstractmethod
    def sandbox(self) -> None:
        """From now on, reach only the registered tables: no other file, no settings changes."""

    def quote(self, name: str) -> str:
        """``name`` as a quoted identifier of this dialect."""
        return '"' + name.replace('"', '""') + '"'

    def stage_skew(self) -> list[Any]:
        """Per-stage task-time skew of the work so far (engines with stages report it)."""
        return []

    def usage(self) -> dict[str, Any]:
        """What the job held, as step metrics: ``cores`` (the threads it may run: ``engine.threads``,
        else every core), and for engines with executors their figures (``spark_executors``)."""
        return {"cores": self.job.threads or os.cpu_count() or 1}

    @abstractmethod
    def close(self) -> None:
        """Release the connection, memory and spill files."""

    def interrupt(self) -> None:  # noqa: B027 - engines that cannot interrupt do nothing
        """Stop the statement running now, from another thread (engines that cannot: nothing)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def register_arrow(self, alias: str, data: pa.Table | pa.RecordBatchReader) -> None:
        """Make ``alias`` name Arrow data held by the caller: a table, or batches read once.

        Raises:
            EngineError: this engine cannot read Arrow data from the caller's process.
        """
        raise self._unsupported(f"cannot read Arrow data registered as '{alias}'", "register_arrow")

    def unregister(self, alias: str) -> None:
        """Forget what :meth:`register_arrow` registered as ``alias``.

        Raises:
            EngineError: this engine cannot register Arrow data.
        """
        raise self._unsupported(f"cannot unregister '{alias}'", "register_arrow")

    def _unsupported(self, what: str, capability: str) -> EngineError:
        # A session's dialect is its engine's name for every engine registered here.
        return EngineError(
            f"engine '{self.dialect}' {what}: it does not support {capability}",
            engine=self.dialect,
            missing=[Capability.PARSE_RAW_FILES.name],
        )


#: An engine's settings: its section of ``lakeplane.yaml``.
ConfigT = TypeVar("ConfigT", bound=BaseModel)


class Engine(ABC, Generic[ConfigT]):
    """An engine kind. Subclasses declare what they can do as data, checked before a job starts."""

    name: ClassVar[str]
    dialect: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    def __init__(self, storage: LakeStorage, config: ConfigT) -> None:
        self.storage = storage
        self.config = config

    @abstractmethod
    def session(self, job: JobSpec) -> EngineSession:
        """Open a fresh session sized for ``job``."""

    def require(self, needs: Iterable[Capability], job: str) -> None:
        """Fail before ``job`` starts when this engine lacks any capability it ``needs``.

        Raises:
            EngineError: not retryable; names the engine, the job and what is missing.
        """
        missing = [need for need in needs if need not in self.capabilities]
        if missing:
            raise EngineError(
                f"engine '{self.name}' cannot run {job}: it cannot "
                f"{', '.join(need.value for need in missing)}",
                engine=self.name,
                job=job,
                missing=[need.name for need in missing],
            )


_REGISTRY: dict[str, str] = {
    "duckdb": "lakeplane.engines.duckdb:DuckDBEngine",
    "spark": "lakeplane.engines.spark:SparkEngine",
}
_EXTRAS: dict[str, str] = {"duckdb": "duckdb", "spark": "spark"}


def register(name: str, target: str, extra: str | None = None) -> None:
    """Register an engine class by import path (``package.module:Class``), imported on first use."""
    _REGISTRY[name] = target
    if extra:
        _EXTRAS[name] = extra


def get_engine(name: str) -> type[Engine[Any]]:
    """The engine class registered as ``name``.

    Raises:
        UnknownNameError: no engine has that name.
        MissingDependencyError: the engine's library is not installed.
    """
    if name not in _REGISTRY:
        raise UnknownNameError(f"unknown engine '{name}'{did_you_mean(name, _REGISTRY)}", name=name)
    module_name, _, class_name = _REGISTRY[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get(name, name)
        raise MissingDependencyError(
            f"engine '{name}' needs {exc.name}: pip install 'lakeplane[{extra}]'", extra=extra
        ) from None
    engine: type[Engine[Any]] = getattr(module, class_name)
    return engine
