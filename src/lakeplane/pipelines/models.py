"""SQL models: ``models/<zone>/<table>.sql`` files that build processed and curated tables.

A model starts with a header of ``-- key: value`` comment lines::

    -- materialized: overwrite_partitions   # or append, merge
    -- partition_by: [ds]
    -- unique_key: [campaign_id, ds]        # merge only
    -- hot_key: [campaign_id]               # on Spark: a skewed key, aggregated in two salted phases
    -- domain: adtech                       # default: the project's name
    -- quality: quality/daily_stats.dqdl    # the model's gate: a DQDL file, relative to the project
    -- quality_blocking: true               # false: evaluate and record the rules, publish anyway

and then one SELECT, which may use ``:ds`` for the business date. ``overwrite_partitions`` replaces
the partitions the result holds (re-running a day gives the same table), ``append`` adds rows,
``merge`` replaces rows whose key matches and keeps the rest (a merge with no rows commits nothing).

A model's quality gate belongs to the model: however it runs (``lakeplane run --ds``, a pipeline
step, a backfill, a redrive) its output is written to an audit branch, checked, and published only
if the gate passes (:mod:`lakeplane.pipelines.gate`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from functools import lru_cache
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pyiceberg.expressions import BooleanExpression
from pyiceberg.table import Table
from sqlglot import exp

from lakeplane.catalog import LakeCatalog, TableRef
from lakeplane.catalog.scan import plan_scan
from lakeplane.catalog.writer import TableWriter, WriteResult, new_write_dir, partition_filter
from lakeplane.documents import load_document, sql_header
from lakeplane.engines.base import EngineSession
from lakeplane.errors import LakeplaneError, ModelError, TableNotFoundError
from lakeplane.pipelines.bookmarks import DS_KEY, INPUTS_KEY, MODEL_KEY
from lakeplane.pipelines.gate import Gate, write_audit_publish
from lakeplane.query.compiler import Compiler, referenced_tables
from lakeplane.storage import Zone

MODEL_ZONES = (Zone.PROCESSED.value, Zone.CURATED.value)
MODEL_SHA_KEY = "lakeplane.model-sha"
#: Why a merge model's run committed nothing.
EMPTY_MERGE = "empty merge: nothing to change"
#: Why a model's run committed nothing: no rows, and none to replace.
EMPTY_RESULT = "empty result: nothing to publish"


class ModelHeader(BaseModel):
    """The settings a model's header may carry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    materialized: Literal["append", "overwrite_partitions", "merge"] = "overwrite_partitions"
    partition_by: list[str] = []
    unique_key: list[str] = []
    hot_key: list[str] = []
    domain: str | None = None
    description: str | None = None
    quality: str | None = None
    quality_blocking: bool = True


@dataclass(frozen=True)
class Model:
    """One SQL model file."""

    path: Path
    ref: TableRef
    header: ModelHeader
    sql: str
    depends_on: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return str(self.ref)

    @property
    def sha(self) -> str:
        """A digest of the model file: a changed model is not the one a bookmark ran."""
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


@dataclass
class ModelResult:
    """What running one model wrote."""

    model: str
    rows: int = 0
    files: int = 0
    bytes_written: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    #: Of ``seconds``, the time inside the engine's statements (the rest: planning, commits, Python).
    engine_seconds: float = 0.0
    #: Bytes the model's statements spilled to disk (None: the engine does not say).
    spill_bytes: int | None = None
    snapshot_id: int | None = None
    inputs: list[str] = field(default_factory=list)
    skipped: str | None = None
    quality: list[dict[str, Any]] = field(default_factory=list)
    engine: str = "duckdb"
    placement: str = ""
    stage_skew: list[dict[str, Any]] = field(default_factory=list)
    skew: str = ""
    commit_retries: int = 0
    #: The vCPUs the job held (its engine's threads, Spark's cores); 0 when it did not run.
    cores: int = 0
    #: A Spark job's executors (:class:`~lakeplane.engines.spark.usage.ExecutorUsage` as a dict).
    spark_executors: dict[str, Any] | None = None
    #: How the engine reached the lake's files (Spark on S3: ``direct`` or ``local-copy``).
    io: str | None = None


