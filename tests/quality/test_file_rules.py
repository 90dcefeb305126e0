"""DQDL's file rules on real files: local folders with controlled modification times, and batches
landed in a real lake's raw zone (their landing times, sizes and checksums from the manifest)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from lakeplane.config import StorageConfig
from lakeplane.engines.base import JobSpec
from lakeplane.engines.duckdb import DuckDBSession
from lakeplane.errors import ConfigError, DQDLError
from lakeplane.lake import Lake, open_lake
from lakeplane.quality import RuleOutcome, evaluate
from lakeplane.quality.files_source import FileSource, LakeFiles, lake_files
from lakeplane.storage import open_storage

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
HOURS_OLD = {"a.csv": 1, "b.csv": 30, "c.csv": 50, "d.tmp": 0.5}
CONTENT = {"a.csv": b"id\n1\n", "b.csv": b"id\n22\n", "c.csv": b"id\n1\n", "d.tmp": b"partial"}
DAY1, DAY2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
CONFIG = """
name: shop
datasets:
  pos/orders:
    format: ndjson
    table: shop.processed.orders
    fields:
      order_id: {type: long, required: true}
"""


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBSession]:
    tmp = tmp_path_factory.mktemp("files-session")
    storage = open_storage(StorageConfig(root=str(tmp / "lake")), tmp)
    with DuckDBSession(storage, JobSpec("t", "256MB", 1, tmp)) as opened:
        opened.register_arrow("t", pa.table({"x": [1]}))
        yield opened


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder with ``drop/``: four files whose modification times are HOURS_OLD before NOW."""
    drop = tmp_path / "drop"
    drop.mkdir()
    for name, content in CONTENT.items():
        path = drop / name
        path.write_bytes(content)
        stamp = (NOW - dt.timedelta(hours=HOURS_OLD[name])).timestamp()
        os.utime(path, (stamp, stamp))
    return tmp_path


@pytest.fixture
def local(project: Path) -> LakeFiles:
    return LakeFiles(open_storage(StorageConfig(root=str(project / "lake")), project), project)


def check(
    session: DuckDBSession, files: FileSource | None, *rules: str, now: dt.datetime = NOW
) -> list[RuleOutcome]:
    """Evaluate ``rules`` (DQDL rules, one ruleset) on ``files``."""
    return evaluate("Rules = [\n    " + ",\n    ".join(rules) + "\n]", session, "t", now=now, files=files)


def only(session: DuckDBSession, files: FileSource | None, rule: str, now: dt.datetime = NOW) -> RuleOutcome:
    (outcome,) = check(session, files, rule, now=now)
    return outcome


# -- FileFreshness -------------------------------------------------------------------------------


def test_freshness_fails_naming_the_stale_files_and_passes_when_all_are_fresh(
    session: DuckDBSession, local: LakeFiles
) -> None:
    day = only(session, local, 'FileFreshness "drop" > (now() - 24 hours)')
    assert not day.passed and not day.error
    assert day.observed == pytest.approx(2 / 4)
    assert "2 of 4 files fail > (now() - 24 hours)" in day.message
    assert "b.csv modified 2026-11-26T06:00:00Z" in day.message and "c.csv modified" in day.message
    assert "a.csv" not in day.message and "FileCount 4" in day.message
    week = only(session, local, 'FileFreshness "drop" > (now() - 7 days)')
    assert week.passed and week.observed == 1.0 and "all 4 files meet" in week.message


def test_freshness_threshold_is_the_share_of_files_that_must_pass(
    session: DuckDBSession, local: LakeFiles
) -> None:
    half, most = check(
        session,
        local,
        'FileFreshness "drop" > (now() - 24 hours) with threshold >= 0.5',
        'FileFreshness "drop" > (now() - 24 hours) with threshold >= 0.9',
    )
    assert half.passed and "meets threshold >= 0.5" in half.message
    assert not most.passed and "does not meet threshold >= 0.9" in most.message


