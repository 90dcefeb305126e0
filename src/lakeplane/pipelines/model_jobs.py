"""Running SQL models as jobs: bookmarks, placement, the compile (governed, salted), and the gate.

A model's quality gate is declared in its header (``-- quality: quality/x.dqdl``); a pipeline
step may name one more ruleset (``quality:`` on a model step). :meth:`ModelJobs.run` reads and
parses every ruleset of the gate before anything else (a ruleset that does not parse fails the run
with its file and line, even on a day the bookmark would skip), folds their text into the model's
fingerprint (an edited ruleset makes a published day run again), and evaluates all of them on the
audit snapshot: main moves only if every blocking rule of every ruleset passes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lakeplane.catalog import LakeCatalog
from lakeplane.catalog.commits import retry_commit
from lakeplane.config import LakeConfig
from lakeplane.engines.base import Capability, Engine
from lakeplane.engines.compute import Compute
from lakeplane.engines.placement import Placement
from lakeplane.errors import ConfigError, DQDLError, ModelError, TableNotFoundError, did_you_mean
from lakeplane.governance.plane import Governance
from lakeplane.governance.secure import GOVERNED_REWRITES
from lakeplane.lineage.recorder import LineageRecorder
from lakeplane.lineage.store import LineageCommit
from lakeplane.pipelines.gate import Gate
from lakeplane.pipelines.models import (
    Model,
    ModelResult,
    discover_models,
    qualify,
    resolve_input,
    run_model,
    unchanged_since,
)
from lakeplane.quality.dqdl import parse
from lakeplane.query.compiler import REWRITES, CompileContext, CompiledQuery, Compiler, compile_sql
from lakeplane.query.service import Queries
from lakeplane.query.skew import SKEW_PROPERTY, salt_hot_keys

if TYPE_CHECKING:
    from lakeplane.compute.scaling import ScalingModel


class RulesetCheck(Protocol):
    """Evaluates a DQDL ruleset file on a table's snapshot: one dict per rule."""

    def __call__(
        self, table: str, ruleset: str, *, ds: dt.date | None, snapshot_id: int | None, only_ds: bool
    ) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class GateRuleset:
    """One DQDL ruleset of a model's gate, read and parsed before the model runs.

    Attributes:
        path: the file as declared, relative to the project (or absolute).
        text: its text when the run started; its digest is part of the model's fingerprint.
        blocking: a failing rule stops the publish (false: the rules are evaluated and recorded).
    """

    path: str
    text: str
    blocking: bool

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.blocking}\0{self.text}".encode()).hexdigest()[:16]


def model_fingerprint(model: Model, policy_digest: str | None, rulesets: list[GateRuleset]) -> str:
    """What a model's bookmark must match to skip a day: its SQL, the governance policy it ran under
    (governed lakes) and its gate's rulesets (text and blocking), as ``sha[:policy][:gate-digest]``."""
    parts = [model.sha, *([policy_digest] if policy_digest else [])]
    if rulesets:
        joined = "\0".join(sorted(r.digest for r in rulesets))
        parts.append("gate-" + hashlib.sha256(joined.encode()).hexdigest()[:16])
    return ":".join(parts)


