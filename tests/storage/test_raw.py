from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from lakeplane.cli.main import cli
from lakeplane.errors import ConfigError, LandingError
from lakeplane.lake import Lake
from tests.conftest import DAY1, DAY2, land_drop


def tree_digest(root: Path) -> dict[str, tuple[str, float]]:
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_land_writes_content_addressed_batch_and_manifest(demo_lake: Lake, tmp_path: Path) -> None:
    drop = tmp_path / "drop.ndjson"
    drop.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": 3}')  # no final newline: still 3 lines
    [result] = demo_lake.land("partner/impressions", [drop], DAY1)
    batch = result.batch
    assert result.landed
    assert batch.path == f"raw/partner/impressions/ingest_date=2026-11-01/{batch.sha256[:16]}.ndjson"
    assert batch.sha256 == hashlib.sha256(drop.read_bytes()).hexdigest()
    assert (batch.lines, batch.bytes, batch.format) == (3, drop.stat().st_size, "ndjson")
    assert Path(demo_lake.storage.path(batch.path)).read_bytes() == drop.read_bytes()
    assert demo_lake.raw.batches("partner/impressions", DAY1) == [batch]


def test_landing_the_same_content_twice_is_a_no_op(demo_lake: Lake, tmp_path: Path) -> None:
    first = tmp_path / "a.ndjson"
    first.write_text('{"a": 1}\n')
    copy = tmp_path / "renamed.ndjson"
    copy.write_text('{"a": 1}\n')
    [landed] = demo_lake.land("partner/impressions", [first], DAY1)
    before = tree_digest(Path(demo_lake.storage.path("raw")))
    again = demo_lake.land("partner/impressions", [first, copy], DAY2)
    assert [r.landed for r in again] == [False, False]
    assert all(r.batch == landed.batch for r in again)
    assert tree_digest(Path(demo_lake.storage.path("raw"))) == before


def test_gzip_lines_are_counted_decompressed(demo_lake: Lake, tmp_path: Path) -> None:
    drop = tmp_path / "drop.jsonl.gz"
    drop.write_bytes(gzip.compress(b'{"a": 1}\n' * 7, mtime=0))
    [result] = demo_lake.land("partner/impressions", [drop], DAY1)
    assert (result.batch.lines, result.batch.compression) == (7, "gzip")
    assert result.batch.path.endswith(".jsonl.gz")
    landed = Path(demo_lake.storage.path(result.batch.path)).read_bytes()
    assert landed == drop.read_bytes(), "raw keeps the delivered bytes, never re-compressed"


def test_land_errors_name_the_file_or_dataset(demo_lake: Lake, tmp_path: Path) -> None:
    with pytest.raises(LandingError, match="no such file"):
        demo_lake.land("partner/impressions", [tmp_path / "missing.ndjson"], DAY1)
    odd = tmp_path / "drop.xml"
    odd.write_text("<a/>")
    with pytest.raises(LandingError, match=r"drop.xml: cannot tell the format"):
        demo_lake.land("partner/impressions", [odd], DAY1)
    with pytest.raises(
        ConfigError, match="unknown dataset 'partner/impression'; did you mean 'partner/impressions'"
    ):
        demo_lake.land("partner/impression", [odd], DAY1)


def test_running_the_pipeline_never_changes_raw(demo_lake: Lake, drops: dict) -> None:
    land_drop(demo_lake, drops[DAY1])
    raw = Path(demo_lake.storage.path("raw"))
    before = tree_digest(raw)
    demo_lake.run(DAY1)
    demo_lake.run(DAY1)
    assert tree_digest(raw) == before
    assert len(before) == 8  # four partner files and their four manifest records


def test_batches_list_in_landing_order(demo_lake: Lake, tmp_path: Path) -> None:
    files = []
    for n in range(6):  # content hashes are in no particular order
        path = tmp_path / f"drop{n}.ndjson"
        path.write_text(f'{{"n": {n}}}\n')
        files.append(path)
    demo_lake.land("partner/impressions", files, DAY1)
    assert [b.original_name for b in demo_lake.raw.batches("partner/impressions", DAY1)] == [
        f.name for f in files
    ]


def whole_gzip() -> bytes:
    return gzip.compress(b'{"a": 1}\n' * 1000, mtime=0)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.ndjson", b"", r"empty\.ndjson: the file is empty \(0 bytes\); nothing was landed"),
        ("empty.csv.gz", b"", r"empty\.csv\.gz: the file is empty \(0 bytes\)"),
        ("nothing.ndjson.gz", gzip.compress(b"", mtime=0), r"nothing\.ndjson\.gz: decompresses to nothing"),
        (
            "truncated.ndjson.gz",
            whole_gzip()[:-20],
            r"truncated\.ndjson\.gz: not a whole gzip file \(Compressed file ended before",
        ),
        (
            "bad_crc.ndjson.gz",
            whole_gzip()[:-8] + b"\0\0\0\0" + whole_gzip()[-4:],
            r"bad_crc\.ndjson\.gz: not a whole gzip file \(CRC check failed",
        ),
        ("not_gzip.ndjson.gz", b'{"a": 1}\n', r"not_gzip\.ndjson\.gz: not a whole gzip file \(Not a gzipped"),
    ],
)
def test_an_empty_or_broken_file_is_refused_and_nothing_is_landed(
    demo_lake: Lake, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    raw = Path(demo_lake.storage.path("raw"))
    before = tree_digest(raw) if raw.exists() else {}
    drop = tmp_path / name
    drop.write_bytes(content)
    with pytest.raises(LandingError, match=message) as caught:
        demo_lake.land("partner/impressions", [drop], DAY1)
    assert caught.value.file == str(drop)
    assert (tree_digest(raw) if raw.exists() else {}) == before, "no batch, no manifest"
    assert demo_lake.raw.batches("partner/impressions") == []


def test_lakeplane_land_refuses_a_truncated_gzip_in_one_line(demo_lake: Lake, tmp_path: Path) -> None:
    drop = tmp_path / "cut.ndjson.gz"
    drop.write_bytes(whole_gzip()[:-20])
    result = CliRunner().invoke(
        cli,
        [
            "--lake",
            str(demo_lake.project_dir),
            "land",
            "partner/impressions",
            str(drop),
            "--date",
            "2026-11-01",
        ],
    )
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert "Traceback" not in result.output
    assert errors == [
        f"error: {drop}: not a whole gzip file (Compressed file ended before the end-of-stream marker was "
        "reached); nothing was landed"
    ]
    assert demo_lake.raw.batches("partner/impressions") == []


def test_one_broken_file_lands_none_of_the_files_given_with_it(demo_lake: Lake, tmp_path: Path) -> None:
    good = tmp_path / "good.ndjson.gz"
    good.write_bytes(whole_gzip())
    cut = tmp_path / "cut.ndjson.gz"
    cut.write_bytes(whole_gzip()[:-20])
    with pytest.raises(LandingError, match=r"cut\.ndjson\.gz: not a whole gzip file"):
        demo_lake.land("partner/impressions", [good, cut], DAY1)
    assert demo_lake.raw.batches("partner/impressions") == []
    [landed] = demo_lake.land("partner/impressions", [good], DAY1)
    assert landed.landed and landed.batch.lines == 1000
