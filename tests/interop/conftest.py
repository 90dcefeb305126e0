"""Interop fixtures: the independent Iceberg readers' own virtualenv (``.venv-readers``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
READERS_VENV = REPO / ".venv-readers"
INSTALL_SCRIPT = REPO / "scripts" / "readers-venv.sh"


@pytest.fixture(scope="session")
def reader_python() -> Path:
    """The Python of ``.venv-readers`` (DuckDB 1.5 + iceberg extension, pyiceberg, pyiceberg-core +
    DataFusion, polars, daft), installed by ``scripts/readers-venv.sh`` when missing or stale."""
    # The script does nothing when its stamp matches the requirements, so this is cheap after `make readers`.
    done = subprocess.run(
        ["bash", str(INSTALL_SCRIPT), sys.executable],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    python = READERS_VENV / "bin" / "python"
    if done.returncode != 0 or not python.exists():
        pytest.fail(
            f"{INSTALL_SCRIPT.name} failed ({done.returncode}):\n{done.stderr[-3000:]}", pytrace=False
        )
    return python
