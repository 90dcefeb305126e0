"""Running the independent readers (``readers.py`` in ``.venv-readers``) and comparing their rows
with lakeplane's answers: sorted rows, values normalised only where the same value has two Python
spellings (an aware timestamp, NaN)."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc

from lakeplane.lake import Lake, open_lake

READER_SCRIPT = Path(__file__).with_name("readers.py")

#: The readers, each a different implementation: DuckDB 1.5's C++ iceberg extension, pyiceberg
#: (pyarrow), iceberg-rust (pyiceberg-core's DataFusion table provider), polars' and daft's own
#: Parquet readers over pyiceberg's planning.
READERS = ("duckdb", "pyiceberg", "datafusion", "polars", "daft")

Row = tuple[object, ...]


@dataclass(frozen=True)
class Rows:
    """A table's contents as compared: column names in order, and every row, sorted."""

    names: tuple[str, ...]
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Read:
    """One read a reader is asked for: the table at ``metadata`` (at ``snapshot_id``, if given)."""

    key: str
    metadata: str
    snapshot_id: int | None = None


@dataclass
class Answer:
    """What a read returned: rows, or the reader's error."""

    rows: Rows | None = None
    error: str | None = None


#: Each read's answer by its key.
Answers = dict[str, Answer]


def normal(value: object) -> object:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def rows_of(table: pa.Table) -> Rows:
    rows = [tuple(normal(v) for v in row.values()) for row in table.to_pylist()]
    return Rows(tuple(table.column_names), tuple(sorted(rows, key=repr)))


def run_reader(python: Path, reader: str, reads: list[Read], out: Path, timeout: float = 600) -> Answers:
    """Every read of ``reads`` by ``reader`` in one process of the readers' environment."""
    out.mkdir(parents=True, exist_ok=True)
    job = out / "job.json"
    job.write_text(
        json.dumps(
            {
                "reader": reader,
                "out": str(out),
                "reads": [
                    {"key": r.key, "metadata": r.metadata, "snapshot_id": r.snapshot_id} for r in reads
                ],
            }
        )
    )
    done = subprocess.run(
        [str(python), str(READER_SCRIPT), str(job)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:  # the process died (a crash in native code, say): every read failed
        why = f"{reader} exited {done.returncode}: {done.stderr[-1500:]}"
        return {r.key: Answer(error=why) for r in reads}
    answers: Answers = {}
    results: dict[str, dict[str, Any]] = json.loads((out / "result.json").read_text())
    for read in reads:
        result = results[read.key]
        if result["error"] is not None:
            answers[read.key] = Answer(error=result["error"])
            continue
        with pa.memory_map(str(out / f"{read.key}.arrow")) as source:
            answers[read.key] = Answer(rows=rows_of(pyarrow.ipc.open_file(source).read_all()))
    return answers


def lakeplane_rows(lake: Lake, table: str, where: str = "TRUE") -> Answer:
    """``SELECT *`` of ``table`` through lakeplane's own query path (on ``lake``'s engine)."""
    try:
        return Answer(rows=rows_of(lake.query(f"SELECT * FROM {table} WHERE {where}")))
    except Exception as exc:  # an error is an answer to compare (and to report), not a crash here
        return Answer(error=f"{type(exc).__name__}: {exc}")


def reading_lake(lake: Lake) -> Lake:
    """The lake opened on the embedded engine, whatever engine wrote it."""
    return open_lake(lake.project_dir, {"engine": {"type": "duckdb"}})


def kinds_of(rows: Rows) -> list[str]:
    """Each column's Python value types (NULLs aside), e.g. ``Decimal`` or ``float|int``."""
    kinds: list[set[str]] = [set() for _ in rows.names]
    for row in rows.rows:
        for i, value in enumerate(row):
            if value is not None:
                kinds[i].add(type(value).__name__)
    return ["|".join(sorted(k)) for k in kinds]


def differences(
    expected: Answer, got: Answer, limit: int = 3, sides: tuple[str, str] = ("lakeplane", "the reader")
) -> str | None:
    """Why ``got`` is not ``expected``, or None when they are the same rows; ``sides`` names them."""
    want_side, got_side = sides
    if expected.error is not None:
        return f"{want_side} failed: {expected.error}"
    if got.error is not None:
        return f"{got_side} failed: {got.error}"
    assert expected.rows is not None and got.rows is not None
    if got.rows.names != expected.rows.names:
        return f"{got_side}'s columns {list(got.rows.names)} != {want_side}'s {list(expected.rows.names)}"
    if got.rows.rows == expected.rows.rows:  # equal values: 1 == 1.0 == Decimal(1), so the types too
        wrong = [
            f"{name}: {g} != {w}"
            for name, g, w in zip(got.rows.names, kinds_of(got.rows), kinds_of(expected.rows), strict=True)
            if g != w
        ]
        return f"{got_side}'s value types differ from {want_side}'s: {wrong}" if wrong else None
    have, want = set(got.rows.rows), set(expected.rows.rows)
    missing = [r for r in expected.rows.rows if r not in have][:limit]
    extra = [r for r in got.rows.rows if r not in want][:limit]
    return (
        f"{got_side} has {len(got.rows.rows)} rows, {want_side} {len(expected.rows.rows)}; "
        f"missing e.g. {missing}; unexpected e.g. {extra}"
    )
