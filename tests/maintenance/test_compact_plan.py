"""The compaction plan on its own: bin packing, the policy and its sources."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat

from lakeplane.errors import MaintenanceOptionError
from lakeplane.maintenance.compact import compaction_policy
from lakeplane.maintenance.compact_plan import DEFAULT_TARGET_FILE_SIZE, bin_pack


def data_file(number: int, size: int) -> DataFile:
    return DataFile.from_args(
        content=DataFileContent.DATA,
        file_path=f"s3://lake/t/data/{number:05d}.parquet",
        file_format=FileFormat.PARQUET,
        file_size_in_bytes=size,
        record_count=1,
    )


@given(
    st.lists(st.integers(min_value=1, max_value=3_000), max_size=60),
    st.integers(min_value=500, max_value=4_000),
)
def test_bin_pack_keeps_every_file_once_and_no_group_above_the_target(sizes: list[int], target: int) -> None:
    files = [data_file(i, s) for i, s in enumerate(sizes)]
    groups = bin_pack(files, target)
    packed = [f.file_path for g in groups for f in g]
    assert sorted(packed) == sorted(f.file_path for f in files)
    for group in groups:
        total = sum(f.file_size_in_bytes for f in group)
        assert total <= target or len(group) == 1  # a file larger than the target stays alone
    # First fit decreasing: no two groups could have been one.
    fillings = sorted(sum(f.file_size_in_bytes for f in g) for g in groups)
    if len(fillings) >= 2:
        assert fillings[0] + fillings[1] > target


@dataclass
class TablePolicy:
    """The shape of maint-policy's per-table policy (``MaintenanceConfig.for_table``)."""

    target_file_size: int | str
    small_file_threshold: int | str | None = None
    min_files: int = 2


@dataclass
class Maintenance:
    policy: TablePolicy

    def for_table(self, full_name: str) -> TablePolicy:
        return self.policy


def test_policy_comes_from_the_argument_then_the_config_then_the_default() -> None:
    assert compaction_policy(None, "d.z.t", None).target_file_size == DEFAULT_TARGET_FILE_SIZE
    assert compaction_policy(object(), "d.z.t", None).threshold == DEFAULT_TARGET_FILE_SIZE * 3 // 4
    configured = Maintenance(TablePolicy("64MB", "10MB", min_files=5))
    policy = compaction_policy(configured, "d.z.t", None)
    # An explicit compaction takes every partition with two small files; maintain all passes the
    # policy's min_files (it decides what is due by it).
    assert (policy.target_file_size, policy.threshold, policy.min_files) == (64 << 20, 10 << 20, 2)
    due = compaction_policy(configured, "d.z.t", None, min_files=5)
    assert due.min_files == 5
    explicit = compaction_policy(configured, "d.z.t", 1 << 20)
    assert (explicit.target_file_size, explicit.threshold, explicit.min_files) == (1 << 20, 3 << 18, 2)
    with pytest.raises(MaintenanceOptionError, match="must be positive"):
        compaction_policy(None, "d.z.t", 0)
