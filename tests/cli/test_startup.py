"""The CLI starts fast: help and version import no heavy library, and commands load when they run."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from lakeplane.cli.main import COMMANDS, cli

#: Libraries that only a command's body may import.
HEAVY = ("pyiceberg", "pyarrow", "duckdb", "sqlalchemy", "sqlglot", "pyspark", "pydantic", "lark")


def loaded_after(code: str) -> list[str]:
    """The top-level modules a fresh interpreter has loaded after ``code``, among ``HEAVY`` and
    lakeplane's command modules."""
    probe = (
        "import json, sys\n"
        f"{code}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in "
        f"{HEAVY!r}}} | {{m for m in sys.modules if m.startswith('lakeplane.cli.')}})), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return list(json.loads(done.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "args", [["--help"], ["--version"], ["query", "--help"], ["run", "--help"], ["dq", "check", "--help"]]
)
def test_help_and_version_import_no_heavy_library(args: list[str]) -> None:
    loaded = loaded_after(
        "from lakeplane.cli.main import main\n"
        f"sys.argv = ['lakeplane', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert exit.code == 0, exit.code"
    )
    assert not set(loaded) & set(HEAVY), loaded


def test_listing_the_commands_imports_none_of_them() -> None:
    loaded = loaded_after(
        "import click\nfrom lakeplane.cli.main import cli\nprint(cli.list_commands(click.Context(cli)))"
    )
    assert [m for m in loaded if m.startswith("lakeplane.cli.")] == [
        "lakeplane.cli.context",
        "lakeplane.cli.group",
        "lakeplane.cli.main",
        "lakeplane.cli.output",
    ]


def every_command(group: click.Group, ctx: click.Context) -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        found.append((f"{ctx.command_path} {name}", command))
        if isinstance(command, click.Group):
            found += every_command(command, click.Context(command, info_name=name, parent=ctx))
    return found


def test_every_command_takes_output_and_debug_and_loads_under_its_name() -> None:
    root = click.Context(cli, info_name="lakeplane")
    commands = every_command(cli, root)
    assert {path.split()[1] for path, _ in commands} == set(COMMANDS)
    for path, command in commands:
        options = {opt for param in command.params for opt in getattr(param, "opts", ())}
        assert {"--output", "--debug"} <= options, path
        if path.count(" ") == 1:
            assert command.name == path.split()[1], (path, command.name)
