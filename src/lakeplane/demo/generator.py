"""Synthetic partner drops for the ad-tech demo.

For each day: one impressions batch (``impressions_per_day`` rows, one hot campaign carrying ~30 %
of them, ~3 % re-delivered events), a clicks batch (~2 % of impressions), the CRM campaigns extract
(CSV) and one late partner batch holding malformed lines of every kind next to valid, partly
re-delivered events. Rows are derived from hashes of their index, so a size and a day give the same
files on every machine.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

CAMPAIGNS = 400
HOT_CAMPAIGN = "cmp-0007"
MALFORMED_KINDS = {
    "invalid_json": 3,
    "wrong_type": 3,
    "missing_required": 3,
    "invalid_utf8": 2,
    "blank_line": 1,
    "not_an_object": 1,
}


@dataclass(frozen=True)
class DayDrop:
    """The files a partner delivered for one day, by dataset."""

    day: dt.date
    files: dict[str, list[Path]]


def _h(i: str, salt: int, modulo: int) -> str:
    """A deterministic pseudo-random integer in [0, modulo) from row ``i``."""
    return f"CAST(hash({i}, {salt}) % {modulo} AS BIGINT)"


def _impressions_sql(day: dt.date, rows: int, first: int, hot_percent: int = 30) -> str:
    day_index = (day - dt.date(2026, 1, 1)).days
    i = f"(r + {first})"
    # ~3 % of rows re-deliver the previous event id (same content: derived from the same index).
    src = f"CASE WHEN {_h(i, 1, 100)} < 3 AND r > 0 THEN {i} - 1 ELSE {i} END"
    return f"""
    SELECT
        'imp-{day_index:04d}-' || lpad(CAST(src AS VARCHAR), 9, '0') AS event_id,
        strftime(TIMESTAMP '{day.isoformat()}' + to_microseconds({_h("src", 2, 86_400_000_000)}),
                 '%Y-%m-%d %H:%M:%S.%f') AS event_ts,
        CASE WHEN {_h("src", 3, 100)} < {int(hot_percent)} THEN '{HOT_CAMPAIGN}'
             ELSE 'cmp-' || lpad(CAST({_h("src", 4, CAMPAIGNS)} AS VARCHAR), 4, '0') END AS campaign_id,
        ['US', 'DE', 'FR', 'GB', 'JP', 'BR', 'IN', 'ES'][1 + {_h("src", 5, 8)}] AS country,
        ['mobile', 'desktop', 'tablet', 'ctv'][1 + {_h("src", 6, 4)}] AS device,
        'pub-' || CAST({_h("src", 7, 2000)} AS VARCHAR) AS publisher_id,
        'user-' || CAST({_h("src", 8, 1_000_000)} AS VARCHAR) AS user_id,
        round({_h("src", 9, 100_000)} / 10000.0, 4) AS bid_price,
        round({_h("src", 10, 50_000)} / 10000.0, 4) AS win_price,
        'https://news.example.com/article/' || CAST({_h("src", 11, 100_000)} AS VARCHAR) AS page_url
    FROM (SELECT r, {src} AS src FROM range({rows}) AS t(r))
    """


def _clicks_sql(day: dt.date, impressions: int, hot_percent: int = 30) -> str:
    day_index = (day - dt.date(2026, 1, 1)).days
    return f"""
    SELECT
        'clk-{day_index:04d}-' || lpad(CAST(r AS VARCHAR), 9, '0') AS click_id,
        event_id AS impression_id,
        strftime(CAST(event_ts AS TIMESTAMP) + to_microseconds({_h("r", 12, 600_000_000)}),
                 '%Y-%m-%d %H:%M:%S.%f') AS event_ts,
        campaign_id
    FROM (SELECT row_number() OVER () AS r, * FROM ({_impressions_sql(day, impressions, 0, hot_percent)})
          WHERE {_h("hash(event_id)", 13, 1000)} < 20)
    """


def generate_day(
    out_dir: Path, day: dt.date, impressions_per_day: int, hot_percent: int = 30, redeliver: float = 0.0
) -> DayDrop:
    """Write one day's partner drops into ``out_dir/<day>/`` and return their paths.

    ``hot_percent``: the share of impressions of the hot campaign (0 spreads them evenly).
    ``redeliver``: the share of the previous day's impressions delivered again, unchanged, at the
    end of this day's impressions batch (a partner re-sending what it already sent).
    """
    folder = out_dir / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    imp = folder / "impressions.ndjson"
    clicks = folder / "clicks.ndjson"
    campaigns = folder / "campaigns.csv"
    impressions = _impressions_sql(day, impressions_per_day, 0, hot_percent)
    if redeliver > 0:
        previous = _impressions_sql(day - dt.timedelta(days=1), impressions_per_day, 0, hot_percent)
        chosen = _h("hash(event_id)", 14, 1_000_000)
        impressions = (
            f"SELECT * FROM ({impressions}) UNION ALL "
            f"SELECT * FROM ({previous}) WHERE {chosen} < {round(redeliver * 1_000_000)}"
        )
    con.execute(f"COPY ({impressions}) TO '{imp}' (FORMAT json)")
    con.execute(f"COPY ({_clicks_sql(day, impressions_per_day, hot_percent)}) TO '{clicks}' (FORMAT json)")
    con.execute(f"""COPY (
        SELECT 'cmp-' || lpad(CAST(c AS VARCHAR), 4, '0') AS campaign_id,
               'Campaign ' || c AS name,
               'advertiser-' || CAST(c % 37 AS VARCHAR) AS advertiser,
               ['display', 'video', 'native'][1 + c % 3] AS channel,
               round(100 + c * 7.5, 2) AS daily_budget,
               DATE '2026-01-01' + CAST(c AS INTEGER) AS start_date
        FROM range({CAMPAIGNS}) AS t(c)) TO '{campaigns}' (FORMAT csv, HEADER true)""")
    late_rows = con.execute(
        f"SELECT * FROM ({_impressions_sql(day, 400, impressions_per_day - 40)}) ORDER BY event_id"
    ).fetchall()
    columns = [d[0] for d in con.description or []]
    con.close()
    late = folder / "impressions-late.ndjson"
    _write_late_batch(late, [dict(zip(columns, row, strict=True)) for row in late_rows])
    return DayDrop(
        day, {"partner/impressions": [imp, late], "partner/clicks": [clicks], "crm/campaigns": [campaigns]}
    )


def _write_late_batch(path: Path, rows: list[dict[str, object]]) -> None:
    """Valid late events (some re-delivered) interleaved with each kind of malformed line."""
    lines = [json.dumps(row).encode() for row in rows]
    bad: list[bytes] = []
    sample = rows[0]
    for n in range(MALFORMED_KINDS["invalid_json"]):
        bad.append(json.dumps(sample).encode()[: 40 + n])
    for n in range(MALFORMED_KINDS["wrong_type"]):
        bad.append(json.dumps({**sample, "event_id": f"bad-type-{n}", "bid_price": "n/a"}).encode())
    for n in range(MALFORMED_KINDS["missing_required"]):
        row = {k: v for k, v in sample.items() if k != "event_id"} | {"user_id": f"no-id-{n}"}
        bad.append(json.dumps(row).encode())
    for n in range(MALFORMED_KINDS["invalid_utf8"]):
        bad.append(
            json.dumps({**sample, "event_id": f"bad-utf8-{n}"})
            .encode()
            .replace(b"news.example", b"news.\xff\xfeexample")
        )
    bad += [b""] * MALFORMED_KINDS["blank_line"]
    bad += [b"[1, 2, 3]"] * MALFORMED_KINDS["not_an_object"]
    step = max(1, len(lines) // (len(bad) + 1))
    for n, line in enumerate(bad):
        lines.insert((n + 1) * step + n, line)
    path.write_bytes(b"\n".join(lines) + b"\n")


def generate(
    out_dir: Path, days: list[dt.date], impressions_per_day: int, redeliver: float = 0.0
) -> list[DayDrop]:
    """Partner drops for several days; each after the first re-delivers ``redeliver`` of the day before."""
    return [
        generate_day(out_dir, day, impressions_per_day, redeliver=redeliver if n else 0.0)
        for n, day in enumerate(days)
    ]


def malformed_count() -> int:
    """How many malformed lines each day's late batch holds."""
    return sum(MALFORMED_KINDS.values())
