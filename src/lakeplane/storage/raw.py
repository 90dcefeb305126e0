"""The raw zone: write-once partner batches and their manifest.

Layout: ``raw/<source>/<dataset>/ingest_date=YYYY-MM-DD/<batch>.<ext>`` where ``<batch>`` is the
first 16 hex digits of the file's sha256, so a batch is named by its content. Its manifest record
``raw/<source>/<dataset>/_manifest/<sha256>.json`` is written last and marks the batch as landed:
landing the same content again finds it and does nothing. lakeplane never overwrites or deletes a
file in this zone.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from lakeplane.errors import LandingError
from lakeplane.storage.filesystem import LakeStorage, Zone

FORMAT_SUFFIXES = {
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
    ".csv": "csv",
}
CHUNK = 8 << 20


@dataclass(frozen=True)
class RawBatch:
    """One landed file, as its manifest records it."""

    dataset: str
    ingest_date: str
    path: str
    sha256: str
    bytes: int
    lines: int
    format: str
    compression: str | None
    original_name: str
    landed_at: str

    @property
    def batch_id(self) -> str:
        return self.sha256[:16]


@dataclass(frozen=True)
class PartnerFile:
    """A partner file read to its end and found whole, ready to land."""

    source: Path
    format: str
    compression: str | None
    sha256: str
    bytes: int
    lines: int


@dataclass(frozen=True)
class LandResult:
    """What ``land`` did with one file: ``landed`` false means the content was already there."""

    batch: RawBatch
    landed: bool


def detect_format(name: str) -> tuple[str, str | None]:
    """``(format, compression)`` from a file name such as ``drop.ndjson.gz``."""
    suffixes = [s.lower() for s in Path(name).suffixes]
    compression = None
    if suffixes and suffixes[-1] == ".gz":
        compression = "gzip"
        suffixes = suffixes[:-1]
    if not suffixes or suffixes[-1] not in FORMAT_SUFFIXES:
        raise LandingError(
            f"{name}: cannot tell the format; expected .ndjson, .jsonl, .json or .csv (optionally .gz)",
            file=name,
        )
    return FORMAT_SUFFIXES[suffixes[-1]], compression


class RawZone:
    """Landing and listing batches in the raw zone of one lake."""

    def __init__(self, storage: LakeStorage) -> None:
        self.storage = storage

    def _dataset_dir(self, dataset: str) -> str:
        return f"{Zone.RAW.value}/{dataset}"

    def land(self, dataset: str, source_file: Path | PartnerFile, ingest_date: dt.date) -> LandResult:
        """Copy one partner file (checked by :func:`check_partner_file` if a path) into the raw
        zone, once.

        Raises:
            LandingError: as :func:`check_partner_file`; nothing is written then.
        """
        checked = source_file if isinstance(source_file, PartnerFile) else check_partner_file(source_file)
        source_file, fmt, compression = checked.source, checked.format, checked.compression
        sha, size, lines = checked.sha256, checked.bytes, checked.lines
        manifest_path = f"{self._dataset_dir(dataset)}/_manifest/{sha}.json"
        if self.storage.exists(manifest_path):
            return LandResult(self._read_manifest(manifest_path), landed=False)
        ext = "".join(Path(source_file.name).suffixes[-2 if compression else -1 :]).lower()
        path = f"{self._dataset_dir(dataset)}/ingest_date={ingest_date.isoformat()}/{sha[:16]}{ext}"
        if not self.storage.exists(path):
            self.storage.put_file(source_file, path)
        batch = RawBatch(
            dataset=dataset,
            ingest_date=ingest_date.isoformat(),
            path=path,
            sha256=sha,
            bytes=size,
            lines=lines,
            format=fmt,
            compression=compression,
            original_name=source_file.name,
            landed_at=dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        )
        self.storage.write_bytes(manifest_path, json.dumps(asdict(batch), indent=1).encode())
        return LandResult(batch, landed=True)

    def batches(self, dataset: str, ingest_date: dt.date | None = None) -> list[RawBatch]:
        """The landed batches of ``dataset`` (for one ingest date if given), oldest landing first."""
        found = [
            self._read_manifest(path)
            for path in self.storage.list_files(f"{self._dataset_dir(dataset)}/_manifest")
            if path.endswith(".json")
        ]
        if ingest_date is not None:
            found = [b for b in found if b.ingest_date == ingest_date.isoformat()]
        return sorted(found, key=lambda b: (b.ingest_date, b.landed_at, b.path))

    def ingest_dates(self, dataset: str) -> list[str]:
        return sorted({b.ingest_date for b in self.batches(dataset)})

    def _read_manifest(self, path: str) -> RawBatch:
        return RawBatch(**json.loads(self.storage.read_bytes(path)))


def check_partner_file(source_file: Path) -> PartnerFile:
    """Read a partner file to its end: its format, sha256, size and lines.

    Raises:
        LandingError: the file is missing, empty, not whole (a gzip file truncated, corrupt or with
            a CRC mismatch), or its format cannot be told from its name.
    """
    if not source_file.is_file():
        raise LandingError(f"{source_file}: no such file", file=str(source_file))
    fmt, compression = detect_format(source_file.name)
    sha, size, lines = _fingerprint(source_file, compression)
    return PartnerFile(source_file, fmt, compression, sha, size, lines)


def _fingerprint(path: Path, compression: str | None) -> tuple[str, int, int]:
    """sha256 and size of the file as landed, and the number of lines of its content.

    Raises:
        LandingError: the file, or its decompressed content, is empty, or it does not decompress
            to its end (a truncated download, a CRC mismatch).
    """
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as raw:
        while chunk := raw.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    if size == 0:
        raise LandingError(f"{path}: the file is empty (0 bytes); nothing was landed", file=str(path))
    opener = gzip.open if compression == "gzip" else open
    lines = 0
    last = b""
    try:
        with opener(path, "rb") as content:
            while chunk := content.read(CHUNK):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
    except (OSError, EOFError) as exc:  # EOFError: truncated; BadGzipFile (an OSError): corrupt
        what = "not a whole gzip file" if compression == "gzip" else "cannot be read"
        raise LandingError(f"{path}: {what} ({exc}); nothing was landed", file=str(path)) from None
    if not last:
        raise LandingError(f"{path}: decompresses to nothing; nothing was landed", file=str(path))
    if last != b"\n":
        lines += 1
    return digest.hexdigest(), size, lines
