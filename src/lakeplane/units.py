"""Sizes and durations as people write them (``2GB``, ``512MiB``, ``5m``) and sizes as people read
them (``1.5 GB``)."""

from __future__ import annotations

#: Binary units: ``GB`` and ``GiB`` both mean 1024^3 bytes, as DuckDB and the JVM read them.
_POWERS = (("TB", 4), ("GB", 3), ("MB", 2), ("KB", 1), ("B", 0))


def parse_size(text: str) -> int:
    """``8GB`` → bytes; a bare number is bytes.

    Raises:
        ValueError: ``text`` is not a size.
    """
    value = text.strip().upper().replace("IB", "B")
    for unit, power in _POWERS:
        if value.endswith(unit):
            return int(float(value[: -len(unit)]) * 1024**power)
    return int(float(value))


def human_bytes(size: float) -> str:
    """``1536`` → ``1.5 KB``."""
    for unit, _ in reversed(_POWERS):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> float:
    """``300``, ``"300"``, ``"45s"``, ``"5m"``, ``"1h"``, ``"2d"`` → seconds.

    Raises:
        ValueError: ``value`` is not a duration.
    """
    if isinstance(value, bool):
        raise ValueError(f"'{value}' is not a duration (write 300, 45s, 5m, 1h or 2d)")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().lower()
    unit = _DURATION_UNITS.get(text[-1:], 0)
    try:
        return float(text[:-1] if unit else text) * (unit or 1)
    except ValueError:
        raise ValueError(f"'{value}' is not a duration (write 300, 45s, 5m, 1h or 2d)") from None
