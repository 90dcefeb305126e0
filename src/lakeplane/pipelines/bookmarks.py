"""Bookmarks: what a step has already published, kept in the same commit as its output.

Each commit of a step's table records what it processed, in the snapshot summary, so a crash can
never leave bookmark and data disagreeing:

* an ingest step: the business date and the content hashes of the raw batches it holds
  (``lakeplane.ds``, ``lakeplane.batches``). A step whose batches for a day are exactly the ones
  already published skips the work; a batch landed late, or re-delivered with other content (another
  hash), makes the day run again.
* a model step: the model, the business date and the upstream snapshot each input table was read at
  (``lakeplane.model``, ``lakeplane.ds``, ``lakeplane.inputs`` as a JSON object
  ``{"domain.zone.table": snapshot_id}``).

Only snapshots on main's lineage count, so an audit branch that was never published leaves no
bookmark. ``reset`` and ``rewind`` never rewrite history: they add a *forgotten span* of main's
lineage to a table property (``lakeplane.bookmark.forgotten``), and bookmarks committed in a
forgotten span are ignored. ``reset`` forgets everything up to the current snapshot; ``rewind``
forgets what was committed after a moment (the end of a run), so those days are processed again,
while a day last published before that moment keeps its bookmark. Forgetting is never undone, and
snapshots committed later count as usual.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot, ancestors_between_ids, ancestors_of

from lakeplane.catalog.commits import CommitRetry, retry_commit, set_properties_if_unchanged

DS_KEY = "lakeplane.ds"
BATCHES_KEY = "lakeplane.batches"
MODEL_KEY = "lakeplane.model"
INPUTS_KEY = "lakeplane.inputs"
FORGOTTEN_KEY = "lakeplane.bookmark.forgotten"


@dataclass(frozen=True, eq=True)
class Bookmark:
    """What one step published for one business date, and the snapshot that published it.

    An ingest bookmark lists raw ``batches``; a model bookmark names its ``model`` and, when the step
    recorded them, the upstream snapshot of each input table (``inputs``).
    """

    ds: str
    batches: tuple[str, ...]
    snapshot_id: int
    committed_at_ms: int
    model: str | None = None
    inputs: dict[str, int] = field(default_factory=dict, hash=False)

    @property
    def kind(self) -> str:
        return "model" if self.model else "ingest"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class ForgottenSpan:
    """Main's snapshots from ``through`` back to, not including, ``after`` (all older when None)."""

    through: int
    after: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lineage(table: Table) -> list[Snapshot]:
    """Main's snapshots, newest first."""
    return list(ancestors_of(table.current_snapshot(), table.metadata))


def forgotten_spans(table: Table) -> list[ForgottenSpan]:
    """The spans of main's lineage whose bookmarks ``reset`` and ``rewind`` told us to ignore."""
    text = table.properties.get(FORGOTTEN_KEY)
    if not text:
        return []
    return [
        ForgottenSpan(int(s["through"]), None if s.get("after") is None else int(s["after"]))
        for s in json.loads(text)
    ]


def bookmarks(table: Table) -> dict[str, Bookmark]:
    """The newest bookmark of every business date on main's lineage, outside forgotten spans."""
    found: dict[str, Bookmark] = {}
    for snapshot in _remembered(table):
        bookmark = _bookmark(snapshot)
        if bookmark is not None and bookmark.ds not in found:
            found[bookmark.ds] = bookmark
    return found


def reset(table: Table, retry: CommitRetry | None = None) -> int | None:
    """Forget every bookmark so far: the next run of each day processes it again.

    Returns:
        The newest snapshot forgotten, or None when the table has none.
    """

    def span(current: Table) -> ForgottenSpan | None:
        head = current.current_snapshot()
        return None if head is None else ForgottenSpan(head.snapshot_id, None)

    forgotten = _forget(table, span, retry)
    return forgotten.through if forgotten else None