class ModelJobs:
    """The project's SQL models and how each runs.

    Args:
        config: the lake's configuration.
        project_dir: the project folder (models live below ``models_dir``).
        catalog: the lake's catalog.
        compute: engines and their placement.
        governance: the lake's governance plane (models run as its pipeline principal).
        queries: what plans a query's input bytes (for ``engine.type: auto``).
        check_ruleset: evaluates a quality gate's ruleset on an audit snapshot.
        fits_for: a model's scaling models by engine (``placement.by_cost`` predicts with them).
    """

    def __init__(
        self,
        config: LakeConfig,
        project_dir: Path,
        catalog: LakeCatalog,
        compute: Compute,
        governance: Governance,
        queries: Queries,
        check_ruleset: RulesetCheck,
        fits_for: Callable[[str], Mapping[str, ScalingModel]] | None = None,
    ) -> None:
        self.config = config
        #: A model's scaling models by engine, from the run store (placing by cost uses them).
        self.fits_for = fits_for
        self.project_dir = project_dir
        self.catalog = catalog
        self.compute = compute
        self.governance = governance
        self.queries = queries
        self.check_ruleset = check_ruleset
        #: Keeps each commit's column lineage and sends the runs' OpenLineage events.
        self.lineage = LineageRecorder(config, project_dir, catalog)

    def all(self) -> list[Model]:
        """Every model of the project, each after the models it reads."""
        return discover_models(self.project_dir / self.config.models_dir, self.config.name)

    def get(self, name: str) -> Model:
        """The model that builds table ``name`` (``domain.zone.table``, ``zone.table``, or bare when
        one model's table has that name)."""
        models = {m.name: m for m in self.all()}
        bare = [m for m in models if m.rsplit(".", 1)[-1] == name] if "." not in name else []
        full = bare[0] if len(bare) == 1 else qualify(name, self.config.name)
        if full not in models:
            raise ConfigError(f"no model builds '{name}'{did_you_mean(full, models)}", key=name)
        return models[full]

    def placement(self, model: Model, ds: dt.date | None) -> Placement:
        """Where ``model`` runs for ``ds``: by config, or (``auto``) by the bytes it would read."""
        if self.config.engine.type != "auto":
            return self.compute.place(None)
        compiled = compile_query_for(model, self.catalog, ds)
        fits = self.fits_for(model.name) if self.fits_for and self.config.placement.by_cost else None
        return self.compute.place(self.queries.input_bytes(compiled.tables), fits)

    def run(
        self,
        model: Model,
        ds: dt.date | None,
        quality: str | None = None,
        blocking: bool = True,
        force: bool = False,
    ) -> ModelResult:
        """Run one model; in a governed lake, as the pipeline principal and only where it may write.

        The model's gate (its header's ``quality``) always applies; ``quality`` (a DQDL file,
        relative to the project, from a pipeline step) adds one more ruleset. With a gate the output
        is written to an audit branch and published only if every blocking rule passes (a ruleset
        named by both is evaluated once, blocking if either says so).

        Raises:
            DQDLError: a ruleset of the gate does not parse (nothing is run or written).
            ModelError: a ruleset file of the gate does not exist.
            QualityGateFailed: a blocking rule failed; main did not move.
        """
        with self.lineage.run(model.name, partial(self._inputs, model)) as observed:
            result = self._run(model, ds, quality, blocking, force)
            self.lineage.model_committed(
                observed,
                model.name,
                result.snapshot_id,
                lambda: compile_query_for(model, self.catalog, ds),
                result.quality,
                skipped=result.skipped is not None,
            )
        return result

    def _inputs(self, model: Model) -> list[str]:
        """The tables ``model`` reads that exist, by full name."""
        found = []
        for name in model.depends_on:
            try:
                found.append(resolve_input(self.catalog, name, model.ref.domain))
            except TableNotFoundError:
                continue
        return found

    def _run(
        self, model: Model, ds: dt.date | None, quality: str | None, blocking: bool, force: bool
    ) -> ModelResult:
        rulesets = self.gate_rulesets(model, quality, blocking)
        governed = self.governance.enabled
        policy = self.governance.policy().digest if governed else None
        fingerprint = model_fingerprint(model, policy, rulesets)
        done = None if force or ds is None else unchanged_since(self.catalog, model, ds, fingerprint)
        if done is not None:  # the bookmark: same upstream snapshots, same SQL, policy and gate
            return ModelResult(
                model.name, snapshot_id=done, skipped=f"inputs unchanged since snapshot {done}"
            )
        gate = self._gate(rulesets, ds) if rulesets else None
        placement = self.placement(model, ds)
        engine = self.compute.placed_engine(placement)
        if governed:
            self.governance.require_write(self.config.governance.pipeline_principal, model.name)
        why_salted = self._why_salted(model, engine)
        notes: list[str] = []
        compiler = self._compiler(engine, salt=why_salted is not None, notes=notes)
        needs = {Capability.STAGE} if model.header.materialized == "merge" else set()
        with self.compute.session(engine, f"model-{model.ref.name}", needs, record_spill=True) as session:
            result = run_model(session, self.catalog, model, ds, compiler, gate, fingerprint)
            result.engine, result.placement = placement.shape, placement.reason
            result.engine_seconds = round(session.engine_seconds, 3)
            stages = session.stage_skew()
            result.stage_skew = [stage.to_dict() for stage in stages]
            result.spill_bytes = session.spill_bytes
            if result.spill_bytes is None and stages:  # Spark: what its stages spilled
                result.spill_bytes = sum(stage.spilled_bytes for stage in stages)
            held = session.usage()
            result.cores, result.spark_executors = int(held["cores"]), held.get("spark_executors")
            result.io = getattr(session, "io", None)
        if why_salted is not None:
            result.skew = "; ".join(
                f"{why_salted}, {note}" if note.startswith("not salted") else f"{why_salted}: {note}"
                for note in notes
            )
        if Capability.STAGE_METRICS in engine.capabilities:
            self._remember_skew(model, result)
        return result

    def rebuild_lineage(self) -> list[LineageCommit]:
        """Record the lineage of every existing model and ingested table at its current snapshot,
        each model compiled now."""
        return self.lineage.refresh(
            [(m.name, partial(compile_query_for, m, self.catalog, None)) for m in self.all()],
            {name: (d.table, list(d.fields)) for name, d in self.config.datasets.items()},
        )

    def _compiler(self, engine: Engine, *, salt: bool, notes: list[str]) -> Compiler:
        """The compile for this job: governed for the pipeline principal when the lake is, salted
        when the model has a hot key; what the rules noted goes to ``notes``."""
        buckets = self.config.spark.skew.salt_buckets if salt else None
        extra = (salt_hot_keys,) if salt else ()
        principal = self.config.governance.pipeline_principal

        def compile_model(
            sql: str, resolve: Callable[[str], str], params: Mapping[str, Any]
        ) -> CompiledQuery:
            if self.governance.enabled:
                compiled = self.governance.compile(
                    sql,
                    principal,
                    resolve,
                    read="duckdb",
                    write=engine.dialect,
                    params=params,
                    rewrites=(*GOVERNED_REWRITES, *extra),
                    salt_buckets=buckets,
                )
            else:
                ctx = CompileContext(resolve=resolve, params=params, salt_buckets=buckets)
                compiled = compile_sql(sql, ctx, (*REWRITES, *extra), write=engine.dialect)
            notes.extend(compiled.notes)
            return compiled

        return compile_model

    def _why_salted(self, model: Model, engine: Engine) -> str | None:
        """Why ``model`` is salted on ``engine`` (a declared or detected hot key), or None."""
        skew = self.config.spark.skew
        if Capability.SHUFFLE not in engine.capabilities:
            return None  # without a shuffle (DuckDB) no one task gets a hot key's rows: run as written
        detected = (
            self.catalog.load(model.name).properties.get(SKEW_PROPERTY)
            if skew.detect and self.catalog.table_exists(model.ref)
            else None
        )
        if model.header.hot_key:
            return f"hot_key {', '.join(model.header.hot_key)} declared"
        return f"stage skew {detected} in the previous run" if detected else None

    def _remember_skew(self, model: Model, result: ModelResult) -> None:
        """Mark ``model``'s table when this run had a badly skewed stage, so the next run salts."""
        skew = self.config.spark.skew
        slow = [s for s in result.stage_skew if s["max_task_ms"] >= skew.detect_min_task_s * 1000]
        worst = max((s["skew"] for s in slow), default=1.0)
        if skew.detect and worst >= skew.detect_ratio and not result.skew:

            def mark(_attempt: int) -> None:
                with self.catalog.load(model.name).transaction() as tx:  # reloaded on every attempt
                    tx.set_properties({SKEW_PROPERTY: f"{worst:.1f}x"})

            retry_commit(mark, model.name, "mark skew", self.catalog.commit_retry)

    def gate_rulesets(
        self, model: Model, quality: str | None = None, blocking: bool = True
    ) -> list[GateRuleset]:
        """The rulesets of ``model``'s gate, read and parsed: its header's, then ``quality`` (a
        pipeline step's) unless it is the same file, which then blocks if either says so.

        Raises:
            DQDLError: a ruleset does not parse; the message names the file, line and column.
            ModelError: a ruleset file does not exist.
        """
        declared = [(model.header.quality, model.header.quality_blocking), (quality, blocking)]
        found: dict[Path, GateRuleset] = {}
        for index, (path, blocks) in enumerate(declared):
            if not path:
                continue
            file = (self.project_dir / path).resolve()
            if file in found:
                found[file] = replace(found[file], blocking=found[file].blocking or blocks)
                continue
            try:
                text = file.read_text(encoding="utf-8")
            except FileNotFoundError:
                if index == 0:
                    raise ModelError(
                        f"{model.path}: quality: no ruleset file {file}", file=str(model.path), key="quality"
                    ) from None
                raise ConfigError(
                    f"quality: no ruleset file {file} (a pipeline step's gate of {model.name})",
                    file=str(file),
                    key="quality",
                ) from None
            try:
                parse(text, source=path)
            except DQDLError as exc:
                raise DQDLError(
                    f"quality gate of {model.name}: {exc.message}",
                    source=exc.source,
                    line=exc.line,
                    column=exc.column,
                    rule=exc.rule,
                ) from None
            found[file] = GateRuleset(path, text, blocks)
        return list(found.values())

    def _gate(self, rulesets: list[GateRuleset], ds: dt.date | None) -> Gate:
        def gate(table: str, snapshot_id: int) -> list[dict[str, Any]]:
            return [
                {**outcome, "ruleset": ruleset.path, "blocking": ruleset.blocking}
                for ruleset in rulesets
                for outcome in self.check_ruleset(
                    table, ruleset.path, ds=ds, snapshot_id=snapshot_id, only_ds=True
                )
            ]

        return gate


def compile_query_for(model: Model, catalog: LakeCatalog, ds: dt.date | None) -> CompiledQuery:
    """``model``'s SQL compiled ungoverned, to learn which tables and partitions it reads."""

    def resolve(name: str) -> str:
        return resolve_input(catalog, name, model.ref.domain)

    return compile_sql(model.sql, CompileContext(resolve=resolve, params={"ds": ds}), REWRITES)
