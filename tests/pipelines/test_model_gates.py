"""A model's quality gate, declared in its header, on every path that runs the model.

The project: ``processed.source`` (three rows a day), ``curated.labels`` reading it behind the gate
``quality/labels.dqdl`` (its header), and ``curated.label_count`` reading ``labels``. On DAY1 every
label is set; from DAY2 on one label is NULL and ``IsComplete "label"`` fails. The pipeline's steps
name no ruleset: whatever runs ``labels``, its gate comes from the model.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lakeplane.cli.main import cli
from lakeplane.demo.generator import generate_day
from lakeplane.demo.run import build_project
from lakeplane.errors import ConfigError, DQDLError, ModelError, QualityGateFailed
from lakeplane.lake import Lake, open_lake
from lakeplane.pipelines.models import EMPTY_RESULT
from lakeplane.pipelines.store import RunRecord
from tests.conftest import head_id, land_drop

DAY1, DAY2, DAY3 = dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)
LABELS = "t.curated.labels"
SOURCE = "-- partition_by: [ds]\nSELECT :ds AS ds, n FROM (VALUES (1), (2), (3)) AS t(n)\n"
MODEL = """-- partition_by: [ds]
-- quality: quality/labels.dqdl
SELECT ds, n, CASE WHEN n = 3 AND ds > DATE '2026-11-01' THEN NULL ELSE 'x' || n END AS label
FROM processed.source
WHERE ds = :ds
"""
COUNT = "SELECT count(*) AS labels FROM curated.labels\n"
RULES = """Rules = [
    RowCount = 3,
    IsComplete "label"
]
"""
FAILING = ['IsComplete "label"']
PIPELINE = """
steps:
  source: {model: processed.source}
  labels: {model: curated.labels, depends_on: [source]}
"""


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    root = tmp_path / "p"
    for folder in ("models/processed", "models/curated", "pipelines", "quality"):
        (root / folder).mkdir(parents=True)
    (root / "lakeplane.yaml").write_text("name: t\n")
    (root / "models" / "processed" / "source.sql").write_text(SOURCE)
    (root / "models" / "curated" / "labels.sql").write_text(MODEL)
    (root / "models" / "curated" / "label_count.sql").write_text(COUNT)
    (root / "pipelines" / "p.yaml").write_text(PIPELINE)
    (root / "quality" / "labels.dqdl").write_text(RULES)
    return open_lake(root)


def published_days(lake: Lake) -> list[dt.date]:
    return sorted(lake.query("SELECT DISTINCT ds FROM curated.labels").column("ds").to_pylist())


def data_files(lake: Lake) -> set[Path]:
    """Every Parquet file under the labels table's folder, referenced or not."""
    return set((lake.project_dir / "lake" / "curated" / "t" / "labels").rglob("*.parquet"))


def attempt(record: RunRecord, step: str) -> dict[str, Any]:
    found = [a for a in record.attempts if a.step == step][-1]
    return {"state": found.state, "error": found.error, **found.metrics}


def run(lake: Lake, ds: dt.date) -> RunRecord:
    return lake.run_record(lake.run_pipeline("p", ds).run_id)


