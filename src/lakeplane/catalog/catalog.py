"""Iceberg tables through pyiceberg's SQL catalog.

Tables are named ``<domain>.<zone>.<name>``: the namespace is ``(domain, zone)`` and the files live
at ``<lake root>/<zone>/<domain>/<name>``, so the zones stay folders of the lake whatever the domain.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError, TableAlreadyExistsError
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.refs import MAIN_BRANCH, SnapshotRefType
from pyiceberg.table.snapshots import ancestors_of
from pyiceberg.typedef import Record

from lakeplane.catalog.commits import NO_PYICEBERG_RETRY, CommitRetry
from lakeplane.catalog.names import resolve_name
from lakeplane.config import CatalogConfig, StorageConfig
from lakeplane.errors import CatalogError, ConfigError, MissingDependencyError, TableNotFoundError
from lakeplane.storage import LakeStorage, Zone


@dataclass(frozen=True)
class TableRef:
    """A parsed ``<domain>.<zone>.<name>`` identifier."""

    domain: str
    zone: str
    name: str

    @classmethod
    def parse(cls, identifier: str) -> TableRef:
        parts = identifier.split(".")
        if len(parts) != 3 or not all(parts):
            raise TableNotFoundError(
                f"table '{identifier}': expected <domain>.<zone>.<name>; commands and SQL also take "
                "<zone>.<name> and <name> when one table of the project has that name",
                table=identifier,
            )
        return cls(*parts)

    @property
    def namespace(self) -> tuple[str, str]:
        return (self.domain, self.zone)

    def __str__(self) -> str:
        return f"{self.domain}.{self.zone}.{self.name}"


class LakeCatalog:
    """The lake's catalog: create, load and describe Iceberg tables."""

    def __init__(
        self, config: CatalogConfig, storage: LakeStorage, state_dir: Path, storage_config: StorageConfig
    ) -> None:
        self.storage = storage
        uri = config.uri
        if uri is None:
            db = Path(storage.path("catalog.db")) if storage.is_local else state_dir / "catalog.db"
            db.parent.mkdir(parents=True, exist_ok=True)
            uri = f"sqlite:///{db}"
        elif uri.startswith("postgres://"):
            uri = "postgresql+psycopg://" + uri[len("postgres://") :]
        elif uri.startswith("postgresql://"):
            uri = "postgresql+psycopg://" + uri[len("postgresql://") :]
        if not uri.startswith(("sqlite:", "postgresql")):
            raise ConfigError(
                f"catalog.uri: unsupported catalog '{uri.split(':', 1)[0]}'; "
                "use null (SQLite in the lake) or postgresql://...",
                key="catalog.uri",
            )
        self.uri = uri
        self._loaded: dict[str, Table] = {}
        #: Every table's name, read once (:meth:`table_names`) and forgotten when a table is added.
        self._names: list[TableRef] | None = None
        properties: dict[str, str] = {"uri": uri, "warehouse": storage.root_uri}
        if storage.scheme == "s3":
            s3 = storage_config.s3
            properties |= {
                "py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO",
                "s3.region": s3.region,
                "s3.path-style-access": str(s3.path_style).lower(),
            }
            if s3.endpoint:
                properties["s3.endpoint"] = s3.endpoint
            if s3.access_key_id:
                properties["s3.access-key-id"] = s3.access_key_id
                properties["s3.secret-access-key"] = s3.secret_access_key or ""
        #: How often a commit that lost a race to another writer is planned and tried again.
        self.commit_retry = CommitRetry(retries=config.commit_retries)
        self.iceberg = self._open(config.name, properties)
        if uri.startswith("sqlite:"):
            _configure_sqlite(self.iceberg.engine)

    def _open(self, name: str, properties: dict[str, str]) -> SqlCatalog:
        """pyiceberg's catalog; it creates its tables in a new database, maybe racing another process."""
        for attempt in range(3):
            try:
                return SqlCatalog(name, **properties)
            except ModuleNotFoundError as exc:
                raise MissingDependencyError(
                    f"the PostgreSQL catalog needs {exc.name}: pip install 'lakeplane[postgres]'",
                    extra="postgres",
                ) from None
            except sa.exc.DatabaseError as exc:
                # Two processes opening a new catalog both create its tables: the loser's CREATE
                # fails ("already exists", a duplicate pg_type row); opening again finds them.
                if attempt == 2 or not _is_create_race(exc):
                    raise CatalogError(
                        f"cannot open catalog {_redact(self.uri)}: {exc}", uri=_redact(self.uri)
                    ) from exc
                time.sleep(0.05 * (attempt + 1))
            except Exception as exc:  # SQLAlchemy raises many kinds for an unreachable server
                raise CatalogError(
                    f"cannot open catalog {_redact(self.uri)}: {exc}", uri=_redact(self.uri)
                ) from exc
        raise AssertionError("unreachable")

    @cached_property
    def state_engine(self) -> sa.Engine:
        """The catalog's database, for lakeplane's own tables (:mod:`lakeplane.catalog.state`).

        An engine of its own, made from the catalog's URI, so a PostgreSQL catalog shares runs,
        policy versions, the audit log and DQ metric history with everyone who uses the catalog.
        """
        engine = sa.create_engine(self.uri, pool_pre_ping=True)
        if self.uri.startswith("sqlite:"):
            _configure_sqlite(engine)
        return engine

    def table_exists(self, ref: TableRef) -> bool:
        """Whether ``ref`` exists: one indexed catalog lookup (pyiceberg's would read and parse the
        table's metadata file)."""
        try:
            return self._metadata_location(ref, quiet=False) is not None
        except sa.exc.SQLAlchemyError:
            return bool(self.iceberg.table_exists(str(ref)))

    def load(self, ref: TableRef | str) -> Table:
        """The table's current state.

        Loading reads and parses the metadata file; a table whose metadata location has not moved
        since the last load is returned from memory (one indexed catalog lookup instead).
        """
        ref = TableRef.parse(ref) if isinstance(ref, str) else ref
        location = self._metadata_location(ref)
        cached = self._loaded.get(str(ref))
        if location is not None and cached is not None and cached.metadata_location == location:
            return cached
        try:
            table = self.iceberg.load_table(str(ref))
            self._loaded[str(ref)] = table
            return table
        except NoSuchTableError:
            known = [str(t) for t in self.list_tables()]
            from lakeplane.errors import did_you_mean

            raise TableNotFoundError(
                f"table '{ref}' does not exist{did_you_mean(str(ref), known)}", table=str(ref)
            ) from None

    def _metadata_location(self, ref: TableRef, quiet: bool = True) -> str | None:
        """The table's metadata file as the catalog names it (None: no such table; also, when
        ``quiet``, when the catalog's table cannot be read)."""
        query = sa.text(
            "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = :catalog "
            "AND table_namespace = :namespace AND table_name = :name"
        )
        try:
            with self.state_engine.connect() as conn:
                row = conn.execute(
                    query,
                    {"catalog": self.iceberg.name, "namespace": ".".join(ref.namespace), "name": ref.name},
                ).first()
        except sa.exc.SQLAlchemyError:
            if quiet:
                return None
            raise
        return str(row[0]) if row else None

    def create(
        self, ref: TableRef, schema: Schema, spec: PartitionSpec, properties: dict[str, str] | None = None
    ) -> Table:
        """Create ``ref`` (and its namespaces) at ``<root>/<zone>/<domain>/<name>``.

        Safe when several processes create the same table at once: one creates it and the others
        load and return it (its schema and spec are the winner's).
        """
        self.create_namespaces(ref)
        self._names = None
        try:
            return self.iceberg.create_table(
                str(ref),
                schema=schema,
                partition_spec=spec,
                location=self.storage.uri(f"{ref.zone}/{ref.domain}/{ref.name}"),
                properties={
                    "write.parquet.compression-codec": "zstd",
                    **NO_PYICEBERG_RETRY,
                    **(properties or {}),
                },
            )
        except TableAlreadyExistsError:
            return self.load(ref)

    def create_namespaces(self, ref: TableRef) -> None:
        """Create the namespaces ``(domain,)`` and ``(domain, zone)`` of ``ref`` if they are missing."""
        for depth in (1, 2):
            namespace = ref.namespace[:depth]
            try:
                self.iceberg.create_namespace(namespace)
            except NamespaceAlreadyExistsError:
                pass
            except sa.exc.IntegrityError:  # another process created it in the same instant
                if not self.iceberg.namespace_exists(namespace):
                    raise

    def register_metadata(self, ref: TableRef, metadata_location: str) -> Table:
        """Add an existing Iceberg table to the catalog as ``ref``, at its metadata file as it is."""
        self.create_namespaces(ref)
        self._names = None
        return self.iceberg.register_table(str(ref), metadata_location)

    def forget_names(self) -> None:
        """Read the table names again on the next :meth:`resolve` (a table was added elsewhere)."""
        self._names = None

    def table_names(self) -> list[TableRef]:
        """Every ``<domain>.<zone>.<name>`` table of the catalog, from one query, kept until a table
        is added through this catalog (:meth:`create`, :meth:`register_metadata`)."""
        if self._names is None:
            query = sa.text("SELECT table_namespace, table_name FROM iceberg_tables WHERE catalog_name = :c")
            with self.state_engine.connect() as conn:
                rows = conn.execute(query, {"c": self.iceberg.name}).all()
            self._names = sorted(
                (TableRef.parse(f"{ns}.{name}") for ns, name in rows if str(ns).count(".") == 1),
                key=str,
            )
        return self._names

    def resolve(self, name: str, default_domain: str) -> TableRef:
        """The table a name as written stands for (see :func:`lakeplane.catalog.names.resolve_name`)."""
        known = lambda: [str(ref) for ref in self.table_names()]  # noqa: E731
        return TableRef.parse(resolve_name(name, default_domain, known, self.forget_names))

    def list_tables(self) -> list[TableRef]:
        refs: list[TableRef] = []
        for (domain,) in self.iceberg.list_namespaces():
            for namespace in self.iceberg.list_namespaces((domain,)):
                for identifier in self.iceberg.list_tables(namespace):
                    refs.append(TableRef(*identifier))
        zone_order = {z.value: i for i, z in enumerate(Zone)}
        return sorted(refs, key=lambda r: (r.domain, zone_order.get(r.zone, 9), r.name))

    def describe(self, ref: TableRef | str) -> dict[str, Any]:
        """Schema, partition spec, snapshots and live files of a table, as plain data.

        ``files`` are the data files of main's current snapshot, as a scan plans them: ``path``,
        ``records``, ``bytes`` and ``partition`` (its values, ``{"ds": "2026-11-01"}``).
        Each snapshot says whether it is on main's lineage
        (``on_main``) and, if not, the branch holding it (an audit branch whose publish is pending)
        or ``None`` for one no branch holds (an audit that failed, a commit main moved past): such
        snapshots were never what readers of main saw.
        """
        table = self.load(ref)
        files = (
            [
                {
                    "path": task.file.file_path,
                    "records": task.file.record_count,
                    "bytes": task.file.file_size_in_bytes,
                    "partition": _partition_values(table, task.file.spec_id, task.file.partition),
                }
                for task in table.scan().plan_files()
            ]
            if table.current_snapshot()
            else []
        )
        branch_of = _branch_of_each_snapshot(table)
        return {
            "table": str(ref),
            "location": table.location(),
            "format_version": table.format_version,
            "schema": [
                {"id": f.field_id, "name": f.name, "type": str(f.field_type), "required": f.required}
                for f in table.schema().fields
            ],
            "partition_spec": [
                {
                    "source": table.schema().find_column_name(p.source_id),
                    "transform": str(p.transform),
                    "name": p.name,
                }
                for p in table.spec().fields
            ],
            "snapshots": [
                {
                    "snapshot_id": s.snapshot_id,
                    "at": dt.datetime.fromtimestamp(s.timestamp_ms / 1000, dt.UTC).isoformat(
                        timespec="seconds"
                    ),
                    "operation": s.summary.operation.value if s.summary else None,
                    "on_main": branch_of.get(s.snapshot_id) == MAIN_BRANCH,
                    "branch": branch_of.get(s.snapshot_id),
                    "summary": {
                        k: v for k, v in (s.summary.additional_properties.items() if s.summary else [])
                    },
                }
                for s in table.snapshots()
            ],
            "current_snapshot_id": table.current_snapshot().snapshot_id  # type: ignore[union-attr]
            if table.current_snapshot()
            else None,
            "files": files,
            "records": sum(f["records"] for f in files),
            "bytes": sum(f["bytes"] for f in files),
        }


