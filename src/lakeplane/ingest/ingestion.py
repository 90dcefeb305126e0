"""Landing partner files in the raw zone and ingesting them into processed tables."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from lakeplane.catalog import LakeCatalog, TableRef
from lakeplane.config import DatasetConfig, LakeConfig
from lakeplane.engines.base import Capability
from lakeplane.engines.compute import Compute
from lakeplane.errors import ConfigError, IngestError, did_you_mean
from lakeplane.ingest.step import IngestResult, ingest_dataset
from lakeplane.lineage.edges import RAW_PREFIX
from lakeplane.lineage.recorder import LineageRecorder
from lakeplane.pipelines.bookmarks import Bookmark, bookmarks
from lakeplane.storage.raw import LandResult, RawBatch, RawZone, check_partner_file

Progress = Callable[[str], None]


class Ingestion:
    """The datasets of a project: landed as raw batches, ingested once per batch set and day.

    Args:
        config: the lake's configuration (its ``datasets`` and ``ingest`` sections).
        config_file: the file that declares the datasets, named in errors.
        raw: the raw zone.
        catalog: the lake's catalog.
        compute: engines (ingest parses on the embedded engine).
    """

    def __init__(
        self, config: LakeConfig, config_file: Path, raw: RawZone, catalog: LakeCatalog, compute: Compute
    ) -> None:
        self.config = config
        self.config_file = config_file
        self.raw = raw
        self.catalog = catalog
        self.compute = compute
        #: Keeps each commit's column lineage and sends the steps' OpenLineage events.
        self.lineage = LineageRecorder(config, config_file.parent, catalog)

    def dataset(self, name: str) -> DatasetConfig:
        """The declaration of dataset ``name``.

        Raises:
            ConfigError: no dataset of that name (with the closest one, and the file).
        """
        if name not in self.config.datasets:
            known = list(self.config.datasets)
            raise ConfigError(
                f"unknown dataset '{name}'{did_you_mean(name, known)} "
                f"(declared in {self.config_file}: {', '.join(known) or 'none'})",
                file=str(self.config_file),
                key=f"datasets.{name}",
            )
        return self.config.datasets[name]

    def land(
        self,
        dataset: str,
        files: Sequence[str | os.PathLike[str]],
        ingest_date: dt.date | None = None,
        progress: Progress | None = None,
    ) -> list[LandResult]:
        """Copy partner files into the raw zone for ``ingest_date`` (default today), once each.

        Every file is read to its end first: if one is missing, empty or not whole, none is landed.
        """
        self.dataset(dataset)
        day = ingest_date or dt.date.today()
        checked = [check_partner_file(Path(file)) for file in files]
        results = []
        for file, partner_file in zip(files, checked, strict=True):
            results.append(self.raw.land(dataset, partner_file, day))
            if progress:
                progress(str(file))
        return results

    def ingest(
        self, dataset: str, ds: dt.date, batches: list[RawBatch] | None = None, force: bool = False
    ) -> IngestResult:
        """Parse the batches of ``dataset`` landed for ``ds`` (or ``batches``) into its processed table.

        When exactly these batches were published for ``ds`` already (the bookmark), nothing is redone
        unless ``force``.
        """
        config = self.dataset(dataset)
        batches = self.raw.batches(dataset, ds) if batches is None else batches
        if not batches:
            raise IngestError(
                f"no batches of '{dataset}' landed for {ds.isoformat()}", dataset=dataset, ds=ds.isoformat()
            )
        done = None if force else self._bookmark(config.table, ds)
        if done is not None and set(done.batches) == {b.batch_id for b in batches}:
            return IngestResult(
                dataset=dataset,
                table=config.table,
                ds=ds.isoformat(),
                snapshot_id=done.snapshot_id,
                skipped=f"batches unchanged since snapshot {done.snapshot_id}",
            )
        job = f"ingest-{dataset.replace('/', '-')}"
        with (
            self.lineage.run(f"ingest:{dataset}", lambda: [RAW_PREFIX + dataset]) as observed,
            self.compute.embedded(job, (Capability.PARSE_RAW_FILES,), record_spill=True) as session,
        ):
            result = ingest_dataset(
                session,
                self.catalog,
                self.raw,
                dataset,
                config,
                ds,
                batches,
                self.config.ingest.max_quarantine_rate,
            )
            self.lineage.ingest_committed(observed, dataset, config.table, config.fields, result.snapshot_id)
        return result

    def _bookmark(self, table: str, ds: dt.date) -> Bookmark | None:
        if not self.catalog.table_exists(TableRef.parse(table)):
            return None
        return bookmarks(self.catalog.load(table)).get(ds.isoformat())
