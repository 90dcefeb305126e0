"""The base of every ``lakeplane.yaml`` section: unknown keys are refused, values are frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from lakeplane.units import parse_duration, parse_size


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def size_value(value: object) -> object:
    """A validator's view of a size: ``128MB`` as bytes; any other value as given.

    Raises:
        ValueError: text that is not a size.
    """
    if isinstance(value, str):
        try:
            return parse_size(value)
        except ValueError:
            raise ValueError(f"'{value}' is not a size (write 128MB, 1GB or bytes)") from None
    return value


def optional_duration(value: object) -> float | None:
    """A validator's view of a duration that may be absent: ``5m`` as seconds, None as None."""
    return None if value is None else parse_duration(value)
