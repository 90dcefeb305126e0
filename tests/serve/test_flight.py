"""The Flight SQL service against the real ADBC Flight SQL driver (and pyarrow's Flight client): the
same answers and refusals as ``Lake.query`` as ana, eve and ian; logging in; prepared statements;
browsing what a principal may see."""

from __future__ import annotations

import re
import threading
from typing import Any

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from lakeplane.errors import AccessDenied, LakeplaneError
from lakeplane.serve import flight as flight_module
from lakeplane.serve.flight import FlightSqlService
from lakeplane.serve.flight_protocol import Fields, encode, pack_any, unpack_any
from tests.serve import flight_fixtures
from tests.serve.flight_fixtures import (
    PRINCIPALS,
    SERVER_LOG,
    answer,
    connect,
    fetch,
    normal,
    raw_client,
    statement,
)

# the shared fixtures, by the names the tests take them
lake = flight_fixtures.lake
secrets_of = flight_fixtures.secrets_of
server = flight_fixtures.server
tokens = flight_fixtures.tokens

QUERIES = [
    "SELECT * FROM telco.processed.cdr",
    "SELECT region, count(*) AS calls, sum(duration_s) AS seconds FROM cdr GROUP BY region",
    "SELECT name, card_pan, msisdn FROM telco.processed.subscribers",
    "SELECT * FROM adtech.processed.impressions",
    "SELECT event_id, user_id FROM adtech.processed.impressions",
    "SELECT c.cell_id, count(*) AS n FROM cdr c JOIN cell_daily d ON c.cell_id = d.cell_id GROUP BY 1",
    "SELECT * FROM telco.processed.cdr_quarantine",
]


# -- the same answers and refusals as lakeplane query ---------------------------------------------
@pytest.mark.parametrize("principal", PRINCIPALS)
def test_every_query_answers_as_lake_query_does(server, lake, secrets_of, principal):
    answered = refused = 0
    with connect(server, principal, secrets_of[principal]) as conn:
        for sql in QUERIES:
            expected = answer(lake, sql, principal)
            with conn.cursor() as cursor:
                if isinstance(expected, LakeplaneError):
                    with pytest.raises(adbc_driver_manager.Error) as raised:
                        cursor.execute(sql)
                    assert str(expected) in str(raised.value), sql
                    refused += 1
                    continue
                cursor.execute(sql)
                got = cursor.fetch_arrow_table()
            assert got.schema.names == expected.schema.names, sql
            assert got.schema.types == expected.schema.types, sql
            assert normal(got) == normal(expected), sql
            answered += 1
    # each principal is refused something and answered something
    assert answered and refused


@pytest.mark.parametrize("principal", ["ana", "ian"])
def test_metadata_statements_answer_as_the_shared_metadata_answers_do(server, lake, secrets_of, principal):
    # SHOW, DESCRIBE and EXPLAIN come from the answers every path shares, or are refused as
    # lake.query refuses them where those answers are absent
    for sql in ["SHOW TABLES", "DESCRIBE telco.processed.cdr", "DESCRIBE adtech.processed.impressions"]:
        expected: Any
        try:
            found = flight_module.metadata_answer and flight_module.metadata_answer(lake, sql, principal)
            expected = found if found is not None else lake.query(sql, principal=principal)
        except LakeplaneError as exc:
            expected = exc
        with connect(server, principal, secrets_of[principal]) as conn, conn.cursor() as cursor:
            if isinstance(expected, LakeplaneError):
                with pytest.raises(adbc_driver_manager.Error, match=re.escape(str(expected))):
                    cursor.execute(sql)
                continue
            cursor.execute(sql)
            assert cursor.fetch_arrow_table().to_pylist() == expected.to_pylist(), sql


def test_get_schema_of_a_statement(server, lake, secrets_of):
    sql = "SELECT msisdn, card_pan, region FROM telco.processed.subscribers"
    client, options = raw_client(server, "ana", secrets_of["ana"])
    with client:
        assert client.get_schema(statement(sql), options).schema == lake.query(sql, principal="ana").schema


@pytest.mark.xfail(
    strict=True,
    raises=adbc_driver_manager.NotSupportedError,
    reason="ADBC asks for the schema of the statement it prepared; a prepared statement carries none, "
    "since knowing it would mean running the statement when it is prepared",
)
def test_adbc_execute_schema(server, lake, secrets_of):
    sql = "SELECT msisdn, card_pan, region FROM telco.processed.subscribers"
    with connect(server, "ana", secrets_of["ana"]) as conn, conn.cursor() as cursor:
        assert cursor.adbc_execute_schema(sql) == lake.query(sql, principal="ana").schema


