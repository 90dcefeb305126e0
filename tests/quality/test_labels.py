"""DQDL labels carried into every result: evaluated outcomes, ``dq check`` (json, table, ``--label``),
a pipeline run's stored gate and check outcomes, ``run-show``, and the console's quality and run pages."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from lakeplane.cli.main import cli
from lakeplane.config_console import ConsoleConfig
from lakeplane.console.app import create_app
from lakeplane.governance.tokens import access_tokens
from lakeplane.lake import Lake, open_lake
from lakeplane.pipelines.store import RunRecord
from lakeplane.quality import evaluate
from lakeplane.quality.rules import CompositeRule, Condition, Num, Rule, Ruleset

DAY = dt.date(2026, 11, 1)
MODEL = """-- partition_by: [ds]
SELECT :ds AS ds, n, CASE WHEN n = 3 THEN NULL ELSE 'x' || n END AS label
FROM (VALUES (1), (2), (3)) AS t(n)
"""
GATE = """DefaultLabels = ["team"="growth", "tier"="1"]
Rules = [
    RowCount = 3 labels=["tier"="0"],
    Variance "n" > 0.5,
    ColumnValues "n" between 0 and 4
]
"""
CHECKS = """DefaultLabels = ["team"="growth"]
Rules = [
    IsComplete "label" labels=["owner"="ana", "severity"="high"],
    ((RowCount > 0) and (Mean "n" = 2 labels=["part"="mean"])) labels=["kind"="composite"],
    ColumnExists "n"
]
"""
PIPELINE = """
steps:
  labels: {model: curated.labels, quality: gate.dqdl}
  check: {quality: checks.dqdl, table: curated.labels, depends_on: [labels], blocking: false}
