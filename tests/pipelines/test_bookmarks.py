"""Bookmarks by step: show, reset and rewind on tables written by real pipeline runs."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from lakeplane.cli.main import cli
from lakeplane.errors import BookmarkError, RunNotFound, TableNotFoundError
from lakeplane.lake import Lake, open_lake
from lakeplane.pipelines.bookmarks import INPUTS_KEY, bookmarks, forgotten_spans, reset, rewind
from lakeplane.pipelines.store import RunRecord

DAY1, DAY2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
CONFIG = """
name: shop
datasets:
  pos/orders:
    format: ndjson
    table: shop.processed.orders
    key: [order_id]
    fields:
      order_id: {type: long, required: true}
      placed_at: {type: timestamp, required: true}
      amount: {type: double}
"""
MODEL = """-- partition_by: [ds]
SELECT ds, count(*) AS orders, sum(amount) AS amount FROM processed.orders WHERE ds = :ds GROUP BY ds
"""
PIPELINE = """
steps:
  orders: {ingest: pos/orders}
  totals: {model: curated.order_totals, depends_on: [orders]}
  check: {quality: rules.dqdl, table: curated.order_totals, depends_on: [totals]}
"""


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    root = tmp_path / "shop"
    (root / "models" / "curated").mkdir(parents=True)
    (root / "pipelines").mkdir()
    (root / "lakeplane.yaml").write_text(CONFIG)
    (root / "models" / "curated" / "order_totals.sql").write_text(MODEL)
    (root / "pipelines" / "p.yaml").write_text(PIPELINE)
    (root / "rules.dqdl").write_text('Rules = [ RowCount >= 1, ColumnValues "orders" > 0 ]\n')
    return open_lake(root)


def land(lake: Lake, day: dt.date, name: str, *order_ids: int) -> None:
    drop = lake.project_dir.parent / name
    drop.write_text(
        "".join(
            json.dumps({"order_id": n, "placed_at": f"{day} 10:00:00", "amount": 1.5}) + "\n"
            for n in order_ids
        )
    )
    lake.land("pos/orders", [drop], day)


def run(lake: Lake, day: dt.date) -> RunRecord:
    record = lake.run_record(lake.run_pipeline("p", day).run_id)
    assert record.state == "succeeded", [a.error for a in record.attempts]
    return record


def written(record: RunRecord, step: str) -> int:
    """The snapshot a step's attempt committed (or, skipping, found already published)."""
    (attempt,) = [a for a in record.attempts if a.step == step]
    return int(attempt.metrics["snapshot_id"])


def test_rewind_to_a_run_forgets_later_bookmarks_and_those_days_run_again(lake: Lake) -> None:
    land(lake, DAY1, "a.ndjson", 1, 2)
    first = run(lake, DAY1)
    land(lake, DAY2, "b.ndjson", 3)
    second = run(lake, DAY2)
    land(lake, DAY1, "late.ndjson", 4)
    third = run(lake, DAY1)  # the late batch makes day 1 run again
    assert written(third, "orders") != written(first, "orders")

    shown = lake.bookmarks("orders")
    assert shown.target.table == "shop.processed.orders" and shown.target.kind == "ingest"
    assert [(b.ds, b.snapshot_id, len(b.batches)) for b in shown.bookmarks] == [
        ("2026-11-01", written(third, "orders"), 2),
        ("2026-11-02", written(second, "orders"), 1),
    ]
    totals = lake.bookmarks("totals")
    assert totals.target.table == "shop.curated.order_totals"
    assert [(b.ds, b.kind, b.model) for b in totals.bookmarks] == [
        ("2026-11-01", "model", "shop.curated.order_totals"),
        ("2026-11-02", "model", "shop.curated.order_totals"),
    ]

    rewound = lake.rewind_bookmarks("orders", first.run_id)
    assert [(c.ds, c.before, c.after) for c in rewound.changes] == [
        ("2026-11-01", written(third, "orders"), written(first, "orders")),
        ("2026-11-02", written(second, "orders"), None),
    ]
    assert [(b.ds, len(b.batches)) for b in rewound.bookmarks] == [("2026-11-01", 1)]
    assert lake.bookmarks("totals").bookmarks == totals.bookmarks, "another step's bookmarks stay"

    again2 = run(lake, DAY2)
    assert written(again2, "orders") not in (written(second, "orders"), written(third, "orders")), (
        "day 2 was processed again"
    )
    again1 = run(lake, DAY1)
    assert written(again1, "orders") != written(first, "orders"), (
        "day 1 got its first bookmark back, "
        "which lacks the late batch: it runs again rather than skipping that batch"
    )
    unchanged = run(lake, DAY1)
    assert written(unchanged, "orders") == written(again1, "orders"), "nothing new: skipped"
    ids = lake.query("SELECT order_id FROM processed.orders ORDER BY order_id").column("order_id").to_pylist()
    assert ids == [1, 2, 3, 4], "reprocessed days replace their rows, never duplicate them"


