"""Column lineage of the demo models, from a real run: recorded at each commit, walked both ways."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lakeplane.cli.main import cli
from lakeplane.errors import LineageError, TableNotFoundError
from lakeplane.lake import Lake, open_lake
from lakeplane.lineage import lineage_graph
from lakeplane.lineage.store import LINEAGE, LineageStore
from tests.conftest import DAY1, DAY2, head_id, land_drop

STATS = "adtech.curated.daily_campaign_stats"
TOTALS = "adtech.curated.campaign_totals"
IMPRESSIONS = "adtech.processed.impressions"
CLICKS = "adtech.processed.clicks"


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory, drops: dict) -> Lake:
    """The demo lake with one day landed and run (shared: these tests only read it)."""
    from lakeplane.demo.run import build_project

    lake = build_project(tmp_path_factory.mktemp("lineage") / "project", governed=False)
    land_drop(lake, drops[DAY1])
    lake.run(DAY1)
    return lake


def sources(graph: dict, node: str) -> set[str]:
    return {e["source"] for e in graph["edges"] if e["target"] == node}


def test_ctr_comes_from_clicks_and_impressions(ran: Lake) -> None:
    graph = ran.lineage("daily_campaign_stats", "ctr", "upstream", depth=1).to_dict()
    assert graph["root"] == f"{STATS}.ctr"
    assert sources(graph, f"{STATS}.ctr") == {CLICKS, IMPRESSIONS}
    edge = next(e for e in graph["edges"] if e["source"] == CLICKS)
    assert edge["transform"] == "ROUND(COALESCE(SUM(k.clicks), 0) / COUNT(*), 6)"
    assert edge["model"] == STATS
    kinds = {n["id"]: n["kind"] for n in graph["nodes"]}
    assert kinds == {f"{STATS}.ctr": "column", CLICKS: "table", IMPRESSIONS: "table"}


def test_upstream_to_the_raw_datasets_and_depth(ran: Lake) -> None:
    full = ran.lineage("curated.daily_campaign_stats", "spend", "upstream").to_dict()
    assert sources(full, f"{STATS}.spend") == {f"{IMPRESSIONS}.win_price"}
    assert sources(full, f"{IMPRESSIONS}.win_price") == {"raw:partner/impressions.win_price"}
    spend = next(e for e in full["edges"] if e["target"] == f"{STATS}.spend")
    assert "win_price" in spend["transform"] and "SUM" in spend["transform"]
    one = ran.lineage(STATS, "spend", "upstream", depth=1).to_dict()
    assert {n["id"] for n in one["nodes"]} == {f"{STATS}.spend", f"{IMPRESSIONS}.win_price"}
    zero = ran.lineage(STATS, "spend", "upstream", depth=0).to_dict()
    assert zero["edges"] == [] and [n["id"] for n in zero["nodes"]] == [f"{STATS}.spend"]


def test_plain_copies_and_renames(ran: Lake) -> None:
    graph = ran.lineage(STATS, "campaign_name", "upstream", depth=1).to_dict()
    assert graph["edges"] == [
        {
            "source": "adtech.processed.campaigns.name",
            "target": f"{STATS}.campaign_name",
            "transform": None,
            "model": STATS,
        }
    ]


def test_downstream_through_two_models(ran: Lake) -> None:
    graph = ran.lineage("processed.clicks", direction="downstream").to_dict()
    assert {e["target"] for e in graph["edges"]} == {STATS, TOTALS}
    col = ran.lineage(IMPRESSIONS, "win_price", "downstream").to_dict()
    assert {e["target"] for e in col["edges"]} == {f"{STATS}.spend", f"{TOTALS}.spend"}
    near = ran.lineage(IMPRESSIONS, "win_price", "downstream", depth=1).to_dict()
    assert {e["target"] for e in near["edges"]} == {f"{STATS}.spend"}
    ctr = ran.lineage(STATS, "ctr", "downstream").to_dict()
    assert {e["target"] for e in ctr["edges"]} == set()  # campaign_totals recomputes ctr from sums
    clicks = ran.lineage(STATS, "clicks", "downstream").to_dict()
    assert {e["target"] for e in clicks["edges"]} == {f"{TOTALS}.clicks", f"{TOTALS}.ctr"}


def test_table_lineage_both_ways(ran: Lake) -> None:
    graph = ran.lineage(STATS).to_dict()
    assert sources(graph, STATS) == {IMPRESSIONS, CLICKS, "adtech.processed.campaigns"}
    assert sources(graph, CLICKS) == {"raw:partner/clicks"}
    assert {e["target"] for e in graph["edges"] if e["source"] == STATS} == {TOTALS}
    assert all(n["column"] is None for n in graph["nodes"])


def test_unknown_table_and_column_are_named(ran: Lake) -> None:
    with pytest.raises(LineageError, match="no column 'ctx'; did you mean 'ctr'"):
        ran.lineage(STATS, "ctx")
    with pytest.raises(TableNotFoundError, match="daily_campaign_stats"):
        ran.lineage("daily_campaign_stat")
    with pytest.raises(LineageError, match="did you mean"):
        lineage_graph(ran.catalog.state_engine, "daily_campaign_stat")


def test_catalog_engine_alone_answers(ran: Lake) -> None:
    graph = lineage_graph(ran.catalog.state_engine, "daily_campaign_stats", "ctr", "upstream", 1)
    assert sources(graph.to_dict(), f"{STATS}.ctr") == {CLICKS, IMPRESSIONS}


def test_visible_filter_hides_nodes_and_what_lies_past_them(ran: Lake) -> None:
    def visible(table: str, column: str | None) -> bool:
        return not (table == IMPRESSIONS and column == "win_price")

    graph = ran.lineage(STATS, "spend", "upstream", visible=visible).to_dict()
    ids = {n["id"] for n in graph["nodes"]}
    assert ids == {f"{STATS}.spend"}  # neither win_price nor the raw field behind it
    with pytest.raises(LineageError, match="no column 'win_price'"):
        ran.lineage(IMPRESSIONS, "win_price", visible=visible)


def test_cli_json_and_tree(ran: Lake) -> None:
    runner = CliRunner()
    base = ["--lake", str(ran.project_dir), "lineage"]
    out = runner.invoke(
        cli, [*base, "daily_campaign_stats.ctr", "--upstream", "--depth", "1", "--output", "json"]
    )
    assert out.exit_code == 0, out.output
    assert sources(json.loads(out.output), f"{STATS}.ctr") == {CLICKS, IMPRESSIONS}
    tree = runner.invoke(cli, [*base, "processed.impressions.win_price", "--downstream"])
    assert tree.exit_code == 0, tree.output
    lines = tree.output.splitlines()
    assert lines[0] == f"{IMPRESSIONS}.win_price"
    assert any(f"-> {STATS}.spend" in line for line in lines)
    assert any(line.startswith("   ") and f"-> {TOTALS}.spend" in line for line in lines)  # nested
    bad = runner.invoke(cli, [*base, "daily_campaign_stats.ctx"])
    assert bad.exit_code == 1 and "did you mean 'ctr'" in bad.output
    usage = runner.invoke(cli, base)
    assert usage.exit_code == 2


def test_a_changed_model_records_new_edges_and_old_ones_stay_by_snapshot(
    tmp_path: Path,
    drops: dict,
) -> None:
    from lakeplane.demo.run import build_project

    lake = build_project(tmp_path / "project", governed=False)
    land_drop(lake, drops[DAY1])
    land_drop(lake, drops[DAY2])
    lake.run(DAY1)
    old_snapshot = head_id(lake.catalog.load(TOTALS))
    model = lake.project_dir / "models/curated/campaign_totals.sql"
    model.write_text(
        model.read_text().replace(
            "round(sum(clicks) / sum(impressions), 6) AS ctr", "round(avg(ctr), 6) AS ctr"
        )
    )
    lake = open_lake(lake.project_dir)
    lake.run(DAY2)
    new_snapshot = head_id(lake.catalog.load(TOTALS))
    assert new_snapshot != old_snapshot
    now = sources(lake.lineage(TOTALS, "ctr", "upstream", 1).to_dict(), f"{TOTALS}.ctr")
    assert now == {f"{STATS}.ctr"}
    then = lake.lineage(TOTALS, "ctr", "upstream", 1, snapshot_id=old_snapshot).to_dict()
    assert sources(then, f"{TOTALS}.ctr") == {f"{STATS}.clicks", f"{STATS}.impressions"}
    commits = LineageStore(lake.catalog.state_engine).commits(TOTALS)
    assert [c.snapshot_id for c in commits] == [old_snapshot, new_snapshot]
    assert all(c.origin == "commit" for c in commits)
    with pytest.raises(LineageError, match="no lineage recorded for snapshot 1 "):
        lake.lineage(TOTALS, "ctr", snapshot_id=1)


def test_first_ask_rebuilds_lineage_of_existing_tables(tmp_path: Path, drops: dict) -> None:
    from lakeplane.demo.run import build_project

    lake = build_project(tmp_path / "project", governed=False)
    land_drop(lake, drops[DAY1])
    lake.run(DAY1)
    store = LineageStore(lake.catalog.state_engine)
    with store.engine.begin() as conn:  # a lake whose tables were written before lineage was kept
        conn.execute(LINEAGE.delete())
    assert store.is_empty()
    graph = lake.lineage(STATS, "ctr", "upstream", 1).to_dict()
    assert sources(graph, f"{STATS}.ctr") == {CLICKS, IMPRESSIONS}
    commits = store.commits(STATS)
    assert [c.origin for c in commits] == ["refresh"]
    assert commits[0].snapshot_id == head_id(lake.catalog.load(STATS))
