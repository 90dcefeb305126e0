"""The DQDL parser's tables are kept in the user's cache folder; a damaged or foreign file there is
never trusted, and a loaded parser answers exactly as a built one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lakeplane.errors import DQDLError
from lakeplane.quality import dqdl

RULESET = 'Rules = [ RowCount > 0, ColumnValues "a" between 1 and 3 with threshold > 0.5 ]'
BROKEN = "Rules = [ RowCount > 0, ]"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    dqdl._parser.cache_clear()
    yield tmp_path / "lakeplane"
    dqdl._parser.cache_clear()


def answers() -> tuple[str, tuple[str, int | None, int | None]]:
    rules = dqdl.parse(RULESET).to_dqdl()
    with pytest.raises(DQDLError) as refused:
        dqdl.parse(BROKEN)
    return rules, (refused.value.message, refused.value.line, refused.value.column)


def test_a_loaded_parser_answers_as_a_built_one(cache: Path) -> None:
    built = answers()
    [saved] = cache.glob("dqdl-*.lark")
    assert list(cache.iterdir()) == [saved], "no half-written file is left behind"
    dqdl._parser.cache_clear()
    assert answers() == built
    assert saved.stat().st_mtime_ns == next(cache.glob("dqdl-*.lark")).stat().st_mtime_ns, (
        "loaded, not rebuilt"
    )


def test_a_damaged_cache_file_is_built_again(cache: Path) -> None:
    built = answers()
    [saved] = cache.glob("dqdl-*.lark")
    saved.write_bytes(b"not a parser")
    dqdl._parser.cache_clear()
    assert answers() == built
    assert saved.read_bytes() != b"not a parser"


def test_an_unwritable_cache_folder_only_costs_time(cache: Path) -> None:
    cache.parent.mkdir(exist_ok=True)
    cache.write_text("a file where the folder should be")
    assert answers()[0].startswith("Rules = [")


def test_without_a_home_folder_the_parser_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    dqdl._parser.cache_clear()
    try:
        assert answers()[0].startswith("Rules = [")
    finally:
        dqdl._parser.cache_clear()
