"""Ingest on corpora whose every malformed line, and its reason, is known."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from lakeplane.catalog import TableRef
from lakeplane.errors import QuarantineRateExceeded
from lakeplane.lake import Lake, open_lake
from tests.conftest import DAY1, DAY2, land_drop

CONFIG = """
name: shop
ingest:
  max_quarantine_rate: 0.8
datasets:
  pos/orders:
    format: ndjson
    table: shop.processed.orders
    key: [order_id]
    dedupe_window_days: 0   # the same orders are delivered on several days here
    fields:
      order_id: {type: long, required: true}
      placed_at: {type: timestamp, required: true}
      store: {type: string}
      amount: {type: double}
      paid: {type: boolean}
      ship_date: {type: date}
  pos/stores:
    format: csv
    table: shop.processed.stores
    key: [store]
    fields:
      store: {type: string, required: true}
      opened: {type: date}
      staff: {type: int}
"""

GOOD = {
    "order_id": 1,
    "placed_at": "2026-11-01 10:00:00",
    "store": "s1",
    "amount": 9.5,
    "paid": True,
    "ship_date": "2026-11-03",
}


def line(**changes: object) -> bytes:
    return json.dumps({**GOOD, **changes}).encode()


#: (line bytes, expected reason or None) in file order; line numbers are positions + 1.
ORDERS: list[tuple[bytes, str | None]] = [
    (line(order_id=1), None),
    (line(order_id=2, store=None), None),  # optional null is fine
    (b'{"order_id": 3, "placed_at": "2026-11-01 10:00', "invalid_json"),
    (line(order_id=4, amount="lots"), "wrong_type"),
    (line(order_id=5, placed_at="not a time"), "wrong_type"),
    (
        json.dumps({k: v for k, v in GOOD.items() if k != "placed_at"} | {"order_id": 6}).encode(),
        "missing_required",
    ),
    (line(order_id=None), "missing_required"),  # explicit null on a required field
    (line(order_id=8, store="caf\xe9").replace(b"caf\\u00e9", b"caf\xe9"), "invalid_utf8"),
    (b"", "blank_line"),
    (b'["not", "an", "object"]', "not_an_object"),
    (line(order_id=11, paid="maybe"), "wrong_type"),
    (line(order_id=12, ship_date="2026-13-45"), "wrong_type"),
    (line(order_id=1, amount=99.0), None),  # re-delivered key: dropped
    (line(order_id=14, extra_field="ignored"), None),
    (line(order_id="15"), None),  # a numeric string casts
]


def make_lake(tmp_path: Path) -> Lake:
    project = tmp_path / "shop"
    project.mkdir()
    (project / "lakeplane.yaml").write_text(CONFIG)
    return open_lake(project)


def write_orders(path: Path) -> Path:
    path.write_bytes(b"\n".join(raw for raw, _ in ORDERS) + b"\n")
    return path


def test_every_malformed_kind_is_quarantined_with_line_and_reason(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    lake.land("pos/orders", [write_orders(tmp_path / "orders.ndjson")], DAY1)
    result = lake.ingest("pos/orders", DAY1)

    expected = {n: reason for n, (_, reason) in enumerate(ORDERS, start=1) if reason}
    assert result.read == len(ORDERS)
    assert result.quarantined == len(expected)
    assert result.accepted == len(ORDERS) - len(expected)
    assert result.read == result.accepted + result.quarantined
    assert result.duplicates == 1 and result.rows_written == result.accepted - 1
    reasons: dict[str, int] = {}
    for reason in expected.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    assert result.by_reason == reasons

    rows = lake.query(
        "SELECT line, reason, detail, raw_text, raw_bytes, source_file "
        "FROM processed.orders_quarantine ORDER BY line"
    ).to_pylist()
    assert {r["line"]: r["reason"] for r in rows} == expected
    for row in rows:
        raw, _ = ORDERS[row["line"] - 1]
        assert row["raw_bytes"] == raw, "the quarantine keeps the exact bytes"
        assert row["source_file"].endswith(".ndjson") and "/raw/pos/orders/" in row["source_file"]
    details = {r["line"]: r["detail"] for r in rows}
    assert details[4].startswith("amount is not a double") and details[6] == "placed_at"


def test_accepted_rows_are_typed_and_first_delivery_wins(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    lake.land("pos/orders", [write_orders(tmp_path / "orders.ndjson")], DAY1)
    lake.ingest("pos/orders", DAY1)
    rows = lake.query("SELECT * FROM processed.orders ORDER BY order_id").to_pylist()
    assert [r["order_id"] for r in rows] == [1, 2, 14, 15]
    assert rows[0]["amount"] == 9.5, "the first delivery of order 1 wins over the re-delivery"
    assert rows[0]["paid"] is True and str(rows[0]["ship_date"]) == "2026-11-03"
    assert str(rows[0]["ds"]) == "2026-11-01" and rows[1]["store"] is None


def test_fast_and_line_by_line_paths_agree(tmp_path: Path) -> None:
    """A clean batch takes DuckDB's reader; the same rows plus one bad line go line by line."""
    clean = [raw for raw, reason in ORDERS if reason is None and b'"15"' not in raw]
    lake = make_lake(tmp_path)
    clean_file = tmp_path / "clean.ndjson"
    clean_file.write_bytes(b"\n".join(clean) + b"\n")
    dirty_file = tmp_path / "dirty.ndjson.gz"
    dirty_file.write_bytes(gzip.compress(b"\n".join([*clean, b"{oops"]) + b"\n"))
    lake.land("pos/orders", [clean_file], DAY1)
    lake.land("pos/orders", [dirty_file], DAY2)
    fast = lake.ingest("pos/orders", DAY1)
    slow = lake.ingest("pos/orders", DAY2)
    assert [b.parse_path for b in fast.batches] == ["fast"]
    assert [b.parse_path for b in slow.batches] == ["lines"]
    query = "SELECT * EXCLUDE (ds) FROM processed.orders WHERE ds = :ds ORDER BY order_id"
    assert lake.query(query, {"ds": DAY1}).to_pylist() == lake.query(query, {"ds": DAY2}).to_pylist()


