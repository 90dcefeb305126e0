"""Which files a table's metadata references: the set snapshot expiry and orphan removal both need.

A snapshot references its manifest list, the manifests that list names, and the data and delete
files those manifests name. An entry of a manifest is *live* (added or existing: a reader of the
snapshot reads the file) or *deleted* (the file was removed by that snapshot; nobody reads it
through it). Expiry keeps every file live in a retained snapshot; orphan removal, which must be
conservative, keeps every file any entry names. The table's metadata files (the current JSON, those
in its metadata log) and statistics files are referenced too.

Files are keyed by their path on the storage's filesystem (``/abs/path`` for a local lake,
``bucket/key`` for S3), which is what a listing of the table's folder yields.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow.fs as pafs
from pyiceberg.io import FileIO
from pyiceberg.manifest import ManifestEntryStatus, ManifestFile
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import Snapshot

from lakeplane.catalog.commits import table_name
from lakeplane.errors import CleanupRefused, StorageError
from lakeplane.maintenance.actions import MaintenanceAction
from lakeplane.storage import LakeStorage

#: How many files are deleted at once (an S3 delete is one request each).
DELETE_THREADS = 8
#: pyiceberg names a metadata file ``<version>-<uuid>.metadata.json``.
_METADATA_FILE = re.compile(r"^(\d+)-[^/]*\.metadata\.json$")


def storage_key(uri: str) -> str:
    """The path of ``uri`` on the lake's filesystem: ``file:///a/b`` → ``/a/b``, ``s3://b/k`` → ``b/k``."""
    _scheme, sep, rest = uri.partition("://")
    return rest if sep else uri.removeprefix("file:")


def shown_path(storage: LakeStorage, key: str) -> str:
    """How a file is named to people: its local path, or its ``s3://`` URI."""
    return key if storage.is_local else f"{storage.scheme}://{key}"


def metadata_version(path: str) -> int | None:
    """The version number in a metadata file's name, or None when it is not named as pyiceberg names them."""
    match = _METADATA_FILE.match(path.rsplit("/", 1)[-1])
    return int(match.group(1)) if match else None


@dataclass
class FileSet:
    """Files by storage key, with their size in bytes (0 when the metadata does not say)."""

    sizes: dict[str, int] = field(default_factory=dict)

    def add(self, uri: str, size: int = 0) -> None:
        key = storage_key(uri)
        self.sizes[key] = max(size, self.sizes.get(key, 0))

    def update(self, other: FileSet) -> None:
        for key, size in other.sizes.items():
            self.sizes[key] = max(size, self.sizes.get(key, 0))

    def __contains__(self, key: object) -> bool:
        return key in self.sizes

    def __len__(self) -> int:
        return len(self.sizes)

    def minus(self, other: FileSet) -> FileSet:
        return FileSet({k: v for k, v in self.sizes.items() if k not in other.sizes})


class ManifestReader:
    """Reads manifest lists and manifests of one table, each file once.

    Snapshots share most of their manifests (an append keeps its parent's), so a walk over many
    snapshots reads every manifest once, not once per snapshot.
    """

    def __init__(self, io: FileIO) -> None:
        self.io = io
        self._lists: dict[str, list[ManifestFile]] = {}
        self._entries: dict[str, list[tuple[str, int, bool]]] = {}

    def manifests(self, snapshot: Snapshot) -> list[ManifestFile]:
        if snapshot.manifest_list not in self._lists:
            self._lists[snapshot.manifest_list] = list(snapshot.manifests(self.io))
        return self._lists[snapshot.manifest_list]

    def entries(self, manifest: ManifestFile) -> list[tuple[str, int, bool]]:
        """``(path, size, live)`` of each entry of ``manifest``."""
        if manifest.manifest_path not in self._entries:
            self._entries[manifest.manifest_path] = [
                (
                    entry.data_file.file_path,
                    int(entry.data_file.file_size_in_bytes),
                    entry.status != ManifestEntryStatus.DELETED,
                )
                for entry in manifest.fetch_manifest_entry(self.io, discard_deleted=False)
            ]
        return self._entries[manifest.manifest_path]

    def snapshot_files(self, snapshot: Snapshot, *, live_only: bool) -> FileSet:
        """The manifest list, manifests and data/delete files of ``snapshot`` (only the files it
        reads when ``live_only``, else every file its manifests name)."""
        files = FileSet()
        files.add(snapshot.manifest_list)
        for manifest in self.manifests(snapshot):
            files.add(manifest.manifest_path, int(manifest.manifest_length))
            for path, size, live in self.entries(manifest):
                if live or not live_only:
                    files.add(path, size)
        return files

    def files_of(self, snapshots: Iterable[Snapshot], *, live_only: bool) -> FileSet:
        files = FileSet()
        for snapshot in snapshots:
            files.update(self.snapshot_files(snapshot, live_only=live_only))
        return files


def metadata_files(metadata: TableMetadata, metadata_location: str) -> FileSet:
    """The table's current metadata file, the previous ones its log keeps, and its statistics files."""
    files = FileSet()
    files.add(metadata_location)
    for entry in metadata.metadata_log:
        files.add(entry.metadata_file)
    for statistics in metadata.statistics:
        files.add(statistics.statistics_path, int(statistics.file_size_in_bytes))
    for partition_statistics in metadata.partition_statistics:
        files.add(partition_statistics.statistics_path, int(partition_statistics.file_size_in_bytes))
    return files