def test_masks_and_row_filters_hold_through_flight(server, secrets_of):
    ana = fetch(server, "ana", secrets_of["ana"], "SELECT msisdn, region FROM cdr")
    eve = fetch(server, "eve", secrets_of["eve"], "SELECT msisdn, region FROM cdr")
    assert all(len(m) == 64 and not m.startswith("+") for m in ana.column("msisdn").to_pylist())
    assert set(eve.column("region").to_pylist()) == {"EU"}
    assert set(ana.column("region").to_pylist()) > {"EU"}


def test_a_denied_column_is_refused_naming_principal_and_column(server, lake, secrets_of):
    sql = "SELECT event_id, user_id FROM adtech.processed.impressions"
    expected = answer(lake, sql, "ian")
    assert isinstance(expected, AccessDenied)
    client, options = raw_client(server, "ian", secrets_of["ian"])
    with client, pytest.raises(flight.FlightUnauthorizedError) as raised:
        client.get_flight_info(statement(sql), options)
    assert str(expected) in str(raised.value)
    assert "ian" in str(raised.value) and "user_id" in str(raised.value)
    denied = lake.governance.audit_log().search(principal="ian", decision="denied", limit=5)
    assert [r.sql for r in denied[:2]] == [sql, sql]  # lake.query's refusal, then the one through Flight
    assert "user_id" not in fetch(server, "ian", secrets_of["ian"], "SELECT * FROM impressions").schema.names


def test_each_statement_is_audited_as_the_principal(server, lake, secrets_of):
    sql = "SELECT count(*) AS n FROM telco.curated.cell_daily -- flight audit"
    fetch(server, "eve", secrets_of["eve"], sql)
    records = lake.governance.audit_log().search(principal="eve", limit=20)
    assert any(r.sql == sql and r.decision == "allowed" for r in records)


# -- logging in ------------------------------------------------------------------------------------
def test_wrong_tokens_are_refused(server, secrets_of):
    for user, secret in [
        ("ana", "lp_" + "x" * 43),  # unknown
        ("ana", "not-a-token"),  # malformed
        ("eve", secrets_of["ana"]),  # another principal's token
    ]:
        with pytest.raises(adbc_driver_manager.Error, match="(?i)unauthenticated|token"):
            fetch(server, user, secret, "SELECT 1 AS one")
        with pytest.raises(flight.FlightUnauthenticatedError):
            flight.connect(server.uri).authenticate_basic_token(user, secret)


def test_a_role_logs_in_by_its_policy_name(server, lake, tokens):
    secret = tokens.create("role:pipeline", label="flight-pipeline").secret
    sql = "SELECT * FROM telco.processed.cdr_quarantine"
    got = fetch(server, "role:pipeline", secret, sql)
    assert normal(got) == normal(lake.query(sql, principal="role:pipeline"))
    assert fetch(server, "pipeline", secret, "SELECT 1 AS one").num_rows == 1


def test_a_bearer_header_works_without_the_handshake(server, secrets_of):
    bearer = {"adbc.flight.sql.authorization_header": f"Bearer {secrets_of['ian']}"}
    with flight_sql.connect(server.uri, db_kwargs=bearer, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) AS n FROM campaigns")
        assert cursor.fetchone() is not None
        with pytest.raises(adbc_driver_manager.Error, match="principal 'ian' may not read table telco"):
            cursor.execute("SELECT * FROM cdr")


def test_a_call_without_a_token_is_refused(server):
    with flight.connect(server.uri) as client, pytest.raises(flight.FlightUnauthenticatedError):
        client.get_flight_info(statement("SELECT 1 AS one"))


def test_a_revoked_token_stops_working_on_an_open_connection(server, tokens):
    made = tokens.create("ana", label="flight-revoked")
    with connect(server, "ana", made.secret) as conn:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1 AS one")
            assert cursor.fetchall() == [(1,)]
        tokens.revoke(made.info.id)
        with conn.cursor() as cursor, pytest.raises(adbc_driver_manager.Error, match="revoked"):
            cursor.execute("SELECT 2 AS two")
    with pytest.raises(adbc_driver_manager.Error, match="revoked"):
        fetch(server, "ana", made.secret, "SELECT 1 AS one")