def test_reset_forgets_every_day_and_a_table_can_be_named_directly(lake: Lake) -> None:
    land(lake, DAY1, "a.ndjson", 1)
    first = run(lake, DAY1)
    assert [b.ds for b in lake.bookmarks("processed.orders").bookmarks] == ["2026-11-01"]
    done = lake.reset_bookmarks("orders", pipeline="p")
    assert [(c.ds, c.after) for c in done.changes] == [("2026-11-01", None)] and done.bookmarks == []
    assert [s.after for s in done.forgotten] == [None]
    again = run(lake, DAY1)
    assert written(again, "orders") != written(first, "orders"), "the day ran again after the reset"
    assert [b.snapshot_id for b in lake.bookmarks("orders").bookmarks] == [written(again, "orders")]


def test_unknown_steps_runs_and_step_kinds_are_clear_errors(lake: Lake) -> None:
    with pytest.raises(
        BookmarkError,
        match=r"no step 'ordrs'; did you mean 'orders'\? \(pipeline 'p' has "
        r"steps orders, totals, check",
    ):
        lake.bookmarks("ordrs")
    with pytest.raises(BookmarkError, match="step 'check' of pipeline 'p' is a quality step"):
        lake.bookmarks("check")
    with pytest.raises(TableNotFoundError):
        lake.bookmarks("processed.nosuch")
    assert lake.bookmarks("orders").bookmarks == [], "a step that never ran has no bookmarks"
    with pytest.raises(RunNotFound, match="no run 'p-2026-11-01-nope'"):
        lake.rewind_bookmarks("orders", "p-2026-11-01-nope")
    unfinished = lake.pipeline_runs.store().start_run("p", DAY1.isoformat())
    with pytest.raises(BookmarkError, match="has not ended"):
        lake.rewind_bookmarks("orders", unfinished.run_id)
    with pytest.raises(BookmarkError, match="is a run of pipeline 'p', not 'other'"):
        lake.rewind_bookmarks("orders", unfinished.run_id, pipeline="other")


def test_cli_shows_resets_and_rewinds_with_one_line_errors(lake: Lake) -> None:
    land(lake, DAY1, "a.ndjson", 1)
    first = run(lake, DAY1)
    land(lake, DAY2, "b.ndjson", 2)
    run(lake, DAY2)

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["--lake", str(lake.project_dir), *args])
        return result.exit_code, result.output

    code, out = invoke("--output", "json", "bookmark", "show", "orders")
    assert code == 0, out
    shown = json.loads(out)
    assert (shown["table"], shown["step"], shown["pipeline"]) == ("shop.processed.orders", "orders", "p")
    assert [(b["ds"], b["kind"]) for b in shown["bookmarks"]] == [
        ("2026-11-01", "ingest"),
        ("2026-11-02", "ingest"),
    ]

    code, out = invoke("bookmark", "show", "totals")
    assert code == 0 and "shop.curated.order_totals" in out and "model" in out, out

    code, out = invoke("--output", "json", "bookmark", "rewind", "orders", "--to", first.run_id)
    assert code == 0, out
    assert [(c["ds"], c["after"]) for c in json.loads(out)["changes"]] == [("2026-11-02", None)]
    code, out = invoke("bookmark", "reset", "orders")
    assert code == 0 and "2026-11-01" in out and "forgotten" in out, out

    for args, message in [
        (("show", "ordrs"), "error: no step 'ordrs'; did you mean 'orders'?"),
        (("rewind", "orders", "--to", "nope"), "error: no run 'nope'"),
        (("show", "check"), "error: step 'check' of pipeline 'p' is a quality step"),
    ]:
        code, out = invoke("bookmark", *args)
        assert code == 1 and out.startswith(message) and "Traceback" not in out, out
    code, out = invoke("bookmark", "rewind", "orders")
    assert code == 2 and "Missing option '--to'" in out


