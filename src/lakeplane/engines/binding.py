"""Binding a table's columns to the columns of its data files by Iceberg field id.

A data file's footer says which field id each of its columns holds (``PARQUET:field_id``). A file
written without ids (by an older lakeplane, or by another tool) is bound through the table's name
mapping instead. Either way a column is found by what it *is*, not by what it is called now: a
renamed column keeps its data, a dropped one is not read, a column added later (or dropped and
added again under an old name, with a new id) is NULL in older files, and a column whose type was
promoted is read as the current type.

Files are grouped by how their columns bind, so an engine reads each group with one scan. Footers
are read once per process: data files are immutable, so a path's footer never changes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from threading import Lock

import pyarrow as pa
import pyarrow.parquet as pq

from lakeplane.engines.base import ScanSource
from lakeplane.errors import EngineError
from lakeplane.storage import LakeStorage

#: The Arrow field metadata key holding a Parquet column's field id.
FIELD_ID_KEY = b"PARQUET:field_id"

#: How many footers a process keeps (a footer's top-level schema is small).
FOOTER_CACHE_SIZE = 50_000
#: How many footers are read at once when a scan meets files not seen before.
PREFETCH_THREADS = 8


@dataclass(frozen=True)
class BoundColumn:
    """One column of the table as a group of files holds it."""

    #: The column's name in the schema read.
    name: str
    #: The type it is read as.
    type: pa.DataType
    #: Its column in the files; ``None`` when the files do not hold it (it reads as NULL).
    source: str | None = None
    #: The type the files hold it as, when it differs from :attr:`type` (a promoted type).
    file_type: pa.DataType | None = None

    @property
    def promoted(self) -> bool:
        return self.file_type is not None


@dataclass(frozen=True)
class FileGroup:
    """Data files whose columns bind the same way."""

    files: tuple[str, ...]
    #: The files carry field ids (else they were bound through the name mapping).
    by_id: bool
    columns: tuple[BoundColumn, ...]

    def physical_schema(self) -> pa.Schema:
        """The columns read from the files, under their names and types in the files."""
        return pa.schema(
            [pa.field(c.source, c.file_type or c.type) for c in self.columns if c.source is not None]
        )


def field_id(field: pa.Field) -> int | None:
    """The field id an Arrow field (of a footer or of a :class:`ScanSource` schema) carries."""
    value = (field.metadata or {}).get(FIELD_ID_KEY)
    return int(value) if value is not None else None


def schema_field_ids(schema: pa.Schema, table: str) -> list[int]:
    """The field id of every column of a scan's schema.

    Raises:
        EngineError: a column without one (a schema not made by :func:`plan_scan`).
    """
    ids = []
    for column in schema:
        found = field_id(column)
        if found is None:
            raise EngineError(
                f"table '{table}': column '{column.name}' has no field id to bind by", table=table
            )
        ids.append(found)
    return ids


class FooterCache:
    """The top-level schema of each data file's footer, read once per path."""

    def __init__(self, size: int = FOOTER_CACHE_SIZE) -> None:
        self.size = size
        self._schemas: OrderedDict[str, pa.Schema] = OrderedDict()
        self._lock = Lock()

    def schema(self, storage: LakeStorage, uri: str) -> pa.Schema:
        """The footer schema of the data file at ``uri``.

        Raises:
            EngineError: the file cannot be read as Parquet.
        """
        with self._lock:
            cached = self._schemas.get(uri)
            if cached is not None:
                self._schemas.move_to_end(uri)
                return cached
        try:
            schema = pq.read_schema(storage.fs_path(uri), filesystem=storage.fs)
        except (OSError, pa.ArrowInvalid) as exc:
            raise EngineError(f"cannot read the footer of data file {uri}: {exc}") from None
        with self._lock:
            self._schemas[uri] = schema
            while len(self._schemas) > self.size:
                self._schemas.popitem(last=False)
        return schema

    def prefetch(self, storage: LakeStorage, uris: list[str]) -> None:
        """Read the footers of ``uris`` not read yet, several at once (an S3 lake's round trips)."""
        with self._lock:
            missing = [uri for uri in dict.fromkeys(uris) if uri not in self._schemas]
        if len(missing) > 1:
            with ThreadPoolExecutor(max_workers=min(PREFETCH_THREADS, len(missing))) as pool:
                list(pool.map(lambda uri: self.schema(storage, uri), missing))


#: The footers this process has read.
FOOTERS = FooterCache()


def bind_files(source: ScanSource, footer: Callable[[str], pa.Schema]) -> list[FileGroup]:
    """``source``'s files grouped by how their columns bind to ``source.schema``, in file order.

    ``footer(uri)`` gives a file's footer schema (:meth:`FooterCache.schema`).
    """
    targets = list(zip(source.schema, schema_field_ids(source.schema, source.table), strict=True))
    groups: dict[tuple[bool, tuple[BoundColumn, ...]], list[str]] = {}
    for uri in source.files:
        by_id, columns = _bind_file(footer(uri), targets, source.name_mapping)
        groups.setdefault((by_id, columns), []).append(uri)
    return [FileGroup(tuple(files), by_id, columns) for (by_id, columns), files in groups.items()]


def _bind_file(
    physical: pa.Schema, targets: list[tuple[pa.Field, int]], name_mapping: Mapping[str, int]
) -> tuple[bool, tuple[BoundColumn, ...]]:
    """Whether ``physical`` (a file's footer) carries field ids, and how each target binds to it."""
    by_id = any(field_id(f) is not None for f in physical)
    held: dict[int, pa.Field] = {}
    for column in physical:
        found = field_id(column) if by_id else name_mapping.get(column.name)
        if found is not None:
            held.setdefault(found, column)
    columns = []
    for target, target_id in targets:
        column = held.get(target_id)
        if column is None:
            columns.append(BoundColumn(target.name, target.type))
        else:
            file_type = None if same_type(column.type, target.type) else column.type
            columns.append(BoundColumn(target.name, target.type, column.name, file_type))
    return by_id, tuple(columns)


def same_type(written: pa.DataType, read: pa.DataType) -> bool:
    """Whether a file's column type reads as ``read`` without a cast (string and large string,
    a timestamp's zone spelled differently)."""
    if written == read:
        return True
    if pa.types.is_timestamp(written) and pa.types.is_timestamp(read):
        return written.unit == read.unit and (written.tz is None) == (read.tz is None)
    families = (
        (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view),
        (pa.types.is_binary, pa.types.is_large_binary, pa.types.is_binary_view),
    )
    return any(any(f(written) for f in family) and any(f(read) for f in family) for family in families)
