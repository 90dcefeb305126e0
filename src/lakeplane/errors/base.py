"""The one exception root of lakeplane, and the helpers every error module uses.

Each error is a dataclass: its fields (the file, the key, the table, the principal) are typed
keyword-only constructor arguments, so callers act on them without parsing messages and a raise site
that forgets one fails type checking. ``retryable`` says whether running the same work again can
help (dlt's transient/terminal split): it defaults per class and a raise site may override it, and
a pipeline runner retries only errors whose ``retryable`` is true.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

_COMMON_FIELDS = ("message", "retryable")


@dataclass(eq=False)
class LakeplaneError(Exception):
    """Root of every error lakeplane raises on purpose."""

    message: str
    retryable: bool = field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # The default rebuilds an exception from ``args`` alone, which lacks the keyword fields.
        return _rebuild, (type(self), {f.name: getattr(self, f.name) for f in fields(self)})

    @property
    def fields(self) -> dict[str, Any]:
        """The fields this class adds to ``message`` and ``retryable``, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _COMMON_FIELDS}

    def to_dict(self) -> dict[str, Any]:
        """The error as plain data, for ``--output json``: every field, ``None`` when unknown."""
        return {
            "error": type(self).__name__,
            "message": self.message,
            "retryable": self.retryable,
            **{name: value for name, value in self.fields.items() if _is_plain(value)},
        }


def _rebuild(cls: type[LakeplaneError], values: dict[str, Any]) -> LakeplaneError:
    return cls(**values)


def _is_plain(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """A ``; did you mean 'x'?`` suffix when ``name`` is close to one of ``known``."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""
