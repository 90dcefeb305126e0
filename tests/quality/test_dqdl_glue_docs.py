"""lakeplane's DQDL parser against the examples of AWS Glue's DQDL documentation (tests/quality/reference).

Every example the documentation shows as valid parses and prints back to the same ruleset
(``parse(ruleset.to_dqdl()) == ruleset``). The examples lakeplane rejects on purpose are listed in
:data:`REJECTED_ON_PURPOSE` with the reason, and checked to still be rejected with a position; the
examples lakeplane should accept but does not yet are listed in :data:`NOT_YET_ACCEPTED` and run as
strict expected failures, so the gap stays visible and closing it turns the suite red until the list
is updated.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from lakeplane.quality import DQDLError, parse

EXAMPLES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "reference" / "glue_docs.json").read_text()
)

REJECTED_ON_PURPOSE: dict[str, str] = {
    'Rules = [\n    (RowCount "id" > 100) or (IsPrimaryKey "id")\n]': (
        "the composite-rule example of the reference page gives RowCount a column; RowCount takes "
        "none (its own page: RowCount <EXPRESSION>), so lakeplane names the extra parameter"
    ),
    'Rules = [\n    ColumnNamesMatchPattern "aws_.*" where "weightinkgs > 10"\n]': (
        "the rule type table says ColumnNamesMatchPattern takes no where clause, and the public "
        "grammar's own suite rejects ColumnNamesMatchPattern with a where clause"
    ),
    'Rules = [\n    StandardDeviation "colA" > avg(last(10) + 0.1\n]': (
        "the page's sample dynamic rule has an unbalanced parenthesis: avg(last(10) is never closed"
    ),
}

NOT_YET_ACCEPTED: dict[str, str] = {}  # examples lakeplane should accept and does not yet: none


def _id(example: dict[str, Any]) -> str:
    page = example["page"].rsplit("/", 1)[-1].removesuffix(".html").removesuffix(".md")
    return f"{page.removeprefix('dqdl-rule-types-')}:{' '.join(example['text'].split())[:70]}"


def _valid_params() -> list[Any]:
    params: list[Any] = []
    for example in EXAMPLES:
        if not example["valid"] or example["text"] in REJECTED_ON_PURPOSE:
            continue
        reason = NOT_YET_ACCEPTED.get(example["text"])
        marks = [pytest.mark.xfail(raises=DQDLError, strict=True, reason=reason)] if reason else []
        params.append(pytest.param(example, id=_id(example), marks=marks))
    return params


def test_the_corpus_is_the_glue_docs_examples() -> None:
    assert len(EXAMPLES) == 137
    assert all(example["valid"] for example in EXAMPLES)
    assert len({example["page"] for example in EXAMPLES}) == 34
    assert len({example["text"] for example in EXAMPLES}) == len(EXAMPLES)
    texts = {example["text"] for example in EXAMPLES}
    assert set(REJECTED_ON_PURPOSE) <= texts
    assert set(NOT_YET_ACCEPTED) <= texts
    assert not set(REJECTED_ON_PURPOSE) & set(NOT_YET_ACCEPTED)


@pytest.mark.parametrize("example", _valid_params())
def test_glue_docs_examples_parse_and_print_back(example: dict[str, Any]) -> None:
    ruleset = parse(example["text"])
    assert ruleset.rules or ruleset.analyzers
    assert parse(ruleset.to_dqdl()) == ruleset  # what lakeplane prints reads back the same


@pytest.mark.parametrize("text", list(REJECTED_ON_PURPOSE), ids=lambda text: " ".join(text.split())[:70])
def test_examples_rejected_on_purpose_stay_rejected_with_a_position(text: str) -> None:
    with pytest.raises(DQDLError) as caught:
        parse(text, source="glue.dqdl")
    assert re.match(r"glue\.dqdl:\d+:\d+: \S", str(caught.value))
