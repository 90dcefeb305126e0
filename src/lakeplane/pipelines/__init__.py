"""Pipelines: SQL models and the nightly run that chains ingest and models."""
