"""The ``maintain:`` pipeline step: housekeeping on a schedule, its metrics the actions' summary."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from lakeplane.errors import ConfigError
from lakeplane.pipelines.definition import load_pipeline
from tests.maintenance.history import History, new_lake

CROWDED = "demo.curated.events"
HOUSEKEEPING = """schedule: "0 4 * * *"
steps:
  compact_only:
    maintain: {tables: [curated.events], actions: [compact]}
  everything:
    maintain: all
    depends_on: [compact_only]
"""


def test_a_scheduled_maintain_step_runs_housekeeping_and_reports_it(tmp_path: Path) -> None:
    root = tmp_path / "p"
    lake = new_lake(root)
    with (root / "lakeplane.yaml").open("a") as config:
        config.write(f"maintenance: {json.dumps({'older_than': '0d', 'orphan_grace': '1d'})}\n")
    (root / "pipelines").mkdir()
    (root / "pipelines" / "housekeeping.yaml").write_text(HOUSEKEEPING)
    crowded = History.create(lake, CROWDED)
    for _ in range(6):
        crowded.append(4)

    now = dt.datetime.now(dt.UTC)
    runs = lake.run_due(now)
    assert [(r.pipeline, r.state) for r in runs] == [("housekeeping", "succeeded")], runs
    run = runs[0]
    first = next(a for a in run.attempts if a.step == "compact_only").metrics
    assert first["actions_taken"] == 1 and first["files_before"] == 12 and first["files_after"] == 2
    assert [a["action"] for a in first["actions"]] == ["compact"]
    second = next(a for a in run.attempts if a.step == "everything").metrics
    actions = {a["action"]: a for a in second["actions"]}
    assert actions["compact"]["skipped"].startswith("not due"), "compacted by the step before"
    assert actions["expire"]["skipped"] is None and actions["expire"]["deleted"] >= 12
    assert second["deleted"] == sum(a["deleted"] for a in second["actions"])
    table = lake.catalog.load(CROWDED)
    assert len(table.snapshots()) == 1 and len(list(table.scan().plan_files())) == 2
    recorded = [a["action"] for a in lake.maintenance_log.for_table(CROWDED)]
    assert sorted(recorded) == ["compact", "expire", "orphans"]
    assert lake.run_due(now + dt.timedelta(minutes=1)) == [], "once per schedule"


@pytest.mark.parametrize(
    ("step", "words"),
    [
        ("{maintain: some}", "write all"),
        ("{maintain: {actions: [vacuum]}}", "compact"),
        ("{maintain: all, python: 'a:b'}", "exactly one of"),
    ],
)
def test_a_bad_maintain_step_is_a_config_error(tmp_path: Path, step: str, words: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(f"steps:\n  h: {step}\n")
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path)
    assert str(caught.value).startswith(f"{path}:2") and words in str(caught.value)


def test_the_demo_ships_a_housekeeping_pipeline() -> None:
    from lakeplane.demo import run

    path = Path(run.__file__).parent / "project" / "pipelines" / "housekeeping.yaml"
    pipeline = load_pipeline(path)
    assert pipeline.schedule and [s.kind for s in pipeline.steps.values()] == ["maintain"]
