"""Write-audit-publish gates and ``lakeplane dq check`` on a real lake."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lakeplane.cli.main import cli
from lakeplane.errors import QualityGateFailed
from lakeplane.lake import Lake, open_lake
from tests.conftest import head_id

DAY1, DAY2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
MODEL = """-- partition_by: [ds]
SELECT :ds AS ds, n, CASE WHEN n = 3 AND :ds > DATE '2026-11-01' THEN NULL ELSE 'x' || n END AS label
FROM (VALUES (1), (2), (3)) AS t(n)
"""
RULES = """Rules = [
    RowCount = 3,
    IsComplete "label",
    ColumnValues "n" between 0 and 4
]
"""


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    root = tmp_path / "p"
    (root / "models" / "curated").mkdir(parents=True)
    (root / "lakeplane.yaml").write_text("name: t\n")
    (root / "models" / "curated" / "labels.sql").write_text(MODEL)
    (root / "rules.dqdl").write_text(RULES)
    return open_lake(root)


def test_a_passing_gate_publishes_and_a_failing_one_leaves_main_untouched(lake: Lake) -> None:
    model = lake.model("curated.labels")
    first = lake.run_model(model, DAY1, quality="rules.dqdl")
    assert [o["passed"] for o in first.quality] == [True, True, True]
    table = lake.catalog.load("t.curated.labels")
    published = table.current_snapshot()
    assert published is not None and published.snapshot_id == first.snapshot_id

    with pytest.raises(QualityGateFailed) as caught:
        lake.run_model(model, DAY2, quality="rules.dqdl")
    assert [r["rule"] for r in caught.value.rules] == ['IsComplete "label"']
    table = lake.catalog.load("t.curated.labels")
    assert head_id(table) == published.snapshot_id, "main did not move"
    assert [name for name in table.refs() if name != "main"] == [], "the audit branch is gone"
    days = lake.query("SELECT DISTINCT ds FROM curated.labels").column("ds").to_pylist()
    assert days == [DAY1], "nothing of the failing day reached consumers"


def test_dq_check_lists_every_rule_in_order(lake: Lake) -> None:
    lake.run_model(lake.model("curated.labels"), DAY1)
    result = CliRunner().invoke(
        cli,
        [
            "--lake",
            str(lake.project_dir),
            "--output",
            "json",
            "dq",
            "check",
            "curated.labels",
            str(lake.project_dir / "rules.dqdl"),
        ],
    )
    assert result.exit_code == 0, result.output
    outcomes = json.loads(result.output)
    assert [o["rule"] for o in outcomes] == [
        "RowCount = 3",
        'IsComplete "label"',
        'ColumnValues "n" between 0 and 4',
    ]
    assert [o["passed"] for o in outcomes] == [True, True, True] and outcomes[0]["observed"] == 3
    (lake.project_dir / "bad.dqdl").write_text("Rules = [\n    RowCont > 1\n]\n")
    result = CliRunner().invoke(
        cli,
        [
            "--lake",
            str(lake.project_dir),
            "dq",
            "check",
            "curated.labels",
            str(lake.project_dir / "bad.dqdl"),
        ],
    )
    assert (
        result.exit_code == 1
        and ":2:5: unknown rule type 'RowCont'; did you mean 'RowCount'" in result.output
    )