def load_model(path: Path, default_domain: str) -> Model:
    """Parse one model file.

    Raises:
        ModelError: wrong place, unknown header key, wrong value or SQL that is not a query.
    """
    zone = path.parent.name
    if zone not in MODEL_ZONES:
        raise ModelError(
            f"{path}: models live in models/processed/ or models/curated/, not {zone}/", file=str(path)
        )
    return _parse_model(path, default_domain, path.read_text(encoding="utf-8"))


@lru_cache(maxsize=512)
def _parse_model(path: Path, default_domain: str, text: str) -> Model:
    """The model of ``text`` at ``path`` (parsed once per text: every nightly run lists the models)."""
    zone = path.parent.name
    parsed = load_document(
        sql_header(text), ModelHeader, source=str(path), error=ModelError, unknown_key="unknown header key"
    )
    if parsed.materialized == "merge" and not parsed.unique_key:
        raise ModelError(f"{path}: materialized: merge needs unique_key", file=str(path), key="unique_key")
    if "quality_blocking" in parsed.model_fields_set and not parsed.quality:
        raise ModelError(
            f"{path}: quality_blocking needs quality (the DQDL file of the model's gate)",
            file=str(path),
            key="quality_blocking",
        )
    ref = TableRef(parsed.domain or default_domain, zone, path.stem)
    try:
        depends = tuple(referenced_tables(text))
    except LakeplaneError as exc:
        raise ModelError(f"{path}: {exc}", file=str(path)) from None
    return Model(path, ref, parsed, text, depends)


def discover_models(models_dir: Path, default_domain: str) -> list[Model]:
    """Every model below ``models_dir``, ordered so each runs after the models it reads.

    A bare table name in a model's SQL that is the name of exactly one model's table stands for
    that table, so ``FROM daily_campaign_stats`` orders the model after the one building it.
    """
    models = [load_model(p, default_domain) for p in sorted(models_dir.glob("*/*.sql"))]
    targets: dict[str, list[str]] = {}
    for model in models:
        targets.setdefault(model.ref.name, []).append(model.name)
    models = [replace(m, depends_on=tuple(_model_target(d, targets) for d in m.depends_on)) for m in models]
    by_name = {m.name: m for m in models}
    graph: dict[str, set[str]] = {}
    for model in models:
        deps = {qualify(d, model.ref.domain) for d in model.depends_on}
        graph[model.name] = {d for d in deps if d in by_name and d != model.name}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise ModelError(
            f"models depend on each other in a cycle: {' -> '.join(exc.args[1])}", cycle=list(exc.args[1])
        ) from None
    return [by_name[name] for name in order]


def qualify(name: str, domain: str) -> str:
    """``zone.table`` → ``domain.zone.table``; full names stay as they are."""
    return f"{domain}.{name}" if name.count(".") == 1 else name


def _model_target(name: str, targets: dict[str, list[str]]) -> str:
    """``name`` as written, or the full name of the one model table a bare ``name`` is."""
    found = targets.get(name, []) if "." not in name else []
    return found[0] if len(found) == 1 else name


def resolve_input(catalog: LakeCatalog, name: str, domain: str) -> str:
    """The full name of a table a model reads, written in full, as ``zone.table`` or bare.

    Raises:
        TableNotFoundError: no such table, or a bare name several tables have.
    """
    full = str(catalog.resolve(name, domain))
    catalog.load(full)
    return full


