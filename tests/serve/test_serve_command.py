"""``lakeplane serve``: its configuration, and its refusals before anything listens."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from lakeplane.cli.main import cli
from lakeplane.config import ServeConfig, load_config
from lakeplane.errors import ConfigError
from lakeplane.lake import init_project


def test_the_serve_section_is_read_and_checked(tmp_path: Path):
    init_project(tmp_path, "shop")
    config = tmp_path / "lakeplane.yaml"
    config.write_text(config.read_text() + "\nserve:\n  pg_port: 6543\n  flight_port: 0\n")
    assert load_config(tmp_path).serve == ServeConfig(pg_port=6543, flight_port=0)
    config.write_text(config.read_text().replace("  flight_port: 0\n", "  pg_prot: 1\n"))
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert "lakeplane.yaml" in str(caught.value) and "serve.pg_prot" in str(caught.value)


def test_serve_refuses_a_lake_without_a_policy(tmp_path: Path):
    init_project(tmp_path, "shop")
    result = CliRunner().invoke(cli, ["--lake", str(tmp_path), "--output", "json", "serve", "--pg-port", "0"])
    assert result.exit_code == 1
    error = json.loads(result.output)
    assert error["error"] == "ConfigError" and "policy.yaml" in error["message"]


def test_one_process_serves_both_listeners_when_flight_is_installed(pg_lake):
    from lakeplane.serve.runner import QueryService, flight_service

    service = QueryService(pg_lake, ServeConfig(pg_port=0, flight_port=_free_port()))
    listening = service.start()
    try:
        with socket.create_connection(("127.0.0.1", listening.pg_port), timeout=5):
            pass
        if flight_service() is None:
            assert listening.flight_port is None and "not installed" in (listening.flight_note or "")
        else:
            assert listening.flight_port is not None
            with socket.create_connection(("127.0.0.1", listening.flight_port), timeout=5):
                pass
    finally:
        service.shutdown()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", listening.pg_port), timeout=2)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
