"""``maintenance:``: defaults, zone and table overrides, and errors naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeplane.config import load_config
from lakeplane.config_maintenance import MaintenanceConfig, TablePolicy, parse_days
from lakeplane.errors import ConfigError

MB = 1024**2


def config_of(tmp_path: Path, text: str) -> MaintenanceConfig:
    (tmp_path / "lakeplane.yaml").write_text(text)
    return load_config(tmp_path).maintenance


def test_zero_configuration_gives_lakeplanes_defaults(tmp_path: Path) -> None:
    policy = load_config(tmp_path).maintenance.for_table("ads.processed.clicks")
    assert policy == TablePolicy(
        target_file_size=128 * MB,
        small_file_threshold=96 * MB,
        min_files=5,
        older_than=7 * 86400,
        retain_last=1,
        orphan_grace=3 * 86400,
        max_manifests=16,
    )


def test_table_over_zone_over_defaults(tmp_path: Path) -> None:
    config = config_of(
        tmp_path,
        """
maintenance:
  target_file_size: 64MB
  older_than: 2d
  zones:
    curated: {older_than: 30d, retain_last: 10, target_file_size: 256MB}
    raw: {orphan_grace: 12h}
  tables:
    ads.curated.daily: {retain_last: 3, small_file_threshold: 8MB}
""",
    )
    plain = config.for_table("ads.processed.clicks")
    assert (plain.target_file_size, plain.small_file_threshold, plain.older_than) == (
        64 * MB,
        48 * MB,
        2 * 86400,
    )
    curated = config.for_table("ads.curated.totals")
    assert (curated.target_file_size, curated.older_than, curated.retain_last) == (256 * MB, 30 * 86400, 10)
    assert curated.small_file_threshold == 192 * MB, "the threshold follows the zone's target"
    table = config.for_table("ads.curated.daily")
    assert (table.retain_last, table.older_than, table.small_file_threshold) == (3, 30 * 86400, 8 * MB)
    assert table.target_file_size == 256 * MB and table.orphan_grace == 3 * 86400
    assert config.for_table("ads.raw.x").orphan_grace == 12 * 3600


def test_zero_durations_are_allowed(tmp_path: Path) -> None:
    policy = config_of(tmp_path, "maintenance: {older_than: 0d, orphan_grace: 0}\n").for_table("a.b.c")
    assert (policy.older_than, policy.orphan_grace) == (0, 0)


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("maintenance:\n  target_file_size: lots\n", "maintenance.target_file_size", "not a size"),
        ("maintenance:\n  older_than: soon\n", "maintenance.older_than", "not a duration"),
        ("maintenance:\n  retain_last: 0\n", "maintenance.retain_last", "greater than or equal to 1"),
        ("maintenance:\n  min_files: 1\n", "maintenance.min_files", "greater than or equal to 2"),
        ("maintenance:\n  zones:\n    bronze: {older_than: 1d}\n", "maintenance.zones.bronze", "raw"),
        (
            "maintenance:\n  tables:\n    clicks: {retain_last: 2}\n",
            "maintenance.tables",
            "<domain>.<zone>.<name>",
        ),
        ("maintenance:\n  tables:\n    a.b.c: {keep: 2}\n", "maintenance.tables.a.b.c.keep", "unknown key"),
        ("storage:\n  retention: {raw: forever}\n", "storage.retention.raw", "number of days"),
        (
            "storage:\n  lifecycle:\n    raw: {glacier_after: 1.5y}\n",
            "storage.lifecycle.raw.glacier_after",
            "days",
        ),
    ],
)
def test_a_bad_value_names_the_file_and_the_key(tmp_path: Path, text: str, key: str, words: str) -> None:
    (tmp_path / "lakeplane.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    message = str(caught.value)
    assert str(tmp_path / "lakeplane.yaml") in message and key.split(".")[-1] in message, message
    assert words.lower() in message.lower(), message


def test_days() -> None:
    assert [parse_days(v) for v in (0, "30d", "2w", "18mo", "7y", " 5 ")] == [0, 30, 14, 540, 2555, 5]
    for bad in ("-1d", "1.5y", True, "7 years", -3):
        with pytest.raises(ValueError, match="number of days"):
            parse_days(bad)
