"""Small Iceberg tables with a known history, and what each of their snapshots read when made.

Tables are written with pyiceberg directly (appends, overwrites, deletes, branches, tags) so a test
can build any history quickly; expiry and orphan removal then run on them through the ``Lake``.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
from pyiceberg.expressions import BooleanExpression
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import LongType, NestedField, StringType

from lakeplane.catalog import TableRef
from lakeplane.lake import Lake, init_project

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "grp", StringType(), required=False),
)
SPEC = PartitionSpec(PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="grp"))
ARROW = pa.schema([("id", pa.int64()), ("grp", pa.string())])
_ids = itertools.count()


def new_lake(root: Path, overrides: dict[str, Any] | None = None) -> Lake:
    """An empty lake project in ``root`` (name ``demo``)."""
    init_project(root, "demo")
    return Lake(root, overrides)


def rows(n: int, groups: Iterable[str] = ("a", "b")) -> pa.Table:
    """``n`` new rows (ids never used before) spread over ``groups``."""
    names = list(groups)
    ids = [next(_ids) for _ in range(n)]
    return pa.table({"id": ids, "grp": [names[i % len(names)] for i in range(n)]}, schema=ARROW)


@dataclass
class History:
    """A table and, for each snapshot made through it, the sorted rows that snapshot reads."""

    lake: Lake
    name: str
    read: dict[int, list[tuple[Any, ...]]] = field(default_factory=dict)

    @classmethod
    def create(cls, lake: Lake, name: str = "demo.curated.events", partitioned: bool = True) -> History:
        lake.catalog.create(TableRef.parse(name), SCHEMA, SPEC if partitioned else PartitionSpec())
        return cls(lake, name)

    @property
    def table(self) -> Table:
        return self.lake.catalog.load(self.name)

    def _landed(self, table: Table, branch: str = "main") -> int:
        table.refresh()
        snapshot = table.snapshot_by_name(branch)
        assert snapshot is not None
        self.read[snapshot.snapshot_id] = snapshot_rows(table, snapshot.snapshot_id)
        return snapshot.snapshot_id

    def append(self, n: int = 3, branch: str = "main", properties: dict[str, str] | None = None) -> int:
        table = self.table
        table.append(rows(n), branch=branch, snapshot_properties=properties or {})
        return self._landed(table, branch)

    def overwrite(
        self, n: int = 3, where: BooleanExpression | str | None = None, branch: str = "main"
    ) -> int:
        table = self.table
        with warnings.catch_warnings():  # an overwrite of an empty table deletes nothing: fine here
            warnings.filterwarnings("ignore", "Delete operation did not match any records")
            if where is None:
                table.overwrite(rows(n), branch=branch)
            else:
                table.overwrite(rows(n, ["a"]), overwrite_filter=where, branch=branch)
        return self._landed(table, branch)

    def delete(self, where: str, branch: str = "main") -> int:
        table = self.table
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Delete operation did not match any records")
            table.delete(where, branch=branch)
        return self._landed(table, branch)

    def branch(self, name: str, snapshot_id: int) -> None:
        self.table.manage_snapshots().create_branch(snapshot_id, name).commit()

    def tag(self, name: str, snapshot_id: int) -> None:
        self.table.manage_snapshots().create_tag(snapshot_id, name).commit()


def snapshot_rows(table: Table, snapshot_id: int) -> list[tuple[Any, ...]]:
    data = table.scan(snapshot_id=snapshot_id).to_arrow()
    return sorted(zip(*(data.column(c).to_pylist() for c in ("id", "grp")), strict=True))


def snapshot_paths(table: Table, snapshot_id: int) -> set[str]:
    """The files a reader of the snapshot opens (data files by scan planning) and its manifest list,
    as local paths: an oracle that does not share lakeplane's reference walk."""
    snapshot = table.metadata.snapshot_by_id(snapshot_id)
    assert snapshot is not None
    files = {task.file.file_path for task in table.scan(snapshot_id=snapshot_id).plan_files()}
    files.add(snapshot.manifest_list)
    return {local_path(uri) for uri in files}


def local_path(uri: str) -> str:
    return uri.removeprefix("file://").removeprefix("file:")


def present_files(lake: Lake, name: str) -> set[str]:
    """The files in the table's folder, named as :func:`snapshot_paths` names them (local paths, or
    ``s3://`` URIs on an S3 lake); listed through the lake's filesystem."""
    location = lake.catalog.load(name).metadata.location
    folder = local_path(location).removeprefix(f"{lake.storage.scheme}://")
    selector = pafs.FileSelector(folder, recursive=True, allow_not_found=True)
    prefix = "" if lake.storage.is_local else f"{lake.storage.scheme}://"
    infos = lake.storage.fs.get_file_info(selector)
    return {prefix + info.path for info in infos if info.type == pafs.FileType.File}


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def table_folder(lake: Lake, name: str) -> Path:
    return Path(local_path(lake.catalog.load(name).metadata.location))
