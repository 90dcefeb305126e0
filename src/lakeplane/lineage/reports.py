"""What a run reports for lineage: its datasets and what it read, wrote and checked; run ids.

Kept apart from :mod:`~lakeplane.lineage.events`, so that recording lineage imports
openlineage-python only when ``lineage.openlineage`` sends events.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from lakeplane.lineage.edges import Edge


@dataclass
class DatasetInfo:
    """A dataset of a run: its name and, when known, its columns as ``(name, type)``."""

    name: str
    fields: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class RunReport:
    """What a finished run read, wrote and checked, for its COMPLETE or FAIL event."""

    inputs: list[DatasetInfo] = field(default_factory=list)
    output: DatasetInfo | None = None
    edges: list[Edge] = field(default_factory=list)
    quality: list[dict[str, Any]] = field(default_factory=list)
    snapshot_id: int | None = None


def new_run_id() -> str:
    """A time-ordered UUID (version 7: milliseconds since 1970, then random bits) for a run."""
    millis = time.time_ns() // 1_000_000
    value = (millis & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | (0x7 << 76)  # version 7
    value = value & ~(0x3 << 62) | (0x2 << 62)  # the RFC 4122 variant
    return str(uuid.UUID(int=value))