def test_csv_records_reconcile_with_reasons(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    stores = tmp_path / "stores.csv"
    stores.write_bytes(
        b"store,opened,staff\n"
        b"s1,2020-01-01,5\n"
        b'"s2, the big one",2021-02-03,12\n'
        b"s3,not-a-date,3\n"
        b"s4,2022-01-01\n"
        b",2022-01-01,1\n"
        b"s\xff6,2022-01-01,1\n"
        b'"s7\nsecond line",2023-01-01,2\n'
        b"s8,2023-01-01,many\n"
    )
    lake.land("pos/stores", [stores], DAY1)
    result = lake.ingest("pos/stores", DAY1)
    assert (result.read, result.accepted, result.quarantined) == (8, 3, 5)
    rows = lake.query(
        "SELECT line, reason, raw_bytes FROM processed.stores_quarantine ORDER BY line"
    ).to_pylist()
    assert [(r["line"], r["reason"]) for r in rows] == [
        (4, "wrong_type"),
        (5, "wrong_column_count"),
        (6, "missing_required"),
        (7, "invalid_utf8"),
        (10, "wrong_type"),
    ]
    delivered = stores.read_bytes().split(b"\n")
    assert [r["raw_bytes"] for r in rows] == [delivered[r["line"] - 1] for r in rows], "as delivered"
    names = [r["store"] for r in lake.query("SELECT store FROM processed.stores ORDER BY store").to_pylist()]
    assert names == ["s1", "s2, the big one", "s7\nsecond line"]


def test_a_batch_over_the_quarantine_limit_fails_and_publishes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKEPLANE__INGEST__MAX_QUARANTINE_RATE", "0.5")
    lake = make_lake(tmp_path)
    bad = tmp_path / "bad.ndjson"
    bad.write_bytes(b"\n".join([line(order_id=1), b"{", b"{", b"[]"]) + b"\n")
    [landed] = lake.land("pos/orders", [bad], DAY1)
    with pytest.raises(QuarantineRateExceeded) as caught:
        lake.ingest("pos/orders", DAY1)
    err = caught.value
    assert err.batch == landed.batch.batch_id and err.rate == 0.75 and err.limit == 0.5
    assert landed.batch.batch_id in str(err) and "75.0%" in str(err)
    assert not lake.catalog.table_exists(TableRef("shop", "processed", "orders"))
    assert lake.query("SELECT count(*) AS n FROM processed.orders_quarantine").to_pylist() == [{"n": 3}]


def test_rerunning_a_day_gives_the_same_processed_table(demo_lake: Lake, drops: dict) -> None:
    land_drop(demo_lake, drops[DAY1])
    first = demo_lake.ingest("partner/impressions", DAY1)
    rows = demo_lake.query("SELECT * FROM processed.impressions ORDER BY event_id").to_pylist()
    again = demo_lake.ingest("partner/impressions", DAY1, force=True)
    assert demo_lake.query("SELECT * FROM processed.impressions ORDER BY event_id").to_pylist() == rows
    assert (first.read, first.accepted, first.quarantined) == (again.read, again.accepted, again.quarantined)
    counts = demo_lake.query(
        "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM processed.impressions"
    ).to_pylist()[0]
    assert counts["n"] == counts["d"] == first.rows_written
    quarantine = demo_lake.query("SELECT count(*) AS n FROM processed.impressions_quarantine")
    assert quarantine.to_pylist() == [{"n": first.quarantined}]


def test_a_wrong_value_in_a_parseable_batch_keeps_the_fast_path(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    lines = [line(order_id=n) for n in range(1, 200)]
    lines[150] = line(order_id=151, amount="lots")
    lines[20] = line(order_id="21.5")
    drop = tmp_path / "mostly_good.ndjson"
    drop.write_bytes(b"\n".join(lines) + b"\n")
    lake.land("pos/orders", [drop], DAY1)
    result = lake.ingest("pos/orders", DAY1)
    assert [b.parse_path for b in result.batches] == ["fast"]
    assert (result.read, result.accepted, result.quarantined) == (199, 197, 2)
    rows = lake.query("SELECT line, reason, raw_bytes FROM processed.orders_quarantine ORDER BY line")
    assert [(r["line"], r["reason"], r["raw_bytes"]) for r in rows.to_pylist()] == [
        (21, "wrong_type", lines[20]),
        (151, "wrong_type", lines[150]),
    ]
    ids = lake.query("SELECT order_id FROM processed.orders ORDER BY order_id").column("order_id").to_pylist()
    assert ids == [n for n in range(1, 200) if n not in (21, 151)]


def test_bookmarks_skip_published_batches_and_notice_new_ones(tmp_path: Path) -> None:
    from lakeplane.pipelines.bookmarks import bookmarks, reset

    lake = make_lake(tmp_path)
    first = tmp_path / "a.ndjson"
    first.write_bytes(line(order_id=1) + b"\n")
    lake.land("pos/orders", [first], DAY1)
    done = lake.ingest("pos/orders", DAY1)
    again = lake.ingest("pos/orders", DAY1)
    assert done.skipped is None and again.skipped == f"batches unchanged since snapshot {done.snapshot_id}"
    table = lake.catalog.load("shop.processed.orders")
    assert bookmarks(table)["2026-11-01"].snapshot_id == done.snapshot_id
    late = tmp_path / "late.ndjson"
    late.write_bytes(line(order_id=2) + b"\n")
    lake.land("pos/orders", [late], DAY1)
    third = lake.ingest("pos/orders", DAY1)
    assert third.skipped is None and third.rows_written == 2
    assert set(bookmarks(lake.catalog.load("shop.processed.orders"))["2026-11-01"].batches) == {
        b.batch_id for b in lake.raw.batches("pos/orders", DAY1)
    }
    reset(lake.catalog.load("shop.processed.orders"))
    assert lake.ingest("pos/orders", DAY1).skipped is None, "after a reset the day runs again"


@pytest.mark.parametrize("first_amount", [1.0, 2.0])
def test_in_a_clean_batch_read_without_its_order_the_first_of_differing_copies_still_wins(
    tmp_path: Path, first_amount: float
) -> None:
    """A clean batch is read without keeping its line order; when one key has copies that differ,
    the batch is read again in order, so the earlier line wins wherever the reader put it."""
    later_amount = 3.0 - first_amount
    padding = "x" * 300  # ~34 MB: DuckDB reads it in several blocks, on both threads
    lines = [line(order_id=7, amount=first_amount, store=padding)]
    lines += [line(order_id=100 + n, store=padding) for n in range(100_000)]
    lines += [line(order_id=7, amount=later_amount, store=padding)]  # the re-delivery, last
    lines += [line(order_id=8, store="same"), line(order_id=8, store="same")]  # identical copies
    lake = make_lake(tmp_path)
    drop = tmp_path / "orders.ndjson"
    drop.write_bytes(b"\n".join(lines) + b"\n")
    lake.land("pos/orders", [drop], DAY1)
    result = lake.ingest("pos/orders", DAY1)
    assert (result.read, result.accepted, result.quarantined, result.duplicates) == (100_004, 100_004, 0, 2)
    assert [(b.parse_path, b.in_order) for b in result.batches] == [("fast", True)], "read again, in order"
    rows = lake.query("SELECT order_id, amount FROM processed.orders WHERE order_id IN (7, 8)").to_pylist()
    assert sorted((r["order_id"], r["amount"]) for r in rows) == [(7, first_amount), (8, 9.5)]


def test_a_clean_batch_whose_copies_are_all_the_same_is_not_read_again(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    drop = tmp_path / "orders.ndjson"
    drop.write_bytes(b"\n".join([line(order_id=1), line(order_id=2), line(order_id=1)]) + b"\n")
    lake.land("pos/orders", [drop], DAY1)
    result = lake.ingest("pos/orders", DAY1)
    assert [(b.parse_path, b.in_order) for b in result.batches] == [("fast", False)]
    assert (result.accepted, result.duplicates, result.rows_written) == (3, 1, 2)


def test_a_clean_day_adds_no_snapshot_to_the_quarantine_table(tmp_path: Path) -> None:
    """Nothing to quarantine and nothing quarantined on that day before: no commit, no snapshot.
    A day that does replace its quarantined records still commits."""
    lake = make_lake(tmp_path)
    lake.land("pos/orders", [write_orders(tmp_path / "orders.ndjson")], DAY1)
    dirty = lake.ingest("pos/orders", DAY1)

    def quarantine() -> tuple[int, int]:
        table = lake.catalog.load("shop.processed.orders_quarantine")
        rows = lake.query("SELECT count(*) AS n FROM processed.orders_quarantine").to_pylist()[0]["n"]
        return len(table.metadata.snapshots), rows

    after_dirty = quarantine()
    assert after_dirty[1] == dirty.quarantined > 0
    clean = tmp_path / "clean.ndjson"
    clean.write_bytes(line(order_id=500) + b"\n")
    lake.land("pos/orders", [clean], DAY2)
    assert lake.ingest("pos/orders", DAY2).quarantined == 0
    assert quarantine() == after_dirty, "a clean day leaves the quarantine table as it was"
    lake.ingest("pos/orders", DAY1, force=True)
    assert quarantine() == (after_dirty[0] + 1, after_dirty[1]), "a day with records replaces them"


def test_an_ingest_reports_the_threads_its_memory_limit_lets_it_run(tmp_path: Path) -> None:
    """At 96 MB a DuckDB job runs one thread (one per 64 MB), and its step metrics say so."""
    make_lake(tmp_path)
    lake = open_lake(tmp_path / "shop", overrides={"engine": {"memory_limit": "96MB", "threads": 2}})
    lake.land("pos/orders", [write_orders(tmp_path / "orders.ndjson")], DAY1)
    summary = lake.run(DAY1)
    assert [i.cores for i in summary.ingests] == [1]
    assert summary.usage["ingest pos/orders"]["cores"] == 1
    assert summary.usage["ingest pos/orders"]["vcpu_seconds"] <= summary.usage["ingest pos/orders"]["seconds"]
