from __future__ import annotations

import datetime as dt

import pytest
from sqlglot import exp

from lakeplane.errors import QueryError
from lakeplane.query.compiler import compile_query, referenced_tables
from lakeplane.query.functions import SPARK_FUNCTIONS, SPARK_REFUSED, VALUE_FUNCTIONS

KNOWN = {"ads.processed.events", "ads.processed.users"}


def resolve(name: str) -> str:
    full = name if name.count(".") == 2 else f"ads.{name}"
    if full not in KNOWN:
        raise QueryError(f"unknown table '{name}'")
    return full


def test_tables_in_ctes_subqueries_and_joins_are_replaced() -> None:
    compiled = compile_query(
        "WITH recent AS (SELECT * FROM processed.events WHERE ds = :ds) "
        "SELECT r.id FROM recent r JOIN ads.processed.users AS u ON u.id = r.user_id "
        "WHERE r.id IN (SELECT id FROM processed.events) UNION ALL SELECT 1",
        resolve,
        params={"ds": dt.date(2026, 11, 1)},
    )
    aliases = {b.table: b.alias for b in compiled.tables}
    assert set(aliases) == {"ads.processed.events", "ads.processed.users"}
    assert "processed" not in compiled.sql
    assert compiled.sql.count(f"{aliases['ads.processed.events']} AS events") == 2
    assert f"{aliases['ads.processed.users']} AS u" in compiled.sql
    assert "CAST('2026-11-01' AS DATE)" in compiled.sql
    assert "FROM recent AS r" in compiled.sql, "CTE references stay CTE references"


@pytest.mark.parametrize(
    "sql, message",
    [
        ("SELECT 1; SELECT 2", "expected one statement, got 2"),
        ("INSERT INTO t VALUES (1)", "only read-only queries are allowed, not INSERT"),
        ("COPY t TO '/tmp/x'", "only read-only queries"),
        ("ATTACH 'x.db'", "only read-only queries"),
        ("SELECT * FROM read_csv('/etc/passwd')", "not allowed"),
        ("SELECT * FROM 'data.parquet'", "unknown table 'data.parquet'"),
        ("SELECT FROM WHERE", "does not parse"),
    ],
)
def test_refused_sql(sql: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        compile_query(sql, resolve)


def test_referenced_tables_skip_ctes() -> None:
    sql = "WITH a AS (SELECT * FROM processed.x) SELECT * FROM a JOIN curated.y USING (k)"
    assert sorted(referenced_tables(sql)) == ["curated.y", "processed.x"]


#: Every Spark built-in a query may never call, as an attacker would write it.
SPARK_REFUSED_CALLS = [
    "reflect('java.lang.System', 'getenv', 'HOME')",
    "java_method('java.lang.System', 'getenv', 'HOME')",
    "try_reflect('java.lang.System', 'getenv', 'HOME')",
    "call_function('reflect', 'java.lang.System', 'getenv', 'HOME')",
    "input_file_name()",
    "input_file_block_start()",
    "input_file_block_length()",
    "spark_partition_id()",
    "monotonically_increasing_id()",
    "current_user()",
    "session_user()",
    "user()",
    "current_catalog()",
    "current_database()",
    "current_schema()",
    "version()",
    "xpath('<a><b>1</b></a>', 'a/b/text()')",
    "xpath_string('<a>x</a>', 'a')",
    "xpath_int('<a>1</a>', 'a')",
    "from_xml('<a>1</a>', 'a INT')",
    "schema_of_xml('<a>1</a>')",
    "from_avro(id, '{}')",
    "to_avro(id)",
    "from_protobuf(id, 'M', '/etc/passwd')",
    "to_protobuf(id, 'M', '/etc/passwd')",
    "raise_error('x')",
    "assert_true(id > 0)",
    "my_udf(id)",
    "python_worker_logs()",
    "aggregate_udf(id)",
    "system.builtin.reflect('java.lang.System', 'getenv', 'HOME')",
]


@pytest.mark.parametrize("call", SPARK_REFUSED_CALLS)
@pytest.mark.parametrize("read", ["spark", "trino", "duckdb"])
def test_spark_refuses_functions_off_the_allow_list(call: str, read: str) -> None:
    name = call.split("(")[0].rsplit(".", 1)[-1]
    sql = f"SELECT id, {call} AS x FROM processed.events"
    with pytest.raises(QueryError, match=r"\(\) is not allowed on spark") as caught:
        compile_query(sql, resolve, read=read, write="spark")
    # Named as written, or by sqlglot's name for it (Trino's version() is current_version()).
    assert caught.value.function in (name, f"current_{name}")
    compile_query("SELECT id FROM processed.events", resolve, read=read, write="spark")


@pytest.mark.parametrize("clause", ["WHERE {call} IS NOT NULL", "GROUP BY id HAVING max({call}) > ''"])
def test_spark_refuses_them_anywhere_in_the_query(clause: str) -> None:
    sql = "SELECT id FROM processed.events " + clause.format(call="input_file_name()")
    with pytest.raises(QueryError, match=r"input_file_name\(\) is not allowed on spark"):
        compile_query(sql, resolve, read="spark", write="spark")
    lambda_sql = "SELECT transform(array(1), x -> reflect('java.lang.System', 'getenv', 'HOME')) AS y"
    with pytest.raises(QueryError, match=r"reflect\(\) is not allowed on spark"):
        compile_query(lambda_sql, resolve, read="spark", write="spark")


def test_duckdb_keeps_its_own_refusals_and_is_not_held_to_sparks_list() -> None:
    with pytest.raises(QueryError, match=r"function getenv\(\) is not allowed in a query"):
        compile_query("SELECT getenv('HOME')", resolve, write="duckdb")
    with pytest.raises(QueryError, match=r"function read_parquet\(\) is not allowed in a query"):
        compile_query("SELECT * FROM read_parquet('x')", resolve, write="spark")
    # DuckDB's own sandbox stops what reaches past the values; only the deny-list applies there.
    compile_query("SELECT list_value(1, 2) AS l, current_user AS u", resolve, write="duckdb")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT lower(name), upper(name), substr(name, 1, 2), concat_ws('-', name, name) FROM t",
        "SELECT regexp_extract(name, '[0-9]+', 0), sha2(name, 256), md5(name), xxhash64(name) FROM t",
        "SELECT date_add(ds, 1), date_trunc('MONTH', ds), datediff(ds, ds), year(ds) FROM t",
        "SELECT get_json_object(name, '$.a'), from_json(name, 'a INT'), json_tuple(name, 'a') FROM t",
        "SELECT CASE WHEN id > 1 THEN 'a' ELSE 'b' END, coalesce(name, ''), nvl(name, ''), if(id > 0, 1, 2) FROM t",
        "SELECT count(*), sum(id), approx_count_distinct(id), percentile_approx(id, 0.5), collect_list(id) FROM t",
        "SELECT row_number() OVER (ORDER BY id), lag(id) OVER (ORDER BY id), ntile(4) OVER (ORDER BY id) FROM t",
        "SELECT transform(array(id), x -> x + 1), filter(array(id), x -> x > 0), element_at(map(1, 2), 1) FROM t",
        "SELECT explode(array(id, id)) FROM t",
        "SELECT CAST(id AS STRING), try_cast(name AS INT), typeof(id), rand(), uuid() FROM t",
    ],
)
def test_spark_allows_functions_that_compute_on_values(sql: str) -> None:
    compile_query(sql.replace(" FROM t", " FROM processed.events AS t"), resolve, read="spark", write="spark")


