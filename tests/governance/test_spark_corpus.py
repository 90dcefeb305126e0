"""The adversarial corpus of the governance suite, run on Spark: the same refusals, no leaks, and for
queries a principal may run, the answer DuckDB gives that principal."""

from __future__ import annotations

from typing import Any

import pytest

from lakeplane.errors import AccessDenied, EngineError, LakeplaneError
from lakeplane.lake import Lake
from tests.conftest import on_engine
from tests.governance.conftest import GovernedDemo, RawTelco, table_rows
from tests.governance.test_adversarial import (
    CARA_DENIED,
    REFUSALS,
    Attack,
    _cases,
    attack_sql,
    check_refusal,
    find_leaks,
)

#: DuckDB-only syntax Spark cannot run: on Spark these end in an EngineError (after governance let
#: them through), which must still leak nothing.
SPARK_CANNOT = {
    "positional-join": "POSITIONAL JOIN is DuckDB syntax",
    "asof-join": "ASOF JOIN is DuckDB syntax",
    "row-as-struct": "a table alias used as a row value is DuckDB syntax",
}
#: Engine semantics that differ for the same SQL, unrelated to governance (leaks are still searched).
SPARK_DIFFERS = {
    "fn-split-to-list": "Spark's split keeps a trailing empty field, DuckDB's string_split does not",
    "fn-list-struct": "list(x ORDER BY x) becomes collect_list, which does not keep the order",
}


@pytest.fixture(scope="module")
def spark_lake(governed: GovernedDemo) -> Lake:
    return on_engine(governed.lake, "spark")


def duckdb_rows(governed: GovernedDemo, sql: str, attack: Attack, principal: str) -> Any:
    try:
        return table_rows(
            governed.lake.query(sql, attack.params, principal=principal, dialect=attack.dialect)
        )
    except LakeplaneError as exc:
        return exc


@pytest.mark.parametrize(("attack", "principal"), list(_cases()))
def test_attack_gets_nothing_on_spark(
    attack: Attack, principal: str, governed: GovernedDemo, raw_telco: RawTelco, spark_lake: Lake
) -> None:
    sql = attack_sql(attack, governed)
    on_duckdb = duckdb_rows(governed, sql, attack, principal)
    try:
        result = spark_lake.query(sql, attack.params, principal=principal, dialect=attack.dialect)
    except LakeplaneError as exc:
        check_refusal(exc, principal, governed)
        if attack.id in SPARK_CANNOT and isinstance(exc, EngineError):
            return
        if attack.expect == "refused":
            assert isinstance(exc, REFUSALS), f"refused, but as {type(exc).__name__}: {exc}"
        elif attack.expect == "rows" and principal in ("ana", "eve"):
            pytest.fail(f"{principal} may run this query but Spark said {type(exc).__name__}: {exc}")
        elif attack.expect == "rows" and principal == "ian" and attack.telco:
            assert isinstance(exc, AccessDenied), f"ian got {type(exc).__name__}, not AccessDenied: {exc}"
        elif attack.expect == "rows" and principal == "cara":
            assert isinstance(exc, AccessDenied) and exc.column in CARA_DENIED, f"{type(exc).__name__}: {exc}"
        if isinstance(exc, REFUSALS):
            assert type(on_duckdb) is type(exc), "governance refuses the same way on both engines"
        return
    assert attack.expect != "refused", f"{principal} ran a query that must be refused: {sql}"
    assert not (principal == "ian" and attack.telco), f"ian read telco: {result.num_rows} rows"
    # DuckDB's governed answer (itself checked by the DuckDB suite) is what this principal may see.
    baseline = on_duckdb if isinstance(on_duckdb, list) else None
    leaks = find_leaks(principal, result, raw_telco, governed, baseline)
    assert not leaks, f"{principal} sees on Spark what the policy hides: {leaks[:5]}"
    if attack.expect == "rows" and attack.compare and baseline is not None and attack.id not in SPARK_DIFFERS:
        assert table_rows(result) == on_duckdb, "Spark's answer differs from DuckDB's"
