"""Existing Parquet files to register as a table: found, read from their footers, copied when needed.

A source is a Parquet file or a folder of them (searched recursively for ``*.parquet``; hidden and
``_``-prefixed entries, such as Spark's ``_SUCCESS`` and ``_temporary``, are skipped), given as a
local path or, on an S3 lake, as an ``s3://`` URI. Nothing here changes a table.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lakeplane.errors import RegisterError
from lakeplane.storage import LakeStorage

#: Parquet files begin and end with these four bytes.
PARQUET_MAGIC = b"PAR1"
_FIELD_ID = b"PARQUET:field_id"
#: How Hive and Spark name the folder of a NULL partition value.
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_INTEGER = re.compile(r"^-?\d{1,18}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class ParquetSource:
    """One Parquet file to register, as its footer describes it.

    Attributes:
        shown: the file as the user named it (or as found in a folder they named), for messages.
        fs, path: where it is read from.
        lake_uri: its URI when it lies inside the lake's storage (it can be added in place).
        folders: the ``key=value`` folder names above it, outermost first (Hive-style partitions).
        schema: its columns, and after them the ``added`` ones.
        added: columns found only in its folder names (Spark's ``partitionBy`` layout), with the
            one value each holds for the file; a copy of the file is written with them.
    """

    shown: str
    fs: pafs.FileSystem
    path: str
    lake_uri: str | None
    folders: tuple[tuple[str, str], ...]
    size: int
    rows: int
    schema: pa.Schema
    metadata: pq.FileMetaData
    added: tuple[tuple[str, pa.Scalar], ...] = ()

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def read_uri(self) -> str:
        """The URI pyiceberg reads it at: a local absolute path, or ``s3://bucket/key``."""
        return self.path if isinstance(self.fs, pafs.LocalFileSystem) else f"s3://{self.path}"

    def field_ids(self) -> dict[str, int]:
        """Top-level columns carrying a Parquet field id, to that id."""
        ids = {}
        for field in self.schema:
            if field.metadata and _FIELD_ID in field.metadata:
                ids[field.name] = int(field.metadata[_FIELD_ID])
        return ids

    def column_range(self, column: str) -> tuple[object, object] | None:
        """The smallest and largest value of a top-level column from the row groups' statistics;
        ``None`` when a row group has no statistics for it (then the file's values are unknown)."""
        index = self.metadata.schema.to_arrow_schema().get_field_index(column)
        if index < 0 or self.metadata.num_row_groups == 0:
            return None
        lows, highs = [], []
        for group in range(self.metadata.num_row_groups):
            stats = self.metadata.row_group(group).column(index).statistics
            if stats is None or not stats.has_min_max:
                return None
            lows.append(stats.min)
            highs.append(stats.max)
        return min(lows), max(highs)

    def content_digest(self) -> str:
        """SHA-256 of the file's bytes, read as a stream."""
        digest = hashlib.sha256()
        with self.fs.open_input_stream(self.path, compression=None) as stream:
            while chunk := stream.read(8 << 20):
                digest.update(chunk)
        return digest.hexdigest()


def find_parquet_files(sources: list[str], storage: LakeStorage, table: str) -> list[ParquetSource]:
    """Every Parquet file the ``sources`` name, in a stable order, each listed once.

    Raises:
        RegisterError: a source that does not exist, a folder holding no Parquet file, or a file
            that is not Parquet (each names the file).
    """
    found: dict[str, ParquetSource] = {}
    for source in sources:
        fs, path = _locate(source, storage, table)
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise RegisterError(
                f"{source}: no such file or folder", table=table, file=source, reason="missing"
            )
        if info.type == pafs.FileType.Directory:
            paths = _parquet_below(fs, path)
            if not paths:
                raise RegisterError(
                    f"{source}: the folder holds no *.parquet file", table=table, file=source, reason="empty"
                )
        else:
            paths = [path]
        for file_path in paths:
            if file_path not in found:
                shown = source if file_path == path else _shown(source, path, file_path)
                found[file_path] = _read_footer(fs, file_path, shown, storage, table)
    return list(found.values())


def with_folder_columns(
    files: list[ParquetSource], table_schema: pa.Schema | None, table: str
) -> list[ParquetSource]:
    """The files, each given the ``key=value`` folder keys it lacks as columns (:attr:`ParquetSource.added`).

    A key's type is the table's column type when the table has it, else ``long`` when every
    value is an integer, ``date`` when every value is a ``YYYY-MM-DD`` date, and ``string`` otherwise;
    ``__HIVE_DEFAULT_PARTITION__`` (how Spark names a NULL) is NULL.
    """
    missing: dict[str, list[str]] = {k: [] for f in files for k, _ in f.folders if k not in f.schema.names}
    if not missing:
        return files
    for file in files:
        for key, value in file.folders:
            if key in missing and value != HIVE_NULL:
                missing[key].append(value)
    types = {
        key: table_schema.field(key).type
        if table_schema is not None and key in table_schema.names
        else _folder_type(values)
        for key, values in missing.items()
    }
    found = []
    for file in files:
        added = tuple(
            (key, _folder_value(value, types[key], file, key, table))
            for key, value in file.folders
            if key in missing and key not in file.schema.names
        )
        schema = pa.schema([*file.schema, *(pa.field(k, v.type) for k, v in added)])
        found.append(replace(file, added=added, schema=schema) if added else file)
    return found


def _folder_type(values: list[str]) -> pa.DataType:
    if values and all(_INTEGER.match(v) for v in values):
        return pa.int64()
    if values and all(_DATE.match(v) for v in values):
        return pa.date32()
    return pa.string()


def _folder_value(text: str, kind: pa.DataType, file: ParquetSource, key: str, table: str) -> pa.Scalar:
    if text == HIVE_NULL:
        return pa.scalar(None, kind)
    try:
        return pa.array([text], pa.string()).cast(kind)[0]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise RegisterError(
            f"{file.shown}: folder {key}={text} is not a value of the table's column '{key}' ({kind})",
            table=table,
            file=file.shown,
            column=key,
            reason="partition",
        ) from None


def _locate(source: str, storage: LakeStorage, table: str) -> tuple[pafs.FileSystem, str]:
    if source.startswith("s3://"):
        if storage.scheme != "s3":
            raise RegisterError(
                f"{source}: an s3:// source needs a lake on S3 (this lake is at {storage.root_uri})",
                table=table,
                file=source,
                reason="unreachable",
            )
        return storage.fs, source.removeprefix("s3://").rstrip("/")
    local = source.removeprefix("file://")
    return pafs.LocalFileSystem(), str(Path(local).expanduser().resolve())


def _parquet_below(fs: pafs.FileSystem, root: str) -> list[str]:
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    paths = []
    for info in infos:
        below = info.path[len(root) :].strip("/").split("/")
        if info.type != pafs.FileType.File or any(part.startswith((".", "_")) for part in below):
            continue
        if info.path.lower().endswith(".parquet"):
            paths.append(info.path)
    return sorted(paths)


def _shown(source: str, root: str, path: str) -> str:
    return source.rstrip("/") + "/" + path[len(root) :].strip("/")


def _read_footer(
    fs: pafs.FileSystem, path: str, shown: str, storage: LakeStorage, table: str
) -> ParquetSource:
    try:
        with fs.open_input_file(path) as handle:
            size = handle.size()
            head = handle.read_at(4, 0) if size >= 8 else b""
            tail = handle.read_at(4, size - 4) if size >= 8 else b""
            if head != PARQUET_MAGIC or tail != PARQUET_MAGIC:
                raise RegisterError(
                    f"{shown}: not a Parquet file (it does not begin and end with PAR1)",
                    table=table,
                    file=shown,
                    reason="not parquet",
                )
            metadata = pq.read_metadata(handle)
    except (OSError, pa.ArrowInvalid) as exc:
        raise RegisterError(
            f"{shown}: cannot read its Parquet footer: {exc}", table=table, file=shown, reason="not parquet"
        ) from None
    folders = tuple(
        (key, unquote(value))
        for key, sep, value in (part.partition("=") for part in path.split("/")[:-1])
        if sep and key
    )
    return ParquetSource(
        shown=shown,
        fs=fs,
        path=path,
        lake_uri=_lake_uri(fs, path, storage),
        folders=folders,
        size=size,
        rows=metadata.num_rows,
        schema=metadata.schema.to_arrow_schema(),
        metadata=metadata,
    )


def _lake_uri(fs: pafs.FileSystem, path: str, storage: LakeStorage) -> str | None:
    same_fs = isinstance(fs, pafs.LocalFileSystem) == storage.is_local
    if same_fs and path.startswith(storage.base + "/"):
        return f"{storage.scheme}://{path}"
    return None


def copy_into_lake(source: ParquetSource, storage: LakeStorage, relative: str, table: str) -> None:
    """Copy ``source`` byte for byte to ``relative`` in the lake; the file appears whole or not at all
    (a local copy is renamed into place, an S3 object is visible once its upload completes)."""
    target = storage.path(relative)
    existing = storage.fs.get_file_info(target)
    if existing.type == pafs.FileType.File and existing.size == source.size:
        return  # copied by an earlier or concurrent run: same content, named by its digest
    partial = f"{target}.{uuid.uuid4().hex[:8]}.partial" if storage.is_local else target
    if storage.is_local:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    try:
        with (
            source.fs.open_input_stream(source.path, compression=None) as src,
            storage.fs.open_output_stream(partial, compression=None) as out,
        ):
            while chunk := src.read(8 << 20):
                out.write(chunk)
        if storage.is_local:
            os.replace(partial, target)
    except OSError as exc:
        raise RegisterError(
            f"{source.shown}: cannot copy it to {storage.uri(relative)}: {exc}",
            table=table,
            file=source.shown,
            reason="copy",
            retryable=True,
        ) from exc


def rewrite_into_lake(source: ParquetSource, storage: LakeStorage, relative: str, table: str) -> None:
    """Write a copy of ``source`` holding its :attr:`~ParquetSource.added` columns to ``relative``,
    batch by batch; like :func:`copy_into_lake`, the file appears whole or not at all."""
    target = storage.path(relative)
    if storage.fs.get_file_info(target).type == pafs.FileType.File:
        return  # written by an earlier or concurrent run from the same content
    partial = f"{target}.{uuid.uuid4().hex[:8]}.partial" if storage.is_local else target
    if storage.is_local:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    try:
        with (
            source.fs.open_input_file(source.path) as handle,
            storage.fs.open_output_stream(partial, compression=None) as out,
            pq.ParquetWriter(out, source.schema, compression="zstd") as writer,
        ):
            for batch in pq.ParquetFile(handle).iter_batches(batch_size=64_000):
                constants = [pa.repeat(value, batch.num_rows) for _, value in source.added]
                writer.write_batch(
                    pa.RecordBatch.from_arrays([*batch.columns, *constants], schema=source.schema)
                )
        if storage.is_local:
            os.replace(partial, target)
    except OSError as exc:
        raise RegisterError(
            f"{source.shown}: cannot write its copy to {storage.uri(relative)}: {exc}",
            table=table,
            file=source.shown,
            reason="copy",
            retryable=True,
        ) from exc
