"""The demo lake the interop tier reads: built by one engine, then two tables evolved.

Day 1 runs every model of the demo plus ``curated.evolving`` (a model with an int, a float and a
decimal column). Then ``curated.evolving`` is evolved with pyiceberg's API, as another engine
would (rename, drop, add, re-add a dropped name, reorder, widen int→long, float→double,
decimal(10,2)→decimal(12,2)), its model is rewritten for the new schema and run for day 2; and
``processed.impressions`` is evolved too (drop, rename, add, reorder) and ingests day 2 with its
dataset declaration unchanged. Both tables then hold files written before and after. On DuckDB the
whole demo runs day 2, so every table it changes has an older snapshot to time travel to; Spark
ingests day 2 of the impressions and runs the evolved model alone (a Spark day of the demo costs
~50 s)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import DecimalType, DoubleType, LongType, StringType

from lakeplane.demo import telco
from lakeplane.demo.generator import generate_day
from lakeplane.demo.run import build_project
from lakeplane.lake import Lake
from tests.conftest import DAY1, DAY2, on_engine
from tests.interop.harness import Answer, Read, Row, Rows, lakeplane_rows, reading_lake

IMPRESSIONS = 2_000
CDRS = 1_000
EVOLVING = "adtech.curated.evolving"
EVOLVED_INGEST = "adtech.processed.impressions"
EVOLVED = (EVOLVING, EVOLVED_INGEST)

#: Before: one column of each type that Iceberg lets a schema widen.
MODEL_BEFORE = """-- partition_by: [ds]
SELECT ds, campaign_id, CAST(count(*) AS INTEGER) AS n_imps, CAST(min(bid_price) AS REAL) AS low_bid,
       CAST(max(bid_price) AS DECIMAL(10, 2)) AS max_bid, min(device) AS first_device,
       max(country) AS last_country
FROM processed.impressions WHERE ds = :ds GROUP BY ds, campaign_id
"""

#: After the evolution, the model that fills the new schema (its columns in the table's new order).
MODEL_AFTER = """-- partition_by: [ds]
SELECT CAST(min(bid_price) AS DOUBLE) AS low_bid, ds,
       CAST(max(bid_price) AS DECIMAL(12, 2)) AS max_bid, campaign_id, count(*) AS n_impressions,
       min(device) AS first_device, 'after' AS note, max(country) AS last_country
FROM processed.impressions WHERE ds = :ds GROUP BY ds, campaign_id
"""


def evolve(table: Table) -> None:
    """Rename, drop, add, widen and reorder columns of ``curated.evolving``, one commit each; the
    dropped ``last_country`` comes back as a new column, which must not show the old values."""
    with table.update_schema() as update:
        update.rename_column("n_imps", "n_impressions")
    with table.update_schema() as update:
        update.delete_column("last_country")
    with table.update_schema() as update:
        update.add_column("note", StringType())
    with table.update_schema() as update:  # a new column under a dropped one's name: a new field id
        update.add_column("last_country", StringType())
    with table.update_schema() as update:
        update.update_column("n_impressions", LongType())
        update.update_column("low_bid", DoubleType())
        update.update_column("max_bid", DecimalType(12, 2))
    with table.update_schema() as update:
        update.move_first("low_bid")
        update.move_after("max_bid", "ds")


def evolve_ingested(table: Table) -> None:
    """Drop, rename, add and move columns of ``processed.impressions``, whose dataset still
    declares the old ones: its next ingest adds ``publisher_id`` and ``user_id`` back as new columns."""
    with table.update_schema() as update:
        update.delete_column("publisher_id")
    with table.update_schema() as update:
        update.rename_column("user_id", "visitor_id")
    with table.update_schema() as update:
        update.add_column("note", StringType())
    with table.update_schema() as update:
        update.move_first("page_url")


def as_evolved(before: Rows, old: Schema, new: Schema) -> list[Row]:
    """Rows written under schema ``old`` as the Iceberg spec reads them under ``new``: each column
    found by field id (whatever its name was), NULL for a field the old schema lacked."""
    at = {name: i for i, name in enumerate(before.names)}
    sources = [old.find_column_name(f.field_id) if f.field_id in old.field_ids else None for f in new.fields]
    return [tuple(None if name is None else row[at[name]] for name in sources) for row in before.rows]


@dataclass(frozen=True)
class TableState:
    """A table at one moment: its metadata file, its current snapshot and lakeplane's answer."""

    metadata: str
    snapshot_id: int | None
    answer: Answer


