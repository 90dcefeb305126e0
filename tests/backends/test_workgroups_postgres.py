"""Workgroups on a PostgreSQL catalog: running slots, the daily budget and the history shared by two
lakes (as two hosts sharing one catalog would)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest

from lakeplane.demo import telco
from lakeplane.demo.run import build_project
from lakeplane.errors import QueryRefused
from lakeplane.lake import Lake, open_lake
from lakeplane.query.slots import QuerySlots, Slot
from tests.query.workgroup_world import invoke

DAY = dt.date(2026, 11, 1)
SQL = "SELECT region, sum(duration_s) AS seconds FROM cdr GROUP BY region"


@pytest.fixture
def pg_lake(tmp_path: Path, pg_catalog_uri: str) -> Lake:
    lake = build_project(tmp_path / "project")
    config = lake.project_dir / "lakeplane.yaml"
    config.write_text(config.read_text() + f"\ncatalog:\n  uri: {pg_catalog_uri}\n")
    lake = open_lake(lake.project_dir)
    for dataset, files in telco.generate_day(tmp_path / "drops", DAY, 300).items():
        lake.land(dataset, files, DAY)
        lake.ingest(dataset, DAY)
    return lake


@pytest.mark.slow
def test_one_slot_one_winner_on_postgresql(pg_lake: Lake) -> None:
    engine = pg_lake.catalog.state_engine
    contenders = [QuerySlots(engine) for _ in range(6)]
    start = threading.Barrier(len(contenders))
    won: list[Slot] = []

    def take(slots: QuerySlots, n: int) -> None:
        start.wait()
        slot = slots.try_acquire("analysts", 1, f"q{n}")
        if slot is not None:
            won.append(slot)

    threads = [threading.Thread(target=take, args=(s, n)) for n, s in enumerate(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(won) == 1 and contenders[0].running("analysts") == 1
    contenders[0].release(won[0])
    assert contenders[0].running("analysts") == 0


@pytest.mark.slow
def test_budget_and_history_shared_through_postgresql(pg_lake: Lake) -> None:
    each = pg_lake.queries.estimate(SQL, principal="ana").bytes
    config = pg_lake.project_dir / "lakeplane.yaml"
    config.write_text(
        config.read_text() + f"workgroups:\n  analysts:\n    members: [role:analyst]\n"
        f"    bytes_scanned_per_day: {2 * each}\n    max_concurrent: 1\n"
    )
    one, two = open_lake(pg_lake.project_dir), open_lake(pg_lake.project_dir)
    one.query(SQL, principal="ana")
    two.query(SQL, principal="ana")
    with pytest.raises(QueryRefused) as caught:
        one.query(SQL, principal="ana")
    assert caught.value.reason == "daily" and caught.value.remaining == 0
    code, out = invoke(one, "--output", "json", "queries", "--workgroup", "analysts")
    rows = json.loads(out)
    assert code == 0 and [r["outcome"] for r in rows] == ["refused", "ok", "ok"]
    assert [r["bytes_scanned"] for r in rows] == [0, each, each]  # the refused one read nothing
    assert [r["bytes_estimated"] for r in rows] == [each, each, each] and rows[0]["cost_usd"] == 0
