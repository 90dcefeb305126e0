"""Ingest: raw batches parsed against a declared schema into a processed table, bad records quarantined."""

from lakeplane.ingest.step import IngestResult, ingest_dataset

__all__ = ["IngestResult", "ingest_dataset"]