def invoke(lake: Lake, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--lake", str(lake.project_dir), *args])
    return result.exit_code, result.output


def test_lake_run_without_a_pipeline_applies_the_models_gate(lake: Lake) -> None:
    first = {m.model: m for m in lake.run(DAY1).models}
    assert [o["rule"] for o in first[LABELS].quality] == ["RowCount = 3", 'IsComplete "label"']
    assert all(o["ruleset"] == "quality/labels.dqdl" for o in first[LABELS].quality)
    published = head_id(lake.catalog.load(LABELS))
    counted = head_id(lake.catalog.load("t.curated.label_count"))

    with pytest.raises(QualityGateFailed) as caught:
        lake.run(DAY2)
    assert [r["rule"] for r in caught.value.rules] == FAILING
    assert caught.value.table == LABELS
    assert "not run, as they read what was not published: t.curated.label_count" in str(caught.value)
    assert head_id(lake.catalog.load(LABELS)) == published, "main did not move"
    assert published_days(lake) == [DAY1]
    assert head_id(lake.catalog.load("t.curated.label_count")) == counted, "its reader did not run"
    sources = lake.query("SELECT DISTINCT ds FROM processed.source").column("ds").to_pylist()
    assert sorted(sources) == [DAY1, DAY2], "a model not reading the stopped one still ran"


def test_cli_run_ds_applies_the_models_gate(lake: Lake) -> None:
    code, out = invoke(lake, "--output", "json", "run", "--ds", str(DAY1))
    assert code == 0, out
    ran = {m["model"]: m for m in json.loads(out)["models"]}
    assert [o["passed"] for o in ran[LABELS]["quality"]] == [True, True]
    published = head_id(lake.catalog.load(LABELS))

    code, out = invoke(lake, "run", "--ds", str(DAY2))
    assert code == 1
    assert f'quality gate on {LABELS} failed: IsComplete "label" (observed' in out
    assert "nothing was published" in out
    code, out = invoke(lake, "--output", "json", "run", "--ds", str(DAY2))
    assert code == 1 and [r["rule"] for r in json.loads(out)["rules"]] == FAILING
    assert head_id(lake.catalog.load(LABELS)) == published
    assert published_days(lake) == [DAY1]


def test_a_pipeline_model_step_without_quality_applies_the_models_gate(lake: Lake) -> None:
    assert lake.pipeline("p").steps["labels"].quality is None
    first = run(lake, DAY1)
    assert first.state == "succeeded", [a.error for a in first.attempts if a.error]
    assert [o["passed"] for o in attempt(first, "labels")["quality"]] == [True, True]
    published = head_id(lake.catalog.load(LABELS))

    second = run(lake, DAY2)
    assert second.state == "failed"
    gate = attempt(second, "labels")
    assert gate["state"] == "failed" and str(gate["error"]).startswith("QualityGateFailed")
    assert [r["rule"] for r in gate["details"]["rules"]] == FAILING
    assert len([a for a in second.attempts if a.step == "labels"]) == 1, "a failed gate is not retried"
    assert head_id(lake.catalog.load(LABELS)) == published
    assert published_days(lake) == [DAY1]


def test_backfill_applies_the_models_gate(lake: Lake) -> None:
    records = [lake.run_record(r.run_id) for r in lake.backfill("p", DAY1, DAY3)]
    assert [(r.ds, r.state) for r in records] == [
        (str(DAY1), "succeeded"),
        (str(DAY2), "failed"),
        (str(DAY3), "failed"),
    ]
    for record in records[1:]:
        assert [r["rule"] for r in attempt(record, "labels")["details"]["rules"]] == FAILING
    assert published_days(lake) == [DAY1]
    table = lake.catalog.load(LABELS)
    assert [name for name in table.refs() if name != "main"] == [], "no audit branch is left"


def test_redrive_applies_the_models_gate_and_a_loosened_ruleset_lets_the_day_through(lake: Lake) -> None:
    run(lake, DAY1)
    failed = run(lake, DAY2)
    published = head_id(lake.catalog.load(LABELS))

    again = lake.run_record(lake.redrive(failed.run_id).run_id)
    assert again.state == "failed" and again.redrive_of == failed.run_id
    assert attempt(again, "source")["state"] == "kept", "kept from the run it redrives"
    assert [r["rule"] for r in attempt(again, "labels")["details"]["rules"]] == FAILING
    assert head_id(lake.catalog.load(LABELS)) == published

    # NULL labels are now accepted, as long as most labels are set.
    (lake.project_dir / "quality" / "labels.dqdl").write_text(
        'Rules = [\n    RowCount = 3,\n    Completeness "label" >= 0.6\n]\n'
    )
    fixed = lake.run_record(lake.redrive(again.run_id).run_id)
    assert fixed.state == "succeeded", [a.error for a in fixed.attempts if a.error]
    assert [o["rule"] for o in attempt(fixed, "labels")["quality"]] == [
        "RowCount = 3",
        'Completeness "label" >= 0.6',
    ]
    assert published_days(lake) == [DAY1, DAY2]


def test_editing_the_ruleset_runs_a_published_day_again(lake: Lake) -> None:
    lake.run(DAY1)
    model = lake.model("curated.labels")
    published = head_id(lake.catalog.load(LABELS))
    assert lake.run_model(model, DAY1).skipped == f"inputs unchanged since snapshot {published}"

    ruleset = lake.project_dir / "quality" / "labels.dqdl"
    ruleset.write_text(RULES.replace('"label"\n', '"label",\n    ColumnValues "n" between 0 and 4\n'))
    rerun = lake.run_model(model, DAY1)
    assert rerun.skipped is None, "the day was published under another ruleset"
    assert len(rerun.quality) == 3 and all(o["passed"] for o in rerun.quality)
    assert lake.run_model(model, DAY1).skipped is not None, "and now under this one"
    head = lake.catalog.load(LABELS).current_snapshot()
    assert head is not None and head.summary is not None
    assert ":gate-" in head.summary.additional_properties["lakeplane.model-sha"]

    # A tightened ruleset that the published day no longer passes: main stays where it was.
    published = head_id(lake.catalog.load(LABELS))
    ruleset.write_text(RULES.replace("RowCount = 3", "RowCount > 3"))
    with pytest.raises(QualityGateFailed) as caught:
        lake.run_model(model, DAY1)
    assert [r["rule"] for r in caught.value.rules] == ["RowCount > 3"]
    assert head_id(lake.catalog.load(LABELS)) == published

    # quality_blocking is part of the gate too: recording only, the day runs again and publishes.
    path = lake.project_dir / "models" / "curated" / "labels.sql"
    path.write_text(
        MODEL.replace(
            "-- quality: quality/labels.dqdl\n",
            "-- quality: quality/labels.dqdl\n-- quality_blocking: false\n",
        )
    )
    recorded = lake.run_model(lake.model("curated.labels"), DAY1)
    assert [(o["passed"], o["blocking"]) for o in recorded.quality] == [(False, False), (True, False)]
    assert head_id(lake.catalog.load(LABELS)) == recorded.snapshot_id != published


BROKEN = 'Rules = [\n    RowCount = 3,\n    IsComplet "label"\n]\n'


def test_a_broken_ruleset_fails_every_path_before_anything_is_written(lake: Lake) -> None:
    lake.run(DAY1)
    published = head_id(lake.catalog.load(LABELS))
    files = data_files(lake)
    (lake.project_dir / "quality" / "labels.dqdl").write_text(BROKEN)
    model = lake.model("curated.labels")

    for day in (DAY1, DAY2):  # DAY1's bookmark would skip it; DAY2 would run
        with pytest.raises(DQDLError) as caught:
            lake.run_model(model, day)
        error = caught.value
        assert (error.source, error.line, error.column) == ("quality/labels.dqdl", 3, 5)
        assert str(error).startswith(
            f"quality gate of {LABELS}: quality/labels.dqdl:3:5: unknown rule type 'IsComplet'"
        )
    with pytest.raises(DQDLError, match="quality/labels.dqdl:3:5"):
        lake.run(DAY2)
    code, out = invoke(lake, "run", "--ds", str(DAY2))
    assert code == 1 and "quality/labels.dqdl:3:5: unknown rule type 'IsComplet'" in out

    record = run(lake, DAY2)
    step = attempt(record, "labels")
    assert record.state == "failed" and str(step["error"]).startswith("DQDLError: quality gate of")
    assert step["details"]["line"] == 3 and step["details"]["source"] == "quality/labels.dqdl"
    assert len([a for a in record.attempts if a.step == "labels"]) == 1, "not retried"

    table = lake.catalog.load(LABELS)
    assert head_id(table) == published and len(table.snapshots()) == len(
        lake.catalog.load(LABELS).snapshots()
    )
    assert [name for name in table.refs() if name != "main"] == []
    assert data_files(lake) == files, "no data file was written"
    assert published_days(lake) == [DAY1]


def test_a_step_ruleset_adds_to_the_models_and_the_same_file_is_evaluated_once(lake: Lake) -> None:
    (lake.project_dir / "quality" / "extra.dqdl").write_text('Rules = [ ColumnValues "n" <= 3 ]\n')
    lake.run(DAY1)
    lake.run_model(lake.model("processed.source"), DAY2)
    model = lake.model("curated.labels")
    both = lake.run_model(model, DAY1, quality="quality/extra.dqdl", blocking=False)
    assert both.skipped is None, "published under the model's gate alone: another gate now"
    assert [(o["ruleset"], o["rule"], o["blocking"]) for o in both.quality] == [
        ("quality/labels.dqdl", "RowCount = 3", True),
        ("quality/labels.dqdl", 'IsComplete "label"', True),
        ("quality/extra.dqdl", 'ColumnValues "n" <= 3', False),
    ]
    # Named by the model and by a step: evaluated once, and a step cannot make the model's gate
    # non-blocking.
    (same,) = lake.model_jobs.gate_rulesets(model, "quality/labels.dqdl", blocking=False)
    assert same.path == "quality/labels.dqdl" and same.blocking
    with pytest.raises(QualityGateFailed):
        lake.run_model(model, DAY2, quality="quality/labels.dqdl", blocking=False)
    assert published_days(lake) == [DAY1]

    with pytest.raises(ConfigError, match="quality: no ruleset file .*nope.dqdl"):
        lake.run_model(model, DAY2, quality="quality/nope.dqdl")
    path = lake.project_dir / "models" / "curated" / "labels.sql"
    path.write_text(MODEL.replace("labels.dqdl", "nope.dqdl"))
    with pytest.raises(ModelError, match=r"labels.sql: quality: no ruleset file .*nope.dqdl") as caught:
        lake.run_model(lake.model("curated.labels"), DAY2)
    assert caught.value.key == "quality"


def test_the_demo_nightly_run_stops_a_partial_day_at_the_models_gate(tmp_path: Path) -> None:
    """The issue's night: a tenth of the usual impressions arrives; ``lakeplane run --ds`` used to
    publish it because the gate sat on the pipeline's step only."""
    demo = build_project(tmp_path / "demo", governed=False)
    stats = "adtech.curated.daily_campaign_stats"
    assert demo.model(stats).header.quality == "quality/daily_campaign_stats.dqdl"
    assert all(step.quality is None for step in demo.pipeline("nightly").steps.values())
    for day, impressions in ((DAY1, 2000), (DAY2, 2000), (DAY3, 200)):
        land_drop(demo, generate_day(tmp_path / "incoming", day, impressions))
    for day in (DAY1, DAY2):
        ran = {m.model: m for m in demo.run(day).models}
        assert len(ran[stats].quality) == 8 and all(o["passed"] for o in ran[stats].quality)
    published = head_id(demo.catalog.load(stats))
    totals = head_id(demo.catalog.load("adtech.curated.campaign_totals"))

    with pytest.raises(QualityGateFailed) as caught:
        demo.run(DAY3)
    assert [r["rule"] for r in caught.value.rules] == ['Sum "impressions" > avg(last(3)) * 0.5']
    assert "not run, as they read what was not published: adtech.curated.campaign_totals" in str(caught.value)
    assert head_id(demo.catalog.load(stats)) == published
    assert head_id(demo.catalog.load("adtech.curated.campaign_totals")) == totals
    days = demo.query("SELECT DISTINCT ds FROM curated.daily_campaign_stats").column("ds").to_pylist()
    assert sorted(days) == [DAY1, DAY2]


def test_a_day_with_no_rows_publishes_nothing_and_audits_nothing(lake: Lake) -> None:
    """The gate audits a write; a run that writes nothing leaves main as it is (a domain whose data
    did not arrive that day, in ``lakeplane run --ds``)."""
    lake.run(DAY1)
    published = head_id(lake.catalog.load(LABELS))
    empty = lake.run_model(lake.model("curated.labels"), DAY3)  # no source rows for DAY3
    assert empty.skipped == EMPTY_RESULT and empty.rows == 0 and empty.quality == []
    table = lake.catalog.load(LABELS)
    assert head_id(table) == published == empty.snapshot_id
    assert [name for name in table.refs() if name != "main"] == []


def test_several_failing_gates_in_one_run_are_reported_together(lake: Lake) -> None:
    root = lake.project_dir
    (root / "models" / "curated" / "doubles.sql").write_text(
        "-- partition_by: [ds]\n-- quality: quality/doubles.dqdl\n"
        "SELECT ds, n * 2 AS n2 FROM processed.source WHERE ds = :ds\n"
    )
    (root / "quality" / "doubles.dqdl").write_text("Rules = [ RowCount = 4 ]\n")
    with pytest.raises(QualityGateFailed) as caught:
        open_lake(root).run(DAY2)
    assert sorted((r["table"], r["rule"]) for r in caught.value.rules) == [
        ("t.curated.doubles", "RowCount = 4"),
        (LABELS, 'IsComplete "label"'),
    ]
    assert f"quality gate on {LABELS} failed" in str(caught.value)
    assert "quality gate on t.curated.doubles failed" in str(caught.value)
    assert published_days(lake) == [], "nothing of either reached consumers"
