"""Typed literals keep their value and type on every engine: the same Trino query, run on DuckDB and on
Spark, answers the same values with the same Arrow types; TPC-H Q6's decimal arithmetic is exact on both."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from lakeplane.demo.run import build_project
from lakeplane.errors import QueryError
from lakeplane.lake import Lake
from tests.conftest import on_engine

pytestmark = pytest.mark.slow

#: Each typed literal (Trino) with the value and the Arrow type every engine must give it.
LITERALS: list[tuple[str, object, pa.DataType]] = [
    ("decimal '0.06'", Decimal("0.06"), pa.decimal128(3, 2)),
    ("DECIMAL '-12.50'", Decimal("-12.50"), pa.decimal128(4, 2)),
    ("decimal '123456789012345678.5'", Decimal("123456789012345678.5"), pa.decimal128(19, 1)),
    ("CAST('7.9' AS DECIMAL)", Decimal(8), pa.decimal128(38, 0)),  # Trino's DECIMAL is DECIMAL(38, 0)
    ("decimal '0.06' * 100", Decimal("6.00"), None),  # the value only: engines widen differently
    ("0.06", Decimal("0.06"), pa.decimal128(3, 2)),
    ("date '2026-02-28'", dt.date(2026, 2, 28), pa.date32()),
    ("date '2026-01-31' + interval '1' month", dt.date(2026, 2, 28), pa.date32()),
    ("date '2026-03-01' - interval '1' day", dt.date(2026, 2, 28), pa.date32()),
    ("date '1994-01-01' + interval '1' year", dt.date(1995, 1, 1), pa.date32()),
    ("timestamp '2026-11-01 10:15:30.123'", dt.datetime(2026, 11, 1, 10, 15, 30, 123000), pa.timestamp("us")),
    (
        "timestamp '2026-11-01 23:30:00' + interval '90' minute",
        dt.datetime(2026, 11, 2, 1, 0),
        pa.timestamp("us"),
    ),
    ("bigint '5'", 5, pa.int64()),
    ("integer '5'", 5, pa.int32()),
    ("smallint '5'", 5, pa.int16()),
    ("double '1.5'", 1.5, pa.float64()),
    ("real '1.5'", 1.5, pa.float32()),
    ("boolean 'true'", True, pa.bool_()),
]


@pytest.fixture(scope="module")
def lakes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Lake]:
    project = build_project(Path(tmp_path_factory.mktemp("literals")) / "project", governed=False)
    return {engine: on_engine(project, engine) for engine in ("duckdb", "spark")}


def test_typed_literals_round_trip_on_both_engines(lakes: dict[str, Lake]) -> None:
    sql = "SELECT " + ", ".join(f"{text} AS c{i}" for i, (text, _, _) in enumerate(LITERALS))
    answers = {engine: lake.query(sql) for engine, lake in lakes.items()}
    for i, (text, value, arrow_type) in enumerate(LITERALS):
        for engine, answer in answers.items():
            column = answer.column(f"c{i}")
            assert column.to_pylist() == [value], f"{text} on {engine}"
            if arrow_type is not None:
                assert column.type == arrow_type, f"{text} on {engine}: {column.type}"
        assert answers["duckdb"].column(f"c{i}").to_pylist() == answers["spark"].column(f"c{i}").to_pylist()


def test_time_is_refused_on_spark_not_turned_into_a_timestamp(lakes: dict[str, Lake]) -> None:
    assert lakes["duckdb"].query("SELECT time '10:00:01' AS t").column("t").to_pylist() == [dt.time(10, 0, 1)]
    with pytest.raises(QueryError, match="TIME values are not supported on spark"):
        lakes["spark"].query("SELECT time '10:00:01' AS t")


def _lineitem(rows: int) -> tuple[str, list[tuple[Decimal, Decimal, Decimal, dt.date]]]:
    """A generated lineitem as a VALUES list, and its rows."""
    pick = random.Random(6)
    data = [
        (
            Decimal(pick.randint(90_000, 10_000_000)) / 100,  # l_extendedprice DECIMAL(15, 2)
            Decimal(pick.randint(0, 10)) / 100,  # l_discount
            Decimal(pick.randint(1, 50)),  # l_quantity
            dt.date(1993, 6, 1) + dt.timedelta(days=pick.randint(0, 900)),  # l_shipdate
        )
        for _ in range(rows)
    ]
    values = ", ".join(f"('{p}', '{d}', '{q}', '{s}')" for p, d, q, s in data)
    cte = (
        "WITH lineitem AS (SELECT CAST(p AS DECIMAL(15, 2)) AS l_extendedprice, "
        "CAST(d AS DECIMAL(15, 2)) AS l_discount, CAST(q AS DECIMAL(15, 2)) AS l_quantity, "
        f"CAST(s AS DATE) AS l_shipdate FROM (VALUES {values}) AS v(p, d, q, s)) "
    )
    return cte, data


def test_tpch_q6_is_exact_on_both_engines(lakes: dict[str, Lake]) -> None:
    cte, data = _lineitem(400)
    sql = cte + (
        "SELECT sum(l_extendedprice * l_discount) AS revenue, "
        "sum(l_extendedprice * (1 - l_discount)) AS net, count(*) AS n FROM lineitem "
        "WHERE l_shipdate >= date '1994-01-01' AND l_shipdate < date '1994-01-01' + interval '1' year "
        "AND l_discount BETWEEN decimal '0.06' - decimal '0.01' AND decimal '0.06' + decimal '0.01' "
        "AND l_quantity < 24"
    )
    chosen = [
        (p, d)
        for p, d, q, s in data
        if dt.date(1994, 1, 1) <= s < dt.date(1995, 1, 1)
        and Decimal("0.05") <= d <= Decimal("0.07")
        and q < 24
    ]
    assert len(chosen) > 5, "too few rows chosen: the comparison would prove little"
    expected = {
        "revenue": sum(p * d for p, d in chosen),
        "net": sum(p * (1 - d) for p, d in chosen),
        "n": len(chosen),
    }
    for engine, lake in lakes.items():
        (row,) = lake.query(sql).to_pylist()
        assert row == expected, engine
