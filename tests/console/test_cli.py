"""``lakeplane console`` as a user starts it, and the demo's closing lines that point to it."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pyarrow as pa
import pytest

from lakeplane.cli.output import Printer
from lakeplane.cli.summary import print_demo
from lakeplane.demo.run import DemoResult
from tests.console.conftest import ConsoleLake

LAKEPLANE = [sys.executable, "-m", "lakeplane.cli.main"]


@pytest.mark.slow
def test_console_command_serves_on_the_port_asked_until_stopped(console_lake: ConsoleLake) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    project = str(console_lake.lake.project_dir)
    process = subprocess.Popen(
        [*LAKEPLANE, "--lake", project, "--output", "json", "console", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        printed = ""
        while not printed.rstrip().endswith("}"):
            printed += process.stdout.readline()  # one JSON document, written once listening
        listening = json.loads(printed)
        assert listening["host"] == "127.0.0.1" and listening["port"] > 0
        url = listening["url"]
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}/api/runs", timeout=10)
        assert refused.value.code == 401
        secret = base64.b64encode(f"eve:{console_lake.tokens['eve']}".encode()).decode()
        request = urllib.request.Request(f"{url}/api/me", headers={"Authorization": f"Basic {secret}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            me = json.loads(answer.read())
        assert me["principal"] == "eve" and all(t.startswith("telco.") for t in me["tables"])
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    assert process.returncode == 0


def test_console_on_a_lake_without_policy_says_why(tmp_path: Path) -> None:
    (tmp_path / "lakeplane.yaml").write_text("name: bare\n")
    done = subprocess.run(
        [*LAKEPLANE, "--lake", str(tmp_path), "console", "--port", "0"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")},
        timeout=60,
    )
    assert done.returncode == 1
    assert "governance is off" in done.stderr + done.stdout and "Traceback" not in done.stderr


def test_the_demo_ends_with_the_command_that_opens_the_console(capsys: pytest.CaptureFixture[str]) -> None:
    empty = pa.table({"x": pa.array([], pa.int64())})
    demo = DemoResult(Path("demo"), [], empty, empty, "SELECT 1", {}, {}, "denied")
    print_demo(Printer(), demo)
    last = capsys.readouterr().out.strip().splitlines()[-2:]
    assert last[0].strip().startswith("lakeplane token create ana")
    assert last[1].strip().startswith("lakeplane console --port 8780")


def test_a_port_in_use_is_one_clear_line(tmp_path: Path, console_lake: ConsoleLake) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*LAKEPLANE, "--lake", str(console_lake.lake.project_dir), "console", "--port", str(port)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")},
            timeout=60,
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "Traceback" not in done.stderr