# -- the forgotten spans, on a plain Iceberg table ------------------------------------------------


@pytest.fixture
def table(tmp_path: Path) -> Table:
    catalog = SqlCatalog(
        "t", uri=f"sqlite:///{tmp_path}/catalog.db", warehouse=f"file://{tmp_path}/warehouse"
    )
    catalog.create_namespace("d")
    return catalog.create_table("d.t", pa.schema([pa.field("n", pa.int64())]))


def commit(table: Table, **summary: str) -> int:
    """Append a row with ``summary`` in the snapshot summary; returns the snapshot id."""
    time.sleep(0.005)  # distinct commit times, as separate runs have
    table.append(
        pa.table({"n": pa.array([1], pa.int64())}),
        snapshot_properties={f"lakeplane.{k}": v for k, v in summary.items()},
    )
    snapshot = table.current_snapshot()
    assert snapshot is not None
    return snapshot.snapshot_id


def test_model_bookmarks_show_their_inputs(table: Table) -> None:
    first = commit(
        table,
        model="d.curated.t",
        ds="2026-11-01",
        inputs=json.dumps({"d.processed.a": 11, "d.processed.b": 22}),
    )
    second = commit(table, model="d.curated.t", ds="2026-11-02")  # inputs not recorded
    commit(table, model="d.curated.t", ds="2026-11-03", inputs="not json")
    commit(table, ds="2026-11-04")  # neither batches nor a model: no bookmark
    found = bookmarks(table)
    assert sorted(found) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert found["2026-11-01"].inputs == {"d.processed.a": 11, "d.processed.b": 22}
    assert found["2026-11-01"].snapshot_id == first and found["2026-11-01"].kind == "model"
    assert found["2026-11-02"].inputs == {} and found["2026-11-02"].snapshot_id == second
    assert found["2026-11-03"].inputs == {}
    assert found["2026-11-01"].to_dict()["inputs"] == {"d.processed.a": 11, "d.processed.b": 22}
    assert INPUTS_KEY == "lakeplane.inputs"


def test_forgotten_spans_compose_and_later_commits_count(table: Table) -> None:
    one = commit(table, ds="2026-11-01", batches="a")
    two = commit(table, ds="2026-11-02", batches="b")
    one_again = commit(table, ds="2026-11-01", batches="a,c")
    moment = table.snapshot_by_id(two).timestamp_ms  # type: ignore[union-attr]

    span = rewind(table, moment)
    assert span is not None and (span.through, span.after) == (one_again, two)
    assert {ds: b.snapshot_id for ds, b in bookmarks(table).items()} == {"2026-11-01": one, "2026-11-02": two}
    assert rewind(table, moment) is None and rewind(table, 2**62) is None, "nothing more to forget"

    three = commit(table, ds="2026-11-03", batches="d")
    assert bookmarks(table)["2026-11-03"].snapshot_id == three, "a commit after the rewind counts"
    rewind(table, table.snapshot_by_id(one).timestamp_ms)  # type: ignore[union-attr]
    assert {ds: b.snapshot_id for ds, b in bookmarks(table).items()} == {"2026-11-01": one}
    assert reset(table) == three and bookmarks(table) == {}
    four = commit(table, ds="2026-11-02", batches="b")
    assert {ds: b.snapshot_id for ds, b in bookmarks(table).items()} == {"2026-11-02": four}
    assert [(s.through, s.after) for s in forgotten_spans(table)] == [(three, None)], (
        "the reset covers the rewinds before it"
    )
    rewind(table, 0)  # before the first commit: everything goes
    assert bookmarks(table) == {}
    assert [(s.through, s.after) for s in forgotten_spans(table)] == [(four, None)]
