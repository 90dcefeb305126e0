"""Query-result reuse that is never stale and never crosses principals who see different things.

A result is stored under a digest of everything it depends on:

* the **secured SQL** the engine ran: the compiled SQL after the governance rewrite, holding the
  principal's masks and row filters (with the principal's attributes already written in as
  literals), and the alias each table is registered under;
* the **policy version** in force (number, digest and column bindings): a changed policy misses;
* the **snapshot id and metadata file of every table read**: a new snapshot misses, and so does a
  schema or name-mapping change that leaves the snapshot as it was.

Two principals whose secured SQL is identical under the same policy version share an entry: the
same SQL over the same snapshots returns the same rows, so neither can see through it what it
could not see by running the query. Principals with different masks or filters compile to
different SQL and never meet. The secured SQL may hold the hash mask's key material: only its
SHA-256 digest is kept, as the entry's file name.

Queries whose answer may change without any table changing are never stored: ``random()``,
``now()`` / ``current_timestamp`` / ``current_date``, ``uuid()``, ``TABLESAMPLE`` and their kin,
found on the secured query's syntax tree (so in row filters and masks too).

Entries are Arrow IPC files in ``<state dir>/results`` (mode 600), shared by every process of the
project; the folder is kept under a size bound by removing the least recently used entries, and an
entry older than the reader's ``max_age`` is a miss. Whether reuse applies, and for how long, is
the principal's workgroup's ``result_reuse: {enabled, max_age}`` (:func:`workgroup_reuse`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
from sqlglot import exp

from lakeplane.config import ResultReuseConfig
from lakeplane.query.compiler import CompiledQuery
from lakeplane.query.warm import TableVersion

#: The schema metadata key of a query result saying whether it was reused.
CACHE_HIT = b"lakeplane.cache_hit"
#: When a stored result was computed (seconds since the epoch), in its file's schema metadata.
_STORED_AT = b"lakeplane.stored_at"
#: Default bound of the results folder, and the share of it one result may take.
DEFAULT_MAX_BYTES = 256 * 1024**2
_LARGEST_SHARE = 4
#: How long a result is reused when reuse is asked for without a max age.
DEFAULT_MAX_AGE_S = 3600.0


@dataclass(frozen=True)
class ReusePolicy:
    """Whether results are reused, and how old a reused one may be."""

    max_age_s: float = DEFAULT_MAX_AGE_S


def workgroup_reuse(settings: ResultReuseConfig | None) -> ReusePolicy | None:
    """The reuse a workgroup's ``result_reuse`` settings allow (None: no workgroup, or reuse off)."""
    if settings is None or not settings.enabled:
        return None
    return ReusePolicy(max_age_s=settings.max_age)


#: Calls whose value changes from one run to the next, whatever the tables hold.
_VOLATILE_NODES: tuple[type[exp.Expression], ...] = (
    exp.Rand,
    exp.Randn,
    exp.Randstr,
    exp.Uuid,
    exp.CurrentDate,
    exp.CurrentDatetime,
    exp.CurrentTime,
    exp.CurrentTimestamp,
    exp.CurrentTimestampLTZ,
    exp.Localtime,
    exp.Localtimestamp,
    exp.CurrentUser,
    exp.CurrentRole,
    exp.CurrentSchema,
    exp.CurrentDatabase,
    exp.CurrentCatalog,
    exp.CurrentTimezone,
    exp.TableSample,
)
_VOLATILE_NAMES = frozenset(
    {
        "random",
        "rand",
        "setseed",
        "uuid",
        "uuidv4",
        "uuidv7",
        "gen_random_uuid",
        "now",
        "today",
        "get_current_time",
        "get_current_timestamp",
        "transaction_timestamp",
        "statement_timestamp",
        "clock_timestamp",
        "timeofday",
        "current_localtime",
        "current_localtimestamp",
        "nextval",
        "currval",
        "sysdate",
        "systimestamp",
        "unix_timestamp",
        "shuffle",
        "rand_uniform",
    }
)


