"""Policy files: validation errors with file and line, principals, versions and precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeplane.errors import PolicyError
from lakeplane.governance.policy import load_policy

BASE = """\
principals:
  users:
    ana: {roles: [analyst], attributes: {region: EU}}
  roles: [analyst]
tags:
  sensitivity: [public, pii]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "extra, line, message",
    [
        (
            "grants:\n  - to: role:analyst\n    privileges: [SELEKT]\n    on: telco\n",
            9,
            "unknown privilege 'SELEKT'",
        ),
        (
            "grants:\n  - to: role:nobody\n    privileges: [SELECT]\n    on: telco\n",
            8,
            "unknown principal 'role:nobody'",
        ),
        ("grants:\n  - to: ana\n    privileges: [SELECT]\n", 8, "give exactly one of 'on' or 'tags'"),
        (
            "grants:\n  - to: ana\n    privileges: [SELECT]\n    tags: {colour: [red]}\n",
            10,
            "unknown tag 'colour'",
        ),
        (
            "grants:\n  - to: ana\n    privileges: [SELECT]\n    tags: {sensitivity: [secret]}\n",
            10,
            "tag sensitivity has no value 'secret'",
        ),
        ("masks:\n  - to: ana\n    on: telco.processed.cdr.msisdn\n    mask: {sparkle: 1}\n", 10, "mask"),
        (
            "row_filters:\n  - to: ana\n    on: telco.processed.cdr\n    where: \"region = = 'EU'\"\n",
            10,
            "does not parse",
        ),
        (
            'row_filters:\n  - to: ana\n    on: telco.processed.cdr\n    where: "id IN (SELECT 1)"\n',
            10,
            "without subqueries",
        ),
        ("grantz: []\n", 7, "unknown key"),
        (
            "tag_assignments:\n  telco.processed.cdr.msisdn: {sensitivity: secret}\n",
            8,
            "tag sensitivity has no value 'secret'",
        ),
    ],
)
def test_mistakes_name_file_line_and_problem(tmp_path: Path, extra: str, line: int, message: str) -> None:
    path = write(tmp_path, BASE + extra)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert caught.value.line == line, str(caught.value)
    assert message in str(caught.value) and str(path) in str(caught.value)


def test_yaml_keys_like_on_stay_strings(tmp_path: Path) -> None:
    policy = load_policy(
        write(tmp_path, BASE + "grants:\n  - to: ana\n    privileges: [select]\n    on: x\n")
    )
    [rule] = policy.rules
    assert rule.on == "x" and rule.privileges == {"SELECT"}


def test_principals_resolve_to_their_identities(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, BASE + "  \n"))
    ana = policy.principal("ana")
    assert ana.kind == "user" and ana.identities == {"user:ana", "role:analyst"}
    assert ana.attributes == {"region": "EU"}
    assert policy.principal("analyst").identities == {"role:analyst"}
    with pytest.raises(PolicyError, match="unknown principal 'bob'"):
        policy.principal("bob")
