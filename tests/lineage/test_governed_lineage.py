"""A governed lake's lineage: table and column names only, filtered by what a principal may see."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lakeplane.errors import LineageError
from lakeplane.lake import Lake
from lakeplane.lineage.graph import Visible
from tests.conftest import governed_demo

CELL_DAILY = "telco.curated.cell_daily"
CDR = "telco.processed.cdr"


def visible_to(lake: Lake, principal: str) -> Visible:
    """What ``principal`` may see, as the governance plane answers it (a table: any of its columns)."""

    def sees(table: str, column: str | None) -> bool:
        if table.startswith("raw:"):
            return principal == "role:pipeline"
        columns = [column] if column is not None else lake.table_columns(table)
        return any(
            v.sees != "denied"
            for c in columns
            for v in lake.who_can_see(f"{table}.{c}")
            if v.principal == principal
        )

    return sees


def test_lineage_names_only_and_filtered_per_principal(tmp_path: Path) -> None:
    lake = governed_demo(tmp_path, telco_calls=300, adtech_rows=0)
    graph = lake.lineage(CELL_DAILY, "seconds", "upstream").to_dict()
    assert {e["source"] for e in graph["edges"]} == {f"{CDR}.duration_s", "raw:telco/cdr.duration_s"}
    caller = lake.query(f"SELECT msisdn FROM {CDR} LIMIT 1", principal="pipeline").to_pylist()[0]["msisdn"]
    callers = lake.lineage(CELL_DAILY, "callers", "upstream").to_dict()
    assert {e["source"] for e in callers["edges"]} == {f"{CDR}.msisdn", "raw:telco/cdr.msisdn"}
    assert caller not in json.dumps(callers)  # names, never values

    eve = lake.lineage(CELL_DAILY, "callers", "upstream", visible=visible_to(lake, "user:eve")).to_dict()
    assert {e["source"] for e in eve["edges"]} == {f"{CDR}.msisdn"}  # not the raw zone
    with pytest.raises(LineageError, match="no lineage of table"):
        lake.lineage(CELL_DAILY, "callers", visible=visible_to(lake, "user:ian"))  # denied all of telco
    with pytest.raises(LineageError) as unknown:
        lake.lineage(CELL_DAILY, "no_such", visible=visible_to(lake, "user:eve"))
    assert unknown.value.column == "no_such"