def volatile_reason(expression: exp.Expression) -> str | None:
    """Why a query's answer may change with no table changing (a call or a sample), else None."""
    for node in expression.walk():
        if isinstance(node, _VOLATILE_NODES):
            return node.sql_name().lower() if isinstance(node, exp.Func) else "TABLESAMPLE"
        if isinstance(node, exp.Anonymous) and str(node.name).lower() in _VOLATILE_NAMES:
            return str(node.name).lower()
    return None


def result_key(compiled: CompiledQuery, versions: Mapping[str, TableVersion], policy: str) -> str:
    """The digest a result is stored under (see the module's docstring for what goes in)."""
    digest = hashlib.sha256(b"lakeplane result v1\n")
    digest.update(compiled.sql.encode())
    for binding in sorted(compiled.tables, key=lambda b: b.alias):
        version = versions[binding.table]
        digest.update(
            f"\n{binding.alias}\t{binding.table}\t{version.snapshot_id}\t{version.metadata_location}".encode()
        )
    digest.update(b"\npolicy\t" + policy.encode())
    return digest.hexdigest()


class ResultCache:
    """Results as Arrow IPC files in ``folder``, at most ``max_bytes`` in all (least recently used
    go first). Safe for several threads and processes: files appear by atomic rename and an entry
    removed under a reader is a miss.
    """

    def __init__(self, folder: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._bytes: int | None = None  # this process's estimate of the folder's size

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.arrow"

    def get(self, key: str, max_age_s: float) -> pa.Table | None:
        """The result stored under ``key`` if it is at most ``max_age_s`` old."""
        path = self._path(key)
        try:
            with pa.memory_map(str(path)) as source:
                table = ipc.open_file(source).read_all()
        except (FileNotFoundError, pa.ArrowInvalid, OSError):
            return None
        stored_at = float((table.schema.metadata or {}).get(_STORED_AT, b"0"))
        if time.time() - stored_at > max_age_s:
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: evicted last
        metadata = {k: v for k, v in (table.schema.metadata or {}).items() if k != _STORED_AT}
        return table.replace_schema_metadata(metadata or None)

    def put(self, key: str, table: pa.Table) -> bool:
        """Store ``table`` under ``key``; False when it is too large to keep."""
        metadata = dict(table.schema.metadata or {})
        metadata[_STORED_AT] = repr(time.time()).encode()
        table = table.replace_schema_metadata(metadata)
        if table.nbytes * _LARGEST_SHARE > self.max_bytes:
            return False
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = self.folder / f".{key}.{uuid.uuid4().hex}.tmp"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out, ipc.new_file(out, table.schema) as writer:
            writer.write_table(table)
        size = partial.stat().st_size
        partial.replace(self._path(key))
        with self._lock:
            self._bytes = (self._folder_bytes() if self._bytes is None else self._bytes) + size
            if self._bytes > self.max_bytes:
                self._bytes = self._evict()
        return True

    def _folder_bytes(self) -> int:
        return sum(entry.stat().st_size for entry in self._entries())

    def _entries(self) -> list[Path]:
        try:
            return [p for p in self.folder.iterdir() if p.suffix == ".arrow"]
        except FileNotFoundError:
            return []

    def _evict(self) -> int:
        """Remove the least recently used entries until the folder is under three quarters of the bound."""
        entries = []
        for path in self._entries():
            with contextlib.suppress(FileNotFoundError):
                stat = path.stat()
                entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes * 3 // 4:
                break
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            total -= size
        return total

    def clear(self) -> None:
        """Forget every stored result."""
        with self._lock:
            for path in self._entries():
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            self._bytes = 0


def with_cache_hit(table: pa.Table, hit: bool) -> pa.Table:
    """``table`` with :data:`CACHE_HIT` in its schema metadata."""
    metadata = dict(table.schema.metadata or {})
    metadata[CACHE_HIT] = b"true" if hit else b"false"
    return table.replace_schema_metadata(metadata)


def cache_hit(table: pa.Table | pa.Schema) -> bool:
    """Whether a query result was reused (read from its schema metadata)."""
    schema = table if isinstance(table, pa.Schema) else table.schema
    return (schema.metadata or {}).get(CACHE_HIT) == b"true"
