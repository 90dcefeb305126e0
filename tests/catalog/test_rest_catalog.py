"""The REST catalog (``lakeplane catalog serve``) against pyiceberg's RestCatalog, on a governed demo lake.

The server runs on 127.0.0.1 in a thread of the test process (and once as the real command in a
subprocess, to stop it with SIGTERM). What each principal may attach to follows the demo policy:
``pipeline`` reads everything unrestricted, ``ana`` (analyst) has pii masks on the telco processed
tables, ``eve`` (eu_team) row filters on the telco tables, ``ian`` (intern) is denied telco.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    ForbiddenError,
    NoSuchNamespaceError,
    NoSuchTableError,
    OAuthError,
    UnauthorizedError,
)
from pyiceberg.types import StringType

from lakeplane.catalog.rest import CatalogServer, catalog_server
from lakeplane.catalog.served import direct_read
from lakeplane.cli.main import cli
from lakeplane.demo.run import build_project
from lakeplane.errors import AuthenticationError, ConfigError, TokenError
from lakeplane.governance.access import ColumnDecision, TableAccess
from lakeplane.governance.tokens import TOKENS, AccessTokens, access_tokens, parse_lifetime
from lakeplane.lake import Lake
from tests.conftest import governed_demo

DAY = dt.date(2026, 11, 1)
PRINCIPALS = ("role:pipeline", "ana", "eve", "ian")


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The governed demo lake with one small telco and ad-tech day."""
    root = tmp_path_factory.mktemp("rest")
    return governed_demo(root, 400, 300, DAY)


@pytest.fixture(scope="module")
def tokens(lake: Lake) -> AccessTokens:
    return access_tokens(lake.governance)


@pytest.fixture(scope="module")
def secrets_of(tokens: AccessTokens) -> dict[str, str]:
    """A token for each principal of :data:`PRINCIPALS`, by principal as written there."""
    return {p: tokens.create(p, label=f"test-{p}").secret for p in PRINCIPALS}


@pytest.fixture(scope="module")
def server(lake: Lake) -> Iterator[CatalogServer]:
    lines: list[str] = []
    with catalog_server(lake.catalog, lake.governance, lake.config.storage, log=lines.append) as running:
        yield running


def rest(server: CatalogServer, secret: str, **properties: str) -> RestCatalog:
    return RestCatalog("lake", uri=server.url, token=secret, **properties)


