"""Bookmarks by step: which table holds a pipeline step's bookmarks; show, reset, and rewind to a run.

An ingest step's bookmarks live in its dataset's processed table, a model step's in the table the
model builds (:mod:`lakeplane.pipelines.bookmarks`). A step is named within a pipeline; a table may
be named directly instead (``domain.zone.table`` or ``zone.table``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyiceberg.table import Table

from lakeplane.catalog import LakeCatalog, TableRef
from lakeplane.errors import BookmarkError, did_you_mean
from lakeplane.pipelines import bookmarks as marks
from lakeplane.pipelines.bookmarks import Bookmark, ForgottenSpan
from lakeplane.pipelines.definition import Pipeline
from lakeplane.pipelines.store import RunRecord


@dataclass(frozen=True)
class TableNames:
    """How step settings name tables: a dataset's processed table, a model's table, a table as written."""

    of_dataset: Callable[[str], str]
    of_model: Callable[[str], str]
    resolve: Callable[[str], str]


@dataclass(frozen=True)
class BookmarkTarget:
    """The table holding a step's bookmarks; ``step`` is None when the table was named directly."""

    table: str
    step: str | None = None
    pipeline: str | None = None
    kind: str | None = None  # ingest or model


@dataclass
class Change:
    """What a reset or rewind did to one business date's bookmark."""

    ds: str
    before: int  # the snapshot of the bookmark before
    after: int | None  # the snapshot of the bookmark now (an older one), or None: forgotten


@dataclass
class BookmarkReport:
    """A table's bookmarks, its forgotten spans and, after a reset or rewind, what changed."""

    target: BookmarkTarget
    bookmarks: list[Bookmark] = field(default_factory=list)
    forgotten: list[ForgottenSpan] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.target.table,
            "step": self.target.step,
            "pipeline": self.target.pipeline,
            "bookmarks": [b.to_dict() for b in self.bookmarks],
            "forgotten": [s.to_dict() for s in self.forgotten],
            "changes": [vars(c) for c in self.changes],
        }


def bookmark_target(chosen: Pipeline | None, step: str, names: TableNames) -> BookmarkTarget:
    """The table whose snapshots hold ``step``'s bookmarks.

    Args:
        chosen: the pipeline ``step`` belongs to (None: the project has none).
        step: a step of ``chosen``, or a table.
        names: how the project names tables.

    Raises:
        BookmarkError: no such step (and not a table name), or a step kind that keeps no bookmarks.
        TableNotFoundError: ``step`` names a table that does not exist.
    """
    if chosen is not None and step in chosen.steps:
        spec = chosen.steps[step]
        if spec.kind == "ingest":
            return BookmarkTarget(names.of_dataset(spec.ingest or ""), step, chosen.name, "ingest")
        if spec.kind == "model":
            return BookmarkTarget(names.of_model(spec.model or ""), step, chosen.name, "model")
        raise BookmarkError(
            f"step '{step}' of pipeline '{chosen.name}' is a {spec.kind} step; only ingest "
            "and model steps keep bookmarks",
            step=step,
            pipeline=chosen.name,
        )
    if "." in step:
        return BookmarkTarget(names.resolve(step))
    steps = list(chosen.steps) if chosen else []
    where = (
        f"pipeline '{chosen.name}' has steps {', '.join(steps)}" if chosen else "the project has no pipelines"
    )
    raise BookmarkError(
        f"no step '{step}'{did_you_mean(step, steps)} ({where}; name a table as "
        "zone.table or domain.zone.table)",
        step=step,
        pipeline=chosen.name if chosen else None,
    )


def show(catalog: LakeCatalog, target: BookmarkTarget) -> BookmarkReport:
    """``target``'s bookmarks, one per business date (none if its table does not exist yet)."""
    return _report(target, _table(catalog, target))


def reset(catalog: LakeCatalog, target: BookmarkTarget) -> BookmarkReport:
    """Forget all of ``target``'s bookmarks: its next run of any day processes that day again."""
    table = _table(catalog, target)
    if table is None:
        return BookmarkReport(target)
    before = marks.bookmarks(table)
    marks.reset(table)
    return _report(target, table.refresh(), before)


def check_rewind(run: RunRecord, pipeline: str | None) -> None:
    """Raises BookmarkError unless ``run`` has ended and (when named) is a run of ``pipeline``."""
    run_id = run.run_id
    if pipeline and run.pipeline != pipeline:
        raise BookmarkError(
            f"run '{run_id}' is a run of pipeline '{run.pipeline}', not '{pipeline}'",
            run_id=run_id,
            pipeline=pipeline,
        )
    if not run.ended_at:
        raise BookmarkError(
            f"run '{run_id}' has not ended (state: {run.state}); rewind to a run that ended", run_id=run_id
        )


def rewind(catalog: LakeCatalog, target: BookmarkTarget, run: RunRecord) -> BookmarkReport:
    """Make ``target``'s bookmarks what they were right after ``run`` ended (see :func:`check_rewind`).

    Bookmarks committed later are forgotten, so their days are processed again on the next run;
    a day whose bookmark was replaced later gets back the one it had then.
    """
    table = _table(catalog, target)
    if table is None:
        return BookmarkReport(target)
    before = marks.bookmarks(table)
    assert run.ended_at is not None, "check_rewind refuses a run that has not ended"
    ended = dt.datetime.fromisoformat(run.ended_at)
    marks.rewind(table, int(ended.timestamp() * 1000))
    return _report(target, table.refresh(), before)


def _table(catalog: LakeCatalog, target: BookmarkTarget) -> Table | None:
    if not catalog.table_exists(TableRef.parse(target.table)):
        return None
    return catalog.load(target.table)


def _report(
    target: BookmarkTarget, table: Table | None, before: dict[str, Bookmark] | None = None
) -> BookmarkReport:
    if table is None:
        return BookmarkReport(target)
    now = marks.bookmarks(table)
    changes = [
        Change(ds, mark.snapshot_id, now[ds].snapshot_id if ds in now else None)
        for ds, mark in sorted((before or {}).items())
        if ds not in now or now[ds].snapshot_id != mark.snapshot_id
    ]
    return BookmarkReport(target, [now[ds] for ds in sorted(now)], marks.forgotten_spans(table), changes)