def _partition_values(table: Table, spec_id: int, partition: Record) -> dict[str, Any]:
    """A data file's partition tuple as ``{partition field: value}``, each value as Iceberg shows it
    (``2026-11-01`` for a date, not its day number); ``None`` for a null."""
    spec = table.specs().get(spec_id)
    if spec is None:
        return {}
    schema = table.schema()
    values: dict[str, Any] = {}
    for position, field in enumerate(spec.fields):
        value = partition[position] if position < len(partition) else None
        if value is None:
            values[field.name] = None
            continue
        try:
            source = schema.find_field(field.source_id).field_type
            values[field.name] = field.transform.to_human_string(field.transform.result_type(source), value)
        except ValueError:  # the source column was dropped since: show the stored value
            values[field.name] = str(value)
    return values


def _branch_of_each_snapshot(table: Table) -> dict[int, str]:
    """For each snapshot on a branch's lineage, that branch: ``main`` first, then the others by name.
    Snapshots no branch reaches are left out."""
    refs = table.metadata.refs
    names = [MAIN_BRANCH] * (MAIN_BRANCH in refs) + sorted(
        n for n, r in refs.items() if n != MAIN_BRANCH and r.snapshot_ref_type == SnapshotRefType.BRANCH
    )
    found: dict[int, str] = {}
    for name in names:
        for snapshot in ancestors_of(table.snapshot_by_id(refs[name].snapshot_id), table.metadata):
            found.setdefault(snapshot.snapshot_id, name)
    return found


#: How long a SQLite connection waits for another process's write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def _configure_sqlite(engine: sa.Engine) -> None:
    """Make a SQLite catalog database fit for several processes writing at once.

    WAL lets readers go on while one process commits (the rollback journal blocks them), and a
    generous busy timeout makes a writer wait for the lock instead of failing with "database is
    locked". WAL is a property of the file, set once by whoever gets there first; the timeout is
    per connection, so the pool is emptied to apply it to connections made before.
    """

    @sa.event.listens_for(engine, "connect")
    def _on_connect(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                # another process may hold the file: it stays as it is until the next connection
                with contextlib.suppress(Exception):
                    cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    engine.dispose()


def _is_create_race(exc: sa.exc.DatabaseError) -> bool:
    text = str(exc.orig).lower()
    return "already exists" in text or "duplicate key" in text or "unique constraint" in text


def _redact(uri: str) -> str:
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return uri