def test_spark_allows_trino_functions_that_compute_on_values() -> None:
    sql = (
        "SELECT strpos(name, 'a'), to_hex(to_utf8(name)), date_add('day', 1, ds), json_extract_scalar(name, '$.a'), "
        "regexp_like(name, 'a'), approx_distinct(id), arbitrary(name), element_at(array[1], 1) "
        "FROM processed.events"
    )
    compiled = compile_query(sql, resolve, read="trino", write="spark")
    assert "GET_JSON_OBJECT" in compiled.sql


@pytest.mark.parametrize(
    "sql, params",
    [
        ("SELECT '${env:LAKEPLANE_MASK_KEY}' AS k", {}),
        ("SELECT '${system:java.home}' AS k", {}),
        ("SELECT id AS `${spark.master}` FROM processed.events", {}),
        ("SELECT :p AS k", {"p": "${env:HOME}"}),
        ("SELECT 1 AS k /* ${env:HOME} */", {}),
    ],
)
def test_spark_refuses_variable_substitution(sql: str, params: dict[str, str]) -> None:
    with pytest.raises(QueryError, match=r"'\$\{' is not allowed in SQL for spark"):
        compile_query(sql, resolve, read="spark", write="spark", params=params)
    compile_query(sql, resolve, read="spark", write="duckdb", params=params)  # DuckDB substitutes nothing


def test_spark_refuses_script_transforms_on_every_engine() -> None:
    sql = "SELECT TRANSFORM(id) USING 'cat /etc/passwd' AS (line) FROM processed.events"
    for write in ("spark", "duckdb"):
        with pytest.raises(QueryError, match=r"script transforms \(TRANSFORM \.\.\. USING\) are not allowed"):
            compile_query(sql, resolve, read="spark", write=write)


def test_policy_functions_are_refused_in_a_query_on_every_engine() -> None:
    for call in ("current_principal()", "current_principal_attr('region')"):
        for write in ("spark", "duckdb"):
            with pytest.raises(QueryError, match=r"is not allowed in a query"):
                compile_query(f"SELECT {call} AS p", resolve, write=write)


def test_the_allow_list_and_the_refusals_are_apart() -> None:
    assert not SPARK_FUNCTIONS & set(SPARK_REFUSED)
    assert all(issubclass(f, exp.Func) and f is not exp.Anonymous for f in VALUE_FUNCTIONS)
    refused_types = {exp.CurrentUser, exp.SessionUser, exp.CurrentDatabase, exp.CurrentCatalog}
    assert not VALUE_FUNCTIONS & (refused_types | {exp.ReadParquet, exp.ReadCSV, exp.CurrentVersion})
