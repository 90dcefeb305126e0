"""The ``Lake`` facade: the one object the CLI, the console and users' code share."""

from __future__ import annotations

import datetime as dt
import os
import resource
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.expressions import AlwaysTrue, BooleanExpression

from lakeplane.catalog import LakeCatalog, TableRef
from lakeplane.config import CONFIG_FILE, DEFAULT_CONFIG, LakeConfig, load_config
from lakeplane.engines import Engine, EngineSession, JobSpec, ScanSource, get_engine
from lakeplane.engines.duckdb import DuckDBSession
from lakeplane.engines.placement import Placement, place
from lakeplane.engines.skew import remember_skew, salting_compiler
from lakeplane.errors import AccessDenied, ConfigError, EngineError, IngestError, QueryError, did_you_mean
from lakeplane.governance.plane import Governance
from lakeplane.ingest.step import IngestResult, ingest_dataset
from lakeplane.pipelines.facade import PipelinesMixin
from lakeplane.pipelines.models import (
    Model,
    ModelResult,
    discover_models,
    qualify,
    run_model,
    unchanged_since,
)
from lakeplane.query.compiler import compile_query
from lakeplane.storage import LakeStorage, open_storage
from lakeplane.storage.raw import LandResult, RawBatch, RawZone

STATE_DIR = ".lakeplane"
Progress = Callable[[str], None]


def plan_scan(catalog: LakeCatalog, table_name: str, row_filter: BooleanExpression | None = None,
              snapshot_id: int | None = None) -> ScanSource:
    """The files an engine must read for ``table_name`` after pyiceberg's partition pruning.

    Raises:
        EngineError: the table has delete files, which engines here cannot apply.
    """
    table = catalog.load(table_name)
    schema = table.schema().as_arrow()
    if table.current_snapshot() is None and snapshot_id is None:
        return ScanSource(table_name, [], schema)
    files, size, records = [], 0, 0
    try:
        tasks = table.scan(row_filter=row_filter or AlwaysTrue(), snapshot_id=snapshot_id).plan_files()
    except ValueError:  # the filter names a column the table lacks: the engine will say so
        tasks = table.scan(snapshot_id=snapshot_id).plan_files()
    for task in tasks:
        if task.delete_files:
            raise EngineError(f"table '{table_name}' has row-level delete files; lakeplane reads "
                              "only copy-on-write tables", table=table_name)
        files.append(task.file.file_path)
        size += task.file.file_size_in_bytes
        records += task.file.record_count
    return ScanSource(table_name, files, schema, size, records)


@dataclass
class RunSummary:
    """One nightly run: each ingest and model step, with totals."""

    ds: str
    ingests: list[IngestResult] = field(default_factory=list)
    models: list[ModelResult] = field(default_factory=list)
    seconds: float = 0.0
    peak_memory_mb: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ds": self.ds,
            "seconds": self.seconds,
            "peak_memory_mb": self.peak_memory_mb,
            "read": sum(i.read for i in self.ingests),
            "accepted": sum(i.accepted for i in self.ingests),
            "quarantined": sum(i.quarantined for i in self.ingests),
            "duplicates": sum(i.duplicates for i in self.ingests),
            "bytes_read": sum(i.bytes_read for i in self.ingests),
            "bytes_written": sum(i.bytes_written for i in self.ingests)
            + sum(m.bytes_written for m in self.models),
            "ingests": [i.to_dict() for i in self.ingests],
            "models": [vars(m) for m in self.models],
        }


