"""The compute of one lake: which engine runs a job, sized how, and checked for what it needs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from lakeplane.config import LakeConfig
from lakeplane.engines.base import Capability, Engine, EngineSession, JobSpec, get_engine
from lakeplane.engines.cancel import join_current_scope
from lakeplane.engines.placement import Placement, place
from lakeplane.storage import LakeStorage

if TYPE_CHECKING:
    from lakeplane.compute.scaling import ScalingModel

#: The engine that parses raw files and evaluates quality rules: embedded, always at hand.
EMBEDDED = "duckdb"


class Compute:
    """Engines configured from ``lakeplane.yaml``; every session is opened for one job.

    Args:
        config: the lake's configuration.
        storage: the lake's storage, which engines read and write.
        project_dir: the project folder (a relative ``engine.temp_dir`` is below it).
        state_dir: lakeplane's state folder (default spill folders are below it).
    """

    def __init__(self, config: LakeConfig, storage: LakeStorage, project_dir: Path, state_dir: Path) -> None:
        self.config = config
        self.storage = storage
        self.project_dir = project_dir
        self.state_dir = state_dir

    def engine(self, name: str | None = None, master: str | None = None) -> Engine:
        """The engine ``name`` (default: the configured one; ``auto`` means DuckDB until a job's
        input is known), configured from lakeplane.yaml; ``master`` overrides ``spark.master``."""
        kind = get_engine(name or place(self.config, None).engine)
        if kind.name == "spark":
            spark = self.config.spark
            return kind(self.storage, spark.model_copy(update={"master": master}) if master else spark)
        return kind(self.storage, self.config.engine)

    def job(self, name: str, record_spill: bool = False) -> JobSpec:
        """What job ``name`` may use: the configured memory limit, threads and spill folder."""
        engine = self.config.engine
        temp = Path(engine.temp_dir) if engine.temp_dir else self.state_dir / "tmp"
        if not temp.is_absolute():
            temp = self.project_dir / temp
        return JobSpec(name, engine.memory_limit, engine.threads, temp, record_spill)

    def place(self, input_bytes: int | None, fits: Mapping[str, ScalingModel] | None = None) -> Placement:
        """Where a job reading ``input_bytes`` runs under this lake's config, and why; ``fits`` are
        the job's scaling models by engine, which placing by cost predicts its time with."""
        return place(self.config, input_bytes, self.project_dir, fits)

    def placed_engine(self, placement: Placement) -> Engine:
        """The engine of ``placement``, with its Spark shape as the master."""
        return self.engine(placement.engine, placement.shape if placement.engine == "spark" else None)

    def session(
        self, engine: Engine, job: str, needs: Iterable[Capability] = (), record_spill: bool = False
    ) -> EngineSession:
        """A session of ``engine`` for ``job``, after checking that it can do what the job ``needs``;
        with ``record_spill``, one that records what its statements spill (a pipeline step's).

        Raises:
            EngineError: the engine lacks a capability the job needs; nothing has started.
        """
        engine.require(needs, job)
        session = engine.session(self.job(job, record_spill))
        join_current_scope(session)  # a client's cancel or hang-up interrupts it
        return session

    def embedded(
        self, job: str, needs: Iterable[Capability] = (), record_spill: bool = False
    ) -> EngineSession:
        """A session of the embedded engine, which parses raw files and evaluates quality rules."""
        return self.session(self.engine(EMBEDDED), job, needs, record_spill)
