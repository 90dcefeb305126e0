"""The data-quality check of a lake table: a DQDL file evaluated on a planned scan, its metrics kept.

:class:`QualityChecks` is what the ``Lake`` facade holds for ``dq_check``. It is built from narrow
collaborators (open a DuckDB session, plan a table's scan, resolve a table name, keep metric
history), never from the facade, so that quality does not depend on the tiers above it.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from sqlglot import exp

from lakeplane.engines.base import EngineSession, ScanSource
from lakeplane.quality.analyzers import AnalyzerOutcome
from lakeplane.quality.anomaly import Point
from lakeplane.quality.dqdl import parse, rule_failer
from lakeplane.quality.evaluate import RuleOutcome, evaluate, evaluate_with_analyzers
from lakeplane.quality.files_source import FileSource, raw_dataset
from lakeplane.quality.rules import RULE_SPECS, Ruleset

#: Names of the relations the checked table and its references have in the check's session.
TABLE_ALIAS, PRIMARY_ALIAS, REFERENCE_PREFIX = "dq_table", "dq_primary", "dq_reference_"


class MetricView(Protocol):
    """A table's earlier metric values in one series, as :func:`evaluate` reads them."""

    @property
    def cutoff(self) -> dt.datetime | None: ...

    def __call__(self, metric_key: str, n: int) -> Sequence[float]: ...

    def points(self, metric_key: str, n: int) -> Sequence[Point]: ...


class MetricStore(Protocol):
    """Metric values kept for one table's dynamic rules (``RowCount > avg(last(10))``) and
    ``DetectAnomalies``, in series (:mod:`lakeplane.quality.history`)."""

    def before(self, moment: dt.datetime) -> MetricView:
        """The values stamped before ``moment``."""
        ...

    def with_series(self, series: str) -> MetricStore:
        """The same table's values in ``series``."""
        ...

    def record(
        self, outcomes: Iterable[RuleOutcome], at: dt.datetime, analyzed: Iterable[AnalyzerOutcome] = ()
    ) -> int:
        """Keep the metrics measured in ``outcomes`` and ``analyzed``, stamped ``at``."""
        ...


OpenSession = Callable[[str], EngineSession]
#: ``files_for(target, ingest_date)``: the files file rules read when checking ``target`` (a table's
#: full name or ``raw/<source>/<dataset>``), narrowed to the batches of ``ingest_date`` if given.
FilesFor = Callable[[str, dt.date | None], FileSource]
PlanScan = Callable[[str, int | None], ScanSource]


