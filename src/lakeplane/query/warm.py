"""What a long-lived process keeps between queries, valid only while the tables stay as they were.

A query's fixed cost is mostly work that gives the same answer until a table or the policy changes:
compiling (parse, access decisions, rewrite), planning each table's files from its manifests, and
opening a DuckDB connection with a view per table. A warm process keeps all three, each keyed by
what it was made from, so a commit to a table or a new policy version misses and is made afresh:

* :class:`CompileCache`: the compiled (secured) query by SQL, parameters, principal, dialects,
  policy version and mask key; an entry holds only while every table it read is still at the
  metadata file it was compiled against (one indexed catalog lookup per table).
* :class:`PlanCache`: a table's planned files by table, metadata file and pruning filter.
* :class:`SessionPool`: sandboxed DuckDB sessions by the exact views they hold (alias, table,
  metadata file, pruning filter). A session's views are the table files as planned, with no mask
  or filter of anyone's in them: masks and row filters live in the compiled SQL each principal
  runs. So a pooled session is the very session a fresh one would be, and the sandbox set when it
  was opened (``enable_external_access = false``, ``lock_configuration = true``) still holds; a
  query borrows it alone and gives it back, and one that failed closes it.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from lakeplane.catalog import LakeCatalog
from lakeplane.engines.base import EngineSession, ScanSource
from lakeplane.query.compiler import CompiledQuery, TableBinding

#: How many compiled queries, planned scans and idle sessions a process keeps.
COMPILED_ENTRIES = 512
PLAN_ENTRIES = 256
IDLE_SESSIONS = 24

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """A thread-safe least-recently-used map of at most ``size`` entries."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class TableVersion:
    """Where a table stood when a query read it: its metadata file and current snapshot."""

    table: str
    metadata_location: str
    snapshot_id: int | None


def table_versions(catalog: LakeCatalog, tables: list[str]) -> dict[str, TableVersion]:
    """The current version of each table (``catalog.load`` reparses only a moved metadata file)."""
    versions = {}
    for name in tables:
        table = catalog.load(name)
        snapshot = table.current_snapshot()
        versions[name] = TableVersion(
            name, table.metadata_location, snapshot.snapshot_id if snapshot is not None else None
        )
    return versions


def params_key(params: Mapping[str, Any] | None) -> str:
    """Parameter values as text that differs whenever a value or its type does."""
    return repr(sorted((name, type(value).__name__, value) for name, value in (params or {}).items()))


@dataclass(frozen=True)
class _Compiled:
    query: CompiledQuery
    versions: dict[str, str]  # table -> metadata file it was compiled against


class CompileCache:
    """Compiled queries, each valid while its tables keep the metadata file it was compiled against.

    Compiling reads the tables' schemas (and, governed, the principal's access under the policy
    version in ``key``); nothing else it reads can change without one of these changing.
    """

    def __init__(self, catalog: LakeCatalog, size: int = COMPILED_ENTRIES) -> None:
        self.catalog = catalog
        self._entries: BoundedCache[tuple[str, ...], _Compiled] = BoundedCache(size)

    def get(self, key: tuple[str, ...]) -> tuple[CompiledQuery, dict[str, TableVersion]] | None:
        """The compiled query and its tables' current versions, if none moved since it was compiled."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        current = table_versions(self.catalog, list(entry.versions))
        if any(current[t].metadata_location != location for t, location in entry.versions.items()):
            return None
        return entry.query, current

    def put(self, key: tuple[str, ...], query: CompiledQuery, versions: Mapping[str, TableVersion]) -> None:
        self._entries.put(key, _Compiled(query, {t: v.metadata_location for t, v in versions.items()}))


def compile_key(
    sql: str,
    params: Mapping[str, Any] | None,
    principal: str | None,
    *,
    read: str,
    write: str,
    policy: str,
    mask_key: bytes,
    names: str,
) -> tuple[str, ...]:
    """What a compile's result depends on besides the tables it read (``policy``: the version and
    its column bindings; the mask key by digest only, never in clear; ``names``: the catalog's table
    names, which decide what a short name resolves to)."""
    key_digest = hashlib.sha256(b"lakeplane mask key\n" + mask_key).hexdigest() if mask_key else ""
    return (sql, params_key(params), principal or "", read, write, policy, key_digest, names)


def scan_key(binding: TableBinding, version: TableVersion) -> tuple[str, str, str]:
    """What a planned scan depends on: the table, its metadata file and the pruning filter."""
    return (binding.table, version.metadata_location, repr(binding.row_filter))


class PlanCache(BoundedCache[tuple[str, str, str], ScanSource]):
    """Planned scans by :func:`scan_key`: the same table version and filter give the same files."""

    def __init__(self, size: int = PLAN_ENTRIES) -> None:
        super().__init__(size)


#: A pooled session's identity: per view, its alias and :func:`scan_key`.
SessionKey = tuple[tuple[str, tuple[str, str, str]], ...]


def session_key(bindings: list[TableBinding], versions: Mapping[str, TableVersion]) -> SessionKey:
    return tuple(sorted((b.alias, scan_key(b, versions[b.table])) for b in bindings))


class SessionPool:
    """Idle sandboxed sessions by the views they hold; at most ``size`` idle, the oldest closed first.

    Args:
        size: idle sessions kept across all keys.
    """

    def __init__(self, size: int = IDLE_SESSIONS) -> None:
        self.size = size
        self._idle: OrderedDict[tuple[SessionKey, int], EngineSession] = OrderedDict()
        self._lock = threading.Lock()
        self._serial = 0
        self.opened = 0

    def borrow(self, key: SessionKey, open_session: Callable[[], EngineSession]) -> EngineSession:
        """An idle session holding exactly ``key``'s views, else a new one from ``open_session``
        (which registers them and sandboxes it)."""
        with self._lock:
            for pooled in reversed(self._idle):
                if pooled[0] == key:
                    return self._idle.pop(pooled)
            self.opened += 1
        return open_session()

    def give_back(self, key: SessionKey, session: EngineSession) -> None:
        """Keep ``session`` for the next query with the same views (closing the oldest past the bound)."""
        evicted = []
        with self._lock:
            self._serial += 1
            self._idle[(key, self._serial)] = session
            while len(self._idle) > self.size:
                evicted.append(self._idle.popitem(last=False)[1])
        for old in evicted:
            old.close()

    def close(self) -> None:
        """Close every idle session (their spill folders go with them)."""
        with self._lock:
            idle, self._idle = list(self._idle.values()), OrderedDict()
        for session in idle:
            session.close()

    def __len__(self) -> int:
        return len(self._idle)


class WarmState:
    """The caches one :class:`lakeplane.query.service.Queries` keeps for as long as it lives."""

    def __init__(self, catalog: LakeCatalog) -> None:
        self.compiled = CompileCache(catalog)
        self.plans = PlanCache()
        self.sessions = SessionPool()

    def close(self) -> None:
        self.sessions.close()