def referenced_files(
    metadata: TableMetadata, metadata_location: str, reader: ManifestReader, *, live_only: bool
) -> FileSet:
    """Every file the table's metadata references: all snapshots (of every branch and tag, and
    those no ref points at any more but not yet expired) and the metadata files."""
    files = reader.files_of(metadata.snapshots, live_only=live_only)
    files.update(metadata_files(metadata, metadata_location))
    return files


def ancestors(metadata: TableMetadata, snapshot_id: int) -> list[int]:
    """``snapshot_id`` and its ancestors still in the metadata, newest first."""
    chain: list[int] = []
    snapshot = metadata.snapshot_by_id(snapshot_id)
    while snapshot is not None and snapshot.snapshot_id not in chain:
        chain.append(snapshot.snapshot_id)
        parent = snapshot.parent_snapshot_id
        snapshot = metadata.snapshot_by_id(parent) if parent is not None else None
    return chain


def stat_sizes(fs: pafs.FileSystem, files: FileSet) -> None:
    """Fill in the sizes the metadata did not give (manifest lists) from the filesystem."""
    unknown = [key for key, size in files.sizes.items() if not size]
    if not unknown:
        return
    try:
        infos = fs.get_file_info(unknown)
    except OSError as exc:
        raise StorageError(f"cannot stat {unknown[0]}: {exc}", path=unknown[0]) from exc
    for info in infos:
        if info.type == pafs.FileType.File:
            files.sizes[info.path] = int(info.size or 0)


def delete_files(fs: pafs.FileSystem, keys: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """Delete ``keys`` (a file already gone counts as deleted).

    Returns:
        The keys deleted, and why each of the others could not be.
    """
    failed: dict[str, str] = {}

    def delete(key: str) -> str | None:
        try:
            fs.delete_file(key)
        except FileNotFoundError:
            pass
        except OSError as exc:
            failed[key] = str(exc)
            return None
        return key

    with ThreadPoolExecutor(DELETE_THREADS) as pool:
        done = [key for key in pool.map(delete, list(keys)) if key is not None]
    return done, failed


def raise_if_not_deleted(action: MaintenanceAction) -> None:
    """Raise when ``action`` could not delete some of its files (after it has been recorded).

    Raises:
        StorageError: names the first file left and the count.
    """
    left: dict[str, str] = action.details.get("not_deleted") or {}
    if left:
        path, reason = next(iter(left.items()))
        raise StorageError(
            f"{action.table}: cannot delete {path} ({len(left)} files left, {len(action.deleted)} "
            f"deleted; maintain orphans removes them later): {reason}",
            path=path,
        )


def check_inside_lake(table: Table, storage: LakeStorage) -> str:
    """The table's location as a storage key; refuses a table whose files are not the lake's own.

    Raises:
        CleanupRefused: the location is outside the lake's storage root or in the raw zone.
    """
    location = storage_key(table.metadata.location).rstrip("/")
    inside = location.startswith(storage.base + "/") and table.metadata.location.startswith(
        ("file:", "/") if storage.is_local else (f"{storage.scheme}://",)
    )
    if not inside or location.startswith(storage.path("raw") + "/"):
        raise CleanupRefused(
            f"{table_name(table)} lives at {table.metadata.location}, outside the lake's tables "
            f"({storage.root_uri}); lakeplane deletes no file there",
            table=table_name(table),
            location=table.metadata.location,
        )
    return location


def live_totals(metadata: TableMetadata) -> tuple[int, int]:
    """The live data files and bytes of main's head, as its summary counts them."""
    head = metadata.snapshot_by_id(metadata.current_snapshot_id) if metadata.current_snapshot_id else None
    summary: dict[str, str] = head.summary.additional_properties if head and head.summary else {}
    return int(summary.get("total-data-files", 0)), int(summary.get("total-files-size", 0))


#: Used until the ``maintenance:`` config gives others: a week of snapshots, main's head, 3 days of grace.
DEFAULT_OLDER_THAN = 7 * 86400.0
DEFAULT_RETAIN_LAST = 1
DEFAULT_ORPHAN_GRACE = 3 * 86400.0


@dataclass(frozen=True)
class Retention:
    """How long snapshots and unreferenced files of one table are kept."""

    older_than: float = DEFAULT_OLDER_THAN
    retain_last: int = DEFAULT_RETAIN_LAST
    orphan_grace: float = DEFAULT_ORPHAN_GRACE


def retention_for(config: object, table: str) -> Retention:
    """``table``'s retention from the lake config's ``maintenance:`` section when it has one
    (``maintenance.for_table(table)``), else the defaults."""
    maintenance = getattr(config, "maintenance", None)
    policy = maintenance.for_table(table) if maintenance is not None else None
    if policy is None:
        return Retention()
    return Retention(
        older_than=float(getattr(policy, "older_than", None) or DEFAULT_OLDER_THAN),
        retain_last=int(getattr(policy, "retain_last", None) or DEFAULT_RETAIN_LAST),
        orphan_grace=float(getattr(policy, "orphan_grace", None) or DEFAULT_ORPHAN_GRACE),
    )