def call(
    server: CatalogServer, method: str, path: str, secret: str | None = None, body: bytes | None = None
) -> tuple[int, Any]:
    """One raw HTTP request; the status and the JSON body (None when empty)."""
    request = urllib.request.Request(server.url + path, data=body, method=method)
    if secret is not None:
        request.add_header("Authorization", f"Bearer {secret}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    return status, json.loads(text) if text else None


def all_tables(catalog: RestCatalog) -> set[str]:
    found = set()
    for (domain,) in catalog.list_namespaces():
        for namespace in catalog.list_namespaces((domain,)):
            found |= {".".join(t) for t in catalog.list_tables(namespace)}
    return found


def normal(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((tuple(r.items()) for r in rows), key=repr)


# -- listing and loading ------------------------------------------------------------------------
def test_an_unrestricted_principal_lists_every_table(server, secrets_of, lake):
    catalog = rest(server, secrets_of["role:pipeline"])
    assert all_tables(catalog) == {str(t) for t in lake.tables()}
    assert catalog.namespace_exists(("telco", "processed"))
    assert catalog.table_exists("telco.processed.cdr")


@pytest.mark.parametrize("table", ["telco.processed.cdr", "adtech.processed.impressions"])
def test_a_scan_through_the_rest_catalog_matches_lakeplane(server, secrets_of, lake, table):
    scanned = rest(server, secrets_of["role:pipeline"]).load_table(table).scan().to_arrow()
    answer = lake.query(f"SELECT * FROM {table}", principal="role:pipeline")
    assert scanned.num_rows == answer.num_rows > 0
    assert scanned.column_names == answer.column_names
    assert normal(scanned.to_pylist()) == normal(answer.to_pylist())


def test_masked_tables_are_neither_listed_nor_loaded(server, secrets_of, lake):
    catalog = rest(server, secrets_of["ana"])
    seen = all_tables(catalog)
    # analyst: hash masks on msisdn/imsi of the telco processed tables, quarantines denied
    assert not seen & {"telco.processed.cdr", "telco.processed.subscribers"}
    assert "telco.curated.cell_daily" in seen  # no pii column there: unrestricted
    assert "adtech.processed.impressions" in seen
    assert ("telco", "processed") not in catalog.list_namespaces(("telco",))
    with pytest.raises(NoSuchNamespaceError):
        catalog.list_tables(("telco", "processed"))
    with pytest.raises(ForbiddenError, match="masks on imsi, msisdn"):
        catalog.load_table("telco.processed.cdr")
    assert not catalog.table_exists("telco.processed.cdr")


def test_row_filtered_tables_are_refused(server, secrets_of):
    catalog = rest(server, secrets_of["eve"])
    seen = all_tables(catalog)
    assert "telco.curated.cell_daily" not in seen
    with pytest.raises(ForbiddenError, match="row filters"):
        catalog.load_table("telco.curated.cell_daily")


def test_a_denied_domain_does_not_exist_for_the_principal(server, secrets_of):
    catalog = rest(server, secrets_of["ian"])
    assert catalog.list_namespaces() == [("adtech",)]
    assert all(t.startswith("adtech.") for t in all_tables(catalog))
    with pytest.raises(NoSuchTableError):  # 404, not 403: the intern learns nothing of telco
        catalog.load_table("telco.curated.cell_daily")
    with pytest.raises(NoSuchNamespaceError):
        catalog.load_namespace_properties(("telco",))


def test_every_load_is_audited(server, secrets_of, lake):
    log = lake.governance.audit_log()
    rest(server, secrets_of["ana"]).load_table("adtech.processed.campaigns")
    with pytest.raises(ForbiddenError):
        rest(server, secrets_of["ana"]).load_table("telco.processed.subscribers")
    allowed = log.search(principal="ana", table="adtech.processed.campaigns", decision="allowed", limit=1)
    assert allowed and allowed[0].sql.startswith("LOAD TABLE adtech.processed.campaigns")
    assert "campaign_id" in allowed[0].columns
    denied = log.search(principal="ana", table="telco.processed.subscribers", decision="denied", limit=1)
    assert denied and "card_pan" in denied[0].reason
    assert log.verify().ok


def test_concurrent_loads_all_succeed(server, secrets_of):
    errors: list[BaseException] = []
    counts: list[int] = []

    def load() -> None:
        try:
            counts.append(
                len(
                    rest(server, secrets_of["role:pipeline"])
                    .load_table("telco.processed.cdr")
                    .schema()
                    .fields
                )
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(counts) == 8 and len(set(counts)) == 1


@pytest.mark.parametrize(
    ("principal", "table", "verdict"),
    [
        ("role:pipeline", "telco.processed.cdr", "direct"),
        ("fred", "telco.processed.subscribers", "direct"),  # fraud: telco unmasked, unfiltered
        ("ana", "telco.processed.cdr", "restricted"),  # pii masks
        ("eve", "telco.processed.cdr", "restricted"),  # row filter
        ("eve", "adtech.processed.impressions", "hidden"),  # no grant
        ("ana", "telco.processed.cdr_quarantine", "hidden"),  # denied
        ("ian", "telco.curated.cell_daily", "hidden"),  # denied
    ],
)
def test_direct_read_verdicts(lake, principal, table, verdict):
    assert direct_read(lake.governance.access(principal, table)).verdict == verdict


def test_a_column_denial_restricts_direct_reading():
    columns = [
        ColumnDecision("id", 1, "string", "unmasked", "allow #1"),
        ColumnDecision("secret", 2, "string", "denied", "deny #2"),
    ]
    decision = direct_read(TableAccess("cara", "d.z.t", columns))
    assert decision.verdict == "restricted" and decision.because.startswith("no SELECT on secret")


# -- authentication -----------------------------------------------------------------------------
@pytest.mark.parametrize("secret", [None, "", "lp_not-a-real-token", "abc"])
def test_missing_or_unknown_tokens_get_401(server, secret):
    status, body = call(server, "GET", "/v1/namespaces", secret)
    assert status == 401
    assert body["error"]["type"] == "NotAuthorizedException" and body["error"]["code"] == 401
    assert body["error"]["message"]


def test_pyiceberg_with_a_bad_token_is_refused(server):
    with pytest.raises(UnauthorizedError):
        rest(server, "lp_wrong").list_namespaces()


def test_revoked_and_expired_tokens_stop_working(server, tokens):
    made = tokens.create("fred", label="soon-revoked")
    catalog = rest(server, made.secret)
    assert catalog.list_namespaces()
    tokens.revoke("soon-revoked")
    status, body = call(server, "GET", "/v1/namespaces", made.secret)
    assert status == 401 and "revoked" in body["error"]["message"]

    short = tokens.create("fred", lifetime=dt.timedelta(milliseconds=1))
    time.sleep(0.01)
    status, body = call(server, "GET", "/v1/namespaces", short.secret)
    assert status == 401 and "expired" in body["error"]["message"]


def test_oauth2_client_credentials(server, secrets_of):
    uri = f"{server.url}/v1/oauth/tokens"
    catalog = RestCatalog(
        "lake", uri=server.url, credential=f"ana:{secrets_of['ana']}", **{"oauth2-server-uri": uri}
    )
    assert ("adtech",) in catalog.list_namespaces()
    with pytest.raises(OAuthError, match="not the token's principal"):
        RestCatalog(
            "lake", uri=server.url, credential=f"eve:{secrets_of['ana']}", **{"oauth2-server-uri": uri}
        )
    with pytest.raises(OAuthError):
        RestCatalog("lake", uri=server.url, credential="ana:lp_nope", **{"oauth2-server-uri": uri})


# -- read-only ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/namespaces"),
        ("POST", "/v1/namespaces/telco%1Fprocessed/tables"),
        ("POST", "/v1/namespaces/telco%1Fprocessed/tables/cdr"),
        ("DELETE", "/v1/namespaces/telco%1Fprocessed/tables/cdr"),
        ("POST", "/v1/namespaces/telco%1Fprocessed/register"),
        ("POST", "/v1/tables/rename"),
        ("POST", "/v1/transactions/commit"),
        ("DELETE", "/v1/namespaces/telco"),
    ],
)
def test_writes_are_refused(server, secrets_of, lake, method, path):
    before = lake.catalog.load("telco.processed.cdr").metadata_location
    status, body = call(server, method, path, secrets_of["role:pipeline"], b"{}")
    assert status == 403
    assert body["error"]["type"] == "ForbiddenException" and "read-only" in body["error"]["message"]
    assert lake.catalog.load("telco.processed.cdr").metadata_location == before
    assert call(server, method, path, None, b"{}")[0] == 401  # nobody learns more without a token


def test_other_methods_and_paths(server, secrets_of):
    secret = secrets_of["role:pipeline"]
    assert call(server, "PATCH", "/v1/namespaces", secret, b"{}")[0] == 405
    status, body = call(server, "GET", "/v1/nothing-here", secret)
    assert status == 404 and body["error"]["code"] == 404
    assert call(server, "GET", "/v1/namespaces/telco%1Fprocessed/views", secret) == (200, {"identifiers": []})


def test_an_ungoverned_lake_is_not_served(demo_lake):
    with pytest.raises(ConfigError, match="governance is off"):
        catalog_server(demo_lake.catalog, demo_lake.governance, demo_lake.config.storage)


# -- the token store ----------------------------------------------------------------------------
def test_secrets_are_stored_only_as_digests(tokens, lake):
    made = tokens.create("ana", label="digest-check")
    assert made.secret.startswith("lp_") and len(made.secret) > 40
    with lake.catalog.state_engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.select(TOKENS))]
    assert not any(made.secret in str(value) for row in rows for value in row)
    assert tokens.authenticate(made.secret) == "user:ana"
    listed = next(t for t in tokens.all() if t.id == made.info.id)
    assert listed.last_used_at is not None and "secret" not in listed.to_dict()


