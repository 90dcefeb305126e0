"""The one exception root of lakeplane and its domain subclasses.

Every error carries structured fields (the file, the key, the table, the batch) so callers can act on
it without parsing messages, and says through ``retryable`` whether running the same work again can
help: a pipeline runner retries only errors whose ``retryable`` is true.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


class LakeplaneError(Exception):
    """Root of every error lakeplane raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields
        for name, value in fields.items():
            setattr(self, name, value)

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """The error as plain data, for ``--output json``."""
        return {
            "error": type(self).__name__,
            "message": self.message,
            "retryable": self.retryable,
            **{k: v for k, v in self.fields.items() if _is_plain(v)},
        }


def _is_plain(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)


class ConfigError(LakeplaneError, ValueError):
    """A project file is wrong: carries ``file``, ``key`` and, where known, ``line``."""


class UnknownNameError(LakeplaneError, KeyError):
    """A name (engine, catalog, storage backend) is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class MissingDependencyError(LakeplaneError, ImportError):
    """An optional dependency is not installed; ``extra`` names what to install."""


class StorageError(LakeplaneError, OSError):
    """Reading or writing lake storage failed."""

    retryable = True


class LandingError(LakeplaneError, ValueError):
    """A file cannot be landed in the raw zone (missing, unknown format, wrong dataset)."""


class CatalogError(LakeplaneError):
    """The catalog refused an operation or could not be reached."""

    retryable = True


class TableNotFoundError(CatalogError, LookupError):
    """A table named in SQL or on the command line does not exist."""

    retryable = False


class IngestError(LakeplaneError):
    """An ingest step could not turn raw batches into a processed table."""


class QuarantineRateExceeded(IngestError):
    """A batch had more malformed records than the dataset allows (``batch``, ``rate``, ``limit``)."""


class ModelError(LakeplaneError, ValueError):
    """A SQL model file is wrong (header, SQL, materialisation)."""


class QueryError(LakeplaneError, ValueError):
    """SQL that lakeplane will not run: not read-only, unparseable, or naming unknown tables."""


class EngineError(LakeplaneError):
    """An engine failed while running a job."""


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """A ``; did you mean 'x'?`` suffix when ``name`` is close to one of ``known``."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


class AccessDenied(LakeplaneError, PermissionError):
    """The policy does not let ``principal`` read ``table`` (or its ``column``)."""


class QualityGateFailed(LakeplaneError):
    """Blocking data-quality rules failed (``rules``): the step's output was not published."""