# -- prepared statements ---------------------------------------------------------------------------
def test_prepared_statements_bind_parameters(server, lake, secrets_of):
    sql = "SELECT count(*) AS n, min(call_id) AS first FROM cdr WHERE region = ? AND duration_s >= ?"
    with connect(server, "ana", secrets_of["ana"]) as conn, conn.cursor() as cursor:
        for region, seconds in [("EU", 0), ("US", 60), ("nowhere", 0)]:
            cursor.execute(sql, (region, seconds))
            got = cursor.fetch_arrow_table()
            expected = lake.query(
                "SELECT count(*) AS n, min(call_id) AS first FROM cdr WHERE region = :r AND duration_s >= :s",
                {"r": region, "s": seconds},
                principal="ana",
            )
            assert got.to_pylist() == expected.to_pylist()


def test_parameters_bind_by_name_and_several_rows_run_once_each(server, lake, secrets_of):
    # the ADBC driver binds by position only; a Flight SQL client may send named columns and many rows
    client, options = raw_client(server, "ana", secrets_of["ana"])
    sql = "SELECT :region AS region, count(*) AS n FROM cdr WHERE region = :region"
    with client:
        body = pack_any("ActionCreatePreparedStatementRequest", encode([(1, sql)]))
        (result,) = client.do_action(flight.Action("CreatePreparedStatement", body), options)
        handle = unpack_any(result.body.to_pybytes())[1].bytes(1)
        command = flight.FlightDescriptor.for_command(
            pack_any("CommandPreparedStatementQuery", encode([(1, handle)]))
        )
        params = pa.table({"region": ["EU", "US"]})
        writer, metadata = client.do_put(command, params.schema, options)
        writer.write_table(params)
        writer.done_writing()
        assert Fields(metadata.read().to_pybytes()).bytes(1) == handle  # DoPutPreparedStatementResult
        writer.close()
        info = client.get_flight_info(command, options)
        got = client.do_get(info.endpoints[0].ticket, options).read_all()
    expected = [lake.query(sql, {"region": r}, principal="ana").to_pylist()[0] for r in ("EU", "US")]
    assert got.to_pylist() == expected


def test_a_parameter_does_not_widen_a_row_filter(server, secrets_of):
    # eve's row filter keeps region EU whatever the parameter asks for
    got = fetch(server, "eve", secrets_of["eve"], "SELECT count(*) AS n FROM cdr WHERE region <> ?", ("EU",))
    assert got.to_pylist() == [{"n": 0}]


def test_a_prepared_statement_is_its_principals_only(server, secrets_of):
    ana, ana_options = raw_client(server, "ana", secrets_of["ana"])
    eve, eve_options = raw_client(server, "eve", secrets_of["eve"])
    with ana, eve:
        body = pack_any("ActionCreatePreparedStatementRequest", encode([(1, "SELECT 1 AS one")]))
        (result,) = ana.do_action(flight.Action("CreatePreparedStatement", body), ana_options)
        handle = unpack_any(result.body.to_pybytes())[1].bytes(1)
        command = flight.FlightDescriptor.for_command(
            pack_any("CommandPreparedStatementQuery", encode([(1, handle)]))
        )
        with pytest.raises(flight.FlightServerError, match="no such prepared statement"):
            eve.get_flight_info(command, eve_options)
        info = ana.get_flight_info(command, ana_options)
        assert ana.do_get(info.endpoints[0].ticket, ana_options).read_all().to_pylist() == [{"one": 1}]
        # a ticket is read once, by its principal only
        with pytest.raises(flight.FlightServerError, match="no result for this ticket"):
            ana.do_get(info.endpoints[0].ticket, ana_options).read_all()


# -- writes ----------------------------------------------------------------------------------------
def test_writes_are_refused(server, lake, secrets_of):
    expected = answer(lake, "DELETE FROM cdr", "ana")
    with pytest.raises(adbc_driver_manager.Error) as raised:
        fetch(server, "ana", secrets_of["ana"], "DELETE FROM cdr")
    assert str(expected) in str(raised.value)
    client, options = raw_client(server, "ana", secrets_of["ana"])
    update = flight.FlightDescriptor.for_command(
        pack_any("CommandStatementUpdate", encode([(1, "DELETE FROM cdr")]))
    )
    with client, pytest.raises(flight.FlightUnauthorizedError, match="read-only"):
        writer, _ = client.do_put(update, pa.schema([]), options)
        writer.close()
    assert lake.query("SELECT count(*) AS n FROM cdr", principal="role:pipeline").to_pylist() == [{"n": 400}]


