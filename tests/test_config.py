from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from lakeplane.cli.main import cli
from lakeplane.config import load_config
from lakeplane.errors import ConfigError
from lakeplane.lake import init_project, open_lake


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "lakeplane.yaml").write_text(text)
    return tmp_path


def test_zero_config_defaults_to_local_lake_sqlite_and_duckdb(tmp_path: Path) -> None:
    lake = open_lake(tmp_path)
    assert lake.config.engine.type == "duckdb"
    assert lake.storage.is_local and lake.storage.base == str((tmp_path / "lake").resolve())
    assert lake.catalog.uri == f"sqlite:///{tmp_path.resolve()}/lake/catalog.db"


def test_init_writes_a_commented_default_that_loads(tmp_path: Path) -> None:
    config = init_project(tmp_path / "p", name="sales")
    assert "#" in config.read_text()
    loaded = load_config(tmp_path / "p")
    assert loaded.name == "sales"
    with pytest.raises(ConfigError, match="already exists"):
        init_project(tmp_path / "p")


def test_unknown_key_names_file_key_and_line(tmp_path: Path) -> None:
    write(tmp_path, "name: x\nengine:\n  type: duckdb\n  memory_limt: 1GB\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    err = caught.value
    assert err.key == "engine.memory_limt"
    assert err.line == 4
    assert str(tmp_path / "lakeplane.yaml") in str(err) and "unknown key" in str(err)


def test_wrong_value_names_the_dataset_field(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
datasets:
  partner/events:
    format: ndjson
    table: ads.processed.events
    fields:
      id: {type: strng}
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert caught.value.key == "datasets.partner/events.fields.id.type"
    assert caught.value.line == 7
    assert "unknown field type 'strng'" in str(caught.value)


def test_bad_table_name_and_bad_yaml(tmp_path: Path) -> None:
    write(tmp_path, "datasets:\n  a/b:\n    format: csv\n    table: events\n    fields: {}\n")
    with pytest.raises(ConfigError, match=r"datasets.a/b.table: table 'events' must be"):
        load_config(tmp_path)
    write(tmp_path, "engine: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path)


def test_precedence_overrides_then_env_then_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "engine:\n  memory_limit: 1GB\n  threads: 1\n")
    assert load_config(tmp_path).engine.memory_limit == "1GB"
    monkeypatch.setenv("LAKEPLANE__ENGINE__MEMORY_LIMIT", "3GB")
    config = load_config(tmp_path)
    assert config.engine.memory_limit == "3GB" and config.engine.threads == 1
    assert load_config(tmp_path, {"engine": {"memory_limit": "5GB"}}).engine.memory_limit == "5GB"


def test_unknown_engine_type_is_a_config_error(tmp_path: Path) -> None:
    write(tmp_path, "engine:\n  type: duckbd\n")
    with pytest.raises(ConfigError, match="engine"):
        load_config(tmp_path)


def test_cli_prints_config_error_as_one_line(tmp_path: Path) -> None:
    write(tmp_path, "storage:\n  rooot: x\n")
    result = CliRunner().invoke(cli, ["--lake", str(tmp_path), "tables"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 1 and "storage.rooot: unknown key" in lines[0] and ":2:" in lines[0]


def test_env_values_are_validated_as_env_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "name: sales\nspark:\n  skew:\n    detect: true\n")
    monkeypatch.setenv("LAKEPLANE__NAME", "no")  # YAML 1.1 would make this False
    monkeypatch.setenv("LAKEPLANE__SPARK__SKEW__DETECT", "no")  # a boolean field reads it as false
    monkeypatch.setenv("LAKEPLANE__SPARK__CONF", '{"spark.sql.ansi.enabled": "false"}')
    monkeypatch.setenv("lakeplane__engine__threads", "3")  # names are case-insensitive
    monkeypatch.setenv("LAKEPLANE__ENGINE__TEMP_DIR", "null")
    config = load_config(tmp_path)
    assert config.name == "no" and config.spark.skew.detect is False
    assert config.spark.conf == {"spark.sql.ansi.enabled": "false"}
    assert config.engine.threads == 3 and config.engine.temp_dir is None


@pytest.mark.parametrize(
    "name, value, message",
    [
        (
            "LAKEPLANE__ENGINE__THREADS",
            "many",
            "environment LAKEPLANE__ENGINE__THREADS: engine.threads: Input should be a valid integer",
        ),
        (
            "LAKEPLANE__ENGINE__THREADS",
            "0",
            "environment LAKEPLANE__ENGINE__THREADS: engine.threads: Input should be greater than or equal to 1",
        ),
        (
            "LAKEPLANE__ENGINE__MEMORY_LIMT",
            "1GB",
            "environment LAKEPLANE__ENGINE__MEMORY_LIMT: engine.memory_limt: unknown key",
        ),
        ("LAKEPLANE__ENGIN__TYPE", "spark", "environment LAKEPLANE__ENGIN__TYPE: engin.type: unknown key"),
        (
            "LAKEPLANE__DATASETS",
            '{"a/b": {"format": "csv"}}',
            "environment LAKEPLANE__DATASETS: datasets.a/b.table: Field required",
        ),
        ("LAKEPLANE__DATASETS", "{not json", "environment LAKEPLANE__DATASETS: datasets: not valid JSON"),
    ],
)
def test_a_bad_env_value_names_the_variable_not_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    write(tmp_path, "name: x\nengine:\n  threads: 2\n")
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert str(caught.value).startswith(message), str(caught.value)
    assert caught.value.variable == name and caught.value.file is None
    assert "lakeplane.yaml" not in str(caught.value)


def test_a_bad_file_value_under_an_env_section_still_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "engine:\n  threads: many\n")
    monkeypatch.setenv("LAKEPLANE__ENGINE__MEMORY_LIMIT", "3GB")
    with pytest.raises(ConfigError, match=r"lakeplane.yaml:2: engine.threads: .*\(got 'many'\)") as caught:
        load_config(tmp_path)
    assert caught.value.variable is None and caught.value.line == 2
    monkeypatch.setenv("LAKEPLANE__ENGINE__THREADS", "4")  # the variable replaces the file's value
    assert load_config(tmp_path).engine.threads == 4
    with pytest.raises(ConfigError, match=r"^overrides: engine.threads: Input should be a valid integer"):
        load_config(tmp_path, {"engine": {"threads": "lots"}})
