"""What a compaction would rewrite: the small files of each unhealthy partition, bin-packed.

A file is *small* when it is below the small-file threshold (by default three quarters of the target
file size). A partition is *healthy*, and left alone, when it holds fewer than ``min_files`` (by
default 2) small files: files already near the target are never rewritten, and one small file per
partition is what any partition's last write leaves. In an unhealthy partition the small files are
packed, largest first, into groups of at most the target size (first fit decreasing); each group is
rewritten as one file, so the new files are near the target and never far above it. A group left
holding a single file is not rewritten (it would come out as the same file).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, Not, Or
from pyiceberg.expressions.parser import parse as parse_filter
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform

from lakeplane.errors import MaintenanceOptionError

#: The target size of a compacted file when neither the caller nor the ``maintenance:`` config says.
DEFAULT_TARGET_FILE_SIZE = 128 * 1024**2
#: A file below this share of the target is small.
SMALL_FILE_SHARE = 0.75
#: A partition with fewer small files than this is healthy.
MIN_SMALL_FILES = 2


@dataclass(frozen=True)
class CompactionPolicy:
    """How big compacted files should be, and when a partition needs compacting."""

    target_file_size: int = DEFAULT_TARGET_FILE_SIZE
    small_file_threshold: int | None = None
    min_files: int = MIN_SMALL_FILES

    @property
    def threshold(self) -> int:
        return self.small_file_threshold or int(self.target_file_size * SMALL_FILE_SHARE)


@dataclass
class PartitionPlan:
    """One partition: its live files, and the groups of small files to rewrite (none if healthy)."""

    partition: dict[str, Any]
    spec_id: int
    files: int
    bytes: int
    small_files: int
    groups: list[list[DataFile]] = field(default_factory=list)
    skipped: str | None = None

    @property
    def rewritten_files(self) -> int:
        return sum(len(g) for g in self.groups)

    @property
    def rewritten_bytes(self) -> int:
        return sum(f.file_size_in_bytes for g in self.groups for f in g)

    def to_dict(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "files": self.files,
            "bytes": self.bytes,
            "small_files": self.small_files,
            "rewritten_files": self.rewritten_files,
            "new_files": len(self.groups),
            "skipped": self.skipped,
        }


def partition_where(table: Table, where: str | None) -> BooleanExpression:
    """``where`` (``ds >= '2026-11-01' AND country = 'FR'``) as a filter on ``table``'s identity
    partition columns, so it selects whole partitions.

    Raises:
        MaintenanceOptionError: ``where`` does not parse or names a column that is not an identity
            partition column of the table.
    """
    name = ".".join(table.name())
    if not where:
        return AlwaysTrue()
    try:
        expression = parse_filter(where)
    except Exception as exc:  # pyparsing's ParseException and ValueError alike: the user's text
        raise MaintenanceOptionError(
            f"{name}: --where '{where}' is not a filter: {exc}", table=name, option="where"
        ) from None
    partition_columns = {
        table.schema().find_column_name(f.source_id)
        for f in table.spec().fields
        if isinstance(f.transform, IdentityTransform)
    }
    for column in _columns_of(expression):
        if column not in partition_columns:
            raise MaintenanceOptionError(
                f"{name}: --where may name partition columns only "
                f"({', '.join(sorted(c for c in partition_columns if c)) or 'the table has none'}), "
                f"not '{column}'",
                table=name,
                option="where",
                column=column,
            )
    return expression


def _columns_of(expression: BooleanExpression) -> list[str]:
    names: list[str] = []
    stack: list[Any] = [expression]
    while stack:
        node = stack.pop()
        if isinstance(node, And | Or):
            stack += [node.left, node.right]
        elif isinstance(node, Not):
            stack.append(node.child)
        elif hasattr(node, "term"):
            names.append(str(node.term.name))
    return names


def plan_compaction(
    table: Table, policy: CompactionPolicy, row_filter: BooleanExpression | None = None
) -> list[PartitionPlan]:
    """Every partition of ``table``'s current snapshot matching ``row_filter``, with what to rewrite.

    Partitions written under an older partition spec are reported and skipped: their files would
    have to be split by the current spec's values, which compaction does not do.
    """
    if table.current_snapshot() is None:
        return []
    by_partition: dict[tuple[int, str], list[DataFile]] = defaultdict(list)
    for task in table.scan(row_filter=row_filter or AlwaysTrue()).plan_files():
        partition = task.file.partition
        by_partition[task.file.spec_id, repr([partition[i] for i in range(len(partition))])].append(task.file)
    plans = []
    for (spec_id, _), files in sorted(by_partition.items()):
        plans.append(_plan_partition(table, spec_id, files, policy))
    return plans


def _plan_partition(
    table: Table, spec_id: int, files: list[DataFile], policy: CompactionPolicy
) -> PartitionPlan:
    small = [f for f in files if f.file_size_in_bytes < policy.threshold]
    plan = PartitionPlan(
        partition=partition_values(table, spec_id, files[0]),
        spec_id=spec_id,
        files=len(files),
        bytes=sum(f.file_size_in_bytes for f in files),
        small_files=len(small),
    )
    if spec_id != table.spec().spec_id:
        plan.skipped = f"written under partition spec {spec_id}, not the current {table.spec().spec_id}"
    elif len(small) < policy.min_files:
        plan.skipped = f"healthy: {len(small)} file(s) below {policy.threshold} bytes"
    else:
        plan.groups = [g for g in bin_pack(small, policy.target_file_size) if len(g) > 1]
        if not plan.groups:
            plan.skipped = "no two small files fit together in the target size"
    return plan


def bin_pack(files: Sequence[DataFile], target: int) -> list[list[DataFile]]:
    """``files`` in groups of at most ``target`` bytes each (a file larger alone stays alone),
    first fit decreasing; within a group, files keep their path order."""
    bins: list[list[DataFile]] = []
    sizes: list[int] = []
    for data_file in sorted(files, key=lambda f: (-f.file_size_in_bytes, f.file_path)):
        size = data_file.file_size_in_bytes
        for i, used in enumerate(sizes):
            if used + size <= target:
                bins[i].append(data_file)
                sizes[i] += size
                break
        else:
            bins.append([data_file])
            sizes.append(size)
    return [sorted(b, key=lambda f: f.file_path) for b in bins]


def partition_values(table: Table, spec_id: int, data_file: DataFile) -> dict[str, Any]:
    """The partition of ``data_file`` as ``{partition field: value}``, each value as Iceberg shows it
    (``2026-11-01`` for a date, not its day number); ``None`` for a null."""
    spec = table.specs()[spec_id]
    values: dict[str, Any] = {}
    for position, part in enumerate(spec.fields):
        value = data_file.partition[position]
        try:
            source = table.schema().find_field(part.source_id).field_type
            values[part.name] = (
                None
                if value is None
                else part.transform.to_human_string(part.transform.result_type(source), value)
            )
        except ValueError:  # the source column was dropped since: the stored value
            values[part.name] = str(value)
    return values
