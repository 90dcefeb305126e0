"""Metadata answers (SHOW, DESCRIBE, EXPLAIN, catalog views) from what each principal may see."""

from __future__ import annotations

import time

import psycopg
import pytest

from lakeplane.errors import AccessDenied, TableNotFoundError
from lakeplane.query.introspection import answer_metadata, introspection
from tests.serve.conftest import dsn


def test_ordinary_queries_are_not_metadata(pg_lake):
    assert answer_metadata(pg_lake, "SELECT * FROM adtech.processed.impressions", "ana") is None
    assert answer_metadata(pg_lake, "SELECT 'pg_catalog' AS word FROM impressions", "ana") is None


def test_show_tables_and_schemas_leave_out_what_cannot_be_read(pg_lake):
    every = {str(t) for t in pg_lake.tables()}
    pipeline = answer_metadata(pg_lake, "SHOW TABLES", "role:pipeline")
    assert pipeline is not None and set(pipeline.column("table").to_pylist()) == every
    ana = answer_metadata(pg_lake, "SHOW TABLES", "ana")
    assert ana is not None and "telco.processed.cdr_quarantine" not in ana.column("table").to_pylist()
    ian = answer_metadata(pg_lake, "show tables from telco", "ian")
    assert ian is not None and ian.num_rows == 0
    schemas = answer_metadata(pg_lake, "SHOW SCHEMAS;", "ian")
    assert schemas is not None and schemas.column("schema").to_pylist() == [
        "adtech_curated",
        "adtech_processed",
    ]


def test_describe_shows_each_principals_columns_and_masks(pg_lake):
    for written in ("telco.processed.subscribers", "telco_processed.subscribers", "subscribers"):
        ana = answer_metadata(pg_lake, f"DESCRIBE {written}", "ana")
        assert ana is not None
        access = dict(
            zip(ana.column("column_name").to_pylist(), ana.column("access").to_pylist(), strict=True)
        )
        assert access["msisdn"] == "hash" and access["card_pan"] == "last" and access["region"] == "unmasked"
    eve = answer_metadata(pg_lake, "SHOW COLUMNS FROM telco.processed.subscribers", "eve")
    assert (
        eve is not None
        and dict(zip(eve.column("column_name").to_pylist(), eve.column("access").to_pylist(), strict=True))[
            "card_pan"
        ]
        == "redact"
    )
    with pytest.raises(TableNotFoundError):  # exists, but ian may read none of it: as if it did not
        answer_metadata(pg_lake, "DESCRIBE telco.processed.subscribers", "ian")
    with pytest.raises(TableNotFoundError):
        answer_metadata(pg_lake, "DESCRIBE nowhere.nothing", "ana")


def test_explain_shows_the_secured_plan_without_the_key(pg_lake):
    plan = answer_metadata(pg_lake, "EXPLAIN SELECT msisdn, region FROM telco.processed.subscribers", "eve")
    assert plan is not None
    text = "\n".join(plan.column("QUERY PLAN").to_pylist())
    assert "Tables: telco.processed.subscribers" in text and "Row filter:" in text and "'EU'" in text
    hashed = answer_metadata(pg_lake, "EXPLAIN SELECT msisdn FROM telco_processed.subscribers", "ana")
    assert hashed is not None
    shown = "\n".join(hashed.column("QUERY PLAN").to_pylist())
    assert "Mask: telco.processed.subscribers.msisdn (hash)" in shown
    key = pg_lake.governance.key().decode()
    assert key not in shown and key[:16] not in shown
    with pytest.raises(AccessDenied):
        answer_metadata(pg_lake, "EXPLAIN SELECT * FROM telco.processed.cdr", "ian")


def test_catalog_views_list_only_visible_tables_and_columns(pg_lake):
    columns = answer_metadata(
        pg_lake,
        "SELECT table_schema, table_name, column_name FROM information_schema.columns "
        "WHERE table_name = 'subscribers' ORDER BY ordinal_position",
        "ana",
    )
    assert columns is not None and columns.column("column_name").to_pylist()[:2] == ["msisdn", "imsi"]
    assert set(columns.column("table_schema").to_pylist()) == {"telco_processed"}
    for sql in (
        "SELECT relname FROM pg_catalog.pg_class WHERE relkind = 'r'",
        "SELECT table_name FROM information_schema.tables",
    ):
        seen = answer_metadata(pg_lake, sql, "ian")
        assert seen is not None and seen.num_rows > 0
        assert not any("cdr" in name or "subscribers" in name for name in seen.column(0).to_pylist())
    version = answer_metadata(pg_lake, "select pg_catalog.version()", "ian")
    assert version is not None and version.column(0)[0].as_py().startswith("PostgreSQL 15.0")
    typed = answer_metadata(pg_lake, "SELECT typname FROM pg_type WHERE oid = $1", "ian", [20])
    assert typed is not None and typed.column(0).to_pylist() == ["int8"]


def test_a_principals_catalog_is_reused_while_nothing_changes(pg_lake):
    before = answer_metadata(pg_lake, "SHOW TABLES", "role:pipeline")
    assert before is not None
    answers = introspection(pg_lake)
    held = answers.shadow("role:pipeline")
    assert answers.shadow("role:pipeline") is held  # reused while nothing changed
    assert held.signature == answers.signature()


def test_a_denied_column_is_not_listed_and_a_policy_change_shows(pg_lake, pg_server, pg_secrets):
    policy = pg_lake.governance.path
    original = policy.read_text()
    denied = "  - to: role:intern\n    deny: [SELECT]\n    on: adtech.processed.impressions.user_id\n"
    try:
        policy.write_text(original.replace("\nmasks:\n", "\n" + denied + "\nmasks:\n", 1))
        time.sleep(2.1)  # past the interval after which a principal's catalog is checked again
        described = answer_metadata(pg_lake, "DESCRIBE adtech.processed.impressions", "ian")
        assert described is not None and "user_id" not in described.column("column_name").to_pylist()
        assert "country" in described.column("column_name").to_pylist()
        with psycopg.connect(dsn(pg_server, "ian", pg_secrets["ian"]), autocommit=True) as con:
            listed = con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'impressions' "
                "AND table_schema = 'adtech_processed'"
            ).fetchall()
            assert ("user_id",) not in listed and ("country",) in listed
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="user_id"):
                con.execute("SELECT user_id FROM adtech_processed.impressions")
        ana = answer_metadata(pg_lake, "DESCRIBE adtech.processed.impressions", "ana")
        assert ana is not None and "user_id" in ana.column("column_name").to_pylist()
    finally:
        policy.write_text(original)
        time.sleep(2.1)
    restored = answer_metadata(pg_lake, "DESCRIBE adtech.processed.impressions", "ian")
    assert restored is not None and "user_id" in restored.column("column_name").to_pylist()


def test_lake_query_and_the_cli_answer_metadata_too(pg_lake):
    from click.testing import CliRunner

    from lakeplane.cli.main import cli

    shown = pg_lake.query("SHOW TABLES", principal="ian")
    assert "adtech.processed.impressions" in shown.column("table").to_pylist()
    result = CliRunner().invoke(
        cli,
        [
            "--lake",
            str(pg_lake.project_dir),
            "--output",
            "json",
            "query",
            "--as",
            "ana",
            "DESCRIBE subscribers",
        ],
    )
    assert result.exit_code == 0, result.output
    assert '"hash"' in result.output and "card_pan" in result.output