def test_freshness_dates_between_in_either_order_and_days(session: DuckDBSession, local: LakeFiles) -> None:
    between, on_day, after, not_on_day = check(
        session,
        local,
        'FileFreshness "drop" between now() and (now() - 40 hours)',
        'FileFreshness "drop" = "2026-11-26"',
        'FileFreshness "drop" > "2026-11-26"',
        'FileFreshness "drop" != "2026-11-26"',
    )
    assert between.observed == pytest.approx(3 / 4)  # only c.csv (50 h) is outside
    assert "c.csv" in between.message and "b.csv" not in between.message
    assert on_day.observed == pytest.approx(1 / 4)  # b.csv: the 26th, 06:00
    assert after.observed == pytest.approx(3 / 4)  # c.csv: the 25th, 10:00
    assert not_on_day.observed == pytest.approx(3 / 4)


def test_freshness_time_of_day_is_read_in_the_time_zone_tag(session: DuckDBSession, project: Path) -> None:
    (project / "noon").mkdir()
    noon = project / "noon" / "x.csv"
    noon.write_bytes(b"x\n")
    stamp = NOW.replace(hour=12).timestamp()  # 12:00 UTC = 07:00 in New York (EST)
    os.utime(noon, (stamp, stamp))
    files = LakeFiles(open_storage(StorageConfig(root=str(project / "lake")), project), project)
    utc, new_york = check(
        session,
        files,
        'FileFreshness "noon" > "9:30 AM"',
        'FileFreshness "noon" > "9:30 AM" with timeZone = "America/New_York"',
        now=NOW.replace(hour=18),
    )
    assert utc.passed
    assert not new_york.passed and "2026-11-27T14:30:00Z" in new_york.message  # 9:30 EST in UTC


def test_freshness_unknown_time_zone_is_refused_with_its_line(
    session: DuckDBSession, local: LakeFiles
) -> None:
    with pytest.raises(DQDLError, match="unknown time zone 'America/Chicgo'") as raised:
        check(
            session,
            local,
            'FileSize "drop" > 0',
            'FileFreshness "drop" > "9:30 AM" with timeZone = "America/Chicgo"',
        )
    assert (raised.value.line, raised.value.rule.split()[0]) == (3, "FileFreshness")


# -- FileSize ------------------------------------------------------------------------------------


def test_size_units_bare_bytes_and_reported_extremes(session: DuckDBSession, local: LakeFiles) -> None:
    small, bare, kilo = check(
        session, local, 'FileSize "drop" > 5 B', 'FileSize "drop" <= 7', 'FileSize "drop" < 1 KB'
    )
    assert not small.passed and small.observed == pytest.approx(2 / 4)
    assert (
        "a.csv 5 B, c.csv 5 B" in small.message
        and "MinimumFileSize 5 B, MaximumFileSize 7 B" in small.message
    )
    assert bare.passed and kilo.passed


def test_size_between_with_threshold(session: DuckDBSession, local: LakeFiles) -> None:
    # between excludes its ends: d.tmp (7 B) fails
    loose, strict = check(
        session,
        local,
        'FileSize "drop" between 4 B and 7 B with threshold > 0.5',
        'FileSize "drop" between 4 B and 7 B',
    )
    assert loose.passed and not strict.passed
    assert loose.observed == strict.observed == pytest.approx(3 / 4)


def test_size_of_a_single_file(session: DuckDBSession, local: LakeFiles) -> None:
    outcome = only(session, local, 'FileSize "drop/b.csv" = 6 B')
    assert outcome.passed and "FileCount 1" in outcome.message


# -- FileUniqueness ------------------------------------------------------------------------------


def test_uniqueness_counts_distinct_contents_and_names_duplicates(
    session: DuckDBSession, local: LakeFiles
) -> None:
    outcome = only(session, local, 'FileUniqueness "drop" = 1.0')
    assert not outcome.passed and outcome.observed == pytest.approx(3 / 4)
    assert "a.csv = c.csv" in outcome.message and "FileCount 4" in outcome.message
    assert outcome.metric_key == 'FileUniqueness "drop"'