def test_token_mistakes_are_clear(tokens):
    with pytest.raises(TokenError, match="unknown principal 'mallory'"):
        tokens.create("mallory")
    tokens.create("fred", label="fred-only")
    with pytest.raises(TokenError, match="held by active token"):
        tokens.create("fred", label="fred-only")
    with pytest.raises(TokenError, match="no token with id or label 'fred-onyl'; did you mean 'fred-only'"):
        tokens.revoke("fred-onyl")
    for text in ("30", "3y", "0d", "-1d"):
        with pytest.raises(TokenError, match="expected a duration"):
            parse_lifetime(text)
    assert parse_lifetime("2w") == dt.timedelta(weeks=2) and parse_lifetime("never") is None


def test_a_principal_dropped_from_the_policy_loses_its_tokens(tmp_path):
    governed = build_project(tmp_path / "project")
    store = access_tokens(governed.governance)
    made = store.create("fred")
    assert store.authenticate(made.secret) == "user:fred"
    policy = governed.governance.path
    policy.write_text(policy.read_text().replace("    fred: {roles: [fraud]}\n", "").replace(", fred]", "]"))
    os.utime(policy, (time.time() + 5, time.time() + 5))  # the policy is re-read when its mtime moves
    with pytest.raises(AuthenticationError, match="no longer names principal 'user:fred'"):
        store.authenticate(made.secret)