"""


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root = tmp_path_factory.mktemp("labels") / "p"
    (root / "models" / "curated").mkdir(parents=True)
    (root / "pipelines").mkdir()
    (root / "lakeplane.yaml").write_text("name: t\n")
    (root / "models" / "curated" / "labels.sql").write_text(MODEL)
    (root / "pipelines" / "labelled.yaml").write_text(PIPELINE)
    (root / "gate.dqdl").write_text(GATE)
    (root / "checks.dqdl").write_text(CHECKS)
    return open_lake(root)


@pytest.fixture(scope="module")
def run(lake: Lake) -> RunRecord:
    record = lake.run_pipeline("labelled", DAY)
    assert record.state == "succeeded", record.reason
    return lake.run_record(record.run_id)


def invoke(lake: Lake, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--lake", str(lake.project_dir), *args])
    return result.exit_code, result.output


GATE_LABELS = [
    {"team": "growth", "tier": "0"},
    {"team": "growth", "tier": "1"},
    {"team": "growth", "tier": "1"},
]
CHECK_LABELS = [
    {"team": "growth", "owner": "ana", "severity": "high"},
    {"team": "growth", "kind": "composite"},
    {"team": "growth"},
]


def test_outcomes_carry_the_labels_of_their_rules(lake: Lake) -> None:
    condition = Condition(">", (Num(0.0),))
    rules = Ruleset(
        (
            Rule("RowCount", condition=condition, labels=(("team", "a"),)),
            Rule("Mean", ("missing",), condition, labels=(("team", "b"),)),  # an error outcome
            CompositeRule(
                "or",
                (
                    Rule("RowCount", condition=condition, labels=(("part", "1"),)),
                    Rule("ColumnCount", condition=condition),
                ),
                labels=(("kind", "either"),),
            ),
        )
    )
    with lake.compute.embedded("labels") as session:
        session.execute("CREATE TEMPORARY VIEW numbers AS SELECT 1 AS n")
        first, broken, composite = evaluate(rules, session, "numbers")
    assert first.labels == {"team": "a"} and first.passed
    assert broken.error and broken.labels == {"team": "b"}
    assert composite.labels == {"kind": "either"}
    assert [c.labels for c in composite.children] == [{"part": "1"}, {}]
    assert composite.to_dict()["children"][0]["labels"] == {"part": "1"}


def test_dq_check_reports_labels_in_json_and_in_the_table(lake: Lake, run: RunRecord) -> None:
    code, out = invoke(
        lake, "--output", "json", "dq", "check", "curated.labels", str(lake.project_dir / "checks.dqdl")
    )
    assert code == 1, out  # IsComplete "label" fails: n = 3 has no label
    assert [o["labels"] for o in json.loads(out)] == CHECK_LABELS
    code, out = invoke(lake, "dq", "check", "curated.labels", str(lake.project_dir / "checks.dqdl"))
    header = out.splitlines()[1]
    assert code == 1 and "labels" in header and "owner=ana" in out and "kind=composite" in out, out


def test_dq_check_reports_only_the_rules_with_the_labels_asked_for(lake: Lake, run: RunRecord) -> None:
    base = ("--output", "json", "dq", "check", "curated.labels", str(lake.project_dir / "checks.dqdl"))
    code, out = invoke(lake, *base, "--label", "kind=composite")
    assert code == 0, "the failing rule is not reported"
    (composite,) = json.loads(out)
    assert composite["rule"].startswith("(RowCount > 0) and") and composite["labels"] == CHECK_LABELS[1]
    assert [c["labels"] for c in composite["children"]] == [
        {"team": "growth"},
        {"team": "growth", "part": "mean"},
    ]
    code, out = invoke(lake, *base, "--label", "team=growth", "--label", "severity=high")
    assert code == 1 and [o["labels"]["owner"] for o in json.loads(out)] == ["ana"]
    code, out = invoke(lake, *base, "--label", "team=other")
    assert code == 0 and json.loads(out) == []
    code, out = invoke(lake, *base, "--label", "team")
    assert code == 2 and "'team' is not KEY=VALUE" in out


def test_a_pipeline_run_keeps_the_labels_of_its_gate_and_its_checks(lake: Lake, run: RunRecord) -> None:
    stored = {a.step: a.metrics["quality"] for a in run.attempts}
    assert [o["labels"] for o in stored["labels"]] == GATE_LABELS
    assert [o["labels"] for o in stored["check"]] == CHECK_LABELS
    code, out = invoke(lake, "--output", "json", "run-show", run.run_id)
    assert code == 0, out
    shown = {a["step"]: a["metrics"]["quality"] for a in json.loads(out)["attempts"]}
    assert [o["labels"] for o in shown["check"]] == CHECK_LABELS
    code, out = invoke(lake, "run-show", run.run_id)
    assert code == 0, out
    assert 'labels: pass RowCount = 3 labels=["tier"="0"] [team=growth, tier=0]' in out, out
    assert 'check: FAIL IsComplete "label"' in out and "[team=growth, owner=ana, severity=high]" in out


POLICY = """
principals:
  users:
    ana: {roles: [analyst]}
  roles: [analyst]
grants:
  - to: role:analyst
    privileges: [SELECT]
    on: t
"""


def test_the_console_shows_labels_on_the_quality_and_run_pages(lake: Lake, run: RunRecord) -> None:
    (lake.project_dir / "policy.yaml").write_text(POLICY)
    governed = open_lake(lake.project_dir)
    secret = access_tokens(governed.governance).create("ana").secret
    client = TestClient(create_app(governed, ConsoleConfig(admins=["ana"], port=0)))
    quality = client.get("/api/quality", auth=("ana", secret)).json()
    by_rule = {r["rule"]: r["labels"] for r in quality["rules"]}
    assert by_rule['IsComplete "label" labels=["owner"="ana", "severity"="high"]'] == CHECK_LABELS[0]
    assert by_rule['Variance "n" > 0.5'] == GATE_LABELS[1]
    page = client.get("/quality", auth=("ana", secret))
    assert page.status_code == 200
    assert '<span class="dq-label">severity=high</span>' in page.text
    run_page = client.get(f"/runs/{run.run_id}", auth=("ana", secret))
    assert run_page.status_code == 200 and '<span class="dq-label">kind=composite</span>' in run_page.text
    answer = client.get(f"/api/runs/{run.run_id}", auth=("ana", secret)).json()
    check = next(a for a in answer["attempts"] if a["step"] == "check")
    assert [q["labels"] for q in check["quality"]] == CHECK_LABELS
