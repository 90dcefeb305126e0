"""DuckDB connections handed from one job to the next within a process.

Opening an in-memory DuckDB database takes about 12 ms, and a nightly run opens one for every step.
A session that ends normally gives its connection back here, emptied: its temporary tables and
views (including registered Arrow data) are dropped and the settings a job may change are put back.
The next session of the same size (memory limit, threads, spill folder) takes it instead of opening
a new database. A connection that was sandboxed, or that could not be emptied, is closed instead,
and at most one idle connection is kept per size. Connections are never shared: a session owns its
connection until it ends, so concurrent sessions each have their own.

The quoting of DuckDB names and literals lives here too, for this module and every one above it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from lakeplane.units import parse_size

#: What a job may change on its connection, and the value a new connection has.
RESETS = ("RESET TimeZone", "SET preserve_insertion_order = false", "PRAGMA disable_profiling")
#: The memory DuckDB works with per thread (a reader's buffers, the row group each thread builds).
#: Measured: reading a 1.2 M-row NDJSON batch into a table at a 96 MB limit failed out of memory in
#: 1 to 4 of 4 tries with 2 threads (the more often, the busier the machine) and in none with 1; at
#: 128 MB, 2 threads never failed.
MEMORY_PER_THREAD = 64 << 20


@dataclass(frozen=True)
class Size:
    """What a connection is opened with: the job's memory limit, threads and spill folder root."""

    memory_limit: str
    threads: int | None
    temp_root: Path

    @property
    def threads_run(self) -> int:
        """The threads the job's connection runs: its own (else every core), at most one per
        :data:`MEMORY_PER_THREAD` of its memory limit, so a small limit is not overrun by the
        threads' own working memory."""
        wanted = self.threads or os.cpu_count() or 1
        try:
            return max(1, min(wanted, parse_size(self.memory_limit) // MEMORY_PER_THREAD))
        except ValueError:  # a limit DuckDB reads and lakeplane does not: DuckDB's own rule
            return wanted


@dataclass
class Connection:
    """A DuckDB connection and the spill folder DuckDB itself writes to (removed with it)."""

    con: duckdb.DuckDBPyConnection
    temp_dir: Path

    def close(self) -> None:
        try:
            self.con.close()
        finally:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


_lock = threading.Lock()
_idle: dict[Size, Connection] = {}


def open_connection(size: Size) -> Connection:
    """An idle connection of ``size``, or a new one.

    Raises:
        duckdb.Error: DuckDB refused one of the settings (the new connection is closed).
    """
    with _lock:
        idle = _idle.pop(size, None)
    if idle is not None:
        return idle
    temp_dir = size.temp_root / f"duckdb-{uuid.uuid4().hex[:8]}"
    temp_dir.mkdir(parents=True, exist_ok=True)
    connection = Connection(
        duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}),
        temp_dir,
    )
    try:
        connection.con.execute(f"SET memory_limit = {quote_literal(size.memory_limit)}")
        connection.con.execute(f"SET temp_directory = {quote_literal(str(temp_dir))}")
        connection.con.execute(f"SET threads = {size.threads_run}")
        for statement in RESETS:
            connection.con.execute(statement)
        connection.con.execute("SET enable_progress_bar = false")
    except duckdb.Error:
        connection.close()
        raise
    return connection


def give_back(size: Size, connection: Connection, reusable: bool) -> None:
    """End a session's use of ``connection``: emptied and kept for the next session of ``size``
    when ``reusable`` and no connection of that size is idle already, else closed."""
    if reusable and _empty(connection.con):
        with _lock:
            if size not in _idle:
                _idle[size] = connection
                return
    connection.close()


def _empty(con: duckdb.DuckDBPyConnection) -> bool:
    """Drop what a job left on ``con`` and put its settings back; False if that failed."""
    try:
        for kind, listing in (
            ("VIEW", "SELECT view_name FROM duckdb_views() WHERE temporary AND NOT internal"),
            ("TABLE", "SELECT table_name FROM duckdb_tables() WHERE temporary"),
        ):
            for (name,) in con.execute(listing).fetchall():
                con.execute(f"DROP {kind} IF EXISTS temp.{quote_ident(name)}")
        for statement in RESETS:
            con.execute(statement)
    except duckdb.Error:
        return False
    return True


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@atexit.register
def close_idle() -> None:
    """Close every idle connection (at exit, and for tests that count open databases)."""
    with _lock:
        idle = list(_idle.values())
        _idle.clear()
    for connection in idle:
        connection.close()
