"""Engines run a job's SQL: DuckDB embedded by default; others register by name."""

from lakeplane.engines.base import (
    Capability,
    Engine,
    EngineSession,
    JobSpec,
    ScanSource,
    get_engine,
    register,
)

__all__ = ["Capability", "Engine", "EngineSession", "JobSpec", "ScanSource", "get_engine", "register"]
