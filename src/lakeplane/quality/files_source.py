"""Where file rules find their files: the raw zone's batches, an ``s3://`` prefix or a local folder.

A file rule (``FileFreshness``, ``FileSize``, ``FileMatch``, ``FileUniqueness``) names a path or
none. :class:`LakeFiles` turns that into :class:`FileEntry` values, each with its size, its
last-modified (or landing) time and a way to stream its bytes:

- no path: the landed batches of the raw dataset that feeds the table under test (its
  ``datasets:`` entry), or of the raw dataset checked itself;
- ``raw/<source>/<dataset>[/ingest_date=YYYY-MM-DD]``: that dataset's batches, through the
  manifest (landing time, size and sha256 as recorded when the batch landed);
- ``s3://bucket/prefix``: the objects under it, reached with the lake's S3 settings;
- any other path: a local file or folder (relative paths resolve against the project folder).

A folder means every file below it. Checksums are computed by streaming a file, never by reading it
whole; a raw batch's SHA-256 is taken from its manifest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Protocol

import pyarrow.fs as pafs

from lakeplane.config import LakeConfig, S3Options, StorageConfig
from lakeplane.errors import ConfigError, LakeplaneError, did_you_mean
from lakeplane.storage.filesystem import LakeStorage, Zone, open_storage
from lakeplane.storage.raw import RawZone

#: Hash algorithms ``FileMatch`` takes (``with hashAlgorithm = "MD5"``), as DQDL names them.
HASH_ALGORITHMS = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256"}
DEFAULT_HASH = "SHA-256"
CHUNK = 8 << 20


class FilesUnavailable(Exception):
    """The files a rule names cannot be listed or read (a missing path, a refused request)."""


@dataclass(frozen=True)
class FileEntry:
    """One file a rule checks.

    ``uri`` locates it; ``name`` is what messages call it (a raw batch's original file name);
    ``relative`` is its path below the folder that was listed (how ``FileMatch`` pairs two
    folders' files); ``modified`` is its last-modified time, or a raw batch's landing time.
    """

    uri: str
    name: str
    relative: str
    size: int
    modified: dt.datetime
    open: Callable[[], IO[bytes]] = field(compare=False, repr=False)  # streams its bytes
    landed: bool = False  # a raw-zone batch: ``modified`` is when it landed
    sha256: str | None = None  # known without reading the file


class FileSource(Protocol):
    """The files file rules check."""

    def files(self, path: str | None) -> list[FileEntry]:
        """The files at ``path`` (``None``: the files of the dataset under test), in path order.

        Raises:
            FilesUnavailable: nothing is at ``path``, it cannot be listed, or there is no default.
        """
        ...

    def checksum(self, entry: FileEntry, algorithm: str) -> str:
        """``entry``'s checksum in lower-case hex, by a DQDL algorithm name (``MD5``...).

        Raises:
            FilesUnavailable: the file cannot be read.
        """
        ...


def raw_dataset(target: str) -> str | None:
    """The ``<source>/<dataset>`` a check target written ``raw/<source>/<dataset>`` names, else ``None``.

    Raises:
        ConfigError: the target starts with ``raw/`` but is not ``raw/<source>/<dataset>``.
    """
    if not target.startswith(f"{Zone.RAW.value}/"):
        return None
    parts = target.strip("/").split("/")[1:]
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"'{target}': a raw dataset is written raw/<source>/<dataset>", value=target)
    return "/".join(parts)


def lake_files(
    storage: LakeStorage, project_dir: Path, config: LakeConfig, target: str, ingest_date: dt.date | None
) -> LakeFiles:
    """The files of a check on ``target``: a table (rules without a path read the batches of the raw
    dataset whose ingest step writes it) or a raw dataset ``raw/<source>/<dataset>`` (its batches,
    of ``ingest_date`` if given).

    Raises:
        ConfigError: ``target`` is a raw dataset neither declared nor landed.
    """
    s3 = config.storage.s3
    dataset = raw_dataset(target)
    if dataset is not None:
        if dataset not in config.datasets and not RawZone(storage).batches(dataset):
            known = list(config.datasets)
            raise ConfigError(
                f"unknown raw dataset '{dataset}'{did_you_mean(dataset, known)}: nothing has landed "
                f"there and no datasets: entry declares it (declared: {', '.join(known) or 'none'})",
                key=f"datasets.{dataset}",
            )
        return LakeFiles(storage, project_dir, s3, dataset, ingest_date)
    feeding = sorted(name for name, declared in config.datasets.items() if declared.table == target)
    if len(feeding) == 1:
        return LakeFiles(storage, project_dir, s3, feeding[0], ingest_date)
    why = (
        f"several raw datasets feed {target} ({', '.join(feeding)}); name one: raw/<source>/<dataset>"
        if feeding
        else f"no raw dataset feeds {target} (no datasets: entry writes it); name a path"
    )
    return LakeFiles(storage, project_dir, s3, None, ingest_date, no_default=why)


class LakeFiles:
    """Files of one lake and of the places its rules name.

    Args:
        storage: the lake's storage (where the raw zone is).
        project_dir: what relative local paths resolve against.
        s3: how ``s3://`` paths are reached (the lake's S3 settings).
        dataset: the raw dataset (``<source>/<dataset>``) rules without a path check, if any.
        ingest_date: narrow that dataset's batches to one ingest date.
        no_default: why rules without a path have no files (for their message), when ``dataset``
            is ``None``.
    """

    def __init__(
        self,
        storage: LakeStorage,
        project_dir: Path,
        s3: S3Options | None = None,
        dataset: str | None = None,
        ingest_date: dt.date | None = None,
        no_default: str = "no raw dataset feeds the table under test; name a path",
    ) -> None:
        self.storage = storage
        self.raw = RawZone(storage)
        self.project_dir = project_dir
        self.s3 = s3 or S3Options()
        self.dataset = dataset
        self.ingest_date = ingest_date
        self.no_default = no_default
        self._digests: dict[tuple[str, int, dt.datetime, str], str] = {}

    def files(self, path: str | None) -> list[FileEntry]:
        if path is None:
            if self.dataset is None:
                raise FilesUnavailable(self.no_default)
            return self._batches(self.dataset, "", self.ingest_date)
        if path.startswith(f"{Zone.RAW.value}/"):
            parts = path.rstrip("/").split("/")
            if len(parts) < 3:
                raise FilesUnavailable(f"'{path}' names no dataset; write raw/<source>/<dataset>")
            return self._batches("/".join(parts[1:3]), "/".join(parts[3:]), None)
        if path.startswith("s3://"):
            bucket = path[len("s3://") :].split("/", 1)[0]
            if not bucket:
                raise FilesUnavailable(f"'{path}' names no bucket")
            try:
                storage = open_storage(StorageConfig(root=f"s3://{bucket}", s3=self.s3), self.project_dir)
            except LakeplaneError as exc:
                raise FilesUnavailable(f"cannot reach {path}: {exc}") from None
            return _listing(storage.fs, path[len("s3://") :].rstrip("/"), "s3://")
        local = Path(path.removeprefix("file://"))
        local = local if local.is_absolute() else self.project_dir / local
        return _listing(pafs.LocalFileSystem(), str(local.resolve()), "")

    def checksum(self, entry: FileEntry, algorithm: str) -> str:
        if algorithm == "SHA-256" and entry.sha256:
            return entry.sha256
        key = (entry.uri, entry.size, entry.modified, algorithm)  # a rewritten file is read again
        if key not in self._digests:
            digest = hashlib.new(HASH_ALGORITHMS[algorithm])
            try:
                with entry.open() as stream:
                    while chunk := stream.read(CHUNK):
                        digest.update(chunk)
            except (OSError, LakeplaneError) as exc:
                raise FilesUnavailable(f"cannot read {entry.uri}: {exc}") from None
            self._digests[key] = digest.hexdigest()
        return self._digests[key]

    def _batches(self, dataset: str, below: str, ingest_date: dt.date | None) -> list[FileEntry]:
        folder = f"{Zone.RAW.value}/{dataset}"
        try:
            batches = self.raw.batches(dataset, ingest_date)
        except (OSError, LakeplaneError) as exc:
            raise FilesUnavailable(f"cannot read the manifest of {folder}: {exc}") from None
        prefix = f"{folder}/{below.strip('/')}".rstrip("/")
        chosen = [b for b in batches if b.path == prefix or b.path.startswith(prefix + "/")]
        if not chosen and not self.storage.exists(prefix):
            raise FilesUnavailable(f"nothing has landed at {prefix}")
        return [
            FileEntry(
                uri=self.storage.uri(b.path),
                name=b.original_name,
                relative=b.path[len(folder) + 1 :],
                size=b.bytes,
                modified=_utc(dt.datetime.fromisoformat(b.landed_at)),
                landed=True,
                sha256=b.sha256,
                open=partial(self.storage.open_input, b.path),
            )
            for b in sorted(chosen, key=lambda b: b.path)
        ]


def _listing(fs: pafs.FileSystem, root: str, scheme: str) -> list[FileEntry]:
    """Every file at ``root`` on ``fs``: the file itself, or the files below a folder."""
    shown = f"{scheme}{root}"
    try:
        info = fs.get_file_info(root)
        if info.type == pafs.FileType.File:
            infos, base = [info], root.rsplit("/", 1)[0]
        elif info.type == pafs.FileType.Directory:
            infos = fs.get_file_info(pafs.FileSelector(root, recursive=True))
            base = root
        else:
            raise FilesUnavailable(f"no such file or folder: {shown}")
    except OSError as exc:
        raise FilesUnavailable(f"cannot list {shown}: {exc}") from None
    return [
        FileEntry(
            uri=f"{scheme}{i.path}",
            name=i.base_name,
            relative=i.path[len(base) + 1 :],
            size=int(i.size or 0),
            modified=_utc(i.mtime) if i.mtime else dt.datetime.fromtimestamp(0, dt.UTC),
            open=partial(fs.open_input_stream, i.path, compression=None),
        )
        for i in sorted(infos, key=lambda i: i.path)
        if i.type == pafs.FileType.File
    ]


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