def test_recent_files_and_uri_regex_narrow_the_files(session: DuckDBSession, local: LakeFiles) -> None:
    newest, ab, three = check(
        session,
        local,
        'FileUniqueness "drop" = 1.0 with recentFiles = 2',
        r'FileUniqueness "drop" = 1.0 with uriRegex = "[ab]\.csv$"',
        'FileSize "drop" > 0 with recentFiles = "3"',
    )
    assert newest.passed and "FileCount 2" in newest.message  # d.tmp and a.csv
    assert ab.passed and "FileCount 2" in ab.message
    assert "FileCount 3" in three.message


def test_uri_regex_excludes_with_an_anchored_negative_lookahead(
    session: DuckDBSession, local: LakeFiles
) -> None:
    anchored, unanchored = check(
        session,
        local,
        r'FileSize "drop" > 0 with uriRegex = "^(?!.*\.tmp$)"',
        r'FileSize "drop" > 0 with uriRegex = "(?!.*\.tmp$).*"',
    )
    assert "FileCount 3" in anchored.message  # d.tmp left out
    assert "FileCount 4" in unanchored.message  # searched: it matches somewhere in every path


def test_filter_order_decides_which_filter_applies_first(session: DuckDBSession, local: LakeFiles) -> None:
    newest_then_csv, csv_then_newest = check(
        session,
        local,
        r'FileSize "drop" > 0 with recentFiles = 1 with uriRegex = "\.csv$"',
        r'FileSize "drop" > 0 with recentFiles = 1 with uriRegex = "\.csv$" with filterOrder = "uriRegex, recentFiles"',
    )
    (as_glue_writes_it,) = check(
        session,
        local,
        r'FileSize "drop" > 0 with recentFiles = 1 with uriRegex = "\.csv$" with filterOrder = ["uriRegex","recentFiles"]',
    )
    assert as_glue_writes_it.passed and "FileCount 1" in as_glue_writes_it.message
    assert not newest_then_csv.passed and not newest_then_csv.error  # d.tmp, then no csv
    assert "FileCount 0" in newest_then_csv.message
    assert csv_then_newest.passed and "FileCount 1" in csv_then_newest.message  # a.csv


@pytest.mark.parametrize(
    ("rule", "named"),
    [
        ('FileSize "drop" > 0 with recentFiles = 0', "recentFiles must be a whole number"),
        (
            'FileSize "drop" > 0 with uriRegex = "(unclosed"',
            "uriRegex '\\(unclosed' is not a regular expression",
        ),
        ('FileSize "drop" > 0 with filterOrder = "newest"', "filterOrder names 'newest'"),
        ('FileSize "drop" > 0 with filterOrder = ["uriRegex", "oldest"]', "filterOrder names 'oldest'"),
        ('FileSize "drop" > 0 with uriRegex = ["a", "b"]', "uriRegex takes one value, not a list"),
        ('FileUniqueness "drop" > 0.5 with matchFileName = "maybe"', "matchFileName must be"),
        (
            'FileMatch "drop" in ["00"] with hashAlgorithm = "SHA-512"',
            "unknown hashAlgorithm 'SHA-512'; use MD5",
        ),
    ],
)
def test_bad_tag_values_are_refused_naming_the_tag(
    session: DuckDBSession, local: LakeFiles, rule: str, named: str
) -> None:
    with pytest.raises(DQDLError, match=named) as raised:
        check(session, local, rule)
    assert raised.value.line == 2 and raised.value.rule == rule


def test_match_file_name_counts_same_names_as_duplicates(session: DuckDBSession, project: Path) -> None:
    for folder, data in (("one", b"1"), ("two", b"2")):
        (project / "named" / folder).mkdir(parents=True)
        (project / "named" / folder / "same.csv").write_bytes(data)
    files = LakeFiles(open_storage(StorageConfig(root=str(project / "lake")), project), project)
    content, name = check(
        session,
        files,
        'FileUniqueness "named" = 1.0',
        'FileUniqueness "named" = 1.0 with matchFileName = "true"',
    )
    assert content.passed and not name.passed and name.observed == pytest.approx(0.5)


