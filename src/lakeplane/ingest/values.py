"""How a delivered value's text becomes its declared type, and why a value is refused.

Both parse paths (DuckDB's readers and the line-by-line path) use these SQL builders, so a value is
accepted or refused the same way whichever path a batch takes.
"""

from __future__ import annotations

from lakeplane.catalog.types import FIELD_DUCKDB_TYPES
from lakeplane.engines.duckdb import quote_ident, quote_literal

REASONS = (
    "invalid_utf8",
    "blank_line",
    "invalid_json",
    "not_an_object",
    "duplicate_key",
    "wrong_column_count",
    "unterminated_quote",
    "invalid_csv",
    "missing_required",
    "non_finite_number",
    "unknown_time_zone",
    "wrong_type",
)
#: A time of day followed by a zone name (``... 10:00:00 Europe/Berlin``): the name is group 1.
_ZONED = (
    r"^.*[0-9]:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]*)?)?\s+"
    r"([A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*)\s*$"
)
#: Text in a ``timestamp_ntz`` value that gives an offset or a zone (a letter other than ``T``, a
#: ``+``, or a ``-`` after the time): a wall-clock time has none.
_NOT_WALL_CLOCK = r"[A-SU-Za-su-z+]|:[0-9]{2}(?:\.[0-9]*)?\s*-"


def typed(name: str, field_type: str, non_finite: bool = False) -> str:
    """SQL turning the text of a field into its declared type, NULL when it is not one.

    Both parse paths use it, so a value is accepted or refused the same way whichever path a batch
    takes. Integers must be written as integers: ``1.5`` or ``true`` is not a ``long``. A ``double``
    that is NaN or infinite is refused unless ``non_finite``. A ``timestamp`` is converted to UTC
    from its offset or zone (none means UTC: the session's zone, set by :func:`create_staging`); a
    ``timestamp_ntz`` is kept as written and refused if it names an offset or zone.
    """
    col = quote_ident(name)
    target = FIELD_DUCKDB_TYPES[field_type]
    if field_type == "string":
        return col
    if field_type in ("int", "long"):
        integer = f"regexp_full_match({col}, '\\s*[+-]?[0-9]+\\s*')"
        return f"CASE WHEN {integer} THEN TRY_CAST({col} AS {target}) END"
    if field_type == "double" and not non_finite:
        return f"CASE WHEN isfinite(TRY_CAST({col} AS DOUBLE)) THEN TRY_CAST({col} AS DOUBLE) END"
    if field_type == "timestamp":
        # The instant's microseconds as a UTC wall-clock: no zone is consulted (timezone('UTC', ...)
        # gives the same, three times slower); an infinite value has none and is refused.
        return f"make_timestamp(epoch_us(TRY_CAST({col} AS TIMESTAMPTZ)))"
    if field_type == "timestamp_ntz":
        wall_clock = f"NOT regexp_matches({col}, {quote_literal(_NOT_WALL_CLOCK)})"
        return f"CASE WHEN {wall_clock} THEN TRY_CAST({col} AS TIMESTAMP) END"
    return f"TRY_CAST({col} AS {target})"


def refusals(name: str, field_type: str, non_finite: bool) -> list[tuple[str, str, str]]:
    """``(reason, condition, detail)`` of the refusals of a field's value more specific than
    ``wrong_type``, each as SQL on the value's text (which the declared type has refused)."""
    col = quote_ident(name)
    if field_type == "double" and not non_finite:
        number = f"TRY_CAST({col} AS DOUBLE)"
        detail = f"{quote_literal(name + ' is not finite: ')} || left({col}, 80)"
        return [("non_finite_number", f"{number} IS NOT NULL", detail)]
    if field_type == "timestamp":
        zone = f"regexp_extract({col}, {quote_literal(_ZONED)}, 1)"
        return [
            (
                "unknown_time_zone",
                f"{zone} <> ''",
                f"{quote_literal(name + ' has an unknown time zone: ')} || {zone}",
            )
        ]
    return []
