"""Iceberg ``replace`` snapshots, which pyiceberg 0.12 has no public way to make.

A ``replace`` snapshot changes how the table's rows are stored but not the rows: compaction swaps
small data files for fewer large ones holding the same rows, a manifest rewrite regroups the entries
of the same data files. Readers and snapshot expiry treat it so (Iceberg's spec: "data and delete
files were added and removed without changing table data").

pyiceberg's snapshot producers (``table.transaction().update_snapshot()``) offer ``fast_append``,
``overwrite`` and ``delete`` only. The two producers here build on its own producer classes, whose
manifest writing, manifest-list writing and clean-up of uncommitted manifests they reuse, and change
only what differs: the operation recorded, and (for manifests) which manifests the snapshot lists.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from pyiceberg.manifest import ManifestContent, ManifestEntry, ManifestEntryStatus, ManifestFile
from pyiceberg.table import Transaction
from pyiceberg.table.refs import MAIN_BRANCH
from pyiceberg.table.snapshots import Operation, Summary
from pyiceberg.table.update.snapshot import _OverwriteFiles, _SnapshotProducer
from pyiceberg.typedef import EMPTY_DICT

#: At most this many data file entries per rewritten manifest (Iceberg's default target manifest
#: size, 8 MB, holds roughly this many entries of a table with a few dozen columns).
ENTRIES_PER_MANIFEST = 20_000


def _as_replace(summary: Summary) -> Summary:
    """``summary`` (totals already carried over from the parent) as a ``replace`` snapshot's."""
    return Summary(operation=Operation.REPLACE, **summary.additional_properties)


class ReplaceFiles(_OverwriteFiles):
    """Deletes the data files given to :meth:`delete_data_file` and adds those given to
    :meth:`append_data_file`, in one ``replace`` snapshot of ``branch``.

    Every deleted file must still be live in the branch's head when the snapshot is planned
    (pyiceberg raises ``ValidationException`` otherwise), so a commit planned again after another
    writer landed never drops a file that writer removed.
    """

    def __init__(
        self,
        transaction: Transaction,
        snapshot_properties: Mapping[str, str] = EMPTY_DICT,
        branch: str = MAIN_BRANCH,
    ) -> None:
        super().__init__(
            operation=Operation.REPLACE,
            transaction=transaction,
            io=transaction._table.io,
            snapshot_properties=dict(snapshot_properties),
            branch=branch,
        )

    def _summary(self, snapshot_properties: dict[str, str] = EMPTY_DICT) -> Summary:
        # pyiceberg carries the table's totals over only for the operations it makes itself: the
        # totals of a replace are computed as an overwrite's (same files in and out), then renamed.
        self._operation = Operation.OVERWRITE
        try:
            return _as_replace(super()._summary(snapshot_properties))
        finally:
            self._operation = Operation.REPLACE


class RewriteManifests(_SnapshotProducer["RewriteManifests"]):
    """The branch head's live data file entries, regrouped into few manifests sorted by partition,
    as one ``replace`` snapshot that adds and deletes no data file.

    Entries keep their status ``EXISTING``, the snapshot that added them and their sequence numbers,
    so time travel, incremental reads and expiry see the same history. Manifests of delete files are
    kept as they are.
    """

    def __init__(
        self,
        transaction: Transaction,
        snapshot_properties: Mapping[str, str] = EMPTY_DICT,
        branch: str = MAIN_BRANCH,
        entries_per_manifest: int = ENTRIES_PER_MANIFEST,
    ) -> None:
        super().__init__(
            operation=Operation.REPLACE,
            transaction=transaction,
            io=transaction._table.io,
            snapshot_properties=dict(snapshot_properties),
            branch=branch,
        )
        self.entries_per_manifest = entries_per_manifest
        #: How many manifests the head listed, and how many this snapshot lists.
        self.manifests_before = 0
        self.manifests_after = 0

    def _deleted_entries(self) -> list[ManifestEntry]:
        return []

    def _existing_manifests(self) -> list[ManifestFile]:
        head = self._transaction.table_metadata.snapshot_by_name(self._target_branch)
        if head is None:
            return []
        manifests = head.manifests(io=self._io)
        self.manifests_before = len(manifests)
        kept = [m for m in manifests if m.content != ManifestContent.DATA]
        by_spec: dict[int, list[ManifestEntry]] = defaultdict(list)
        for manifest in manifests:
            if manifest.content == ManifestContent.DATA:
                by_spec[manifest.partition_spec_id] += manifest.fetch_manifest_entry(
                    self._io, discard_deleted=True
                )
        written = [
            manifest
            for spec_id, entries in sorted(by_spec.items())
            for manifest in self._write(spec_id, sorted(entries, key=_partition_order))
        ]
        self.manifests_after = len(written) + len(kept)
        return written + kept

    def _write(self, spec_id: int, entries: list[ManifestEntry]) -> Iterable[ManifestFile]:
        for start in range(0, len(entries), self.entries_per_manifest):
            with self.new_manifest_writer(self.spec(spec_id)) as writer:
                for entry in entries[start : start + self.entries_per_manifest]:
                    writer.add_entry(
                        ManifestEntry.from_args(
                            status=ManifestEntryStatus.EXISTING,
                            snapshot_id=entry.snapshot_id,
                            sequence_number=entry.sequence_number,
                            file_sequence_number=entry.file_sequence_number,
                            data_file=entry.data_file,
                        )
                    )
            yield writer.to_manifest_file()

    def _summary(self, snapshot_properties: dict[str, str] = EMPTY_DICT) -> Summary:
        self._operation = Operation.OVERWRITE  # see ReplaceFiles._summary: nothing is added or removed
        try:
            return _as_replace(super()._summary(snapshot_properties))
        finally:
            self._operation = Operation.REPLACE


def _partition_order(entry: ManifestEntry) -> tuple[str, str]:
    """Entries of one partition next to each other (NULLs first), then by path."""
    partition = entry.data_file.partition
    values = [partition[i] for i in range(len(partition))]
    return repr(tuple((v is not None, str(v)) for v in values)), entry.data_file.file_path
