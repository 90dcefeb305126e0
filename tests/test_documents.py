"""The one YAML loader: line numbers of keys, pydantic validation, ``file:line: key: problem`` errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

from lakeplane.documents import load_document, parse_document, sql_header
from lakeplane.errors import ConfigError, ModelError, PolicyError


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size: int = 1
    tags: list[str] = []


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "x"
    flag: bool = False
    items: list[Inner] = []
    choice: int | list[int] = 0


TEXT = """\
# a comment
name: demo
items:
  - size: 2
  - size: 3
    tags: [a, b]
"""


def test_a_valid_document_becomes_the_model() -> None:
    loaded = load_document(TEXT, Outer, source="demo.yaml", error=ConfigError)
    assert loaded == Outer(name="demo", items=[Inner(size=2), Inner(size=3, tags=["a", "b"])])


def test_lines_of_keys_and_list_items() -> None:
    document = parse_document(TEXT, source="demo.yaml", error=ConfigError)
    assert document.lines[("name",)] == 2
    assert document.lines[("items", "1")] == 5 and document.lines[("items", "1", "tags")] == 6
    assert document.line(("items", "1", "missing")) == 5  # a missing key points at its parent


@pytest.mark.parametrize(
    "text, message, line, key",
    [
        (
            "name: a\nitems:\n  - size: 2\n  - sise: 3\n",
            "demo.yaml:4: items.1.sise: unknown key",
            4,
            "items.1.sise",
        ),
        (
            "items:\n  - size: big\n",
            "demo.yaml:2: items.0.size: Input should be a valid integer, unable to "
            "parse string as an integer (got 'big')",
            2,
            "items.0.size",
        ),
        # each member of a union is tried: pydantic's location names the member, the message does not
        ("name: a\nchoice: [x]\n", "demo.yaml:2: choice: Input should be a valid integer", 2, "choice"),
        ("flag: maybe\n", "demo.yaml:1: flag: Input should be a valid boolean", 1, "flag"),
    ],
)
def test_errors_name_file_line_and_dotted_key(text: str, message: str, line: int, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_document(text, Outer, source="demo.yaml", error=ConfigError)
    assert str(caught.value).startswith(message)
    assert (caught.value.file, caught.value.line, caught.value.key) == ("demo.yaml", line, key)


def test_yaml_1_2_booleans_keep_words_as_strings() -> None:
    assert load_document("name: no\n", Outer, source="s", error=ConfigError).name == "no"
    assert load_document("flag: true\n", Outer, source="s", error=ConfigError).flag is True


def test_the_caller_chooses_the_error_class_and_the_wording_of_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("name: a\nnope: 1\n")
    with pytest.raises(PolicyError, match=f"^{path}:2: nope: unknown key$"):
        load_document(path, Outer, error=PolicyError)
    with pytest.raises(ModelError, match="m.sql:2: nope: unknown header key"):
        load_document(
            "name: a\nnope: 1\n", Outer, source="m.sql", error=ModelError, unknown_key="unknown header key"
        )


def test_not_yaml_and_not_a_mapping() -> None:
    with pytest.raises(ConfigError, match=r"^s:2: not valid YAML") as caught:
        load_document("name: a\nitems: a: b\n", Outer, source="s", error=ConfigError)
    assert caught.value.line == 2
    with pytest.raises(ConfigError, match=r"^s:2: expected a mapping of keys, not list"):
        load_document("# comment\n- a\n", Outer, source="s", error=ConfigError)
    assert load_document("# only a comment\n", Outer, source="s", error=ConfigError) == Outer()


def test_a_sql_header_keeps_each_key_on_its_line() -> None:
    sql = "\n-- materialized: append   # comment\n--partition_by: [ds]\n\nSELECT 1 -- x: y\n-- late: 1\n"
    header = sql_header(sql)
    document = parse_document(header, source="m.sql", error=ModelError)
    assert document.data == {"materialized": "append", "partition_by": ["ds"]}
    assert document.lines[("materialized",)] == 2 and document.lines[("partition_by",)] == 3


@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True), st.integers(-(10**6), 10**6), max_size=8
    )
)
def test_every_key_of_a_flat_document_is_on_its_own_line(values: dict[str, int]) -> None:
    text = "".join(f"{key}: {value}\n" for key, value in values.items())
    document = parse_document(text, source="s", error=ConfigError)
    assert document.data == values
    assert [document.lines[(key,)] for key in values] == list(range(1, len(values) + 1))
