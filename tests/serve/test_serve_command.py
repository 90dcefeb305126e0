"""``lakeplane serve``: its configuration, and its refusals before anything listens."""

from __future__ import annotations

import json
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
