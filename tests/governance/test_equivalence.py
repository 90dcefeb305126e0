"""A governed query answers exactly what the same query answers over data already masked and filtered.

For random queries over the demo telco tables (one table or the join, projections over masked columns
and expressions of them, filters on region, duration, call type and masked columns, grouping with
aggregates, ordering by every column and a limit), the rows a principal gets through the lake equal the
rows plain DuckDB gives over the oracle copies of ``conftest.py``: fred's full tables with the demo
policy's masks applied by ``mask_expression`` and its row filter (region = 'EU' for eve). Whatever the
query does above the tables, only masked values and allowed rows can reach it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakeplane.errors import AccessDenied
from lakeplane.governance.masks import MaskSpec
from tests.governance.conftest import (
    CARA_DENIED,
    CDR,
    EXPECTED_MASKS,
    EXPECTED_ROW_FILTERS,
    SUBSCRIBERS,
    GovernedDemo,
    MaskedOracle,
    RawTelco,
    governed_rows,
)

PRINCIPALS = ("ana", "eve", "cara")


@dataclass(frozen=True)
class Source:
    """What a generated query reads: its FROM clause and the columns it may use, by kind."""

    sql: str
    strings: tuple[str, ...]
    numbers: tuple[str, ...]
    filters: tuple[str, ...]


_CDR_FILTERS = (
    "{c}region = 'EU'",
    "{c}region = 'US'",
    "{c}region <> 'EU'",
    "{c}duration_s > 1800",
    "{c}duration_s BETWEEN 100 AND 900",
    "{c}call_type IN ('voice', 'sms')",
    "{c}call_type = 'data'",
    "{c}msisdn LIKE '+49%'",
    "{c}imsi LIKE '2620%'",
    "length({c}msisdn) > 13",
    "{c}ds = DATE '2026-11-01'",
    "{c}msisdn > '8'",
    # raw values of masked columns: they must match nothing for ana, and prune no file
    "{c}msisdn = '+491503452684'",
    "{c}imsi IN ('262011221638052', '262012217511920')",
)
_SUBSCRIBER_FILTERS = (
    "{s}region = 'EU'",
    "{s}region = 'US'",
    "{s}plan = 'prepaid'",
    "{s}plan <> 'business'",
    "{s}card_pan LIKE '%12%'",
    "{s}card_pan LIKE '4%'",
    "{s}msisdn LIKE '%0'",
    "length({s}card_pan) = 16",
    "{s}signup_date < DATE '2021-01-01'",
    "{s}card_pan = '4644028910812474'",
    "{s}ds = DATE '2026-11-01'",
)


def _columns(prefix: str, names: str) -> tuple[str, ...]:
    return tuple(f"{prefix}{name}" for name in names.split())


SOURCES = (
    Source(
        CDR,
        _columns("", "call_id msisdn imsi region cell_id call_type"),
        ("duration_s",),
        tuple(f.format(c="") for f in _CDR_FILTERS),
    ),
    Source(
        SUBSCRIBERS,
        _columns("", "msisdn imsi region name plan card_pan"),
        (),
        tuple(f.format(s="") for f in _SUBSCRIBER_FILTERS),
    ),
    Source(
        f"{CDR} AS c JOIN {SUBSCRIBERS} AS s ON s.msisdn = c.msisdn",
        _columns("c.", "call_id msisdn imsi region call_type") + _columns("s.", "imsi name plan card_pan"),
        ("c.duration_s",),
        tuple(f.format(c="c.") for f in _CDR_FILTERS) + tuple(f.format(s="s.") for f in _SUBSCRIBER_FILTERS),
    ),
)


@st.composite
def string_expressions(draw: st.DrawFn, source: Source) -> str:
    column = draw(st.sampled_from(source.strings))
    other = draw(st.sampled_from(source.strings))
    shapes = (
        "{x}",
        "lower({x})",
        "upper({x})",
        "substr({x}, {a}, {b})",
        "CAST(length({x}) AS VARCHAR)",
        "concat({x}, '-', {y})",
        "reverse({x})",
        "{x} || 'z'",
        "coalesce({x}, 'none')",
        "CASE WHEN {x} LIKE '{p}%' THEN 'yes' ELSE 'no' END",
        "replace({x}, '*', '#')",
        "CAST(strpos({x}, '{p}') AS VARCHAR)",
    )
    return draw(st.sampled_from(shapes)).format(
        x=column,
        y=other,
        a=draw(st.integers(1, 5)),
        b=draw(st.integers(1, 8)),
        p=draw(st.sampled_from(["+49", "4", "*", "e", "1", "EU"])),
    )


@st.composite
def number_expressions(draw: st.DrawFn, source: Source) -> str:
    if draw(st.booleans()) and source.numbers:
        column = draw(st.sampled_from(source.numbers))
        return draw(st.sampled_from(["{x}", "{x} * 2", "{x} % 7", "{x} / 60"])).format(x=column)
    column = draw(st.sampled_from(source.strings))
    return draw(st.sampled_from(["length({x})", "strpos({x}, '4')"])).format(x=column)


@st.composite
def queries(draw: st.DrawFn) -> str:
    source = draw(st.sampled_from(SOURCES))
    expression = st.one_of(string_expressions(source), number_expressions(source))
    keys = draw(st.lists(expression, min_size=1, max_size=3))
    conditions = draw(st.lists(st.sampled_from(source.filters), max_size=3, unique=True))
    where = ""
    if conditions:
        joiner = draw(st.sampled_from([" AND ", " OR "]))
        where = " WHERE " + joiner.join(f"({c})" for c in conditions)
    if draw(st.booleans()):
        column = draw(st.sampled_from(source.strings))
        total = f"sum({source.numbers[0]})" if source.numbers else f"sum(length({column}))"
        aggregates = draw(
            st.lists(
                st.sampled_from(
                    ["count(*)", f"count(DISTINCT {column})", f"min({column})", f"max({column})", total]
                ),
                min_size=1,
                max_size=3,
            )
        )
        items = keys + aggregates
        group = f" GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}"
    else:
        items, group = keys, ""
    order = ", ".join(str(i + 1) for i in range(len(items)))
    limit = draw(st.integers(1, 60))
    return f"SELECT {', '.join(items)} FROM {source.sql}{where}{group} ORDER BY {order} LIMIT {limit}"


def _reads_denied(sql: str) -> bool:
    return any(column in sql for column in CARA_DENIED)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sql=queries())
def test_governed_rows_equal_rows_over_masked_copies(
    sql: str, governed: GovernedDemo, oracles: dict[str, MaskedOracle]
) -> None:
    for principal in PRINCIPALS:
        if principal == "cara" and _reads_denied(sql):
            with pytest.raises(AccessDenied) as caught:
                governed.lake.query(sql, principal=principal, dialect="trino")
            assert caught.value.column in CARA_DENIED
            continue
        got = governed_rows(governed.lake, sql, principal)
        assert got == oracles[principal].rows(sql, "trino"), f"{principal}: {sql}"


def test_the_oracles_hold_what_the_policy_promises(governed: GovernedDemo) -> None:
    """The oracles are built from EXPECTED_MASKS and EXPECTED_ROW_FILTERS; the lake agrees with them."""
    for principal, tables in EXPECTED_MASKS.items():
        for table, masks in tables.items():
            access = governed.lake.governance.access(principal, table)
            assert access.masked == {c: MaskSpec.parse(m) for c, m in masks.items()}, (principal, table)
            filters = [f.sql("duckdb") for f in access.row_filters]
            expected = EXPECTED_ROW_FILTERS[principal]
            assert filters == ([expected] if expected else []), (principal, table)


def test_masked_probes_see_masked_values(
    governed: GovernedDemo, raw_telco: RawTelco, oracles: dict[str, MaskedOracle]
) -> None:
    """A LIKE on a masked column filters masked values: ana's phone numbers never start with +49, and
    eve's probes count EU rows only, however they are written."""
    lake = governed.lake
    sql = f"SELECT count(*) FROM {CDR} WHERE msisdn LIKE '+49%'"
    assert governed_rows(lake, sql, "ana") == oracles["ana"].rows(sql) == [(0,)]
    assert governed_rows(lake, sql, "eve") == [(raw_telco.eu_calls,)]
    assert governed_rows(lake, f"SELECT count(*) FROM {CDR} WHERE region = 'US'", "eve") == [(0,)]
    everyone = f"SELECT count(*) FROM {SUBSCRIBERS} WHERE region <> 'EU' OR 1 = 1"
    assert governed_rows(lake, everyone, "eve") == [(raw_telco.eu_subscribers,)]
    assert governed_rows(lake, everyone, "ana") == [(raw_telco.subscribers.num_rows,)]


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param(f"SELECT count(*) FROM {SUBSCRIBERS} TABLESAMPLE 10 ROWS", id="tablesample"),
        pytest.param(f"SELECT count(*) FROM {SUBSCRIBERS} USING SAMPLE 10 ROWS", id="using-sample"),
        pytest.param(f"SELECT count(*) FROM {SUBSCRIBERS} TABLESAMPLE 100%", id="tablesample-percent"),
        pytest.param(
            f"SELECT k, count(*) FROM {SUBSCRIBERS} UNPIVOT (v FOR k IN (msisdn, plan)) GROUP BY k",
            id="unpivot",
        ),
        pytest.param(
            f"SELECT k, v FROM {SUBSCRIBERS} UNPIVOT (v FOR k IN (msisdn, card_pan)) ORDER BY k, v",
            id="unpivot-masked",
        ),
        pytest.param(
            f'SELECT plan, "EU", "US" FROM {SUBSCRIBERS} '
            "PIVOT (count(*) FOR region IN ('EU', 'US') GROUP BY plan) ORDER BY plan",
            id="pivot",
        ),
        pytest.param(f"SELECT a, b FROM {SUBSCRIBERS} AS s(a, b) ORDER BY a", id="column-alias-list"),
        pytest.param(
            f"SELECT s.a, count(*) FROM {SUBSCRIBERS} AS s(a) JOIN {CDR} AS c(call, x) ON c.x = s.a "
            "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5",
            id="column-alias-lists-joined",
        ),
    ],
)
def test_table_modifiers_survive_securing(
    governed: GovernedDemo, oracles: dict[str, MaskedOracle], sql: str
) -> None:
    for principal in ("ana", "eve"):
        got = governed_rows(governed.lake, sql, principal, dialect="duckdb")
        assert got == oracles[principal].rows(sql, "duckdb"), principal


