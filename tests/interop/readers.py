"""Reads Iceberg tables with one independent reader, for the interop tier to compare with lakeplane.

Runs in the readers' own virtualenv (``.venv-readers``, see ``scripts/readers-venv.sh``), never in
lakeplane's: it imports nothing from lakeplane and reads only what a table's metadata file says.

    .venv-readers/bin/python tests/interop/readers.py JOB.json

``JOB.json`` holds ``{"reader": NAME, "out": FOLDER, "reads": [{"key": K, "metadata": URI,
"snapshot_id": ID or null}, ...]}``. Each read of the table whose metadata file is ``URI`` (at
snapshot ``ID``, else at the metadata's current snapshot) is written as the Arrow IPC file
``FOLDER/K.arrow``; ``FOLDER/result.json`` maps each key to ``{"error": text or null, "rows": n}``.
A read that fails is recorded and the others go on.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("POLARS_ICEBERG_PLANNER", "pyiceberg")  # polars' planner plugin is not installed

import pyarrow as pa


class Unsupported(Exception):
    """The reader has no way to do what the read asks (a snapshot id, say)."""


def local(uri: str) -> str:
    return uri.removeprefix("file://")


def extension_file(package: str, name: str) -> str:
    """The DuckDB extension binary that the PyPI package ``package`` ships."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise Unsupported(f"{package} is not installed")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob(f"extensions/*/{name}.duckdb_extension"))
    if not found:
        raise Unsupported(f"{package} ships no {name}.duckdb_extension under {folder}")
    return str(found[-1])


class DuckDBReader:
    """DuckDB 1.5's iceberg extension, loaded from its PyPI package's file (no download)."""

    def __init__(self) -> None:
        import duckdb

        self.con: Any = duckdb.connect(  # DuckDB 1.5 here: not the 2.0 that lakeplane's stubs describe
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
        )
        self.con.execute(f"LOAD '{extension_file('duckdb_extension_avro', 'avro')}'")
        self.con.execute(f"LOAD '{extension_file('duckdb_extension_iceberg', 'iceberg')}'")

    def __call__(self, metadata: str, snapshot_id: int | None) -> pa.Table:
        options = f", snapshot_from_id => {int(snapshot_id)}" if snapshot_id is not None else ""
        path = local(metadata).replace("'", "''")
        result = self.con.execute(f"SELECT * FROM iceberg_scan('{path}'{options})")
        return result.to_arrow_table()


def pyiceberg_read(metadata: str, snapshot_id: int | None) -> pa.Table:
    """pyiceberg's own scan (pyarrow underneath)."""
    from pyiceberg.table import StaticTable

    return StaticTable.from_metadata(metadata).scan(snapshot_id=snapshot_id).to_arrow()


def datafusion_read(metadata: str, snapshot_id: int | None) -> pa.Table:
    """iceberg-rust: pyiceberg-core's DataFusion table provider in a DataFusion session."""
    from datafusion import SessionContext
    from pyiceberg_core.datafusion import IcebergDataFusionTable

    if snapshot_id is not None:
        # pyiceberg-core 0.10's provider takes (identifier, metadata_location, file_io_properties)
        # and always scans the metadata's current snapshot.
        takes = inspect.signature(IcebergDataFusionTable).parameters
        if "snapshot_id" not in takes:
            raise Unsupported("IcebergDataFusionTable takes no snapshot id: no time travel")
        provider = IcebergDataFusionTable(["interop", "t"], metadata, {}, snapshot_id=snapshot_id)
    else:
        provider = IcebergDataFusionTable(["interop", "t"], metadata, {})
    ctx = SessionContext()
    ctx.register_table("t", provider)
    return ctx.sql("SELECT * FROM t").to_arrow_table()


def polars_read(metadata: str, snapshot_id: int | None) -> pa.Table:
    """polars ``scan_iceberg`` (its own Parquet reader; pyiceberg plans the files)."""
    import polars as pl

    return pl.scan_iceberg(metadata, snapshot_id=snapshot_id).collect().to_arrow()


def daft_read(metadata: str, snapshot_id: int | None) -> pa.Table:
    """daft ``read_iceberg`` (its own Parquet reader; pyiceberg plans the files)."""
    import daft

    return daft.read_iceberg(metadata, snapshot_id=snapshot_id).to_arrow()


READERS: dict[str, Callable[[], Callable[[str, int | None], pa.Table]]] = {
    "duckdb": DuckDBReader,
    "pyiceberg": lambda: pyiceberg_read,
    "datafusion": lambda: datafusion_read,
    "polars": lambda: polars_read,
    "daft": lambda: daft_read,
}


def run(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = Path(job["out"])
    out.mkdir(parents=True, exist_ok=True)
    read = READERS[job["reader"]]()
    results: dict[str, dict[str, Any]] = {}
    for item in job["reads"]:
        started = time.perf_counter()
        try:
            table = read(item["metadata"], item.get("snapshot_id"))
        except Unsupported as exc:
            results[item["key"]] = {"error": f"unsupported: {exc}", "rows": None}
            continue
        except Exception as exc:  # any reader failure is a result to compare, not a crash
            text = f"{type(exc).__name__}: {exc}"
            trace = traceback.format_exc(limit=3)
            results[item["key"]] = {"error": text, "trace": trace, "rows": None}
            continue
        with (
            pa.OSFile(str(out / f"{item['key']}.arrow"), "wb") as sink,
            pa.ipc.new_file(sink, table.schema) as ipc,
        ):
            ipc.write_table(table)
        results[item["key"]] = {
            "error": None,
            "rows": table.num_rows,
            "seconds": round(time.perf_counter() - started, 3),
        }
    (out / "result.json").write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} JOB.json")
    run(json.loads(Path(sys.argv[1]).read_text()))
    # Every answer is written and closed. Skip the interpreter's teardown: daft's native worker
    # threads can take the GIL while it finalizes and abort the process (PyGILState_Release,
    # signal 6) after the reads succeeded, which would turn every answer into a crash.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
