"""The governed demo lake with two days of telco calls, and ways to give it workgroups.

``telco.processed.cdr`` is partitioned by ``ds`` (one file per day), ``telco.processed.subscribers``
holds the first day. Each test gets its own copy (landing and ingesting take about half a second),
since workgroups, slots and history live in the project's catalog database.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lakeplane.cli.main import cli
from lakeplane.demo import telco
from lakeplane.demo.run import build_project
from lakeplane.lake import Lake, open_lake

DAYS = (dt.date(2026, 11, 1), dt.date(2026, 11, 2))
CDR = "telco.processed.cdr"
SUBSCRIBERS = "telco.processed.subscribers"
CALLS_PER_DAY = 500


@pytest.fixture(scope="session")
def telco_drops(tmp_path_factory: pytest.TempPathFactory) -> dict[dt.date, dict[str, list[Path]]]:
    root = tmp_path_factory.mktemp("telco-drops")
    return {day: telco.generate_day(root, day, CALLS_PER_DAY) for day in DAYS}


@pytest.fixture
def telco_lake(tmp_path: Path, telco_drops: dict[dt.date, dict[str, list[Path]]]) -> Lake:
    """A fresh governed demo project holding two ingested days of calls."""
    lake = build_project(tmp_path / "project")
    for day, files in telco_drops.items():
        for dataset, paths in files.items():
            if not paths:
                continue
            lake.land(dataset, paths, day)
            if lake.raw.batches(dataset, day):  # a drop equal to the day before lands nothing new
                lake.ingest(dataset, day)
    return lake


def with_workgroups(lake: Lake, section: str) -> Lake:
    """``lake`` reopened with ``section`` (a ``workgroups:`` block) appended to its lakeplane.yaml."""
    config = lake.project_dir / "lakeplane.yaml"
    config.write_text(config.read_text() + "\n" + section)
    return open_lake(lake.project_dir)


def invoke(lake: Lake, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--lake", str(lake.project_dir), *args])
    return result.exit_code, result.output


def lakeplane(lake: Lake, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``lakeplane ARGS`` in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "lakeplane.cli.main", "--lake", str(lake.project_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
        check=False,
    )


#: A process that takes one running slot of a workgroup and keeps it until killed.
SLOT_HOLDER = """
import sys, time
from lakeplane.lake import open_lake
lake = open_lake(sys.argv[1])
slot = lake.queries.admission.slots.try_acquire(sys.argv[2], int(sys.argv[3]), "held-elsewhere")
print("held" if slot else "busy", flush=True)
time.sleep(300)
"""


@contextmanager
def slot_held_elsewhere(lake: Lake, workgroup: str, limit: int) -> Iterator[subprocess.Popen[str]]:
    """Another process holding one of ``workgroup``'s slots; killed (SIGKILL) when done."""
    holder = subprocess.Popen(
        [sys.executable, "-c", SLOT_HOLDER, str(lake.project_dir), workgroup, str(limit)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()


class SessionWatch:
    """Counts the engine sessions ``lake``'s queries open and the scans they register, and can slow
    every query down (``hold_s``) while counting how many run at once."""

    def __init__(self, lake: Lake, hold_s: float = 0.0) -> None:
        self.opened = 0
        self.scans: list[list[str]] = []
        self.running = 0
        self.most_at_once = 0
        self.hold_s = hold_s
        self._lock = threading.Lock()
        original: Callable[..., Any] = lake.compute.session
        watch = self

        def session(*args: Any, **kwargs: Any) -> Any:
            opened = original(*args, **kwargs)
            with watch._lock:
                watch.opened += 1
            register, reader = opened.register_scan, opened.arrow_reader

            def register_scan(alias: str, source: Any) -> None:
                watch.scans.append(list(source.files))
                register(alias, source)

            def arrow_reader(sql: str) -> Any:
                with watch._lock:
                    watch.running += 1
                    watch.most_at_once = max(watch.most_at_once, watch.running)
                try:
                    if watch.hold_s:
                        threading.Event().wait(watch.hold_s)
                    return reader(sql)
                finally:
                    with watch._lock:
                        watch.running -= 1

            opened.register_scan, opened.arrow_reader = register_scan, arrow_reader
            return opened

        lake.compute.session = session  # type: ignore[method-assign]
