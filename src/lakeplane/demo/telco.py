"""Synthetic telco drops for the governance demo: call-detail records and a subscribers extract.

Subscribers carry an MSISDN (phone number), an IMSI and a payment card number; calls carry the
caller's MSISDN and IMSI, the cell, the duration and the region (EU or US). Values derive from
hashes of the row index, so a size and a day give the same files everywhere.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

SUBSCRIBERS = 500


def _h(i: str, salt: int, modulo: int) -> str:
    return f"CAST(hash({i}, {salt}) % {modulo} AS BIGINT)"


def _subscriber(i: str) -> str:
    """The subscriber columns of subscriber number ``i`` (SQL)."""
    return f"""
        '+49' || lpad(CAST(1500000000 + {i} * 7919 AS VARCHAR), 10, '0') AS msisdn,
        '26201' || lpad(CAST({_h(i, 31, 10_000_000_000)} AS VARCHAR), 10, '0') AS imsi,
        CASE WHEN {i} % 3 = 0 THEN 'US' ELSE 'EU' END AS region"""


def generate_day(out_dir: Path, day: dt.date, calls_per_day: int) -> dict[str, list[Path]]:
    """Write one day's CDRs (NDJSON) and the subscribers extract (CSV) into ``out_dir/<day>/``."""
    folder = out_dir / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    cdr = folder / "cdr.ndjson"
    subscribers = folder / "subscribers.csv"
    day_index = (day - dt.date(2026, 1, 1)).days
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"""COPY (
        SELECT 'call-{day_index:04d}-' || lpad(CAST(r AS VARCHAR), 8, '0') AS call_id,
               {_subscriber("s")},
               'cell-' || lpad(CAST({_h("r", 32, 120)} AS VARCHAR), 3, '0') AS cell_id,
               strftime(TIMESTAMP '{day.isoformat()}' + to_microseconds({_h("r", 33, 86_400_000_000)}),
                        '%Y-%m-%d %H:%M:%S') AS started_at,
               {_h("r", 34, 3600)} AS duration_s,
               ['voice', 'voice', 'sms', 'data'][1 + {_h("r", 35, 4)}] AS call_type
        FROM (SELECT r, {_h("r", 30, SUBSCRIBERS)} AS s FROM range({calls_per_day}) AS t(r))
    ) TO '{cdr}' (FORMAT json)""")
    con.execute(f"""COPY (
        SELECT {_subscriber("s")},
               'Subscriber ' || s AS name,
               ['prepaid', 'postpaid', 'business'][1 + s % 3] AS plan,
               '4' || lpad(CAST({_h("s", 36, 1_000_000_000_000_000)} AS VARCHAR), 15, '0') AS card_pan,
               DATE '2020-01-01' + CAST(s * 3 AS INTEGER) AS signup_date
        FROM range({SUBSCRIBERS}) AS t(s)
    ) TO '{subscribers}' (FORMAT csv, HEADER true)""")
    con.close()
    return {"telco/cdr": [cdr], "telco/subscribers": [subscribers]}
