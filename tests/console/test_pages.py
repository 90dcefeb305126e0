"""Every console page and its /api twin, per principal, through the app in process: logins, refusals,
and nothing a principal may not see anywhere in any answer."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from lakeplane.console.app import create_app
from lakeplane.console.auth import COOKIE
from tests.console.conftest import CDR, STATS, SUBSCRIBERS, ConsoleLake, api_path, page_paths

pytestmark = pytest.mark.slow  # the package's lake runs two pipelines first

TELCO_NAMES = (
    "telco.processed",
    "telco.curated",
    "processed.cdr",
    "processed.subscribers",
    "curated.cell_daily",
)


@pytest.fixture(scope="module")
def client(console_lake: ConsoleLake) -> TestClient:
    return TestClient(create_app(console_lake.lake, console_lake.config))


def as_(console: ConsoleLake, who: str) -> tuple[str, str]:
    return (who, console.tokens[who])


def answers(client: TestClient, console: ConsoleLake, who: str, paths: list[str]) -> dict[str, str]:
    """Every page and /api answer for ``who``, each checked to be 200."""
    found = {}
    for path in paths:
        for url in (path, api_path(path)):
            response = client.get(url, auth=as_(console, who))
            assert response.status_code == 200, (who, url, response.text[:300])
            found[url] = response.text
    return found


def readable(client: TestClient, console: ConsoleLake, who: str) -> list[str]:
    return list(client.get("/api/me", auth=as_(console, who)).json()["tables"])


def test_anonymous_pages_go_to_login_and_api_calls_are_refused(
    client: TestClient, console_lake: ConsoleLake
) -> None:
    for path in page_paths(console_lake, [STATS]):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=")
        api = client.get(api_path(path))
        assert api.status_code == 401, path
        assert api.headers["www-authenticate"].startswith("Basic")
    assert client.get("/metrics").status_code == 401
    assert client.get("/api/runs", auth=("ana", "lp_not-a-token")).status_code == 401
    assert client.get("/api/runs", auth=("eve", console_lake.tokens["ana"])).status_code == 401  # ana's token


def test_login_by_form_sets_a_session_that_ends_with_its_token(
    client: TestClient, console_lake: ConsoleLake
) -> None:
    from lakeplane.governance.tokens import access_tokens

    refused = client.post("/login", data={"principal": "ana", "token": "lp_wrong", "next": "/runs"})
    assert refused.status_code == 401 and "not valid" in refused.text
    made = access_tokens(console_lake.lake.governance).create("ana", label="console-form")
    session = TestClient(client.app)
    response = session.post(
        "/login",
        data={"principal": "ana", "token": made.secret, "next": "//elsewhere.example"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/"  # no redirect off the site
    assert made.secret not in response.headers["set-cookie"]
    assert session.get("/runs").status_code == 200
    assert session.get("/api/me").json()["principal"] == "ana"
    access_tokens(console_lake.lake.governance).revoke(made.info.id)
    assert session.get("/runs", follow_redirects=False).status_code == 303
    assert session.get("/api/me").status_code == 401
    forged = TestClient(client.app, cookies={COOKIE: "eyJwcmluY2lwYWwiOiJmcmVkIn0.forged.sig"})
    assert forged.get("/api/me").status_code == 401


def test_every_page_answers_with_what_it_is_about(client: TestClient, console_lake: ConsoleLake) -> None:
    for who in ("ana", "fred"):
        answers(client, console_lake, who, page_paths(console_lake, readable(client, console_lake, who)))
    ana = as_(console_lake, "ana")
    nightly = console_lake.runs[0]
    run = client.get(f"/api/runs/{nightly.run_id}", auth=ana).json()
    assert {a["step"] for a in run["attempts"]} == {a.step for a in nightly.attempts}
    model = next(a for a in run["attempts"] if a["step"] == "daily_campaign_stats")
    assert model["metrics"]["engine"] == "duckdb" and model["metrics"]["placement"]
    assert model["cost_usd"] is not None and run["cost_usd"] > 0
    assert model["metrics"]["spill_bytes"] >= 0, "DuckDB's profile says what the model spilled"
    page = client.get(f"/runs/{nightly.run_id}", auth=ana).text
    assert "<svg" in page and "daily_campaign_stats #1" in page
    assert "not recorded" not in page, "every DuckDB step of the run has its spill"
    table = client.get(f"/api/tables/{CDR}", auth=ana).json()
    assert table["records"] == 300 and table["small_files"]["count"] == len(table["files"])
    assert table["size_history"][-1]["records"] == 300
    lineage = client.get(f"/api/lineage/{STATS}?column=ctr&direction=upstream", auth=ana).json()
    assert lineage["root"] == f"{STATS}.ctr"
    assert {n["table"] for n in lineage["nodes"]} >= {
        "adtech.processed.clicks",
        "adtech.processed.impressions",
    }
    assert "<svg" in client.get(f"/lineage/{STATS}?column=ctr", auth=ana).text
    quality = client.get("/api/quality", auth=ana).json()
    long_calls = next(r for r in quality["rules"] if r["rule"].startswith('ColumnValues "duration_s"'))
    assert long_calls["table"] == CDR and long_calls["pass_rate"] == 0.0
    assert {s["name"] for s in client.get("/api/slos", auth=ana).json()["slos"]} == {
        "cells_fresh",
        "nightly_dq",
    }
    mine = client.get("/api/queries", auth=ana).json()["queries"]
    assert mine and {q["principal"] for q in mine} == {"ana"}
    everyone = client.get("/api/queries", auth=as_(console_lake, "fred")).json()["queries"]
    assert {q["principal"] for q in everyone} >= {"ana", "eve", "ian"}  # an admin sees all
    assert all(q["bytes_scanned"] is not None for q in everyone if q["outcome"] == "succeeded")
    metrics = client.get("/metrics", auth=as_(console_lake, "fred"))
    assert metrics.status_code == 200 and "# TYPE" in metrics.text
    assert client.get("/metrics", auth=ana).status_code == 403  # not an admin


def test_ana_never_sees_a_raw_number_anywhere(client: TestClient, console_lake: ConsoleLake) -> None:
    tables = readable(client, console_lake, "ana")
    assert len(console_lake.raw_identifiers) > 500
    assert CDR in tables and SUBSCRIBERS in tables
    pages = answers(client, console_lake, "ana", page_paths(console_lake, tables))
    sample = client.get(f"/api/quality?table={CDR}", auth=as_(console_lake, "ana")).json()
    failing = next(r for r in sample["rules"] if r["failing_sample"])["failing_sample"]
    assert failing["rows"], failing  # the failing rows are shown, found through the governed path
    msisdn = failing["columns"].index("msisdn")
    assert all(re.fullmatch(r"[0-9a-f]{64}", row[msisdn]) for row in failing["rows"])  # hashed
    leaks = {
        (url, value) for url, text in pages.items() for value in console_lake.raw_identifiers if value in text
    }
    assert not leaks, sorted(leaks)[:5]


def test_eve_sees_only_eu_rows_anywhere(client: TestClient, console_lake: ConsoleLake) -> None:
    assert len(console_lake.hidden_from_eve) > 100
    pages = answers(
        client, console_lake, "eve", page_paths(console_lake, readable(client, console_lake, "eve"))
    )
    failing = client.get(f"/api/quality?table={CDR}", auth=as_(console_lake, "eve")).json()
    shown = next(r for r in failing["rules"] if r["failing_sample"])["failing_sample"]
    ids = {row[shown["columns"].index("call_id")] for row in shown["rows"]}
    assert ids and ids <= console_lake.eu_failing_call_ids
    leaks = {(url, v) for url, text in pages.items() for v in console_lake.hidden_from_eve if v in text}
    assert not leaks, sorted(leaks)[:5]


def test_ian_denied_telco_sees_no_telco_table_anywhere(client: TestClient, console_lake: ConsoleLake) -> None:
    tables = readable(client, console_lake, "ian")
    assert tables and not [t for t in tables if t.startswith("telco.")]
    pages = answers(client, console_lake, "ian", page_paths(console_lake, tables))
    named = {(url, n) for url, text in pages.items() for n in TELCO_NAMES if n in text}
    assert not named, sorted(named)[:5]
    for path in (f"/tables/{CDR}", f"/lineage/{CDR}", f"/quality?table={CDR}", "/tables/processed.cdr"):
        assert client.get(path, auth=as_(console_lake, "ian")).status_code == 404
        assert client.get(api_path(path), auth=as_(console_lake, "ian")).status_code == 404
    who = client.get(f"/api/access?column={CDR}.msisdn", auth=as_(console_lake, "ian")).json()
    assert who["who_can_see"]["principals"] == []
    nightly = client.get(f"/api/runs/{console_lake.runs[0].run_id}", auth=as_(console_lake, "ian")).json()
    assert {a["step"] for a in nightly["attempts"]} == {
        "impressions",
        "clicks",
        "campaigns",
        "daily_campaign_stats",
        "campaign_totals",
    }
    assert nightly["hidden_attempts"] == 3
