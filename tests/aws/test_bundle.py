"""What submit uploads: a wheel pip and ``--py-files`` can use, and the project without its lake."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from lakeplane.aws.bundle import build_bundle, build_wheel, project_archive
from lakeplane.demo.run import build_project
from tests.conftest import DAY1


def test_wheel_records_every_file_and_imports_from_the_zip(tmp_path: Path) -> None:
    data = build_wheel("0.1.0")
    assert data == build_wheel("0.1.0")  # the same sources give the same bytes
    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        names = set(wheel.namelist())
        assert {
            "lakeplane/__init__.py",
            "lakeplane/aws/entry.py",
            "lakeplane/demo/project/lakeplane.yaml",
        } <= names
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
        metadata = wheel.read("lakeplane-0.1.0.dist-info/METADATA").decode()
        assert "Name: lakeplane" in metadata and "Version: 0.1.0" in metadata
        assert "Requires-Dist: pyiceberg" in metadata  # pip installs the dependencies with it
        records = wheel.read("lakeplane-0.1.0.dist-info/RECORD").decode().splitlines()
        for line in records:
            name, digest, size = line.rsplit(",", 2)
            if not digest:
                continue
            body = wheel.read(name)
            assert (
                digest
                == "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()
            )
            assert int(size) == len(body)
        assert len(records) == len(names)
    path = tmp_path / "lakeplane-0.1.0-py3-none-any.whl"
    path.write_bytes(data)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(path)}
    done = subprocess.run(
        [sys.executable, "-c", "import lakeplane.aws.entry, lakeplane; print(lakeplane.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(path))


def test_project_archive_leaves_the_local_lake_and_state_behind(tmp_path: Path, drops: dict) -> None:
    lake = build_project(tmp_path / "project", governed=False)
    for dataset, files in drops[DAY1].files.items():
        lake.land(dataset, files, DAY1)
    (lake.project_dir / ".lakeplane").mkdir(exist_ok=True)
    (lake.project_dir / ".lakeplane" / "runs.sqlite").write_bytes(b"state")
    assert any((lake.project_dir / "lake").rglob("*.ndjson*"))
    with zipfile.ZipFile(io.BytesIO(project_archive(lake.project_dir, lake.project_dir / "lake"))) as archive:
        names = set(archive.namelist())
    assert {"lakeplane.yaml", "pipelines/nightly.yaml", "quality/daily_campaign_stats.dqdl"} <= names
    assert not [n for n in names if n.startswith(("lake/", ".lakeplane/"))]
    bundle = {item.name for item in build_bundle(lake.project_dir, lake.project_dir / "lake", "0.1.0")}
    assert bundle == {"lakeplane-0.1.0-py3-none-any.whl", "project.zip", "entry.py", "bootstrap.sh"}