def rewind(table: Table, until_ms: int, retry: CommitRetry | None = None) -> ForgottenSpan | None:
    """Forget the bookmarks committed after ``until_ms`` (milliseconds since 1970).

    The table's bookmarks become what they were at that moment: a day published since then is
    processed again on the next run, one published only before it keeps its bookmark.

    Returns:
        The span forgotten, or None when no bookmark committed after ``until_ms`` is remembered.
    """

    def span(current: Table) -> ForgottenSpan | None:
        if not any(s.timestamp_ms > until_ms for s in _remembered(current)):
            return None
        snapshots = lineage(current)
        later = [s for s in snapshots if s.timestamp_ms > until_ms]
        kept = next((s for s in snapshots if s.timestamp_ms <= until_ms), None)
        return ForgottenSpan(later[0].snapshot_id, kept.snapshot_id if kept else None)

    return _forget(table, span, retry)


def _forget(
    table: Table, span_of: Callable[[Table], ForgottenSpan | None], retry: CommitRetry | None
) -> ForgottenSpan | None:
    """Add the span ``span_of`` finds to the table's forgotten spans, dropping those it covers.

    A read-modify-write of a table property: the commit requires main and the property to be as
    they were read, and a commit that lost the race reads them again and recomputes the span.
    """

    def attempt(n: int) -> ForgottenSpan | None:
        if n:
            table.refresh()
        span = span_of(table)
        if span is None:
            return None
        position = {s.snapshot_id: i for i, s in enumerate(lineage(table))}
        kept = [s for s in forgotten_spans(table) if not _covers(span, s, position)]
        spans = [s.to_dict() for s in [*kept, span]]
        set_properties_if_unchanged(
            table,
            {FORGOTTEN_KEY: json.dumps(spans, separators=(",", ":"))},
            read={FORGOTTEN_KEY: table.properties.get(FORGOTTEN_KEY)},
        )
        return span

    span, _ = retry_commit(attempt, ".".join(table.name()), "forget bookmarks", retry)
    return span


def _covers(outer: ForgottenSpan, inner: ForgottenSpan, position: dict[int, int]) -> bool:
    """Whether every snapshot ``inner`` forgets on main's lineage (positions newest first) is in
    ``outer``."""
    if outer.through not in position or inner.through not in position:
        return False
    end = len(position)
    outer_end = end if outer.after is None else position.get(outer.after, end)
    inner_end = end if inner.after is None else position.get(inner.after, end)
    return position[outer.through] <= position[inner.through] and inner_end <= outer_end


def _remembered(table: Table) -> list[Snapshot]:
    """Main's lineage, newest first, without the snapshots in forgotten spans.

    A span whose newest snapshot is no longer on main (main was rolled back past it) forgets
    nothing; one whose ``after`` is gone (expired) forgets everything older, which at worst
    processes a day again and never skips one.
    """
    snapshots = lineage(table)
    on_main = {s.snapshot_id for s in snapshots}
    # ``after`` was an ancestor of ``through`` when the span was made, and ancestry never changes:
    # the span is ``through``'s ancestors down to ``after``, or all of them once ``after`` expired.
    dropped = {
        s.snapshot_id
        for span in forgotten_spans(table)
        if span.through in on_main
        for s in ancestors_between_ids(span.after, span.through, table.metadata)
    }
    return [s for s in snapshots if s.snapshot_id not in dropped]


def _bookmark(snapshot: Snapshot) -> Bookmark | None:
    summary = snapshot.summary.additional_properties if snapshot.summary else {}
    ds = summary.get(DS_KEY)
    if not ds:
        return None
    batches = summary.get(BATCHES_KEY)
    if batches is not None:
        return Bookmark(
            ds, tuple(b for b in batches.split(",") if b), snapshot.snapshot_id, snapshot.timestamp_ms
        )
    model = summary.get(MODEL_KEY)
    if not model:
        return None
    return Bookmark(
        ds, (), snapshot.snapshot_id, snapshot.timestamp_ms, model, _inputs(summary.get(INPUTS_KEY))
    )


def _inputs(text: str | None) -> dict[str, int]:
    """The ``lakeplane.inputs`` object; a value that is not one reads as no inputs recorded."""
    if not text:
        return {}
    try:
        return {str(name): int(snapshot) for name, snapshot in json.loads(text).items()}
    except (AttributeError, TypeError, ValueError):
        return {}
