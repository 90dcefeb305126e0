"""The PostgreSQL listener against real clients: psql, psycopg 3, SQLAlchemy with pandas.

Each principal of the demo policy gets the answers and refusals ``lakeplane query --as`` gives:
``ana`` (analyst) sees pii hashed, ``eve`` (eu_team) only EU rows of the telco tables and card
numbers redacted, ``ian`` (intern) no telco table at all.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import shutil
import subprocess
import threading
from typing import Any

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa

from lakeplane.errors import LakeplaneError
from lakeplane.governance.tokens import access_tokens
from lakeplane.lake import Lake
from lakeplane.serve.pgwire import PgWireServer
from tests.serve.conftest import dsn

PSQL = shutil.which("psql") or "/usr/bin/psql"
QUERIES = [
    "SELECT msisdn, region, card_pan FROM telco.processed.subscribers ORDER BY msisdn",
    "SELECT region, count(*) AS n FROM telco.processed.cdr GROUP BY region ORDER BY region",
    "SELECT campaign_id, count(*) AS n FROM adtech.processed.impressions GROUP BY 1 ORDER BY 1",
    "SELECT cell_id, region FROM telco_curated.cell_daily ORDER BY 1, 2",
]


def psql(server: PgWireServer, user: str, secret: str, *commands: str) -> subprocess.CompletedProcess[str]:
    args = [PSQL, f"host=127.0.0.1 port={server.port} user={user} dbname=lake sslmode=disable", "-X"]
    for command in commands:
        args += ["-c", command]
    return subprocess.run(
        args, capture_output=True, text=True, timeout=60, env={**os.environ, "PGPASSWORD": secret}
    )


def lake_rows(lake: Lake, sql: str, principal: str) -> list[tuple[Any, ...]] | str:
    """What ``lakeplane query --as`` answers: the rows, or the refusal's class."""
    try:
        table = lake.query(sql, principal=principal, dialect="duckdb")
    except LakeplaneError as exc:
        return type(exc).__name__
    return [tuple(r.values()) for r in table.to_pylist()]


def pg_rows(
    server: PgWireServer, user: str, secret: str, sql: str, **options: Any
) -> list[tuple[Any, ...]] | str:
    with psycopg.connect(dsn(server, user, secret), autocommit=True) as con:
        try:
            return [tuple(r) for r in con.cursor(**options).execute(sql).fetchall()]
        except psycopg.errors.InsufficientPrivilege:
            return "AccessDenied"
        except psycopg.errors.UndefinedTable:
            return "TableNotFoundError"


