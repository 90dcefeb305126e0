"""``describe``: each file's partition values, and which snapshots are main's history and which not."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

from lakeplane.cli.main import cli
from lakeplane.errors import QualityGateFailed
from lakeplane.lake import Lake, open_lake
from lakeplane.pipelines.bookmarks import lineage as lineage_of_main
from tests.conftest import head_id

DAY1, DAY2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
MODEL = """-- partition_by: [ds, kind]
-- quality: rules.dqdl
SELECT :ds AS ds, CASE WHEN n < 3 THEN 'small' ELSE 'large' END AS kind, n
FROM (VALUES (1), (2), (3)) AS t(n)
WHERE n < 3 OR :ds = DATE '2026-11-01'
"""
RULES = "Rules = [ RowCount = 3 ]\n"


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    root = tmp_path / "p"
    (root / "models" / "curated").mkdir(parents=True)
    (root / "lakeplane.yaml").write_text("name: t\n")
    (root / "models" / "curated" / "numbers.sql").write_text(MODEL)
    (root / "rules.dqdl").write_text(RULES)
    return open_lake(root)


def test_describe_shows_partition_values_and_marks_snapshots_off_main(lake: Lake) -> None:
    published = lake.run(DAY1).models[0].snapshot_id
    with pytest.raises(QualityGateFailed):  # two rows: the audit snapshot is abandoned
        lake.run(DAY2)
    table = lake.catalog.load("t.curated.numbers")
    assert head_id(table) == published
    # An audit whose publish is pending: a branch from main's head holding one more commit.
    table.manage_snapshots().create_branch(published, "audit-pending").commit()
    rows = pa.table({"ds": [DAY2], "kind": ["small"], "n": [7]})
    table.append(rows.cast(table.schema().as_arrow()), branch="audit-pending")

    info = lake.describe("curated.numbers")
    assert sorted((f["partition"]["ds"], f["partition"]["kind"]) for f in info["files"]) == [
        ("2026-11-01", "large"),
        ("2026-11-01", "small"),
    ]
    lineage = {s["snapshot_id"]: (s["on_main"], s["branch"]) for s in info["snapshots"]}
    pending = lake.catalog.load("t.curated.numbers").snapshot_by_name("audit-pending")
    assert pending is not None and lineage[pending.snapshot_id] == (False, "audit-pending")
    assert lineage[published] == (True, "main") and info["current_snapshot_id"] == published
    abandoned = [sid for sid, where in lineage.items() if where == (False, None)]
    assert len(abandoned) == 1, "the failed audit's snapshot is no branch's"
    assert [s["snapshot_id"] for s in info["snapshots"] if s["on_main"]] == [
        s.snapshot_id for s in reversed(lineage_of_main(lake.catalog.load("t.curated.numbers")))
    ]
    assert info["records"] == 3, "counts are main's"

    runner = CliRunner()
    out = runner.invoke(
        cli, ["--lake", str(lake.project_dir), "--output", "json", "describe", "curated.numbers"]
    )
    assert out.exit_code == 0 and json.loads(out.output)["snapshots"] == info["snapshots"]
    out = runner.invoke(cli, ["--lake", str(lake.project_dir), "describe", "curated.numbers"])
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())  # the table may wrap its cells
    assert "ds=2026-11-01/kind=small" in text and "ds=2026-11-01/kind=large" in text
    assert "partition {}" not in text and "{}" not in text
    assert "* not on main: branch audit-pending" in text
    assert "* not on main: abandoned" in text
    assert "main, current" in text
