"""Compaction: rewrite a table's small files into few files near a target size, same rows.

What is rewritten is planned by :mod:`lakeplane.maintenance.compact_plan` (healthy partitions are
skipped). Each group of small files is read and written back as one file by the job's engine
(DuckDB, or Spark when the lake runs on it), one group at a time, so memory holds at most one group
in flight and the engine spills past its limit; the new files carry the table's field ids like every
file lakeplane writes. Then one Iceberg ``replace`` snapshot removes the old files and adds the new.

The commit requires main to be where it was planned. When another writer moved it first, the
compaction is validated again against the new head: if every file it rewrote is still live (the
other writer appended, or changed other partitions), the same new files are committed onto the new
head; if any of them was deleted or replaced, the compaction fails with
:class:`~lakeplane.errors.CommitConflictError` and its new files are deleted, leaving the table and
the lake as the other writer left them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from pyiceberg.io.pyarrow import parquet_file_to_data_file
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table

from lakeplane.catalog.catalog import LakeCatalog, TableRef
from lakeplane.catalog.commits import retry_commit, stop_pyiceberg_retries
from lakeplane.catalog.scan import file_name_mapping
from lakeplane.catalog.writer import TableWriter, new_write_dir
from lakeplane.engines.base import EngineSession, ScanSource, WrittenFiles
from lakeplane.errors import CommitConflictError, EngineError, MaintenanceOptionError
from lakeplane.maintenance.actions import MaintenanceAction, MaintenanceLog
from lakeplane.maintenance.compact_plan import (
    DEFAULT_TARGET_FILE_SIZE,
    CompactionPolicy,
    PartitionPlan,
    partition_where,
    plan_compaction,
)
from lakeplane.maintenance.snapshots import ReplaceFiles
from lakeplane.units import parse_size

logger = logging.getLogger(__name__)

#: Opens an engine session for a job, by the job's name.
OpenSession = Callable[[str], EngineSession]
#: Called with the table right before the first commit attempt (see :class:`Compactor`).
BeforeCommit = Callable[[Table], None]

#: Snapshot summary keys of a compaction commit.
REWRITTEN_KEY = "lakeplane.compacted-files"
COMPACT_SORT_KEY = "lakeplane.compact-sort-by"


def compaction_policy(
    maintenance: object | None, table: str, target_file_size: int | None, min_files: int | None = None
) -> CompactionPolicy:
    """The policy for ``table``: ``target_file_size`` when given, else the ``maintenance:`` config's
    (``maintenance`` is ``lake.config.maintenance`` where the config has that section), else
    :data:`~lakeplane.maintenance.compact_plan.DEFAULT_TARGET_FILE_SIZE`. The policy's small-file
    threshold goes with its own target: with an explicit target it is three quarters of that. A
    partition is compacted once it holds ``min_files`` small files (at least 2; ``maintain all``
    passes the policy's, an explicit compaction takes every partition with two or more).

    Raises:
        MaintenanceOptionError: the target size is not positive.
    """
    configured = getattr(maintenance, "for_table", None)
    table_policy = configured(table) if callable(configured) else None
    if target_file_size is not None:
        target, threshold = target_file_size, None
    else:
        target = _size(getattr(table_policy, "target_file_size", None)) or DEFAULT_TARGET_FILE_SIZE
        threshold = _size(getattr(table_policy, "small_file_threshold", None))
    if target <= 0:
        raise MaintenanceOptionError(
            f"{table}: --target-file-size must be positive, not {target}",
            table=table,
            option="target-file-size",
        )
    return CompactionPolicy(
        target_file_size=int(target),
        small_file_threshold=threshold,
        min_files=max(2, int(min_files)) if min_files else 2,
    )


def _size(value: object) -> int | None:
    """A size as bytes: an int, or text such as ``128MB``; None when not set."""
    if value is None or value == "":
        return None
    return parse_size(value) if isinstance(value, str) else int(value)  # type: ignore[call-overload]


class Compactor:
    """Compacts tables of one lake.

    Args:
        catalog: the lake's catalog (tables, storage, commit retry policy).
        open_session: opens a session of the job's engine.
        log: where each action is recorded (none: not recorded).
        before_commit: called once, after the new files are written and validated against main's
            head and right before the commit (tests make a concurrent writer land there).
    """

    def __init__(
        self,
        catalog: LakeCatalog,
        open_session: OpenSession,
        log: MaintenanceLog | None = None,
        before_commit: BeforeCommit | None = None,
    ) -> None:
        self.catalog = catalog
        self.open_session = open_session
        self.log = log
        self.before_commit = before_commit

    def compact(
        self,
        table_name: str,
        policy: CompactionPolicy,
        *,
        sort_by: Sequence[str] = (),
        where: str | None = None,
        dry_run: bool = False,
    ) -> MaintenanceAction:
        """Rewrite the small files of ``table_name``'s unhealthy partitions (those matching ``where``,
        a filter on partition columns), sorted by ``sort_by`` within each new file.

        Returns:
            The action: files and bytes before and after, the ``replace`` snapshot committed (none
            on a dry run or when every partition is healthy), per-partition figures in ``details``.

        Raises:
            MaintenanceOptionError: ``where`` or ``sort_by`` names something the table lacks.
            CommitConflictError: another writer deleted or replaced a file being compacted (or
                won the race more often than the catalog's ``commit_retry`` allows); nothing was
                committed and the files written for it are deleted.
        """
        action = MaintenanceAction("compact", table_name, dry_run=dry_run)
        table = self.catalog.load(table_name)
        _check_sort_columns(table, table_name, sort_by)
        row_filter = partition_where(table, where)
        action.files_before, action.bytes_before = live_totals(table)
        plans = plan_compaction(table, policy, row_filter)
        rewritten = [f for plan in plans for group in plan.groups for f in group]
        action.details = {
            "target_file_size": policy.target_file_size,
            "small_file_threshold": policy.threshold,
            "min_files": policy.min_files,
            "sort_by": list(sort_by),
            "where": where,
            "partitions": len(plans),
            "partitions_rewritten": sum(1 for p in plans if p.groups),
            "rewritten_files": len(rewritten),
            "rewritten_bytes": sum(f.file_size_in_bytes for f in rewritten),
            "partition_plans": [p.to_dict() for p in plans],
        }
        if not rewritten:
            action.skipped = (
                "no partition matches --where"
                if not plans
                else "every partition is healthy (nothing to compact)"
            )
            action.files_after, action.bytes_after = action.files_before, action.bytes_before
            return self._done(action)
        if dry_run:
            groups = sum(len(p.groups) for p in plans)
            action.files_after = action.files_before - len(rewritten) + groups
            action.bytes_after = action.bytes_before  # the rows stay; the size is known once written
            return self._done(action)
        stop_pyiceberg_retries(table, self.catalog.commit_retry)
        folders: list[str] = []
        try:
            written = self._write(table, table_name, plans, sort_by, folders)
        except BaseException:
            self._remove(folders)
            raise
        action.details["new_files"] = len(written.paths)
        action.details["new_bytes"] = written.bytes
        try:
            action.snapshot_id, retries = self._commit(table, table_name, rewritten, written, sort_by)
        except CommitConflictError:  # certainly not committed: the new files are nobody's
            self._remove(folders)
            raise
        # Any other failure of the commit (the catalog unreachable after it moved, say) may have
        # landed it: the new files stay, and `maintain orphans` removes them if nothing uses them.
        action.details["commit_retries"] = retries
        action.files_after, action.bytes_after = live_totals(table)
        return self._done(action)

    def _done(self, action: MaintenanceAction) -> MaintenanceAction:
        action.finish()
        if self.log is not None:
            self.log.record(action)
        return action

    def _write(
        self,
        table: Table,
        table_name: str,
        plans: list[PartitionPlan],
        sort_by: Sequence[str],
        folders: list[str],
    ) -> WrittenFiles:
        """Each group of each plan read and written as one new file (more when it outgrows the
        engine's own file size limit); ``folders`` collects where, as they are made."""
        ref = TableRef.parse(table_name)
        writer = TableWriter(self.catalog)
        schema = table.schema()
        mapping = file_name_mapping(table, schema)
        field_ids = writer.field_ids(table)
        written = WrittenFiles()
        with self.open_session(f"compact-{ref.name}") as session:
            for plan in plans:
                for number, group in enumerate(plan.groups):
                    alias = f"__compact_{number}"
                    source = ScanSource(
                        table_name,
                        [f.file_path for f in group],
                        schema.as_arrow(),
                        sum(f.file_size_in_bytes for f in group),
                        sum(f.record_count for f in group),
                        mapping,
                    )
                    session.register_scan(alias, source)
                    select = writer.conforming_select(
                        table, f"SELECT * FROM {session.quote(alias)}", schema.column_names, session.dialect
                    )
                    folder = new_write_dir(ref)
                    folders.append(folder)
                    files = session.write_parquet(
                        _one_sorted_file(session, select, sort_by), folder, [], field_ids
                    )
                    if files.rows != source.records:
                        raise EngineError(
                            f"{table_name}: compacting {len(group)} files of {plan.partition} wrote "
                            f"{files.rows} rows, not their {source.records}; nothing was committed",
                            table=table_name,
                            engine=session.dialect,
                        )
                    written.paths += files.paths
                    written.rows += files.rows
                    written.bytes += files.bytes
        return written

    def _commit(
        self,
        table: Table,
        table_name: str,
        rewritten: list[DataFile],
        written: WrittenFiles,
        sort_by: Sequence[str],
    ) -> tuple[int | None, int]:
        uris = [self.catalog.storage.uri(p) for p in written.paths]
        new_files: dict[int, list[DataFile]] = {}
        properties = {REWRITTEN_KEY: str(len(rewritten)), "lakeplane.rows": str(written.rows)}
        if sort_by:
            properties[COMPACT_SORT_KEY] = ",".join(sort_by)

        def attempt(retry: int) -> int | None:
            table.refresh()  # validate against the head as it is now, not as planned
            live = {task.file.file_path: task.file for task in table.scan().plan_files()}
            gone = [f.file_path for f in rewritten if f.file_path not in live]
            if gone:
                raise CommitConflictError(
                    f"compact of {table_name} conflicted: another writer deleted or replaced "
                    f"{len(gone)} of the {len(rewritten)} files being compacted (e.g. {gone[0]}); "
                    "nothing was committed and the new files were removed",
                    table=table_name,
                    operation="compact",
                    attempts=retry + 1,
                    cause=f"{gone[0]} is no longer live",
                )
            schema_id = table.metadata.current_schema_id
            if schema_id not in new_files:  # the statistics follow the schema: read again if it moved
                new_files[schema_id] = [parquet_file_to_data_file(table.io, table.metadata, u) for u in uris]
            if self.before_commit is not None and retry == 0:
                self.before_commit(table)  # validated, not yet committed: the narrowest race
            with table.transaction() as tx, ReplaceFiles(tx, properties) as replace:
                for data_file in rewritten:
                    replace.delete_data_file(live[data_file.file_path])
                for data_file in new_files[schema_id]:
                    replace.append_data_file(data_file)
            head = table.current_snapshot()
            return head.snapshot_id if head else None

        return retry_commit(attempt, table_name, "compact", self.catalog.commit_retry)

    def _remove(self, folders: list[str]) -> None:
        for folder in folders:
            try:
                self.catalog.storage.delete_folder(folder)
            except Exception:  # the original failure matters more; orphans can clean up later
                logger.warning("could not remove %s after a failed compaction", folder, exc_info=True)


def _one_sorted_file(session: EngineSession, select: str, sort_by: Sequence[str]) -> str:
    """``select`` as one file's rows (Spark otherwise writes one file per task), sorted by ``sort_by``."""
    order = ", ".join(session.quote(c) for c in sort_by)
    if session.dialect == "spark":
        single = f"SELECT * FROM (SELECT /*+ REPARTITION(1) */ * FROM ({select}) AS __rows) AS __one"
        return f"{single} SORT BY {order}" if sort_by else single
    return f"{select} ORDER BY {order}" if sort_by else select


def _check_sort_columns(table: Table, table_name: str, sort_by: Sequence[str]) -> None:
    columns = table.schema().column_names
    for column in sort_by:
        if column not in columns:
            raise MaintenanceOptionError(
                f"{table_name}: cannot sort by '{column}': no such column (columns: {', '.join(columns)})",
                table=table_name,
                option="sort-by",
                column=column,
            )


def live_totals(table: Table) -> tuple[int, int]:
    """The number and summed size of the data files in ``table``'s current snapshot."""
    head = table.current_snapshot()
    if head is None:
        return 0, 0
    summary: dict[str, Any] = dict(head.summary.additional_properties) if head.summary else {}
    if "total-data-files" in summary and "total-files-size" in summary:
        return int(summary["total-data-files"]), int(summary["total-files-size"])
    files = [task.file for task in table.scan().plan_files()]
    return len(files), sum(f.file_size_in_bytes for f in files)