# -- psql ---------------------------------------------------------------------------------------
@pytest.mark.skipif(not os.path.exists(PSQL), reason="psql is not installed")
def test_psql_lists_describes_and_queries(pg_server, pg_secrets, pg_lake):
    done = psql(
        pg_server,
        "ana",
        pg_secrets["ana"],
        r"\dt",
        r"\dt telco_*.*",
        r"\d telco_processed.subscribers",
        r"\dn",
        r"\l",
        "SELECT count(*) AS n FROM adtech.processed.impressions",
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "telco_processed | subscribers" in out and "adtech_processed | impressions" in out
    assert "cdr_quarantine" not in out  # ana may read no column of it: not listed
    assert 'Table "telco_processed.subscribers"' in out and "card_pan" in out
    assert "lakeplane" in out  # \l
    count = pg_lake.query("SELECT count(*) AS n FROM adtech.processed.impressions", principal="ana")
    assert f"\n {count.column('n')[0].as_py()}\n(1 row)" in out


@pytest.mark.skipif(not os.path.exists(PSQL), reason="psql is not installed")
def test_psql_as_the_intern_sees_no_telco_table_and_is_refused(pg_server, pg_secrets):
    done = psql(pg_server, "ian", pg_secrets["ian"], r"\dt")
    assert done.returncode == 0 and "adtech_processed" in done.stdout and "telco" not in done.stdout
    refused = psql(pg_server, "ian", pg_secrets["ian"], "SELECT * FROM telco.processed.cdr")
    assert refused.returncode == 1
    assert "may not read table telco.processed.cdr" in refused.stderr and "'ian'" in refused.stderr
    missing = psql(pg_server, "ian", pg_secrets["ian"], r"\d telco_processed.cdr")
    assert "Did not find any relation" in missing.stderr


# -- the same answers and refusals as lakeplane query ----------------------------------------------
@pytest.mark.parametrize("principal", ["ana", "eve", "ian"])
@pytest.mark.parametrize("sql", QUERIES)
def test_each_principal_gets_what_lakeplane_query_gives(pg_server, pg_secrets, pg_lake, principal, sql):
    expected = lake_rows(pg_lake, sql.replace("telco_curated.", "telco.curated."), principal)
    assert pg_rows(pg_server, principal, pg_secrets[principal], sql) == expected
    assert pg_rows(pg_server, principal, pg_secrets[principal], sql, binary=True) == expected


def test_masks_and_row_filters_reach_the_client(pg_server, pg_secrets, pg_lake):
    raw = pg_rows(pg_server, "role:pipeline", pg_secrets["role:pipeline"], QUERIES[0])
    hashed = pg_rows(pg_server, "ana", pg_secrets["ana"], QUERIES[0])
    eu = pg_rows(pg_server, "eve", pg_secrets["eve"], QUERIES[0])
    assert isinstance(raw, list) and isinstance(hashed, list) and isinstance(eu, list)
    assert {r[0] for r in raw}.isdisjoint({r[0] for r in hashed})
    assert all(r[2].startswith("*") or r[2][-4:].isdigit() for r in hashed)
    assert {r[1] for r in eu} == {"EU"} and len(eu) < len(raw)


# -- psycopg: protocol details ------------------------------------------------------------------
def test_parameters_types_and_prepared_statements(pg_server, pg_secrets, pg_lake):
    with psycopg.connect(dsn(pg_server, "ana", pg_secrets["ana"])) as con:
        sql = "SELECT count(*) FROM impressions WHERE country = %s AND ds = %s AND bid_price > %s"
        params = ("DE", dt.date(2026, 11, 1), 0.5)
        counted = con.execute(sql, params).fetchone()
        for _ in range(3):  # named, prepared on the server, described before bound
            assert con.execute(sql, params, prepare=True).fetchone() == counted
        expected = pg_lake.query(
            "SELECT count(*) AS n FROM adtech.processed.impressions "
            "WHERE country = 'DE' AND ds = DATE '2026-11-01' AND bid_price > 0.5",
            principal="ana",
        )
        assert counted == (expected.column("n")[0].as_py(),)
        for binary in (False, True):
            row = (
                con.cursor(binary=binary)
                .execute(
                    "SELECT 1::smallint, 2::integer, 3::bigint, 1.5::real, 2.25::double, 12.50::decimal(10,2), "
                    "true, 'x'::varchar, DATE '2026-11-01', TIMESTAMP '2026-11-01 10:00:00.5', "
                    "TIMESTAMPTZ '2026-11-01 10:00:00+00', '\\x01\\x02'::blob, NULL::integer"
                )
                .fetchone()
            )
            assert row == (
                1,
                2,
                3,
                1.5,
                2.25,
                decimal.Decimal("12.50"),
                True,
                "x",
                dt.date(2026, 11, 1),
                dt.datetime(2026, 11, 1, 10, 0, 0, 500000),
                dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC),
                b"\x01\x02",
                None,
            )
        assert con.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        con.rollback()


def test_session_statements_and_server_settings(pg_server, pg_secrets):
    with psycopg.connect(dsn(pg_server, "eve", pg_secrets["eve"]), autocommit=True) as con:
        assert con.info.parameter_status("server_version") == "15.0"
        assert con.info.parameter_status("integer_datetimes") == "on"
        con.execute("SET application_name = 'report'")
        assert con.execute("SHOW application_name").fetchone() == ("report",)
        assert con.execute("SHOW standard_conforming_strings").fetchone() == ("on",)
        version = con.execute("SELECT version()").fetchone()
        assert version is not None and version[0].startswith("PostgreSQL 15.0")
        simple = psycopg.ClientCursor(con)  # the simple query protocol: several statements, one message
        simple.execute("SELECT 1 AS a; SET x = 1; SELECT 2 AS b")
        assert simple.fetchone() == (1,)
        assert simple.nextset() and simple.pgresult and simple.pgresult.command_status == b"SET"
        assert simple.nextset() and simple.fetchone() == (2,)
        with pytest.raises(psycopg.errors.SyntaxError, match="multiple commands"):
            con.execute("SELECT %s; SELECT 2", (1,))  # extended protocol: one statement per Parse
        con.execute("BEGIN")
        assert con.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        with pytest.raises(psycopg.errors.UndefinedTable):
            con.execute("SELECT * FROM no_such_table")
        assert con.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            con.execute("SELECT 1")
        con.execute("ROLLBACK")
        con.execute("DISCARD ALL")
        con.execute("DEALLOCATE ALL")


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        (
            "INSERT INTO adtech.processed.impressions SELECT * FROM adtech.processed.impressions",
            psycopg.errors.ReadOnlySqlTransaction,
        ),
        ("DROP TABLE adtech.processed.impressions", psycopg.errors.ReadOnlySqlTransaction),
        ("SELEC 1", psycopg.errors.SyntaxError),
        ("SELECT * FROM nowhere.nothing", psycopg.errors.UndefinedTable),
        ("SELECT * FROM telco.processed.cdr_quarantine", psycopg.errors.InsufficientPrivilege),
    ],
)
def test_refusals_carry_their_sqlstate(pg_server, pg_secrets, sql, error):
    with psycopg.connect(dsn(pg_server, "ana", pg_secrets["ana"]), autocommit=True) as con:
        with pytest.raises(error):
            con.execute(sql)
        assert con.execute("SELECT 1").fetchone() == (1,)  # the connection stays usable