# -- FileMatch -----------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-1", "SHA-256", None])
def test_match_against_checksums_with_each_algorithm(
    session: DuckDBSession, local: LakeFiles, algorithm: str | None
) -> None:
    name = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", None: "sha256"}[algorithm]
    expected = hashlib.new(name, CONTENT["b.csv"]).hexdigest()
    tag = f' with hashAlgorithm = "{algorithm}"' if algorithm else ""
    one, many, negated = check(
        session,
        local,
        f'FileMatch "drop/b.csv" in ["{expected.upper()}", "00"]{tag}',
        f'FileMatch "drop" in ["{expected}"]{tag}',
        f'FileMatch "drop/b.csv" not in ["{expected}"]{tag}',
    )
    assert one.passed and not one.error
    assert not many.passed and many.observed == pytest.approx(1 / 4) and "a.csv" in many.message
    assert not negated.passed


def test_match_two_folders_pairs_files_by_path(session: DuckDBSession, project: Path) -> None:
    for folder in ("left", "right"):
        for name in ("x.csv", "sub/y.csv"):
            path = project / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(name.encode())
    files = LakeFiles(open_storage(StorageConfig(root=str(project / "lake")), project), project)
    same = only(session, files, 'FileMatch "left" "right"')
    assert same.passed and "2 of 2 files match" in same.message
    (project / "right" / "sub" / "y.csv").write_bytes(b"changed")
    (project / "right" / "extra.csv").write_bytes(b"extra")
    differ, single = check(session, files, 'FileMatch "left" "right"', 'FileMatch "left/x.csv" "right/x.csv"')
    assert not differ.passed and differ.observed == pytest.approx(1 / 3)
    assert "differ: sub/y.csv" in differ.message and "only in right: extra.csv" in differ.message
    assert single.passed


# -- empty, missing, unreadable ------------------------------------------------------------------


def test_empty_folder_fails_and_missing_path_is_an_error(session: DuckDBSession, project: Path) -> None:
    (project / "empty").mkdir()
    files = LakeFiles(open_storage(StorageConfig(root=str(project / "lake")), project), project)
    empty, missing = check(
        session, files, 'FileFreshness "empty" > (now() - 1 hours)', 'FileSize "absent/folder" > 0'
    )
    assert not empty.passed and not empty.error and "FileCount 0" in empty.message
    assert missing.error and "FileSize" in missing.message and "absent/folder" in missing.message


def test_without_a_file_source_file_rules_are_errors_and_other_rules_still_run(
    session: DuckDBSession,
) -> None:
    file_rule, rows = check(session, None, "FileSize > 0", "RowCount > 0")
    assert file_rule.error and "FileSize" in file_rule.message
    assert rows.passed


# -- the raw zone --------------------------------------------------------------------------------


def landed_orders(tmp_path: Path) -> Lake:
    """A shop whose orders were landed (not ingested): two batches on DAY1, one on DAY2."""
    project = tmp_path / "shop"
    project.mkdir()
    (project / "lakeplane.yaml").write_text(CONFIG)
    opened = open_lake(project)
    for day, ids in ((DAY1, [1, 2]), (DAY1, [3]), (DAY2, [4, 5, 6])):
        drop = tmp_path / f"orders-{day}-{ids[0]}.ndjson"
        drop.write_text("".join(json.dumps({"order_id": i}) + "\n" for i in ids))
        opened.land("pos/orders", [drop], day)
    return opened


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return landed_orders(tmp_path)