class Lake(PipelinesMixin):
    """A lake project: its config, storage, catalog and engines.

    Args:
        project_dir: the folder holding ``lakeplane.yaml``.
        overrides: settings that win over the file and the environment.
    """

    def __init__(self, project_dir: str | os.PathLike[str] = ".",
                 overrides: dict[str, Any] | None = None) -> None:
        self.project_dir = Path(project_dir).resolve()
        if not self.project_dir.is_dir():
            raise ConfigError(f"{self.project_dir}: no such lake project folder",
                              file=str(self.project_dir))
        self.overrides: dict[str, Any] = dict(overrides or {})
        self.config: LakeConfig = load_config(self.project_dir, overrides)
        self.state_dir = self.project_dir / STATE_DIR
        self.storage: LakeStorage = open_storage(self.config.storage, self.project_dir)
        self._catalog: LakeCatalog | None = None
        self.raw = RawZone(self.storage)
        self.governance = Governance(self.config.governance, self.project_dir, self.state_dir,
                                     lambda: self.catalog)

    @property
    def catalog(self) -> LakeCatalog:
        if self._catalog is None:
            self._catalog = LakeCatalog(self.config.catalog, self.storage, self.state_dir,
                                        self.config.storage)
        return self._catalog

    # -- engines ---------------------------------------------------------------------------
    def engine(self, name: str | None = None, master: str | None = None) -> Engine:
        """The engine ``name`` (default: the configured one; ``auto`` means DuckDB until a job's
        input is known), configured from lakeplane.yaml; ``master`` overrides ``spark.master``."""
        kind = get_engine(name or place(self.config, None).engine)
        if kind.name == "spark":
            spark = self.config.spark
            return kind(self.storage, spark.model_copy(update={"master": master}) if master else spark)
        return kind(self.storage, self.config.engine)

    def job(self, name: str) -> JobSpec:
        engine = self.config.engine
        temp = Path(engine.temp_dir) if engine.temp_dir else self.state_dir / "tmp"
        if not temp.is_absolute():
            temp = self.project_dir / temp
        return JobSpec(name=name, memory_limit=engine.memory_limit, threads=engine.threads,
                       temp_dir=temp)

    def placement(self, input_bytes: int | None) -> Placement:
        """Where a job reading ``input_bytes`` runs under this lake's config, and why."""
        return place(self.config, input_bytes)

    def _placed_engine(self, placement: Placement) -> Engine:
        return self.engine(placement.engine, placement.shape if placement.engine == "spark" else None)

    def _placed_session(self, job: str, placement: Placement) -> EngineSession:
        return self._placed_engine(placement).session(self.job(job))

    def _session(self, job: str, capability: str | None = None) -> DuckDBSession:
        """An embedded DuckDB session: ingest parsing and quality rules are DuckDB SQL."""
        engine = self.engine("duckdb")
        if capability:
            engine.require(capability, job)
        session = engine.session(self.job(job))
        assert isinstance(session, DuckDBSession)
        return session

    def _input_bytes(self, tables: Iterable[Any]) -> int:
        """Bytes of the data files planned for the given query bindings (catalog statistics)."""
        return sum(plan_scan(self.catalog, b.table, b.row_filter).bytes for b in tables)

    # -- raw zone --------------------------------------------------------------------------
    def dataset(self, name: str) -> Any:
        if name not in self.config.datasets:
            known = list(self.config.datasets)
            raise ConfigError(
                f"unknown dataset '{name}'{did_you_mean(name, known)} "
                f"(declared in {self.project_dir / CONFIG_FILE}: {', '.join(known) or 'none'})",
                file=str(self.project_dir / CONFIG_FILE), key=f"datasets.{name}",
            )
        return self.config.datasets[name]

    def land(self, dataset: str, files: Sequence[str | os.PathLike[str]],
             ingest_date: dt.date | None = None,
             progress: Progress | None = None) -> list[LandResult]:
        """Copy partner files into the raw zone for ``ingest_date`` (default today), once each."""
        self.dataset(dataset)
        day = ingest_date or dt.date.today()
        results = []
        for file in files:
            results.append(self.raw.land(dataset, Path(file), day))
            if progress:
                progress(str(file))
        return results

    # -- steps -----------------------------------------------------------------------------
    def ingest(self, dataset: str, ds: dt.date, batches: list[RawBatch] | None = None,
               force: bool = False) -> IngestResult:
        """Parse the batches of ``dataset`` landed for ``ds`` (or ``batches``) into its processed table.

        When exactly these batches were published for ``ds`` already (the bookmark), nothing is redone
        unless ``force``.
        """
        config = self.dataset(dataset)
        batches = self.raw.batches(dataset, ds) if batches is None else batches
        if not batches:
            raise IngestError(f"no batches of '{dataset}' landed for {ds.isoformat()}",
                              dataset=dataset, ds=ds.isoformat())
        done = None if force else self._bookmark(config.table, ds)
        if done is not None and set(done.batches) == {b.batch_id for b in batches}:
            return IngestResult(dataset=dataset, table=config.table, ds=ds.isoformat(),
                                    snapshot_id=done.snapshot_id,
                                    skipped=f"batches unchanged since snapshot {done.snapshot_id}")
        with self._session(f"ingest-{dataset.replace('/', '-')}", "ingest") as session:
            return ingest_dataset(session, self.catalog, self.raw, dataset, config, ds, batches,
                                  self.config.ingest.max_quarantine_rate)

    def _bookmark(self, table: str, ds: dt.date) -> Any:
        from lakeplane.pipelines.bookmarks import bookmarks

        if not self.catalog.table_exists(TableRef.parse(table)):
            return None
        return bookmarks(self.catalog.load(table)).get(ds.isoformat())

    def models(self) -> list[Model]:
        return discover_models(self.project_dir / self.config.models_dir, self.config.name)

    def model(self, name: str) -> Model:
        """The model that builds table ``name`` (``zone.table`` or ``domain.zone.table``)."""
        models = {m.name: m for m in self.models()}
        full = qualify(name, self.config.name)
        if full not in models:
            raise ConfigError(f"no model builds '{name}'{did_you_mean(full, models)}", key=name)
        return models[full]

    def run_model(self, model: Model, ds: dt.date | None, quality: str | None = None,
                  blocking: bool = True, force: bool = False) -> ModelResult:
        """Run one model; in a governed lake, as the pipeline principal and only where it may write.

        With ``quality`` (a DQDL ruleset file, relative to the project) the output is written to an
        audit branch and published only if the ruleset's rules pass (all of them when ``blocking``).
        """
        fingerprint = model.sha + (f":{self.governance.policy().digest}" if self.governance.enabled else "")
        done = None if force or ds is None else unchanged_since(self.catalog, model, ds, fingerprint)
        if done is not None:  # the bookmark: same upstream snapshots, same SQL
            return ModelResult(model.name, snapshot_id=done,
                               skipped=f"inputs unchanged since snapshot {done}")
        gate = self._quality_gate(quality, ds, blocking) if quality else None
        placement = self.model_placement(model, ds)
        engine = self._placed_engine(placement)
        compile_sql: Any = partial(compile_query, read="duckdb", write=engine.dialect)
        if self.governance.enabled:
            principal = self.config.governance.pipeline_principal
            self._require_insert(principal, model.name)

            def compile_sql(sql: str, resolve: Any, params: dict[str, Any]) -> Any:
                return self.governance.compile(sql, principal, resolve, read="duckdb",
                                               write=engine.dialect, params=params)

        salting: list[str] = []
        if engine.name == "spark":
            compile_sql = salting_compiler(self.catalog, model, compile_sql, self.config.spark.skew, salting)
        with engine.session(self.job(f"model-{model.ref.name}")) as session:
            result = run_model(session, self.catalog, model, ds, compile_sql, gate, fingerprint)
            result.engine, result.placement = placement.shape, placement.reason
            result.stage_skew = [stage.to_dict() for stage in session.stage_skew()]
        result.skew = "; ".join(salting)
        if engine.name == "spark":
            remember_skew(self.catalog, model, result, self.config.spark.skew)
        return result

    def model_placement(self, model: Model, ds: dt.date | None) -> Placement:
        """Where ``model`` runs for ``ds``: by config, or (``auto``) by the bytes it would read."""
        if self.config.engine.type != "auto":
            return self.placement(None)

        def resolve(name: str) -> str:
            return self.resolve_table(qualify(name, model.ref.domain))

        compiled = compile_query(model.sql, resolve, read="duckdb", params={"ds": ds})
        return self.placement(self._input_bytes(compiled.tables))

    def _quality_gate(self, ruleset: str, ds: dt.date | None, blocking: bool) -> Any:
        def gate(table: str, snapshot_id: int) -> list[dict[str, Any]]:
            outcomes = self.dq_check(table, ruleset, ds=ds, snapshot_id=snapshot_id, only_ds=True)
            return [{**o, "blocking": blocking} for o in outcomes]

        return gate

    def _require_insert(self, principal: str, table: str) -> None:
        from lakeplane.governance.access import may

        who = self.governance.principal(principal)
        if not may(self.governance.policy(), who, "INSERT", table):
            raise AccessDenied(f"principal '{principal}' may not write table {table} (no INSERT grant)",
                               principal=principal, table=table, column=None)

    def run(self, ds: dt.date, progress: Progress | None = None, force: bool = False) -> RunSummary:
        """The nightly run for ``ds``: ingest every dataset with batches that day, then every model.

        Days whose batches were published already are skipped unless ``force``.
        """
        started = time.perf_counter()
        summary = RunSummary(ds.isoformat())
        models = self.models()
        for name in self.config.datasets:
            if batches := self.raw.batches(name, ds):
                if progress:
                    progress(f"ingest {name}")
                summary.ingests.append(self.ingest(name, ds, batches, force=force))
        for model in models:
            if progress:
                progress(f"model {model.name}")
            missing = [name for name in (qualify(d, model.ref.domain) for d in model.depends_on)
                       if not self.catalog.table_exists(TableRef.parse(name))]
            if missing:  # its domain's data has not arrived yet: nothing to build from
                summary.models.append(ModelResult(model.name, skipped=f"no table {', '.join(missing)} yet"))
                continue
            summary.models.append(self.run_model(model, ds, force=force))
        summary.seconds = round(time.perf_counter() - started, 3)
        summary.peak_memory_mb = peak_memory_mb()
        return summary

    # -- data quality ----------------------------------------------------------------------
    def dq_check(self, table: str, ruleset: str | os.PathLike[str], *, ds: dt.date | None = None,
                 snapshot_id: int | None = None, references: dict[str, str] | None = None,
                 now: dt.datetime | None = None, record: bool = True,
                 only_ds: bool = False) -> list[dict[str, Any]]:
        """Evaluate the DQDL ruleset file ``ruleset`` on ``table``: one dict per rule, in order.

        Args:
            table: the table under test (``zone.table`` uses the project's domain).
            ruleset: a DQDL file; a relative path is read from the project folder.
            ds: the business date checked; it stamps the metrics kept for dynamic rules, which
                compare with earlier dates only. Default: now.
            snapshot_id: check this snapshot (an audit branch's) instead of the current one.
            references: the ruleset's dataset aliases (``RowCountMatch "reference"``) to lake tables;
                the ruleset's ``DataSources`` supplies the others.
            now: the evaluation time for ``DataFreshness``. Default: the current time.
            record: keep this evaluation's metrics as history for dynamic rules.
            only_ds: check only the rows of business date ``ds`` (what a step just wrote).

        Raises:
            DQDLError: the ruleset does not parse or names an unknown reference.
        """
        from lakeplane.quality import MetricHistory, evaluate, parse

        path = Path(ruleset)
        text = (path if path.is_absolute() else self.project_dir / path).read_text(encoding="utf-8")
        rules = parse(text, source=str(ruleset))
        full = self.resolve_table(table)
        aliases = {k: v for k, v in rules.data_sources.items() if isinstance(v, str)} | (references or {})
        moment = now or dt.datetime.now(dt.UTC)
        stamp = dt.datetime.combine(ds, dt.time(), dt.UTC) if ds else moment
        history = MetricHistory(self.catalog.state_engine, full)
        with self._session(f"dq-{full.replace('.', '-')}") as session:
            scan = plan_scan(self.catalog, full, snapshot_id=snapshot_id)
            session.register_scan("dq_table", scan)
            narrow = only_ds and ds is not None and "ds" in scan.schema.names
            day = f" WHERE ds = DATE '{ds.isoformat()}'" if narrow and ds else ""
            session.execute(f"CREATE TEMP VIEW dq_primary AS SELECT * FROM dq_table{day}")
            names = {alias: f"dq_reference_{i}" for i, alias in enumerate(aliases)}
            for alias, name in aliases.items():
                session.register_scan(names[alias], plan_scan(self.catalog, self.resolve_table(name)))
            session.sandbox()
            outcomes = evaluate(rules, session, "dq_primary", names, moment, history.before(stamp))
        if record:
            history.record(outcomes, stamp)
        return [outcome.to_dict() for outcome in outcomes]

    # -- reading ---------------------------------------------------------------------------
    def resolve_table(self, name: str) -> str:
        """The full name of a table as written in SQL (``zone.table`` uses the project's domain)."""
        full = qualify(name, self.config.name)
        self.catalog.load(full)
        return full

    def query(self, sql: str, params: dict[str, Any] | None = None, *, principal: str | None = None,
              dialect: str = "duckdb") -> pa.Table:
        """Run a read-only query over lake tables and return its (small) result.

        In a governed lake (one with a policy file) ``principal`` is required: the query is compiled
        for it (grants, masks, row filters), run in a sandboxed session and audited.
        """
        return self.run_query(sql, params, principal=principal, dialect=dialect).read_all()

    def run_query(self, sql: str, params: dict[str, Any] | None = None, *, principal: str | None = None,
                  dialect: str = "duckdb") -> pa.RecordBatchReader:
        """Like :meth:`query`, streaming the result as Arrow batches."""
        governed = self.governance.enabled
        if governed and principal is None:
            raise QueryError(f"{self.governance.path.name} governs this lake: name a principal "
                             "(lakeplane query --as NAME)")

        def compile_for(write: str) -> Any:
            if governed:
                return self.governance.compile(sql, principal or "", self.resolve_table,
                                               read=dialect, write=write, params=params)
            return compile_query(sql, self.resolve_table, read=dialect, write=write, params=params)

        placement = self.placement(None)
        compiled = compile_for("duckdb" if self.config.engine.type == "auto" else
                               self.engine(placement.engine).dialect)
        if self.config.engine.type == "auto":
            placement = self.placement(self._input_bytes(compiled.tables))
            if placement.engine != "duckdb":
                compiled = compile_for(self.engine(placement.engine).dialect)
        session = self._placed_session("query", placement)
        try:
            for binding in compiled.tables:
                session.register_scan(binding.alias,
                                      plan_scan(self.catalog, binding.table, binding.row_filter))
            session.sandbox()
            table = session.arrow_reader(compiled.sql).read_all()
        except EngineError as exc:
            if not governed:
                raise
            # The secured SQL holds the hash key's material: say what failed, without it.
            raise EngineError(self.governance.shown(str(exc)), retryable=exc.retryable) from None
        finally:
            session.close()
        if governed:
            self.governance.record_allowed(compiled, principal or "", sql, table.num_rows)
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())

    # -- governance answers ------------------------------------------------------------------
    def _governed(self) -> Governance:
        if not self.governance.enabled:
            raise ConfigError(f"no {self.governance.path.name} in {self.project_dir}: governance is off",
                              file=str(self.governance.path))
        return self.governance

    def who_can_see(self, table_column: str) -> list[Any]:
        """For every principal: unmasked, masked (how) or denied on ``table.column``, and why."""
        from lakeplane.governance.answers import who_can_see

        governance = self._governed()
        table_name, _, column = table_column.rpartition(".")
        table = self.resolve_table(table_name)
        return who_can_see(governance.policy(), governance.version().bindings, table, column,
                           self.catalog.load(table).schema())

    def explain(self, sql: str, principal: str, dialect: str = "trino") -> dict[str, Any]:
        """The secured SQL that would run for ``principal``, and every decision behind it."""
        from lakeplane.governance.answers import explain

        governance = self._governed()
        secured = governance.compile(sql, principal, self.resolve_table, read=dialect,
                                     write=self.engine().dialect)
        return {"principal": principal, "policy_version": governance.version().label,
                **explain(secured, governance.shown)}

    def policy_diff(self, new_policy: str | os.PathLike[str]) -> list[Any]:
        """Who gains or loses what on which columns if ``new_policy`` replaced the current one."""
        from lakeplane.governance.answers import diff

        governance = self._governed()
        schemas = {str(ref): self.catalog.load(ref).schema() for ref in self.catalog.list_tables()}
        return diff(governance.policy(), governance.version().bindings, Path(new_policy), schemas)

    def tables(self) -> list[TableRef]:
        return self.catalog.list_tables()

    def describe(self, table: str) -> dict[str, Any]:
        return self.catalog.describe(self.resolve_table(table))


def open_lake(project: str | os.PathLike[str] | None = None,
              overrides: dict[str, Any] | None = None) -> Lake:
    """Open the lake project in ``project`` (default ``$LAKEPLANE_LAKE`` or the current folder)."""
    return Lake(project or os.environ.get("LAKEPLANE_LAKE") or ".", overrides)


def init_project(path: Path, name: str | None = None) -> Path:
    """Write a commented default ``lakeplane.yaml`` (and ``models/``) in ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    config = path / CONFIG_FILE
    if config.exists():
        raise ConfigError(f"{config} already exists", file=str(config))
    config.write_text(DEFAULT_CONFIG.format(name=name or _domain_name(path.resolve().name)))
    for zone in ("processed", "curated"):
        (path / "models" / zone).mkdir(parents=True, exist_ok=True)
    return config


def _domain_name(folder: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in folder.lower()).strip("_")
    return cleaned or "lake"


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def iter_days(start: dt.date, end: dt.date) -> Iterable[dt.date]:
    day = start
    while day <= end:
        yield day
        day += dt.timedelta(days=1)