def test_a_refusal_is_audited_as_the_principal(pg_server, pg_secrets, pg_lake):
    with (
        psycopg.connect(dsn(pg_server, "ian", pg_secrets["ian"]), autocommit=True) as con,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        con.execute("SELECT imsi FROM telco.processed.subscribers WHERE region = 'audited-by-pg'")
    records = pg_lake.governance.audit_log().search(principal="ian", limit=20)
    assert any("audited-by-pg" in r.sql and r.decision == "denied" for r in records)


# -- identity -----------------------------------------------------------------------------------
def test_wrong_foreign_and_revoked_secrets_are_refused(pg_server, pg_secrets, pg_lake):
    for user, secret in [
        ("ana", "lp_" + "x" * 40),
        ("ana", "not-a-token"),
        ("ian", pg_secrets["ana"]),  # a live token, of another principal
        ("nobody", pg_secrets["ana"]),
    ]:
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(dsn(pg_server, user, secret))
    tokens = access_tokens(pg_lake.governance)
    made = tokens.create("eve", label="pg-revoked")
    psycopg.connect(dsn(pg_server, "eve", made.secret)).close()
    tokens.revoke(made.info.id)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(dsn(pg_server, "eve", made.secret))


# -- SQLAlchemy and pandas ----------------------------------------------------------------------
def test_sqlalchemy_reflection_and_pandas(pg_server, pg_secrets, pg_lake):
    engine = sa.create_engine(
        f"postgresql+psycopg://ana:{pg_secrets['ana']}@127.0.0.1:{pg_server.port}/lake?sslmode=disable"
    )
    try:
        inspector = sa.inspect(engine)
        assert set(inspector.get_schema_names()) == {
            "adtech_curated",
            "adtech_processed",
            "telco_curated",
            "telco_processed",
        }
        assert "subscribers_quarantine" not in inspector.get_table_names(schema="telco_processed")
        assert inspector.has_table("subscribers", schema="telco_processed")
        assert not inspector.has_table("subscribers_quarantine", schema="telco_processed")
        columns = {
            c["name"]: str(c["type"]) for c in inspector.get_columns("subscribers", schema="telco_processed")
        }
        assert columns["msisdn"] == "TEXT" and columns["signup_date"] == "DATE"
        frame = pd.read_sql(
            "SELECT region, count(*) AS n FROM telco_processed.subscribers GROUP BY 1 ORDER BY 1", engine
        )
        expected = pg_lake.query(
            "SELECT region, count(*) AS n FROM telco.processed.subscribers GROUP BY 1 ORDER BY 1",
            principal="ana",
        )
        assert frame.to_dict("list") == expected.to_pydict()
        with engine.connect() as con:
            one = pd.read_sql(
                sa.text("SELECT count(*) AS n FROM subscribers WHERE region = :r"), con, params={"r": "EU"}
            )
        assert one["n"][0] == expected.to_pydict()["n"][expected.to_pydict()["region"].index("EU")]
    finally:
        engine.dispose()


def test_concurrent_clients_are_all_answered_and_audited(pg_server, pg_secrets, pg_lake):
    before = pg_lake.governance.audit_log().head()
    errors: list[BaseException] = []
    answers: list[object] = []

    def client(user: str) -> None:
        try:
            with psycopg.connect(dsn(pg_server, user, pg_secrets[user]), autocommit=True) as con:
                for _ in range(4):
                    answers.append(con.execute("SELECT count(*) FROM adtech.processed.clicks").fetchone())
                    con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(u,)) for u in ("ana", "ian", "role:pipeline") * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and len(answers) == 36 and len(set(answers)) == 1
    after = pg_lake.governance.audit_log().head()
    assert before is not None and after is not None and after.seq - before.seq >= 36
    assert pg_lake.governance.audit_log().verify().ok
