"""A small governed demo lake (one telco day) per test, for the warm path and result reuse."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from lakeplane.demo import telco
from lakeplane.demo.run import build_project
from lakeplane.lake import Lake

DAY = dt.date(2026, 11, 1)
CALLS = 400
CDR = "telco.processed.cdr"


def build_governed(root: Path) -> Lake:
    lake = build_project(root / "project")
    for dataset, paths in telco.generate_day(root / "drops", DAY, CALLS).items():
        lake.land(dataset, paths, DAY)
    lake.run(DAY)
    return lake


@pytest.fixture(scope="module")
def shared_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """One governed lake for tests that change nothing in it."""
    return build_governed(tmp_path_factory.mktemp("warm"))


@pytest.fixture
def own_lake(tmp_path: Path) -> Lake:
    """A governed lake of this test's own (the test commits to it or changes its policy)."""
    return build_governed(tmp_path)


def append_call(lake: Lake, call_id: str, region: str = "EU") -> None:
    """Commit one more CDR row (a copy of the first, with ``call_id`` and ``region``): a new snapshot."""
    table = lake.catalog.load(CDR)
    row = table.scan(limit=1).to_arrow()
    row = row.set_column(row.schema.get_field_index("call_id"), "call_id", pa.array([call_id]))
    row = row.set_column(row.schema.get_field_index("region"), row.schema.field("region"), pa.array([region]))
    table.append(row.cast(table.schema().as_arrow()))


def column_total(table: pa.Table, column: str) -> int:
    return int(pc.sum(table.column(column)).as_py() or 0)