def run_model(
    session: EngineSession,
    catalog: LakeCatalog,
    model: Model,
    ds: dt.date | None,
    compile_sql: Compiler,
    gate: Gate | None = None,
    fingerprint: str | None = None,
) -> ModelResult:
    """Run ``model`` for business date ``ds`` and commit its output in one Iceberg commit.

    ``compile_sql`` is the query compiler; a governed lake passes one that secures the SQL for the
    pipeline's principal. With a ``gate`` the output is written, audited and published
    (:mod:`lakeplane.pipelines.gate`): main moves only if every blocking rule passes.
    """
    started = time.perf_counter()
    result = ModelResult(model.name)

    def resolve(name: str) -> str:
        return resolve_input(catalog, name, model.ref.domain)

    compiled = compile_sql(model.sql, resolve, params={"ds": ds})
    for binding in compiled.tables:
        source = plan_scan(catalog, binding.table, binding.row_filter)
        session.register_scan(binding.alias, source)
        result.bytes_read += source.bytes
        result.inputs.append(binding.table)
    upstream = input_snapshots(catalog, result.inputs)
    writer = TableWriter(catalog)
    header = model.header
    schema = session.result_schema(compiled.sql)
    table = writer.ensure_table(model.ref, schema, header.partition_by)
    sql = writer.conforming_select(table, compiled.sql, schema.names, session.dialect)
    mode: Literal["append", "overwrite_partitions", "replace"] = (
        "append" if header.materialized == "append" else "overwrite_partitions"
    )
    replace_filter = None
    read_at: dict[str, int | None] = {}  # a merge's rows come from the table: commit only onto what it read
    if header.materialized == "merge":
        head = catalog.load(model.name).current_snapshot()
        read_at["read_at"] = head.snapshot_id if head else None
        merge = _merge_sql(session, catalog, model, sql)
        if merge is None:  # no new rows: the table stays as it is, not rewritten to itself
            return _unchanged(result, table, EMPTY_MERGE, started)
        sql, mode, replace_filter = merge
    files = session.write_parquet(sql, new_write_dir(model.ref), header.partition_by, writer.field_ids(table))
    if not files.paths and _commits_nothing(mode, replace_filter, table):
        # No rows and nothing they replace: main stays as it is, so there is nothing to audit.
        return _unchanged(result, table, EMPTY_RESULT, started)
    # The bookmark, in the same commit as the output: the upstream snapshots read and the SQL run.
    properties = {
        MODEL_KEY: model.name,
        DS_KEY: ds.isoformat() if ds else "",
        INPUTS_KEY: json.dumps(upstream, sort_keys=True),
        MODEL_SHA_KEY: fingerprint or model.sha,
    }

    def commit(branch: str | None) -> WriteResult:
        return writer.commit(
            table,
            files.paths,
            mode,
            files.rows,
            files.bytes,
            replace_filter=replace_filter,
            properties=properties,
            branch=branch,
            **read_at,
        )

    if gate is None:
        written = commit(None)
    else:
        written, result.quality = write_audit_publish(table, commit, gate, retry=catalog.commit_retry)
    result.commit_retries = written.commit_retries
    result.rows, result.files = written.rows, written.files
    result.bytes_written, result.snapshot_id = written.bytes, written.snapshot_id
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _commits_nothing(
    mode: Literal["append", "overwrite_partitions", "replace"],
    replace_filter: BooleanExpression | None,
    table: Table,
) -> bool:
    """Whether committing no files would change nothing (as :meth:`TableWriter.commit` decides):
    appending nothing, or overwriting the partitions of a result that holds none. ``replace``, an
    overwrite of an unpartitioned table and a ``replace_filter`` all remove rows: those commit."""
    if mode == "append":
        return True
    return mode == "overwrite_partitions" and replace_filter is None and bool(table.spec().fields)


def _unchanged(result: ModelResult, table: Table, why: str, started: float) -> ModelResult:
    """``result`` for a run that committed nothing: main's head, and why."""
    head = table.current_snapshot()
    result.snapshot_id = head.snapshot_id if head else None
    result.skipped = why
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def input_snapshots(catalog: LakeCatalog, tables: list[str]) -> dict[str, int]:
    """The current snapshot of each table read (tables without one are left out)."""
    found = {}
    for name in sorted(set(tables)):
        snapshot = catalog.load(name).current_snapshot()
        if snapshot is not None:
            found[name] = snapshot.snapshot_id
    return found


