"""Line order, read only where it decides something.

DuckDB's JSON reader is faster when it need not keep the file's order, so an NDJSON batch it takes
whole, with no refused value, is read without it: its rows carry no line number. The order of lines
decides one thing afterwards: which copy of a key is kept when one batch holds several copies of it
(first delivery wins, across batches by their order). When those copies are all the same, any of
them is the first; when they differ, :func:`batches_needing_order` names the batch, and the step
reads it again keeping its order before anything is written.
"""

from __future__ import annotations

from sqlglot import exp

from lakeplane.config import DatasetConfig
from lakeplane.engines.base import EngineSession
from lakeplane.ingest.parse import ACCEPTED

#: The day's keys delivered more than once, with their number of copies (:data:`COPIES`).
REPEATED = "__repeated"
COPIES = "__copies"


def same_key(dataset: DatasetConfig, left: str, right: str) -> exp.Condition:
    """``left`` and ``right`` rows have the same key (NULL parts equal, as within a day)."""
    return exp.and_(
        *[
            exp.NullSafeEQ(
                this=exp.column(k, left, quoted=True), expression=exp.column(k, right, quoted=True)
            )
            for k in dataset.key
        ]
    )


def repeated_keys(session: EngineSession, dataset: DatasetConfig) -> None:
    """:data:`REPEATED`: the keys of the accepted rows delivered more than once (made once a step)."""
    keys = [exp.column(k, quoted=True) for k in dataset.key]
    repeated = (
        exp.select(*keys, exp.Count(this=exp.Star()).as_(COPIES))
        .from_(ACCEPTED)
        .group_by(*keys)
        .having(exp.Count(this=exp.Star()) > 1)
    )
    session.execute(f"CREATE TEMP TABLE IF NOT EXISTS {REPEATED} AS {repeated.sql(dialect=session.dialect)}")


def batches_needing_order(session: EngineSession, dataset: DatasetConfig) -> list[int]:
    """The batches read without their order that hold differing copies of one key."""
    row = exp.Tuple(expressions=[exp.column(n, "a", quoted=True) for n in dataset.fields])
    found = (
        exp.select(exp.column("_batch", "a"))
        .from_(exp.to_table(ACCEPTED).as_("a"))
        .join(exp.to_table(REPEATED).as_("r"), on=same_key(dataset, "a", "r"), join_type="semi")
        .where(exp.column("_line", "a").is_(exp.null()))
        .group_by(exp.column("_batch", "a"), *[exp.column(k, "a", quoted=True) for k in dataset.key])
        .having(
            exp.and_(
                exp.Count(this=exp.Star()) > 1,
                exp.Count(this=exp.Distinct(expressions=[row])) > 1,
            )
        )
    )
    sql = f"SELECT DISTINCT _batch FROM ({found.sql(dialect=session.dialect)}) ORDER BY 1"
    return [int(seq) for (seq,) in session.execute(sql)]
