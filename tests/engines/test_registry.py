from __future__ import annotations

import pytest

from lakeplane.engines import get_engine, register
from lakeplane.engines.duckdb import DuckDBEngine
from lakeplane.errors import EngineError, MissingDependencyError, UnknownNameError


def test_engines_are_found_by_name_with_a_suggestion() -> None:
    assert get_engine("duckdb") is DuckDBEngine
    with pytest.raises(UnknownNameError, match="unknown engine 'duckbd'; did you mean 'duckdb'"):
        get_engine("duckbd")


def test_a_missing_library_names_the_extra() -> None:
    register("phantom", "lakeplane_phantom_engine:Engine", extra="phantom")
    with pytest.raises(MissingDependencyError, match=r"pip install 'lakeplane\[phantom\]'"):
        get_engine("phantom")


def test_capabilities_are_checked_before_a_job(tmp_path) -> None:
    from lakeplane.lake import open_lake

    engine = open_lake(tmp_path).engine()
    engine.require("ingest", "ingest")
    with pytest.raises(EngineError, match="does not support time_travel"):
        engine.require("time_travel", "a query")
