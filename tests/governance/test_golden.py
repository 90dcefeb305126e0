"""Golden files of the secured SQL, per query, principal and output dialect, and proof that it runs.

Each golden file holds the SQL the governance plane compiles for one query (written in Trino SQL) as one
principal, in one engine dialect, pretty-printed from the same parse tree and with the hash key's
material shown as ``<mask key>`` (``Governance.redact_key_material``). Regenerate them after an intended change with::

    LAKEPLANE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/governance/test_golden.py

and review the diff: every lake table must be a subquery that masks beneath and filters rows inside.
The DuckDB SQL is then executed, through the lake and on its own over fred's raw tables, and must return
what the query returns over the masked oracle copies.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from lakeplane.demo.run import TELCO_QUERY
from lakeplane.governance.masks import MaskSpec, mask_expression
from lakeplane.governance.secure import SecuredQuery
from tests.governance.conftest import (
    CDR,
    EXPECTED_MASKS,
    EXPECTED_ROW_FILTERS,
    SUBSCRIBERS,
    GovernedDemo,
    MaskedOracle,
    RawTelco,
    governed_rows,
    normalised,
)

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE = os.environ.get("LAKEPLANE_UPDATE_GOLDEN") == "1"
PRINCIPALS = ("ana", "eve")
DIALECTS = ("duckdb", "spark", "trino")

QUERIES = {
    "star": f"SELECT * FROM {CDR}",
    "masked_projection": f"SELECT msisdn, lower(imsi) AS imsi_lower, duration_s FROM {CDR} WHERE duration_s > 3000",
    "join_aggregate": TELCO_QUERY,
    "cte_shadowing_table": f"WITH cdr AS (SELECT msisdn, region FROM {CDR}) "
    "SELECT region, count(DISTINCT msisdn) AS callers FROM cdr GROUP BY region",
    "union": f"SELECT msisdn FROM {CDR} UNION SELECT msisdn FROM {SUBSCRIBERS}",
    "in_subquery": f"SELECT name, card_pan FROM {SUBSCRIBERS} WHERE msisdn IN "
    f"(SELECT msisdn FROM {CDR} WHERE duration_s > 3500)",
    "window": f"SELECT call_id, msisdn, lag(duration_s) OVER (PARTITION BY msisdn ORDER BY started_at, call_id) "
    f"AS previous FROM {CDR} WHERE call_type = 'sms'",
    "exists_with_pruning": f"SELECT s.plan, count(*) AS n FROM {SUBSCRIBERS} AS s WHERE s.ds = DATE '2026-11-01' "
    f"AND s.msisdn <> '+491500000000' AND EXISTS (SELECT 1 FROM {CDR} AS c "
    "WHERE c.msisdn = s.msisdn AND c.region = 'US') GROUP BY s.plan",
}
CASES = [(name, principal, dialect) for name in QUERIES for principal in PRINCIPALS for dialect in DIALECTS]


def secure(governed: GovernedDemo, name: str, principal: str, dialect: str) -> SecuredQuery:
    lake = governed.lake
    return lake.governance.compile(QUERIES[name], principal, lake.resolve_table, read="trino", write=dialect)


@pytest.mark.parametrize(("name", "principal", "dialect"), CASES)
def test_secured_sql_matches_golden(governed: GovernedDemo, name: str, principal: str, dialect: str) -> None:
    secured = secure(governed, name, principal, dialect)
    assert secured.sql == secured.expression.sql(dialect=dialect), "the golden renders the SQL that runs"
    shown = (
        governed.lake.governance.redact_key_material(secured.expression.sql(dialect=dialect, pretty=True))
        + "\n"
    )
    assert not [m for m in governed.key_material if m.lower() in shown.lower()]
    path = GOLDEN_DIR / f"{name}.{principal}.{dialect}.sql"
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(shown)
    assert path.exists(), f"no golden file {path.name}: run with LAKEPLANE_UPDATE_GOLDEN=1"
    assert shown == path.read_text(), (
        f"{path.name} changed; review and regenerate with LAKEPLANE_UPDATE_GOLDEN=1"
    )
    sqlglot.parse_one(shown, read=dialect)  # what the engine gets is valid SQL of its dialect


def test_every_golden_file_belongs_to_a_case() -> None:
    expected = {f"{name}.{principal}.{dialect}.sql" for name, principal, dialect in CASES}
    assert {p.name for p in GOLDEN_DIR.glob("*.sql")} == expected


@pytest.mark.parametrize(("name", "principal"), [(n, p) for n in QUERIES for p in PRINCIPALS])
def test_each_table_is_a_subquery_masking_beneath_and_filtering_inside(
    governed: GovernedDemo, name: str, principal: str
) -> None:
    """Read from the golden itself: the policy's masks and row filter sit in every table's subquery."""
    golden = (GOLDEN_DIR / f"{name}.{principal}.duckdb.sql").read_text()
    tree = sqlglot.parse_one(golden, read="duckdb")
    secured = secure(governed, name, principal, "duckdb")
    aliases = {b.alias: b.table for b in secured.tables}
    scans = [t for t in tree.find_all(exp.Table) if t.name.startswith("__lp_")]
    assert scans and {t.name for t in scans} == set(aliases)
    for scan in scans:
        select = scan.parent_select
        assert isinstance(select, exp.Select) and isinstance(select.parent, exp.Subquery)
        table = aliases[scan.name]
        masks = EXPECTED_MASKS[principal][table]
        for projection in select.expressions:
            column = exp.column(projection.alias, table=scan.name)
            if projection.alias in masks:
                kind = governed.lake.catalog.load(table).schema().find_field(projection.alias).field_type
                wanted = mask_expression(
                    MaskSpec.parse(masks[projection.alias]), column, str(kind), governed.key
                )
                shown = governed.lake.governance.redact_key_material(wanted.sql("duckdb"))
                assert projection.this.sql("duckdb") == shown, f"{table}.{projection.alias} is not masked"
            else:
                assert projection.this == column, f"{table}.{projection.alias}: {projection.this.sql()}"
        where = select.args.get("where")
        expected = EXPECTED_ROW_FILTERS[principal]
        if expected is None:
            assert where is None
        else:
            assert where is not None and where.this.sql("duckdb") == f"{scan.name}.{expected}"


@pytest.mark.parametrize("name", list(QUERIES))
def test_golden_queries_run_and_return_the_masked_answer(
    governed: GovernedDemo, raw_telco: RawTelco, oracles: dict[str, MaskedOracle], name: str
) -> None:
    answers = []
    for principal in PRINCIPALS:
        expected = oracles[principal].rows(QUERIES[name], "trino")
        answers.append(expected)
        assert governed_rows(governed.lake, QUERIES[name], principal) == expected, principal
        # The secured SQL on its own, over fred's raw tables registered under the scan aliases.
        secured = secure(governed, name, principal, "duckdb")
        raw = {CDR: raw_telco.cdr, SUBSCRIBERS: raw_telco.subscribers}
        with duckdb.connect() as con:
            for binding in secured.tables:
                con.register(binding.alias, raw[binding.table])
            assert normalised(con.execute(secured.sql).fetchall()) == expected, principal
    assert any(answers), f"{name}: empty answers prove little"
