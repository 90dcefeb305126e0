from __future__ import annotations

from pathlib import Path

import pytest

from lakeplane.engines import Capability, get_engine, register
from lakeplane.engines.base import _REGISTRY
from lakeplane.engines.duckdb import DuckDBEngine
from lakeplane.errors import EngineError, MissingDependencyError, UnknownNameError
from lakeplane.lake import open_lake


def test_engines_are_found_by_name_with_a_suggestion() -> None:
    assert get_engine("duckdb") is DuckDBEngine
    with pytest.raises(UnknownNameError, match="unknown engine 'duckbd'; did you mean 'duckdb'"):
        get_engine("duckbd")


def test_a_missing_library_names_the_extra() -> None:
    register("phantom", "lakeplane_phantom_engine:Engine", extra="phantom")
    with pytest.raises(MissingDependencyError, match=r"pip install 'lakeplane\[phantom\]'"):
        get_engine("phantom")


class DuckDBWithoutStaging(DuckDBEngine):
    """A real DuckDB engine that declares it cannot stage intermediate results."""

    capabilities = DuckDBEngine.capabilities - {Capability.STAGE}


class DuckDBWithoutSandbox(DuckDBEngine):
    capabilities = DuckDBEngine.capabilities - {Capability.SANDBOX}


def test_a_check_fails_for_a_capability_the_engine_lacks(tmp_path: Path) -> None:
    compute = open_lake(tmp_path).compute
    engine = compute.engine("duckdb")
    engine.require([Capability.PARSE_RAW_FILES, Capability.STAGE], "ingest")
    with pytest.raises(
        EngineError, match="engine 'duckdb' cannot run q: it cannot report per-stage task times"
    ):
        compute.session(engine, "q", [Capability.STAGE_METRICS])
    assert Capability.PARSE_RAW_FILES not in get_engine("spark").capabilities


def test_a_merge_model_is_refused_before_it_starts_on_an_engine_that_cannot_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lakeplane.yaml").write_text("name: t\n")
    (tmp_path / "models" / "curated").mkdir(parents=True)
    (tmp_path / "models" / "curated" / "latest.sql").write_text(
        "-- materialized: merge\n-- unique_key: [k]\nSELECT k FROM (VALUES ('a'), ('b')) AS t(k)\n"
    )
    (tmp_path / "models" / "curated" / "plain.sql").write_text("SELECT 1 AS k\n")
    monkeypatch.setitem(_REGISTRY, "duckdb", f"{__name__}:DuckDBWithoutStaging")
    lake = open_lake(tmp_path)
    assert lake.run_model(lake.model("curated.plain"), None).rows == 1, "a job that needs no staging runs"
    with pytest.raises(
        EngineError, match="cannot run model-latest: it cannot stage intermediate results"
    ) as caught:
        lake.run_model(lake.model("curated.latest"), None)
    assert caught.value.retryable is False
    assert [str(t) for t in lake.tables()] == ["t.curated.plain"], "nothing was created for the refused job"


def test_a_query_is_refused_on_an_engine_that_cannot_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lakeplane.yaml").write_text("name: t\n")
    monkeypatch.setitem(_REGISTRY, "duckdb", f"{__name__}:DuckDBWithoutSandbox")
    with pytest.raises(EngineError, match="cannot run query: it cannot sandbox governed queries"):
        open_lake(tmp_path).query("SELECT 1 AS one")
