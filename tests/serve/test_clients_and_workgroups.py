"""Workgroups, reuse and the history hold for SQL clients as for `lakeplane query`: a PostgreSQL or
Flight SQL client over its cap is refused before anything is read, with the itemised answer; a
reused result reaches a client; every statement, by every path, leaves a history row."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_flightsql.dbapi as flight_sql
import psycopg
import pytest

from lakeplane.governance.tokens import access_tokens
from lakeplane.lake import Lake, open_lake
from lakeplane.serve.flight import FlightSqlService
from lakeplane.serve.pgwire import PgWireServer
from tests.conftest import governed_demo

DAY = dt.date(2026, 11, 1)
SMALL = "SELECT region, count(*) AS calls FROM cdr WHERE ds = DATE '2026-11-01' GROUP BY region"
STAR = "SELECT * FROM cdr"
WORKGROUPS = """
workgroups:
  analysts:
    members: [role:analyst]
    bytes_scanned_cutoff_per_query: {cutoff}
    result_reuse: {{enabled: true, max_age: 1h}}
"""


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root = tmp_path_factory.mktemp("clients-workgroups")
    built = governed_demo(root, 400, 0, DAY)
    small = built.queries.estimate(SMALL, principal="ana").bytes
    config = built.project_dir / "lakeplane.yaml"
    config.write_text(config.read_text() + WORKGROUPS.format(cutoff=small * 2))
    return open_lake(built.project_dir)


@pytest.fixture(scope="module")
def secret(lake: Lake) -> str:
    return access_tokens(lake.governance).create("ana", label="clients").secret


@pytest.fixture(scope="module")
def pg(lake: Lake) -> Iterator[PgWireServer]:
    with PgWireServer(lake) as running:
        yield running


@pytest.fixture(scope="module")
def fl(lake: Lake) -> Iterator[FlightSqlService]:
    service = FlightSqlService(lake, "127.0.0.1", 0)
    thread = threading.Thread(target=service.serve, daemon=True)
    thread.start()
    yield service
    service.shutdown()
    thread.join(20)


def pg_connect(server: PgWireServer, secret: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        f"host=127.0.0.1 port={server.port} user=ana password={secret} dbname=lake sslmode=disable",
        autocommit=True,
    )


def test_a_postgresql_client_over_the_cap_is_refused_with_the_breakdown(
    lake: Lake, pg: PgWireServer, secret: str, tmp_path: Path
) -> None:
    with pg_connect(pg, secret) as conn:
        with pytest.raises(psycopg.Error) as caught:
            conn.execute(STAR).fetchall()
        assert caught.value.sqlstate == "54000"
        message = str(caught.value)
        assert "bytes_scanned_cutoff_per_query" in message and "telco.processed.cdr" in message
        assert "columns:" in message
        # the connection stays usable, and a query under the cap runs
        rows = conn.execute(SMALL).fetchall()
    assert sorted(rows) == sorted(tuple(r.values()) for r in lake.query(SMALL, principal="ana").to_pylist())


def test_a_flight_sql_client_over_the_cap_is_refused_with_the_breakdown(
    fl: FlightSqlService, secret: str
) -> None:
    with (
        flight_sql.connect(
            fl.uri, db_kwargs={"username": "ana", "password": secret}, autocommit=True
        ) as conn,
        conn.cursor() as cursor,
    ):
        with pytest.raises(Exception, match="bytes_scanned_cutoff_per_query"):
            cursor.execute(STAR)
            cursor.fetch_arrow_table()
        cursor.execute(SMALL)
        assert cursor.fetch_arrow_table().num_rows > 0


def test_every_path_leaves_a_history_row_and_a_client_gets_a_reused_result(
    lake: Lake, pg: PgWireServer, fl: FlightSqlService, secret: str
) -> None:
    sql = SMALL.replace("AS calls", "AS n")
    before = {r.id for r in lake.queries.admission.history.list(limit=1000)}
    with pg_connect(pg, secret) as pg_conn:
        first = pg_conn.execute(sql).fetchall()
        second = pg_conn.execute(sql).fetchall()
    with (
        flight_sql.connect(
            fl.uri, db_kwargs={"username": "ana", "password": secret}, autocommit=True
        ) as flight_conn,
        flight_conn.cursor() as cursor,
    ):
        cursor.execute(sql)
        third = cursor.fetch_arrow_table()
    assert sorted(first) == sorted(second) == sorted(tuple(r.values()) for r in third.to_pylist())
    # (the PostgreSQL listener hands on the statement as it parsed it: the SQL text may differ)
    new = [r for r in lake.queries.admission.history.list(limit=1000) if r.id not in before]
    assert (
        len(new) == 3 and {r.principal for r in new} == {"ana"} and {r.workgroup for r in new} == {"analysts"}
    )
    assert sum(r.cache_hit for r in new) == 2  # the first ran; the others were answered from its result
    assert [r.bytes_scanned for r in new if r.cache_hit] == [0, 0]
