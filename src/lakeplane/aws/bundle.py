"""What ``lakeplane aws submit`` uploads to ``aws.code_uri``: lakeplane as a wheel, the project's
files, the entry script that Spark, Glue and EMR steps run, and the EMR bootstrap that installs the
wheel on every node."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import lakeplane

#: A fixed time for every archive member, so the same sources give the same bytes.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
SKIPPED_DIRS = {"__pycache__", ".git", ".venv", ".lakeplane"}

ENTRY_SCRIPT_TEXT = '''"""Runs a lakeplane step on EMR, EMR Serverless or Glue (`lakeplane aws submit`)."""
import sys

from lakeplane.aws.entry import main

sys.exit(main(sys.argv[1:]))
'''

BOOTSTRAP_TEXT = """#!/bin/bash
# Installs lakeplane's wheel (and its dependencies) on an EMR node; argument: the wheel's s3:// URI.
set -euo pipefail
aws s3 cp "$1" /tmp/
sudo python3 -m pip install --quiet "/tmp/$(basename "$1")"
"""


@dataclass(frozen=True)
class BundleFile:
    """One object to upload: its name under ``<code_uri>/<project>/`` and its bytes."""

    name: str
    data: bytes


def build_bundle(project_dir: Path, lake_folder: Path | None, version: str) -> list[BundleFile]:
    """The wheel, the project archive (without its local lake and state), the entry and bootstrap."""
    return [
        BundleFile(f"lakeplane-{version}-py3-none-any.whl", build_wheel(version)),
        BundleFile("project.zip", project_archive(project_dir, lake_folder)),
        BundleFile("entry.py", ENTRY_SCRIPT_TEXT.encode()),
        BundleFile("bootstrap.sh", BOOTSTRAP_TEXT.encode()),
    ]


def project_archive(project_dir: Path, lake_folder: Path | None) -> bytes:
    """The project's files; its local lake folder and state stay here (the job reads the S3 lake)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(project_dir.rglob("*")):
            relative = path.relative_to(project_dir)
            if path.is_dir() or SKIPPED_DIRS & set(relative.parts):
                continue
            if lake_folder is not None and path.resolve().is_relative_to(lake_folder.resolve()):
                continue
            _add(archive, relative.as_posix(), path.read_bytes())
    return buffer.getvalue()


def build_wheel(version: str) -> bytes:
    """A pure-Python wheel of the running lakeplane package, with its installed metadata (so pip
    installs its dependencies); importable from ``--py-files`` as it is."""
    package = Path(lakeplane.__file__).parent
    dist_info = f"lakeplane-{version}.dist-info"
    records: list[str] = []
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for path in sorted(package.rglob("*")):
            relative = path.relative_to(package.parent)
            if path.is_dir() or SKIPPED_DIRS & set(relative.parts) or path.suffix == ".pyc":
                continue
            records.append(_add(wheel, relative.as_posix(), path.read_bytes()))
        for name, text in (("METADATA", _metadata(version)), ("WHEEL", _wheel_file())):
            records.append(_add(wheel, f"{dist_info}/{name}", text.encode()))
        records.append(f"{dist_info}/RECORD,,")
        _add(wheel, f"{dist_info}/RECORD", ("\n".join(records) + "\n").encode())
    return buffer.getvalue()


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> str:
    info = zipfile.ZipInfo(name, ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _metadata(version: str) -> str:
    try:
        installed = metadata.distribution("lakeplane").read_text("METADATA")
    except metadata.PackageNotFoundError:
        installed = None
    if installed:
        lines = [
            f"Version: {version}" if line.startswith("Version:") else line for line in installed.splitlines()
        ]
        return "\n".join(lines) + "\n"
    return f"Metadata-Version: 2.1\nName: lakeplane\nVersion: {version}\n"


def _wheel_file() -> str:
    return "Wheel-Version: 1.0\nGenerator: lakeplane aws submit\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
