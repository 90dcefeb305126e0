"""``lakeplane demo``: build the demo project, generate partner drops, and run the nightly pipeline."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeplane.demo import telco
from lakeplane.demo.generator import generate_day
from lakeplane.errors import AccessDenied
from lakeplane.lake import Lake, open_lake
from lakeplane.pipelines.runner import RunOptions
from lakeplane.pipelines.store import RunRecord

if TYPE_CHECKING:
    import pyarrow as pa


def build_project(path: Path, governed: bool = True) -> Lake:
    """A fresh copy of the demo project in ``path`` (anything there before is removed).

    With ``governed`` false the policy file is left out, so no query needs a principal.
    """
    if path.exists():
        shutil.rmtree(path)
    template = resources.files("lakeplane.demo") / "project"
    with resources.as_file(template) as source:
        shutil.copytree(source, path)
    if not governed:
        (path / "policy.yaml").unlink()
    return open_lake(path)


#: The telco query the demo runs as two principals: the same SQL, two different answers.
TELCO_QUERY = (
    "SELECT c.msisdn, s.card_pan, c.region, count(*) AS calls, sum(c.duration_s) AS seconds "
    "FROM telco.processed.cdr c JOIN telco.processed.subscribers s ON s.msisdn = c.msisdn "
    "GROUP BY ALL ORDER BY calls DESC, c.msisdn LIMIT 5"
)
ANALYST = "ana"


#: Opens a progress display of ``total`` steps and yields the function that advances it by one
#: (the CLI passes its printer's ``progress``).
ProgressDisplay = Callable[[str, int], AbstractContextManager[Callable[[str], None]]]


def no_progress(description: str, total: int) -> AbstractContextManager[Callable[[str], None]]:
    """A :data:`ProgressDisplay` that shows nothing."""
    return nullcontext(lambda text: None)


@dataclass
class DemoResult:
    """What the demo did and found: the nightly runs, sample rows, and one query as three principals."""

    project: Path
    runs: list[RunRecord]
    #: The top rows of ``curated.daily_campaign_stats`` on the last published day.
    sample: pa.Table
    #: ``processed.impressions_quarantine`` counted by reason.
    quarantine: pa.Table
    #: The query run as three principals (:data:`TELCO_QUERY`).
    governed_query: str
    #: Its answer for each principal allowed to run it.
    governed: dict[str, pa.Table]
    #: Each principal of :attr:`governed` with its identities other than itself (``role:analyst``).
    roles: dict[str, str]
    #: Why the intern may not run it.
    intern: str

    @property
    def summaries(self) -> list[dict[str, Any]]:
        return [run_summary(r) for r in self.runs]

    def failed_steps(self) -> list[tuple[str, str, str | None]]:
        """``(ds, step, error)`` of each failed step attempt, in run order."""
        return [(run.ds, a.step, a.error) for run in self.runs for a in run.attempts if a.state == "failed"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": str(self.project),
            "runs": self.summaries,
            "sample": self.sample.to_pylist(),
            "quarantine": self.quarantine.to_pylist(),
            "governed": {k: v.to_pylist() for k, v in self.governed.items()},
            "intern": self.intern,
        }


def run_demo(
    lake: Lake, start: dt.date, days: int, impressions: int, progress: ProgressDisplay = no_progress
) -> DemoResult:
    """Land ``days`` of generated partner drops from ``start`` in the demo project ``lake`` (see
    :func:`build_project`), backfill its nightly pipeline, and query the result.

    Args:
        progress: shows the backfill, one advance per finished step.
    """
    end = start + dt.timedelta(days=days - 1)
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        # The last night's partner delivery is partial (a tenth of the usual impressions): the
        # quality gate between processed and curated stops it before it reaches consumers.
        partial = days >= 3 and day == end
        drop = generate_day(lake.project_dir / "incoming", day, impressions // 10 if partial else impressions)
        files = {**drop.files, **telco.generate_day(lake.project_dir / "incoming", day, impressions // 10)}
        for dataset, paths in files.items():
            lake.land(dataset, paths, day)
    steps = len(lake.pipeline("nightly").steps)
    with progress(f"backfill nightly {start}..{end}", steps * days) as advance:

        def step_done(text: str) -> None:
            if text.endswith(("succeeded", "skipped")) or ": failed" in text:
                advance(text.split(" (")[0])

        runs = lake.backfill("nightly", start, end, parallel=1, options=RunOptions(progress=step_done))
    sample = lake.query(
        "SELECT ds, campaign_id, campaign_name, country, device, impressions, clicks, ctr, spend "
        "FROM curated.daily_campaign_stats WHERE ds = :ds ORDER BY impressions DESC LIMIT 8",
        params={"ds": end - dt.timedelta(days=1) if days >= 3 else end},
        principal=ANALYST,
    )
    quarantine = lake.query(
        "SELECT reason, count(*) AS records, min(regexp_extract(source_file, 'raw/.*')) AS example_file, "
        "min(line) AS first_line FROM processed.impressions_quarantine GROUP BY reason "
        "ORDER BY records DESC, reason",
        principal=ANALYST,
    )
    governed = {who: lake.query(TELCO_QUERY, principal=who, dialect="trino") for who in ("ana", "eve")}
    roles = {who: ", ".join(lake.governance.principal(who).identities - {f"user:{who}"}) for who in governed}
    try:
        lake.query(TELCO_QUERY, principal="ian", dialect="trino")
        denied = "allowed (unexpected)"
    except AccessDenied as exc:
        denied = str(exc)
    return DemoResult(
        project=lake.project_dir,
        runs=[lake.run_record(r.run_id) for r in runs],
        sample=sample,
        quarantine=quarantine,
        governed_query=TELCO_QUERY,
        governed=governed,
        roles=roles,
        intern=denied,
    )


def noop_step(lake: Lake, ds: dt.date) -> dict[str, int]:
    """A pipeline step that does nothing (for measuring the runner itself)."""
    return {"rows_out": 0}


def run_summary(run: RunRecord) -> dict[str, Any]:
    """Rows in and out, quarantined, bytes and time of one run, from its attempts."""
    done = [a for a in run.attempts if a.state == "succeeded"]
    return {
        "ds": run.ds,
        "run_id": run.run_id,
        "state": run.state,
        "read": sum(int(a.metrics.get("rows_in", 0)) for a in done),
        "quarantined": sum(int(a.metrics.get("quarantined", 0)) for a in done),
        "rows_out": sum(int(a.metrics.get("rows_out", 0)) for a in done),
        "bytes_written": sum(int(a.metrics.get("bytes_written", 0)) for a in done),
        "seconds": round(sum(float(a.metrics.get("seconds", 0)) for a in done), 2),
        "steps": ", ".join(f"{a.step}:{a.state}" for a in run.attempts if a.state != "succeeded") or "all ok",
    }