def unchanged_since(catalog: LakeCatalog, model: Model, ds: dt.date, fingerprint: str) -> int | None:
    """The snapshot that published ``model`` for ``ds`` from the same upstream snapshots and the
    same ``fingerprint`` (the model's SQL, and the policy it ran under) as now, if there is one:
    running again would change nothing."""
    from lakeplane.pipelines.bookmarks import bookmarks

    if not model.depends_on or not catalog.table_exists(model.ref):
        return None
    table = catalog.load(model.name)
    done = bookmarks(table).get(ds.isoformat())
    if done is None or done.model != model.name or not done.inputs:
        return None
    snapshot = table.snapshot_by_id(done.snapshot_id)
    summary = snapshot.summary.additional_properties if snapshot and snapshot.summary else {}
    present = []
    for name in model.depends_on:
        try:
            present.append(resolve_input(catalog, name, model.ref.domain))
        except TableNotFoundError:
            continue
    same = done.inputs == input_snapshots(catalog, present)
    return done.snapshot_id if same and summary.get(MODEL_SHA_KEY) == fingerprint else None


def _merge_sql(
    session: EngineSession, catalog: LakeCatalog, model: Model, new_rows_sql: str
) -> tuple[str, Literal["overwrite_partitions", "replace"], BooleanExpression | None] | None:
    """The rows a merge leaves in the partitions it touches, and the filter of those partitions;
    None when the model's result is empty (there is nothing to merge).

    The new rows are staged once (the engine spills them if needed). A partitioned table rewrites
    only the partitions holding new rows or old rows whose key matches (a key that moved partition
    leaves its old one too); an unpartitioned one is rewritten whole.
    """
    keys, parts, dialect = model.header.unique_key, model.header.partition_by, session.dialect
    session.stage("__merge_new", new_rows_sql)
    distinct_keys = exp.select(*(_col(None, k) for k in keys)).distinct().from_("__merge_new")
    counts = exp.select(
        exp.select("count(*)").from_("__merge_new").subquery(),
        exp.select("count(*)").from_(distinct_keys.subquery("k")).subquery(),
    )
    total, distinct = session.execute(counts.sql(dialect))[0]
    if total == 0:
        return None
    if total != distinct:
        raise ModelError(
            f"{model.path}: merge key ({', '.join(keys)}) is not unique in the "
            f"model's result ({total - distinct} duplicate rows)",
            key=keys,
        )
    session.register_scan("__merge_old", plan_scan(catalog, model.name))
    matched = exp.Exists(
        this=exp.select("1")
        .from_("__merge_new AS n")
        .where(exp.and_(*(exp.NullSafeEQ(this=_col("o", k), expression=_col("n", k)) for k in keys)))
    )
    new_rows = exp.select("*").from_("__merge_new")
    kept = exp.select("o.*").from_("__merge_old AS o").where(exp.not_(matched))
    if not parts:
        return exp.union(new_rows, kept, distinct=False).sql(dialect), "replace", None
    touched_sql = exp.union(
        exp.select(*(_col(None, p) for p in parts)).distinct().from_("__merge_new"),
        exp.select(*(_col("o", p) for p in parts)).distinct().from_("__merge_old AS o").where(matched),
    )
    session.stage("__merge_touched", touched_sql.sql(dialect))
    touched = [
        dict(zip(parts, ("NULL" if v is None else str(v) for v in row), strict=True))
        for row in session.execute(exp.select("*").from_("__merge_touched").sql(dialect))
    ]
    in_touched = exp.In(
        this=exp.Tuple(expressions=[_col("o", p) for p in parts]),
        query=exp.select("*").from_("__merge_touched").subquery(),
    )
    sql = exp.union(new_rows, kept.where(in_touched), distinct=False).sql(dialect)
    return sql, "overwrite_partitions", partition_filter(touched, catalog.load(model.name))


def _col(table: str | None, name: str) -> exp.Column:
    return exp.column(name, table=table, quoted=True)