@pytest.mark.parametrize(
    "sql",
    [
        f"SELECT region, card_pan, msisdn FROM {SUBSCRIBERS} TABLESAMPLE 100%",  # SYSTEM: whole vectors
        f"SELECT region, card_pan, msisdn FROM {SUBSCRIBERS} TABLESAMPLE BERNOULLI (50)",
        f"SELECT s.region, s.card_pan, s.msisdn FROM {SUBSCRIBERS} AS s TABLESAMPLE 200 ROWS",
    ],
)
def test_a_sample_sees_only_rows_and_values_the_principal_may_see(
    governed: GovernedDemo, oracles: dict[str, MaskedOracle], sql: str
) -> None:
    """The sample is drawn from the secured rows: eve's holds EU rows with card numbers redacted."""
    dialect = "trino" if "BERNOULLI" in sql else "duckdb"
    sampled = governed_rows(governed.lake, sql, "eve", dialect=dialect)
    everything = set(oracles["eve"].rows(f"SELECT region, card_pan, msisdn FROM {SUBSCRIBERS}", "duckdb"))
    assert sampled and set(sampled) <= everything
    assert {row[0] for row in sampled} == {"EU"} and {row[1] for row in sampled} == {"****"}


@pytest.mark.parametrize(
    "sql, column",
    [
        (f"SELECT a FROM {SUBSCRIBERS} AS s(a, b)", "imsi"),
        (f"SELECT k, count(*) FROM {SUBSCRIBERS} UNPIVOT (v FOR k IN (msisdn, imsi)) GROUP BY k", "imsi"),
        (f"SELECT * FROM {SUBSCRIBERS} PIVOT (count(*) FOR card_pan IN ('1'))", "card_pan"),
    ],
    ids=["alias-list-over-denied", "unpivot-denied", "pivot-denied"],
)
def test_clauses_over_denied_columns_are_refused(governed: GovernedDemo, sql: str, column: str) -> None:
    """cara may not read imsi nor card_pan: a column alias list that renames imsi by position, or a
    pivot over either, is refused naming the column, never answered over other columns."""
    with pytest.raises(AccessDenied) as denied:
        governed.lake.query(sql, principal="cara", dialect="duckdb")
    assert denied.value.column == column and denied.value.principal == "cara"
