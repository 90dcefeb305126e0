"""The comparison the interop tier rests on catches what it must: a changed value, a value of
another type that Python finds equal, another column order; and it forgives only spelling."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa

from tests.interop.harness import Answer, differences, rows_of


def answer(**columns: list[object]) -> Answer:
    return Answer(rows=rows_of(pa.table(columns)))


def test_the_same_rows_in_another_order_are_the_same() -> None:
    assert differences(answer(a=[1, 2], b=["x", "y"]), answer(a=[2, 1], b=["y", "x"])) is None


def test_a_changed_value_is_a_difference() -> None:
    why = differences(answer(a=[1, 2]), answer(a=[1, 3]))
    assert why is not None and "missing e.g. [(2,)]" in why and "unexpected e.g. [(3,)]" in why


def test_equal_values_of_another_type_are_a_difference() -> None:
    decimals = Answer(rows=rows_of(pa.table({"a": pa.array([Decimal("1.5")], pa.decimal128(9, 2))})))
    why = differences(decimals, answer(a=[1.5]))
    assert why is not None and "a: float != Decimal" in why
    assert differences(answer(a=[1]), answer(a=[1.0])) is not None


def test_another_column_order_is_a_difference() -> None:
    why = differences(answer(a=[1], b=[2]), answer(b=[2], a=[1]))
    assert why is not None and "columns ['b', 'a']" in why


def test_a_failed_read_is_a_difference_that_says_why() -> None:
    assert (
        differences(answer(a=[1]), Answer(error="boom"), sides=("lakeplane", "daft")) == "daft failed: boom"
    )


def test_an_aware_timestamp_is_the_same_instant_in_utc() -> None:
    instant = dt.datetime(2026, 11, 1, 12, 0)
    aware = pa.array([instant.replace(tzinfo=dt.UTC)], pa.timestamp("us", tz="Europe/Paris"))
    naive = pa.array([instant], pa.timestamp("us"))
    assert (
        differences(
            Answer(rows=rows_of(pa.table({"t": naive}))), Answer(rows=rows_of(pa.table({"t": aware})))
        )
        is None
    )
