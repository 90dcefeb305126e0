"""Exactly once across days: a key published on another day of the window is dropped."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
from pathlib import Path

import pytest

from lakeplane.catalog import TableRef
from lakeplane.errors import ConfigError
from lakeplane.ingest import IngestResult
from lakeplane.ingest.dedupe import KeyRange, read_window
from lakeplane.lake import Lake, open_lake
from tests.conftest import DAY1, DAY2

DAY3 = DAY2 + dt.timedelta(days=1)

CONFIG = """
name: shop
ingest:
  max_quarantine_rate: 0.5
datasets:
  pos/orders:
    format: ndjson
    table: shop.processed.orders
    key: [order_id]
{window}    fields:
      order_id: {{type: long, required: true}}
      amount: {{type: double}}
  pos/refunds:
    format: csv
    table: shop.processed.refunds
    key: [refund_id]
{window}    fields:
      refund_id: {{type: string, required: true}}
      amount: {{type: double}}
"""


def make_lake(tmp_path: Path, window: int | None = None, catalog: str | None = None) -> Lake:
    project = tmp_path / "shop"
    project.mkdir(exist_ok=True)
    line = "" if window is None else f"    dedupe_window_days: {window}\n"
    text = CONFIG.format(window=line) + (f"catalog:\n  uri: {catalog}\n" if catalog else "")
    (project / "lakeplane.yaml").write_text(text)
    return open_lake(project)


def orders_file(path: Path, ids: list[int], malformed: bool = False) -> Path:
    """Orders ``ids`` (amount = 10 * id + the day's file name length, so copies differ by file)."""
    lines = [json.dumps({"order_id": i, "amount": float(i) + len(path.name)}).encode() for i in ids]
    if malformed:
        lines.insert(1, b'{"order_id": 99, "amount": ')  # forces the line-by-line parse path
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def refunds_file(path: Path, ids: list[int]) -> Path:
    path.write_text("refund_id,amount\n" + "".join(f"r{i},{i}.5\n" for i in ids))
    return path


FORMATS = {
    "ndjson fast path": ("pos/orders", "orders", lambda p, ids: orders_file(p.with_suffix(".ndjson"), ids)),
    "ndjson line by line": (
        "pos/orders",
        "orders",
        lambda p, ids: orders_file(p.with_suffix(".ndjson"), ids, malformed=True),
    ),
    "csv": ("pos/refunds", "refunds", lambda p, ids: refunds_file(p.with_suffix(".csv"), ids)),
}


def deliver(lake: Lake, fmt: str, day: dt.date, ids: list[int], force: bool = False) -> IngestResult:
    dataset, _, write = FORMATS[fmt]
    folder = lake.project_dir.parent / "drops" / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    if not force:
        lake.land(dataset, [write(folder / f"batch-{len(list(folder.iterdir()))}", ids)], day)
    return lake.ingest(dataset, day, force=force)


def keys_by_day(lake: Lake, fmt: str) -> dict[str, list[object]]:
    _, table, _ = FORMATS[fmt]
    key = "order_id" if table == "orders" else "refund_id"
    rows = lake.query(f"SELECT CAST(ds AS VARCHAR) AS ds, {key} AS k FROM processed.{table}").to_pylist()
    days: dict[str, list[object]] = {}
    for row in rows:
        days.setdefault(row["ds"], []).append(row["k"])
    return {ds: sorted(keys, key=str) for ds, keys in sorted(days.items())}


def reconciles(result: IngestResult) -> bool:
    return (
        result.read == result.accepted + result.quarantined
        and result.rows_written == result.accepted - result.duplicates - result.duplicates_across_days
    )


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_redelivery_on_a_later_day_is_dropped_by_default(tmp_path: Path, fmt: str) -> None:
    lake = make_lake(tmp_path)
    first = deliver(lake, fmt, DAY1, [1, 2, 3])
    second = deliver(lake, fmt, DAY2, [3, 4, 4, 2])

    assert first.duplicates_across_days == 0
    assert second.duplicates == 1, "the second copy of 4 within the day"
    assert second.duplicates_across_days == 2, "3 and 2 were published on DAY1"
    assert reconciles(first) and reconciles(second)
    if fmt == "ndjson line by line":
        assert second.quarantined == 1 and second.read == 5
    ids = keys_by_day(lake, fmt)
    key = (lambda i: i) if FORMATS[fmt][1] == "orders" else (lambda i: f"r{i}")
    assert ids == {DAY1.isoformat(): [key(1), key(2), key(3)], DAY2.isoformat(): [key(4)]}


def test_window_of_one_day_keeps_keys_two_days_apart(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, window=1)
    deliver(lake, "ndjson fast path", DAY1, [1, 2])
    third = deliver(lake, "ndjson fast path", DAY3, [1, 3])
    assert third.duplicates_across_days == 0, "DAY1 is two days from DAY3, outside the window"
    second = deliver(lake, "ndjson fast path", DAY2, [1, 2, 3, 4])
    assert second.duplicates_across_days == 3, "1 and 2 on DAY1, 1 and 3 on DAY3: three keys"
    assert keys_by_day(lake, "ndjson fast path") == {
        DAY1.isoformat(): [1, 2],
        DAY2.isoformat(): [4],
        DAY3.isoformat(): [1, 3],
    }


def test_window_of_zero_dedupes_within_the_day_only(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, window=0)
    deliver(lake, "csv", DAY1, [1, 2])
    second = deliver(lake, "csv", DAY2, [1, 2, 2])
    assert second.duplicates == 1 and second.duplicates_across_days == 0 and second.rows_written == 2
    assert keys_by_day(lake, "csv") == {DAY1.isoformat(): ["r1", "r2"], DAY2.isoformat(): ["r1", "r2"]}


def test_late_earlier_day_drops_what_a_later_day_published(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    deliver(lake, "ndjson fast path", DAY2, [1, 2])
    late = deliver(lake, "ndjson fast path", DAY1, [1, 3])
    assert late.duplicates_across_days == 1 and late.rows_written == 1 and reconciles(late)
    assert keys_by_day(lake, "ndjson fast path") == {DAY1.isoformat(): [3], DAY2.isoformat(): [1, 2]}


def test_rerunning_a_day_keeps_the_rows_it_had(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    deliver(lake, "ndjson line by line", DAY1, [1, 2, 3])
    deliver(lake, "ndjson line by line", DAY2, [3, 4])
    deliver(lake, "ndjson line by line", DAY3, [4, 5])
    before = lake.query("SELECT * FROM processed.orders ORDER BY order_id").to_pylist()

    again = [deliver(lake, "ndjson line by line", day, [], force=True) for day in (DAY2, DAY1, DAY3)]
    after = lake.query("SELECT * FROM processed.orders ORDER BY order_id").to_pylist()
    assert after == before
    assert [r.duplicates_across_days for r in again] == [1, 0, 1]
    assert [r["order_id"] for r in after] == [1, 2, 3, 4, 5]


def test_window_needs_a_key(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    project.mkdir()
    (project / "lakeplane.yaml").write_text(
        "datasets:\n  pos/orders:\n    format: ndjson\n    table: shop.processed.orders\n"
        "    dedupe_window_days: 3\n    fields:\n      order_id: {type: long}\n"
    )
    with pytest.raises(ConfigError) as caught:
        open_lake(project)
    message = str(caught.value)
    assert "pos/orders" in message and "dedupe_window_days" in message and "key" in message
    assert "lakeplane.yaml" in message


def test_window_must_not_be_negative(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dedupe_window_days"):
        make_lake(tmp_path, window=-1)


def test_a_dataset_without_key_has_no_window(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    project.mkdir()
    (project / "lakeplane.yaml").write_text(
        "datasets:\n  pos/orders:\n    format: ndjson\n    table: shop.processed.orders\n"
        "    fields:\n      order_id: {type: long}\n"
    )
    lake = open_lake(project)
    assert lake.config.datasets["pos/orders"].window_days == 0
    orders_file(tmp_path / "a.ndjson", [1, 1])
    lake.land("pos/orders", [tmp_path / "a.ndjson"], DAY1)
    lake.land("pos/orders", [orders_file(tmp_path / "b.ndjson", [1])], DAY2)
    assert lake.ingest("pos/orders", DAY1).rows_written == 2
    result = lake.ingest("pos/orders", DAY2)
    assert result.rows_written == 1 and result.duplicates == result.duplicates_across_days == 0


# -- two processes at once ---------------------------------------------------------------------


def _ingest_in_process(project: str, day: str, start: multiprocessing.synchronize.Barrier, out: str) -> None:
    lake = open_lake(project)
    start.wait()
    result = lake.ingest("pos/orders", dt.date.fromisoformat(day))
    Path(out).write_text(json.dumps(result.to_dict()))


@pytest.mark.slow
def test_two_processes_ingesting_two_days_keep_each_key_once(tmp_path: Path) -> None:
    """On the SQLite catalog, started together: whichever way they interleave, each key is kept once.

    tests/backends/test_dedupe_window_postgres.py forces the interleaving where both read the window
    before either commits.
    """
    lake = make_lake(tmp_path)
    shared = list(range(0, 300_000, 3))  # a third of the keys in both days
    lake.land("pos/orders", [orders_file(tmp_path / "one.ndjson", list(range(0, 300_000)))], DAY1)
    lake.land("pos/orders", [orders_file(tmp_path / "two.ndjson", [*shared, *range(300_000, 500_000)])], DAY2)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    outs = [tmp_path / "one.json", tmp_path / "two.json"]
    procs = [
        context.Process(
            target=_ingest_in_process, args=(str(lake.project_dir), day.isoformat(), start, str(out))
        )
        for day, out in zip((DAY1, DAY2), outs, strict=True)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    results = [json.loads(out.read_text()) for out in outs]

    counts = lake.query(
        "SELECT count(*) AS n, count(DISTINCT order_id) AS keys FROM processed.orders"
    ).to_pylist()[0]
    assert counts == {"n": 500_000, "keys": 500_000}, "each key once, in one of the two days"
    assert sorted(r["duplicates_across_days"] for r in results) == [0, len(shared)]
    assert sum(r["rows_written"] for r in results) == 500_000


# -- the curated model on top ------------------------------------------------------------------


@pytest.mark.slow
def test_curated_model_counts_a_redelivered_event_once(demo_lake: Lake, tmp_path: Path) -> None:
    from lakeplane.demo.generator import generate

    drops = generate(tmp_path / "drops", [DAY1, DAY2], 2_000, redeliver=0.05)
    summaries = []
    for drop in drops:
        for dataset, files in drop.files.items():
            demo_lake.land(dataset, files, drop.day)
        summaries.append(demo_lake.run(drop.day))

    assert summaries[1].to_dict()["duplicates_across_days"] > 50
    stats = demo_lake.query(
        "SELECT CAST(sum(impressions) AS BIGINT) AS n FROM curated.daily_campaign_stats"
    ).to_pylist()[0]["n"]
    processed = demo_lake.query(
        "SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM processed.impressions"
    ).to_pylist()[0]
    assert processed["n"] == processed["ids"] == stats
    assert demo_lake.config.datasets["crm/campaigns"].window_days == 0, "a full extract recurs daily"


def test_key_range_pruning_keeps_matches_at_its_bounds(tmp_path: Path) -> None:
    """The window's files are pruned by the day's key range; keys on its bounds are still found."""
    lake = make_lake(tmp_path)
    deliver(lake, "csv", DAY1, [10, 50, 90])
    deliver(lake, "csv", DAY3, [95, 99])
    late = deliver(lake, "csv", DAY2, [50, 60, 90])  # range r50..r90 overlaps DAY1 only
    assert late.duplicates_across_days == 2 and late.rows_written == 1
    edge = deliver(lake, "csv", DAY2 + dt.timedelta(days=3), [99])  # DAY1 + 4: r99 on DAY3 only
    assert edge.duplicates_across_days == 1 and edge.rows_written == 0


def test_a_composite_key_matches_on_every_column(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    project.mkdir()
    (project / "lakeplane.yaml").write_text(
        "datasets:\n  pos/lines:\n    format: csv\n    table: shop.processed.lines\n"
        "    key: [order_id, line_no]\n    fields:\n      order_id: {type: long, required: true}\n"
        "      line_no: {type: int, required: true}\n      sku: {type: string}\n"
    )
    lake = open_lake(project)
    (tmp_path / "a.csv").write_text("order_id,line_no,sku\n1,1,a\n1,2,b\n")
    (tmp_path / "b.csv").write_text("order_id,line_no,sku\n1,2,b\n1,3,c\n2,1,d\n")
    lake.land("pos/lines", [tmp_path / "a.csv"], DAY1)
    lake.land("pos/lines", [tmp_path / "b.csv"], DAY2)
    lake.ingest("pos/lines", DAY1)
    result = lake.ingest("pos/lines", DAY2)
    assert result.duplicates_across_days == 1 and result.rows_written == 2
    rows = lake.query(
        "SELECT order_id, line_no FROM processed.lines WHERE ds = :ds", {"ds": DAY2}
    ).to_pylist()
    assert sorted((r["order_id"], r["line_no"]) for r in rows) == [(1, 3), (2, 1)]


def test_cli_and_run_summary_show_duplicates_across_days(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from lakeplane.cli.main import cli

    lake = make_lake(tmp_path)
    deliver(lake, "ndjson fast path", DAY1, [1, 2, 3])
    lake.land("pos/orders", [orders_file(tmp_path / "again.ndjson", [2, 3, 4])], DAY2)
    base = ["--lake", str(lake.project_dir)]
    shown = CliRunner().invoke(cli, [*base, "ingest", "pos/orders", "--ds", DAY2.isoformat()])
    assert shown.exit_code == 0, shown.output
    assert "0 duplicates dropped within the day, 2 already published on another day" in shown.output
    lake.land("pos/orders", [orders_file(tmp_path / "third.ndjson", [4, 5])], DAY3)
    as_json = CliRunner().invoke(
        cli, [*base, "--output", "json", "ingest", "pos/orders", "--ds", DAY3.isoformat()]
    )
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.output)
    assert report["duplicates_across_days"] == 1 and report["rows_written"] == 1

    day4 = DAY3 + dt.timedelta(days=1)
    lake.land("pos/orders", [orders_file(tmp_path / "fourth.ndjson", [5, 6, 6])], day4)
    summary = lake.run(day4).to_dict()
    assert summary["duplicates_across_days"] == 1 and summary["duplicates"] == 1


def test_pipeline_step_metrics_count_duplicates_across_days(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    (lake.project_dir / "pipelines").mkdir()
    (lake.project_dir / "pipelines" / "orders.yaml").write_text("steps:\n  orders: {ingest: pos/orders}\n")
    lake = open_lake(lake.project_dir)
    deliver(lake, "ndjson fast path", DAY1, [1, 2])
    lake.land("pos/orders", [orders_file(tmp_path / "again.ndjson", [2, 3, 3])], DAY2)
    record = lake.run_record(lake.run_pipeline("orders", DAY2).run_id)
    assert record.state == "succeeded", [a.error for a in record.attempts]
    (attempt,) = [a for a in record.attempts if a.step == "orders"]
    assert attempt.metrics["duplicates"] == 1 and attempt.metrics["duplicates_across_days"] == 1
    assert attempt.metrics["rows_out"] == 1


def test_a_full_extract_under_a_window_is_named_in_a_warning(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from lakeplane.cli.main import cli

    lake = make_lake(tmp_path)
    everything = list(range(1, 11))
    first = deliver(lake, "ndjson fast path", DAY1, everything)
    assert first.warnings == []
    lake.land("pos/orders", [orders_file(tmp_path / "whole-again.ndjson", [*everything, 11])], DAY2)
    shown = CliRunner().invoke(
        cli, ["--lake", str(lake.project_dir), "ingest", "pos/orders", "--ds", DAY2.isoformat()]
    )
    assert shown.exit_code == 0, shown.output
    assert "warning: pos/orders: 10 of 11 rows for 2026" in shown.output
    assert "set dedupe_window_days: 0 under datasets: pos/orders" in shown.output
    few = deliver(lake, "ndjson fast path", DAY3, [1, 12, 13])
    assert few.duplicates_across_days == 1 and few.warnings == [], "a third of the day is no full extract"


def test_the_window_range_comes_from_the_manifests_or_else_from_the_keys(tmp_path: Path) -> None:
    """The range of the window's keys is taken from the files' statistics; a file whose statistics
    do not keep the key (metrics mode none) makes the step read the keys instead, and a published
    key is dropped either way."""
    lake = make_lake(tmp_path)
    deliver(lake, "ndjson fast path", DAY1, [5, 7, 9])
    ref = TableRef.parse("shop.processed.orders")
    window = read_window(lake.catalog, ref, DAY2, 7, KeyRange("order_id", 1, 100))
    assert window.source is not None and window.source.bounds == (5, 9)
    table = lake.catalog.load(ref)
    with table.transaction() as tx:
        tx.set_properties({"write.metadata.metrics.column.order_id": "none"})
    deliver(lake, "ndjson fast path", DAY1, [5, 7, 9], force=True)
    window = read_window(lake.catalog, ref, DAY2, 7, KeyRange("order_id", 1, 100))
    assert window.source is not None and window.source.bounds is None
    second = deliver(lake, "ndjson fast path", DAY2, [7, 8, 9])
    assert second.duplicates_across_days == 2 and second.rows_written == 1


def test_truncated_string_bounds_still_enclose_every_key(tmp_path: Path) -> None:
    """Iceberg keeps 16 characters of a string's bounds (the low one cut down, the high one cut
    and raised): keys longer than that on the range's ends are still found."""
    lake = make_lake(tmp_path)
    ids = ["refund-2026-000000000001", "refund-2026-000000000500", "refund-2026-000000000999"]
    folder = tmp_path / "long"
    folder.mkdir()
    first = folder / "day1.csv"
    first.write_text("refund_id,amount\n" + "".join(f"{i},1.5\n" for i in ids))
    lake.land("pos/refunds", [first], DAY1)
    lake.ingest("pos/refunds", DAY1)
    ref = TableRef.parse("shop.processed.refunds")
    window = read_window(lake.catalog, ref, DAY2, 7, KeyRange("refund_id", ids[0], ids[-1]))
    assert window.source is not None and window.source.bounds is not None
    low, high = window.source.bounds
    assert len(low) <= 16 and low <= ids[0] and high >= ids[-1]
    again = folder / "day2.csv"
    again.write_text("refund_id,amount\n" + f"{ids[0]},2.5\n{ids[-1]},2.5\nrefund-2026-000000001000,2.5\n")
    lake.land("pos/refunds", [again], DAY2)
    second = lake.ingest("pos/refunds", DAY2)
    assert second.duplicates_across_days == 2 and second.rows_written == 1
