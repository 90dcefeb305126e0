"""lakeplane's DQDL parser against the public DQDL grammar's own test cases (tests/quality/reference).

Every valid case parses and every invalid one raises :class:`DQDLError`, a user error naming the
line, the column and the construct, never another exception. The few cases where lakeplane decides
otherwise are listed in :data:`DIVERGENCES` with the reason, and checked to still behave that way.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from lakeplane.quality import DQDLError, parse

CASES: list[dict[str, Any]] = json.loads((Path(__file__).parent / "reference" / "cases.json").read_text())

TRAILING_TEXT = (
    "the reference parser stops after the last section and ignores what follows; lakeplane rejects it"
)
DIVERGENCES: dict[str, str] = {
    **{
        case["text"]: TRAILING_TEXT
        for case in CASES
        if case["valid"]
        and re.search(r"\]\s*\]\s*$", case["text"])
        and case["text"].count("[") < case["text"].count("]")
    },
    'empty_var = ""\nRules = [ CustomSql $empty_var ]': (
        "lakeplane checks a CustomSql statement when it parses the ruleset; an empty one is no query"
    ),
}


def _id(case: dict[str, Any]) -> str:
    return f"{case['source']}:{' '.join(case['text'].split())[:60]}"


def test_the_corpus_is_the_reference_suite() -> None:
    valid = sum(case["valid"] for case in CASES)
    assert (valid, len(CASES) - valid) == (396, 139)
    assert len(DIVERGENCES) == 10


@pytest.mark.parametrize("case", [c for c in CASES if c["valid"]], ids=_id)
def test_valid_reference_cases_parse(case: dict[str, Any]) -> None:
    if case["text"] in DIVERGENCES:
        with pytest.raises(DQDLError):
            parse(case["text"])
        return
    ruleset = parse(case["text"])
    assert ruleset.rules or ruleset.analyzers
    assert parse(ruleset.to_dqdl()) == ruleset  # what lakeplane prints reads back the same


@pytest.mark.parametrize("case", [c for c in CASES if not c["valid"]], ids=_id)
def test_invalid_reference_cases_are_rejected_with_a_position(case: dict[str, Any]) -> None:
    with pytest.raises(DQDLError) as caught:
        parse(case["text"], source="case.dqdl")
    assert re.match(r"case\.dqdl:\d+:\d+: \S", str(caught.value))