def test_token_commands(lake):
    def invoke(*args: str) -> tuple[int, Any]:
        result = CliRunner().invoke(cli, ["--lake", str(lake.project_dir), "--output", "json", *args])
        return result.exit_code, json.loads(result.output) if result.output.strip() else None

    code, made = invoke("token", "create", "eve", "--name", "cli-made", "--expires", "12h")
    assert code == 0 and made["principal"] == "user:eve" and made["secret"].startswith("lp_")
    expires = dt.datetime.fromisoformat(made["expires"]) - dt.datetime.fromisoformat(made["created"])
    assert dt.timedelta(hours=11, minutes=59) < expires <= dt.timedelta(hours=12)
    code, listed = invoke("token", "list")
    assert code == 0 and any(t["label"] == "cli-made" and t["state"] == "active" for t in listed)
    assert not any("secret" in t for t in listed)
    code, revoked = invoke("token", "revoke", "cli-made")
    assert code == 0 and revoked["state"] == "revoked"
    code, error = invoke("token", "create", "nobody")
    assert code == 1 and error["error"] == "TokenError" and error["principal"] == "nobody"
    audited = lake.governance.audit_log().search(principal="eve", limit=5)
    assert {r.sql.split(" ")[1] for r in audited if r.sql.startswith("TOKEN")} == {"CREATE", "REVOKE"}