# -- browsing ----------------------------------------------------------------------------------------
def listed(service: FlightSqlService, user: str, secret: str) -> set[str]:
    with connect(service, user, secret) as conn:
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    return {
        f"{c['catalog_name']}.{s['db_schema_name']}.{t['table_name']}"
        for c in objects
        for s in c["catalog_db_schemas"] or []
        for t in s["db_schema_tables"] or []
    }


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_get_objects_lists_what_the_principal_may_select(server, lake, secrets_of, principal):
    seen = listed(server, principal, secrets_of[principal])
    selectable = {
        str(ref)
        for ref in lake.tables()
        if not isinstance(answer(lake, f"SELECT * FROM {ref} LIMIT 0", principal), LakeplaneError)
    }
    assert seen == selectable
    domains = {name.split(".")[0] for name in seen}
    assert domains == {"ana": {"adtech", "telco"}, "eve": {"telco"}, "ian": {"adtech"}}[principal]
    assert "telco.processed.cdr_quarantine" not in seen


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_table_schemas_are_what_select_star_returns(server, lake, secrets_of, principal):
    with connect(server, principal, secrets_of[principal]) as conn:
        for name in sorted(listed(server, principal, secrets_of[principal])):
            domain, zone, table = name.split(".")
            schema = conn.adbc_get_table_schema(table, catalog_filter=domain, db_schema_filter=zone)
            served = lake.query(f"SELECT * FROM {name} LIMIT 0", principal=principal).schema
            assert schema.names == served.names, name
            assert schema.types == served.types, name


def test_a_hidden_table_has_no_schema(server, secrets_of):
    with connect(server, "ian", secrets_of["ian"]) as conn, pytest.raises(adbc_driver_manager.Error):
        conn.adbc_get_table_schema("cdr", catalog_filter="telco", db_schema_filter="processed")


def test_get_objects_filters_by_pattern_down_to_columns(server, lake, secrets_of):
    with connect(server, "ana", secrets_of["ana"]) as conn:
        objects = conn.adbc_get_objects(
            depth="columns", catalog_filter="telco", db_schema_filter="proc%", table_name_filter="sub_cribers"
        ).read_all()
    (catalog,) = objects.to_pylist()
    (schema,) = catalog["catalog_db_schemas"]
    (table,) = schema["db_schema_tables"]
    assert table["table_name"] == "subscribers"
    columns = [c["column_name"] for c in table["table_columns"]]
    served = lake.query("SELECT * FROM telco.processed.subscribers LIMIT 0", principal="ana")
    assert columns == served.schema.names


def test_server_info_and_table_types(server, secrets_of):
    with connect(server, "ana", secrets_of["ana"]) as conn:
        info = conn.adbc_get_info()
        assert info["vendor_name"] == "lakeplane"
        assert conn.adbc_get_table_types() == ["TABLE"]


# -- cancelling, shutting down, TLS, concurrency ----------------------------------------------------
def test_cancelling_drops_a_result_not_yet_read(server, secrets_of):
    client, options = raw_client(server, "ana", secrets_of["ana"])
    with client:
        info = client.get_flight_info(statement("SELECT * FROM cdr"), options)
        body = encode([(1, info.serialize())])
        (result,) = client.do_action(flight.Action("CancelFlightInfo", body), options)
        assert result.body.to_pybytes() == encode([(1, 1)])  # CANCELLED
        with pytest.raises(flight.FlightServerError, match="cancelled"):
            client.do_get(info.endpoints[0].ticket, options).read_all()


def test_concurrent_clients_get_their_own_answers(server, lake, secrets_of):
    sql = "SELECT region, count(*) AS n FROM cdr GROUP BY region"
    expected = {p: normal(e) for p in ("ana", "eve") if not isinstance(e := answer(lake, sql, p), Exception)}
    failures: list[BaseException] = []
    results: list[tuple[str, list[tuple[Any, ...]]]] = []

    def client(principal: str) -> None:
        try:
            for _ in range(3):
                results.append((principal, normal(fetch(server, principal, secrets_of[principal], sql))))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(p,)) for p in ["ana", "eve"] * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, [line for line in SERVER_LOG if "Traceback" in line]
    assert len(results) == 24
    assert all(rows == expected[p] for p, rows in results)
