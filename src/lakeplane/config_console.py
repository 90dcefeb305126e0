"""``console:`` in ``lakeplane.yaml``: where ``lakeplane console`` listens and who administers it."""

from __future__ import annotations

from pydantic import Field

from lakeplane.config_base import Strict


class ConsoleConfig(Strict):
    """The web console (``lakeplane console``; options on the command line win).

    A principal sees its own queries and audit records; one named in ``admins`` (``ana`` or
    ``user:ana``, ``role:ops``) sees everyone's. ``/metrics`` asks for a token unless
    ``metrics_public`` is true (for a Prometheus scraper on the same machine).
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8780, ge=0, le=65535)
    admins: list[str] = Field(default_factory=list)
    #: How long a login by the form lasts.
    session_hours: float = Field(default=12.0, gt=0)
    #: A data file below this many bytes counts as small (the small-file health of a table).
    small_file_bytes: int = Field(default=32 * 1024 * 1024, ge=0)
    #: Rows per page of the runs and queries lists.
    page_size: int = Field(default=50, ge=1, le=1000)
    #: Rows of a failing-rule sample, read through the governed query path.
    sample_rows: int = Field(default=5, ge=0, le=100)
    metrics_public: bool = False
    #: ``/metrics`` is worked out at most this often (seconds) and served from memory in between:
    #: it reads the whole run history, and a scraper asks every 15-60 s.
    metrics_cache_s: float = Field(default=15.0, ge=0)