@dataclass
class InteropLake:
    engine: str
    lake: Lake
    #: Every table after day 1, before any evolution.
    written: dict[str, TableState]
    #: Every table at the end.
    final: dict[str, TableState]
    #: Each evolved table at the end as the Iceberg spec says it reads: the rows written before
    #: through the new schema (by field id: renamed, dropped, added as NULL, reordered, widened),
    #: and the rows written after.
    evolved: dict[str, Rows]
    #: lakeplane's answer for each evolved table at the end on the engine that wrote it (the
    #: embedded engine's answer is in :attr:`final`).
    evolved_on_engine: dict[str, Answer]

    def reads(self) -> list[Read]:
        """What every reader reads: each table as written and as it ends, and each table whose
        snapshot changed at its day-1 snapshot, through the final metadata (time travel)."""
        reads = [Read(key("written", t), s.metadata) for t, s in self.written.items()]
        reads += [Read(key("final", t), s.metadata) for t, s in self.final.items()]
        reads += [
            Read(key("travel", t), self.final[t].metadata, s.snapshot_id) for t, s in self.traveled().items()
        ]
        return reads

    def traveled(self) -> dict[str, TableState]:
        """Tables with a newer snapshot at the end than after day 1: their day-1 state."""
        return {t: s for t, s in self.written.items() if s.snapshot_id != self.final[t].snapshot_id}


def key(phase: str, table: str) -> str:
    return f"{phase}.{table}"


def land_day(lake: Lake, drops: Path, day: dt.date, only: str | None = None) -> None:
    files = {**generate_day(drops, day, IMPRESSIONS).files, **telco.generate_day(drops, day, CDRS)}
    for dataset, paths in files.items():
        if only is None or dataset == only:
            lake.land(dataset, paths, day)


def states(lake: Lake) -> dict[str, TableState]:
    """Every table's metadata file, snapshot and lakeplane's answer, read on the embedded engine."""
    reader = reading_lake(lake)
    found = {}
    for ref in reader.tables():
        table = reader.catalog.load(ref)
        snapshot = table.current_snapshot()
        found[str(ref)] = TableState(
            table.metadata_location,
            snapshot.snapshot_id if snapshot else None,
            lakeplane_rows(reader, str(ref)),
        )
    return found


def build(root: Path, engine: str) -> InteropLake:
    lake = on_engine(build_project(root / "project", governed=False), engine)
    model = lake.project_dir / "models" / "curated" / "evolving.sql"
    model.write_text(MODEL_BEFORE)
    land_day(lake, root / "drops", DAY1)
    lake.run(DAY1)
    written = states(lake)
    for table in EVOLVED:
        answer = written[table].answer
        assert answer.rows is not None and answer.rows.rows, f"{table} after day 1: {answer.error}"
    old_schemas = {table: lake.catalog.load(table).schema() for table in EVOLVED}

    evolve(lake.catalog.load(EVOLVING))
    evolve_ingested(lake.catalog.load(EVOLVED_INGEST))
    model.write_text(MODEL_AFTER)
    if engine == "duckdb":
        land_day(lake, root / "drops", DAY2)
        lake.run(DAY2)
    else:
        land_day(lake, root / "drops", DAY2, only="partner/impressions")
        lake.ingest("partner/impressions", DAY2)
        lake.run_model(lake.model("curated.evolving"), DAY2)
    final = states(lake)
    evolved = {}
    for table, old in old_schemas.items():
        before = written[table].answer.rows
        # the files of day 2 were written under the final schema: lakeplane reads them as written
        after = lakeplane_rows(reading_lake(lake), table, where=f"ds = DATE '{DAY2}'").rows
        assert before is not None and after is not None and after.rows, f"{table}: day 2 is empty"
        rows = as_evolved(before, old, lake.catalog.load(table).schema()) + list(after.rows)
        evolved[table] = Rows(after.names, tuple(sorted(rows, key=repr)))
    on_engine_answers = {table: lakeplane_rows(lake, table) for table in EVOLVED}
    return InteropLake(engine, lake, written, final, evolved, on_engine_answers)
