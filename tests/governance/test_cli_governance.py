"""The governance commands end to end on the governed demo project."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from lakeplane.cli.main import cli
from lakeplane.demo import telco
from lakeplane.demo.run import build_project
from lakeplane.engines import JobSpec
from lakeplane.engines.duckdb import DuckDBSession
from lakeplane.errors import EngineError
from lakeplane.lake import Lake

DAY = dt.date(2026, 11, 1)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root = tmp_path_factory.mktemp("governed")
    lake = build_project(root / "project")
    for dataset, files in telco.generate_day(root / "drops", DAY, 300).items():
        lake.land(dataset, files, DAY)
    lake.run(DAY)
    return lake


def invoke(lake: Lake, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--lake", str(lake.project_dir), *args])
    return result.exit_code, result.output


def test_query_as_principals_in_every_format(lake: Lake, tmp_path: Path) -> None:
    sql = "SELECT msisdn, region FROM telco.processed.cdr ORDER BY call_id LIMIT 3"
    code, out = invoke(lake, "--output", "json", "query", "--as", "fred", sql)
    raw = json.loads(out)
    assert code == 0 and raw[0]["msisdn"].startswith("+49")
    code, out = invoke(lake, "query", "--as", "ana", "--format", "csv", sql)
    lines = out.strip().splitlines()
    assert code == 0 and lines[0] == "msisdn,region" and len(lines[1].split(",")[0]) == 64
    code, out = invoke(
        lake, "query", "--as", "ana", "--format", "parquet", "--out", str(tmp_path / "r.parquet"), sql
    )
    assert code == 0 and pq.read_table(tmp_path / "r.parquet").num_rows == 3
    code, out = invoke(
        lake, "query", "--as", "eve", "--dialect", "duckdb", "SELECT DISTINCT region FROM telco.processed.cdr"
    )
    assert code == 0 and "EU" in out and "US" not in out
    code, out = invoke(lake, "query", "--as", "ian", sql)
    assert code == 1 and "principal 'ian' may not read table telco.processed.cdr" in out
    code, out = invoke(lake, "query", sql)
    assert code == 1 and "name a principal" in out


def test_access_answers(lake: Lake) -> None:
    code, out = invoke(
        lake, "--output", "json", "access", "who-can-see", "telco.processed.subscribers.card_pan"
    )
    answers = {a["principal"]: a for a in json.loads(out)}
    assert code == 0
    assert (answers["user:ana"]["sees"], answers["user:ana"]["mask"]) == ("masked", "last")
    assert (answers["user:eve"]["mask"], answers["user:eve"]["row_filters"]) == ("redact", ["region = 'EU'"])
    assert answers["user:fred"]["sees"] == "unmasked" and answers["user:ian"]["sees"] == "denied"
    code, out = invoke(
        lake,
        "--output",
        "json",
        "access",
        "explain",
        "--as",
        "eve",
        "SELECT card_pan FROM telco.processed.subscribers",
    )
    plan = json.loads(out)
    assert code == 0 and plan["masks"]["telco.processed.subscribers.card_pan"] == "redact"
    assert "region = 'EU'" in plan["sql"]


def test_policy_diff_and_versions(lake: Lake, tmp_path: Path) -> None:
    new = tmp_path / "policy.yaml"
    new.write_text(
        (lake.project_dir / "policy.yaml")
        .read_text()
        .replace(
            "    tags: {sensitivity: [pci]}\n    mask: {last: 4}",
            "    tags: {sensitivity: [pci]}\n    mask: null",
        )
    )
    code, out = invoke(lake, "--output", "json", "policy", "diff", str(new))
    changes = json.loads(out)
    assert code == 0 and changes
    assert {(c["principal"], c["column"], c["before"], c["after"]) for c in changes} >= {
        ("user:ana", "telco.processed.subscribers.card_pan", "masked (last)", "masked (null)")
    }
    code, out = invoke(lake, "--output", "json", "policy", "versions")
    assert code == 0 and json.loads(out)[0]["version"].startswith("v1-")


def test_audit_verify_needs_the_lakes_audit_key_and_checks_a_pinned_head(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke(lake, "query", "--as", "ana", "SELECT count(*) FROM telco.processed.cdr")
    key_file = lake.state_dir / "audit.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_text() != (lake.state_dir / "mask.key").read_text(), "a key of its own"
    code, out = invoke(lake, "--output", "json", "audit", "verify")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["unkeyed"] == 0
    assert json.loads((lake.state_dir / "audit.head").read_text())["hash"] == report["head"]

    code, out = invoke(lake, "audit", "verify", "--head", report["head"])
    assert code == 0 and "audit log intact" in out
    code, out = invoke(lake, "audit", "verify", "--head", "f" * 64)
    assert code == 3 and "the pinned head" in out

    monkeypatch.setenv("LAKEPLANE_AUDIT_KEY", "the key of some other lake")
    code, out = invoke(lake, "--output", "json", "audit", "verify")
    report = json.loads(out)
    assert code == 3 and report["first_bad_seq"] == 1
    assert "not signed with this lake's audit key" in report["problem"]


def test_audit_verify_detects_an_edit(lake: Lake) -> None:
    invoke(lake, "query", "--as", "fred", "SELECT count(*) FROM telco.processed.cdr")
    code, out = invoke(lake, "--output", "json", "audit", "verify")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["records"] >= 1
    code, out = invoke(
        lake, "--output", "json", "audit", "search", "--principal", "fred", "--column", "cdr.msisdn"
    )
    assert code == 0
    engine = lake.catalog.state_engine
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE lakeplane_audit SET principal = 'nobody' WHERE seq = 1"))
    code, out = invoke(lake, "--output", "json", "audit", "verify")
    report = json.loads(out)
    assert code == 3 and not report["ok"] and report["first_bad_seq"] == 1


def test_query_sessions_are_sandboxed(lake: Lake, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    with DuckDBSession(lake.storage, JobSpec("t", "256MB", 1, tmp_path / "spill")) as session:
        assert session.execute(f"SELECT count(*) FROM read_csv('{secret}')") == [(1,)]
        session.sandbox()
        for statement in (
            f"SELECT * FROM read_csv('{secret}')",
            f"ATTACH '{tmp_path / 'other.db'}' AS x",
            "SET enable_external_access = true",
            "INSTALL httpfs",
            f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'",
        ):
            with pytest.raises(EngineError):
                session.execute(statement)