class QualityChecks:
    """Evaluates DQDL rulesets on lake tables.

    Args:
        open_session: opens a DuckDB session for a job name (quality rules are DuckDB SQL).
        plan: the catalog's scan planner, ``plan(table, snapshot_id)``; ``None`` means the current
            snapshot.
        resolve: a table's full name as written in SQL or in a ruleset (``zone.table`` uses the
            project's domain); raises if the table does not exist.
        project_dir: where relative ruleset paths are read from.
        history_for: the metric history of a table, by its full name (in the pipelines' series).
        files_for: where file rules (``FileSize``...) find their files; without it they are errors.
    """

    def __init__(
        self,
        open_session: OpenSession,
        plan: PlanScan,
        resolve: Callable[[str], str],
        project_dir: Path,
        history_for: Callable[[str], MetricStore],
        files_for: FilesFor | None = None,
    ) -> None:
        self.open_session = open_session
        self.plan = plan
        self.resolve = resolve
        self.project_dir = project_dir
        self.history_for = history_for
        self.files_for = files_for
        #: Bytes of the data files every check so far planned and read (the table's and references').
        self.bytes_scanned = 0
        self._count = threading.Lock()

    def check(
        self,
        table: str,
        ruleset: str | os.PathLike[str],
        *,
        ds: dt.date | None = None,
        snapshot_id: int | None = None,
        references: dict[str, str] | None = None,
        now: dt.datetime | None = None,
        record: bool = True,
        only_ds: bool = False,
        series: str | None = None,
    ) -> list[dict[str, Any]]:
        """Evaluate the DQDL ruleset file ``ruleset`` on ``table``: one dict per rule, in order, then
        one per analyzer (``"analyzer": true``, its values under ``metrics``; it always passes).

        Args:
            table: the table under test (``zone.table`` uses the project's domain), or a raw dataset
                ``raw/<source>/<dataset>`` checked with file rules only.
            ruleset: a DQDL file; a relative path is read from the project folder.
            ds: the business date checked; it stamps the metrics kept for dynamic rules, which
                compare with earlier dates only, and file rules without a path check the raw
                batches landed for it (what the day's ingest read). Default: now, every batch.
            snapshot_id: check this snapshot (an audit branch's) instead of the current one.
            references: the ruleset's dataset aliases (``RowCountMatch "reference"``) to lake tables;
                the tables the ruleset's ``DataSources`` lists under ``AdditionalDataSources`` are
                the others (see :func:`source_aliases`).
            now: the evaluation time for ``DataFreshness``. Default: the current time.
            record: keep this evaluation's metrics as history for dynamic rules.
            only_ds: check only the rows of business date ``ds`` (what a step just wrote).
            series: the metric-history series to read and record (default: the pipelines',
                :data:`~lakeplane.quality.history.PIPELINE_SERIES`); ``lakeplane dq check`` uses
                ``adhoc`` unless told otherwise, so that trying rules by hand moves no gate's bounds.

        Raises:
            DQDLError: the ruleset does not parse or names an unknown reference.
        """
        path = Path(ruleset)
        text = (path if path.is_absolute() else self.project_dir / path).read_text(encoding="utf-8")
        rules = parse(text, source=str(ruleset))
        raw = raw_dataset(table)
        full = f"raw/{raw}" if raw else self.resolve(table)
        aliases = source_aliases(rules.data_sources) | (references or {})
        moment = now or dt.datetime.now(dt.UTC)
        stamp = dt.datetime.combine(ds, dt.time(), dt.UTC) if ds else moment
        history = self.history_for(full)
        if series is not None:
            history = history.with_series(series)
        files = self.files_for(full, ds) if self.files_for else None
        if raw:
            return self._check_files(full, rules, files, history, moment, stamp, record)
        with self.open_session(f"dq-{full.replace('.', '-')}") as session:
            scan = self.plan(full, snapshot_id)
            session.register_scan(TABLE_ALIAS, scan)
            day = ds if only_ds and ds is not None and "ds" in scan.schema.names else None
            session.execute(_primary_view(day).sql(dialect=session.dialect))
            names = {alias: f"{REFERENCE_PREFIX}{i}" for i, alias in enumerate(aliases)}
            scanned = scan.bytes
            for alias, name in aliases.items():
                reference = self.plan(self.resolve(name), None)
                session.register_scan(names[alias], reference)
                scanned += reference.bytes
            session.sandbox()
            earlier = history.before(stamp)
            evaluation = evaluate_with_analyzers(
                rules, session, PRIMARY_ALIAS, names, moment, earlier, timed_history=earlier, files=files
            )
        with self._count:
            self.bytes_scanned += scanned
        if record:
            history.record(evaluation.rules, stamp, evaluation.analyzers)
        return [o.to_dict() for o in evaluation.rules] + [a.to_dict() for a in evaluation.analyzers]

    def _check_files(
        self,
        target: str,
        rules: Ruleset,
        files: FileSource | None,
        history: MetricStore,
        moment: dt.datetime,
        stamp: dt.datetime,
        record: bool,
    ) -> list[dict[str, Any]]:
        """A raw dataset has files and no rows: only file rules can check it."""
        for rule in (*rules.leaves(), *rules.analyzers):
            if not RULE_SPECS[rule.rule_type].file_rule:
                files_only = ", ".join(n for n, spec in RULE_SPECS.items() if spec.file_rule)
                rule_failer(rule, rules.source)(
                    f"{rule.rule_type} checks rows; {target} is a raw dataset, checked with file rules "
                    f"({files_only})"
                )
        with self.open_session(f"dq-{target.replace('/', '-')}") as session:
            session.execute(f"CREATE TEMPORARY VIEW {PRIMARY_ALIAS} AS SELECT NULL AS no_rows WHERE false")
            session.sandbox()
            outcomes = evaluate(rules, session, PRIMARY_ALIAS, {}, moment, history.before(stamp), files=files)
        if record:
            history.record(outcomes, stamp)
        return [outcome.to_dict() for outcome in outcomes]


def source_aliases(sources: Mapping[str, str | tuple[str, ...]]) -> dict[str, str]:
    """The aliases of a ruleset's ``"AdditionalDataSources": ["processed.customers"]``: each table by
    its name as written and by its last part (``customers``), which rules such as
    ``ReferentialIntegrity "id" "customers.id"`` use."""
    extra = sources.get("AdditionalDataSources", ())
    aliases: dict[str, str] = {}
    for name in extra if isinstance(extra, tuple) else (extra,):
        aliases[name] = name
        aliases.setdefault(name.rsplit(".", 1)[-1], name)
    return aliases


def _primary_view(day: dt.date | None) -> exp.Create:
    """``CREATE TEMPORARY VIEW dq_primary``: the table under test, narrowed to ``day`` if given."""
    rows = exp.select("*").from_(TABLE_ALIAS)
    if day is not None:
        rows = rows.where(exp.column("ds").eq(exp.cast(exp.Literal.string(day.isoformat()), "date")))
    return exp.Create(
        this=exp.to_table(PRIMARY_ALIAS),
        kind="VIEW",
        expression=rows,
        properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
    )