# -- the command --------------------------------------------------------------------------------
def test_serve_command_stops_gracefully_on_sigterm(lake, secrets_of):
    command = [sys.executable, "-m", "lakeplane.cli.main", "--lake", str(lake.project_dir)]
    process = subprocess.Popen(
        [*command, "--output", "json", "catalog", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")},
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline()]
        while not lines[-1].rstrip().endswith("}"):
            lines.append(process.stdout.readline())
        started = json.loads("".join(lines))
        assert started["read_only"] is True
        catalog = RestCatalog("lake", uri=started["url"], token=secrets_of["role:pipeline"])
        assert isinstance(catalog.load_table("telco.curated.cell_daily").scan().to_arrow(), pa.Table)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert "GET /v1/namespaces/telco%1Fcurated/tables/cell_daily 200" in (
            process.stderr.read() if process.stderr else ""
        )
        with pytest.raises(OSError):
            urllib.request.urlopen(started["url"] + "/v1/config", timeout=2)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_taken_port_is_a_clear_error(server, lake):
    port = int(server.url.rsplit(":", 1)[1])
    with pytest.raises(ConfigError, match=f"cannot serve on 127.0.0.1:{port}"):
        catalog_server(lake.catalog, lake.governance, lake.config.storage, port=port)


# -- --allow-write: table commits ---------------------------------------------------------------
CLICKS = "adtech.processed.clicks"


@pytest.fixture(scope="module")
def writable(lake: Lake) -> Iterator[CatalogServer]:
    with catalog_server(
        lake.catalog, lake.governance, lake.config.storage, log=lambda line: None, allow_write=True
    ) as running:
        yield running


def new_clicks(table: Any, lake: Lake, prefix: str, count: int = 3) -> pa.Table:
    """``count`` rows like existing clicks, with fresh ids."""
    model = lake.query(f"SELECT * FROM {CLICKS} LIMIT 1", principal="role:pipeline").to_pylist()[0]
    rows = [{**model, "click_id": f"{prefix}-{i}"} for i in range(count)]
    return pa.Table.from_pylist(rows, schema=table.schema().as_arrow())


def click_ids(lake: Lake, prefix: str) -> list[str]:
    answer = lake.query(
        f"SELECT click_id FROM {CLICKS} WHERE click_id LIKE '{prefix}-%'", principal="role:pipeline"
    )
    return sorted(answer.column("click_id").to_pylist())


def test_a_writer_with_insert_appends_through_the_catalog(writable, secrets_of, lake):
    table = rest(writable, secrets_of["role:pipeline"]).load_table(CLICKS)
    table.append(new_clicks(table, lake, "rest-append"))
    assert click_ids(lake, "rest-append") == ["rest-append-0", "rest-append-1", "rest-append-2"]
    (record,) = lake.governance.audit_log().search(
        principal="pipeline", table=CLICKS, decision="allowed", limit=1
    )
    assert record.sql.startswith(f"COMMIT TABLE {CLICKS}: add-snapshot")


def test_a_reader_without_insert_cannot_commit(writable, secrets_of, lake):
    before = lake.catalog.load(CLICKS).metadata_location
    table = rest(writable, secrets_of["ana"]).load_table(CLICKS)  # ana may read the ad-tech tables
    with pytest.raises(ForbiddenError, match="'add-snapshot' needs INSERT"):
        table.append(new_clicks(table, lake, "ana-append"))
    assert lake.catalog.load(CLICKS).metadata_location == before
    assert click_ids(lake, "ana-append") == []


def test_schema_changes_need_alter(writable, secrets_of, lake):
    table = rest(writable, secrets_of["role:pipeline"]).load_table(CLICKS)
    with pytest.raises(ForbiddenError, match="'add-schema' needs ALTER"), table.update_schema() as update:
        update.add_column("note", StringType())
    assert "note" not in [f.name for f in lake.catalog.load(CLICKS).schema().fields]


def test_a_commit_that_lost_a_race_gets_409(writable, secrets_of, lake):
    first = rest(writable, secrets_of["role:pipeline"]).load_table(CLICKS)
    second = rest(writable, secrets_of["role:pipeline"]).load_table(CLICKS)
    first.append(new_clicks(first, lake, "race-first"))
    with pytest.raises(CommitFailedException):
        second.append(new_clicks(second, lake, "race-second"))
    assert click_ids(lake, "race-first") == ["race-first-0", "race-first-1", "race-first-2"]
    assert click_ids(lake, "race-second") == []


def test_creating_and_dropping_stay_refused_with_allow_write(writable, secrets_of):
    secret = secrets_of["role:pipeline"]
    assert call(writable, "POST", "/v1/namespaces/adtech%1Fprocessed/tables", secret, b"{}")[0] == 403
    assert call(writable, "DELETE", "/v1/namespaces/adtech%1Fprocessed/tables/clicks", secret)[0] == 403
    status, body = call(writable, "POST", "/v1/namespaces/adtech%1Fprocessed/tables/clicks", secret, b"{")
    assert status == 400 and body["error"]["type"] == "BadRequestException"


def test_closing_lets_a_request_in_flight_finish(lake, secrets_of):
    running = catalog_server(
        lake.catalog, lake.governance, lake.config.storage, log=lambda line: None
    ).start()
    host, port = running.httpd.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=10) as client:
        client.sendall(b"GET /v1/namespaces HTTP/1.0\r\n")  # half a request: its handler is waiting
        time.sleep(0.2)
        closing = threading.Thread(target=running.close)
        closing.start()
        time.sleep(0.3)
        assert closing.is_alive()  # close() waits for the request in flight
        client.sendall(f"Authorization: Bearer {secrets_of['role:pipeline']}\r\n\r\n".encode())
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    closing.join(timeout=10)
    assert not closing.is_alive()
    assert answer.startswith(b"HTTP/1.0 200") and b'"namespaces"' in answer
    with pytest.raises(OSError):
        socket.create_connection((str(host), int(port)), timeout=2)
