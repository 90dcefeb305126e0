"""``maintenance:`` and the storage tiers of ``storage:`` in ``lakeplane.yaml``: when housekeeping
is due for a table, and how the lake's S3 objects move between storage classes.

.. code-block:: yaml

    maintenance:
      target_file_size: 128MB      # compaction writes files of about this size
      small_file_threshold: 32MB   # a file below it is small (default: 3/4 of the target)
      min_files: 5                 # compact a partition once it has this many small files
      older_than: 7d               # snapshots older than this expire ...
      retain_last: 1               # ... but the newest N of main always stay
      orphan_grace: 3d             # unreferenced files younger than this are never removed
      max_manifests: 16            # rewrite manifests when a snapshot has more than this
      zones:
        curated: {older_than: 30d, retain_last: 10}
      tables:
        adtech.processed.impressions: {target_file_size: 256MB}

    storage:
      lifecycle:
        raw: {intelligent_tiering_after: 0d, glacier_after: 18mo}
        processed: {abort_multipart_after: 7d, noncurrent_expire_after: 30d}
      retention:
        raw: 7y                    # raw batches are deleted after 7 years (audited when applied)

A table's policy is the defaults, overlaid by its zone's settings, overlaid by its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator

from lakeplane.config_base import Strict, optional_duration, size_value

ZoneName = Literal["raw", "processed", "curated"]

DEFAULT_TARGET_FILE_SIZE = 128 * 1024**2
DEFAULT_OLDER_THAN = 7 * 86400.0
DEFAULT_ORPHAN_GRACE = 3 * 86400.0
#: Small files are those under this share of the target size (Iceberg's own default for bin-packing).
SMALL_FILE_SHARE = 0.75


class MaintenanceSettings(Strict):
    """Housekeeping settings; an absent one is inherited (table from zone, zone from the defaults)."""

    target_file_size: int | None = Field(default=None, gt=0)
    small_file_threshold: int | None = Field(default=None, gt=0)
    min_files: int | None = Field(default=None, ge=2)
    older_than: float | None = Field(default=None, ge=0)
    retain_last: int | None = Field(default=None, ge=1)
    orphan_grace: float | None = Field(default=None, ge=0)
    max_manifests: int | None = Field(default=None, ge=1)

    _sizes = field_validator("target_file_size", "small_file_threshold", mode="before")(
        lambda cls, v: size_value(v)
    )
    _durations = field_validator("older_than", "orphan_grace", mode="before")(
        lambda cls, v: optional_duration(v)
    )


@dataclass(frozen=True)
class TablePolicy:
    """The housekeeping policy of one table, every setting resolved.

    Attributes:
        target_file_size: bytes compaction aims each file at.
        small_file_threshold: a data file smaller than this is small.
        min_files: a partition is compacted once it holds this many small files.
        older_than: seconds after which a snapshot may expire.
        retain_last: how many of main's newest snapshots stay whatever their age.
        orphan_grace: seconds an unreferenced file must have existed before it is removed.
        max_manifests: manifests are rewritten when the current snapshot has more than this.
    """

    target_file_size: int
    small_file_threshold: int
    min_files: int
    older_than: float
    retain_last: int
    orphan_grace: float
    max_manifests: int


class MaintenanceConfig(MaintenanceSettings):
    """``maintenance:``: the defaults, then ``zones:`` and ``tables:`` (``domain.zone.name``) overrides."""

    zones: dict[ZoneName, MaintenanceSettings] = Field(default_factory=dict)
    tables: dict[str, MaintenanceSettings] = Field(default_factory=dict)

    @field_validator("tables")
    @classmethod
    def _full_names(cls, value: dict[str, MaintenanceSettings]) -> dict[str, MaintenanceSettings]:
        for name in value:
            if name.count(".") != 2 or not all(name.split(".")):
                raise ValueError(f"table '{name}' must be written <domain>.<zone>.<name>")
        return value

    def for_table(self, full_name: str) -> TablePolicy:
        """The policy of ``full_name`` (``domain.zone.name``): its own settings over its zone's over
        the defaults over lakeplane's (128MB files, 5 small files, 7 days, the last snapshot, 3 days'
        grace, 16 manifests)."""
        zone = full_name.split(".")[1] if full_name.count(".") == 2 else ""
        merged: dict[str, Any] = {}
        for layer in (self, *(s for z, s in self.zones.items() if z == zone), self.tables.get(full_name)):
            if layer is not None:
                values = layer.model_dump(include=set(MaintenanceSettings.model_fields))
                merged |= {key: value for key, value in values.items() if value is not None}
        target = int(merged.get("target_file_size", DEFAULT_TARGET_FILE_SIZE))
        return TablePolicy(
            target_file_size=target,
            small_file_threshold=int(merged.get("small_file_threshold", target * SMALL_FILE_SHARE)),
            min_files=int(merged.get("min_files", 5)),
            older_than=float(merged.get("older_than", DEFAULT_OLDER_THAN)),
            retain_last=int(merged.get("retain_last", 1)),
            orphan_grace=float(merged.get("orphan_grace", DEFAULT_ORPHAN_GRACE)),
            max_manifests=int(merged.get("max_manifests", 16)),
        )


# -- storage tiers ------------------------------------------------------------------------------
_DAY_UNITS = {"d": 1, "w": 7, "mo": 30, "y": 365}
_DAYS = re.compile(r"^\s*(\d+)\s*(d|w|mo|y)?\s*$", re.IGNORECASE)


def parse_days(value: object) -> int:
    """``0``, ``"30d"``, ``"12w"``, ``"18mo"`` (30 days each), ``"7y"`` (365 days each) → days.

    Raises:
        ValueError: ``value`` is not a whole number of days.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _DAYS.match(str(value)) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"'{value}' is not a number of days (write 0, 30d, 12w, 18mo or 7y)")
    return int(match[1]) * _DAY_UNITS[(match[2] or "d").lower()]


def _days(value: object) -> object:
    return None if value is None else parse_days(value)


class ZoneLifecycle(Strict):
    """What happens to one zone's objects, in days since each was written (``None``: never).

    ``glacier_after`` and ``expire_after`` are refused on processed and curated, whose Iceberg tables
    must stay readable (their snapshots are expired by ``maintain expire``); on raw, ``expire_after``
    needs ``storage.retention.raw``.
    """

    intelligent_tiering_after: int | None = None
    glacier_after: int | None = None
    deep_archive_after: int | None = None
    expire_after: int | None = None
    abort_multipart_after: int | None = 7
    noncurrent_expire_after: int | None = None

    _days = field_validator(
        "intelligent_tiering_after",
        "glacier_after",
        "deep_archive_after",
        "expire_after",
        "abort_multipart_after",
        "noncurrent_expire_after",
        mode="before",
    )(lambda cls, v: _days(v))


#: Raw data goes to Intelligent-Tiering at once and to Glacier after 18 months; the tables' zones
#: keep their storage class and lose failed uploads and old versions.
DEFAULT_LIFECYCLE: dict[ZoneName, ZoneLifecycle] = {
    "raw": ZoneLifecycle(intelligent_tiering_after=0, glacier_after=540),
    "processed": ZoneLifecycle(noncurrent_expire_after=30),
    "curated": ZoneLifecycle(noncurrent_expire_after=30),
}


class RetentionConfig(Strict):
    """How long raw batches are kept (days, ``7y``); ``None``: for ever. Raw data is deleted by
    nothing else, and applying this is written to the governance audit log."""

    raw: int | None = None

    _days = field_validator("raw", mode="before")(lambda cls, v: _days(v))