def test_rules_without_a_path_check_the_batches_feeding_the_table(session: DuckDBSession, lake: Lake) -> None:
    files = lake_files(lake.storage, lake.project_dir, lake.config, "shop.processed.orders", None)
    batches = lake.raw.batches("pos/orders")
    last = max(dt.datetime.fromisoformat(b.landed_at) for b in batches)
    fresh, stale, sizes, unique = check(
        session,
        files,
        "FileFreshness > (now() - 1 hours)",
        "FileFreshness < (now() - 1 hours)",
        "FileSize between 10 B and 1 KB",
        "FileUniqueness = 1.0",
        now=last + dt.timedelta(minutes=5),
    )
    assert fresh.passed and "FileCount 3" in fresh.message
    assert not stale.passed and "orders-2026-11-01-1.ndjson landed" in stale.message
    assert sizes.passed and f"MaximumFileSize {max(b.bytes for b in batches)} B" in sizes.message
    assert unique.passed and unique.observed == 1.0  # landing the same content twice lands it once


def test_raw_checksums_come_from_the_manifest_or_are_streamed(session: DuckDBSession, lake: Lake) -> None:
    files = lake_files(lake.storage, lake.project_dir, lake.config, "shop.processed.orders", DAY2)
    (batch,) = lake.raw.batches("pos/orders", DAY2)
    content = lake.storage.read_bytes(batch.path)
    by_sha = f'FileMatch = "{batch.sha256}"'
    by_md5 = f'FileMatch in ["{hashlib.md5(content).hexdigest()}"] with hashAlgorithm = "MD5"'
    assert all(o.passed for o in check(session, files, by_sha, by_md5))
    # the stored file is gone: the manifest still knows its SHA-256, but MD5 needs the bytes
    Path(lake.storage.path(batch.path)).unlink()
    files = lake_files(lake.storage, lake.project_dir, lake.config, "shop.processed.orders", DAY2)
    sha_outcome, md5_outcome = check(session, files, by_sha, by_md5)
    assert sha_outcome.passed
    assert md5_outcome.error and "cannot read" in md5_outcome.message and batch.path in md5_outcome.message


def test_a_batch_still_landing_is_not_counted(session: DuckDBSession, lake: Lake) -> None:
    """A batch's file is written before its manifest record: until the record exists it has not
    landed, and file rules on the raw zone do not see it."""
    lake.storage.write_bytes("raw/pos/orders/ingest_date=2026-11-02/0123456789abcdef.ndjson", b"{}\n")
    files = lake_files(lake.storage, lake.project_dir, lake.config, "raw/pos/orders", DAY2)
    outcome = only(session, files, "FileSize > 0")
    assert outcome.passed and "FileCount 1" in outcome.message


def test_raw_paths_name_a_dataset_or_one_ingest_date(session: DuckDBSession, lake: Lake) -> None:
    files = lake_files(lake.storage, lake.project_dir, lake.config, "raw/pos/orders", None)
    everything, day_one, unknown = check(
        session,
        files,
        "FileSize > 0",
        'FileSize "raw/pos/orders/ingest_date=2026-11-01" > 0',
        'FileSize "raw/pos/returns" > 0',
    )
    assert "FileCount 3" in everything.message and "FileCount 2" in day_one.message
    assert unknown.error and "raw/pos/returns" in unknown.message


def test_a_table_no_dataset_feeds_gives_an_error_outcome_and_unknown_raw_datasets_raise(
    session: DuckDBSession, lake: Lake
) -> None:
    files = lake_files(lake.storage, lake.project_dir, lake.config, "shop.curated.daily", None)
    outcome = only(session, files, "FileSize > 0")
    assert outcome.error and "no raw dataset feeds shop.curated.daily" in outcome.message
    with pytest.raises(ConfigError, match="unknown raw dataset 'pos/order'.*did you mean 'pos/orders'"):
        lake_files(lake.storage, lake.project_dir, lake.config, "raw/pos/order", None)
    with pytest.raises(ConfigError, match="raw/<source>/<dataset>"):
        lake_files(lake.storage, lake.project_dir, lake.config, "raw/pos", None)
