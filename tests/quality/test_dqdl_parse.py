"""Parsing DQDL: rulesets shaped like AWS Glue's documentation, typed rules, errors, round-trips."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakeplane.errors import LakeplaneError
from lakeplane.quality import DQDLError, parse, parse_file
from lakeplane.quality.rules import (
    BinOp,
    Call,
    CompositeRule,
    Condition,
    Duration,
    Keyword,
    Num,
    Rule,
    Ruleset,
    Str,
)

# Rulesets written the way the AWS Glue DQDL reference writes its examples.
DOC_RULESETS = {
    "basic": 'Rules = [ IsComplete "order-id", IsUnique "order-id" ]',
    "composites": """Rules = [
        (IsComplete "id") and (IsUnique "id"),
        (Mean "Star_Rating" > 3) and (Mean "Order_Total" > 500) and (IsComplete "Order_Id"),
        (Mean "Star_Rating" > 3) and ((Mean "Order_Total" > 500) or (IsComplete "Order_Id")),
        (RowCount > 0) or ((IsComplete "colA") and (IsUnique "colA"))
    ]""",
    "column_values": """Rules = [
        ColumnValues "Country" in [ "US", "CA", "UK", NULL, EMPTY, WHITESPACES_ONLY ],
        ColumnValues "gender" in ["F", "M"] where "weightinkgs < 10",
        ColumnValues "First_Name" matches "[a-zA-Z]*",
        ColumnValues "Load_Date" > (now() - 3 days),
        ColumnValues "Customer_ID" between 1 and 2000,
        (ColumnValues "Age" > 21) OR (ColumnValues "Age" = NULL),
        ColumnValues "Age" != 21,
        ColumnValues "Age" not in [21, 22, 23, NULL],
        (ColumnValues "Age" != 21) AND (ColumnValues "Age" != NULL)
    ]""",
    "dynamic": """Rules = [
        # compare today's numbers with the last runs
        RowCount between 10 and 100,
        RowCount between 1 and 50 where "Customer_ID < 10",
        RowCount > avg(last(10)) *0.8,
        Mean "Star_Rating" > 3,
        Mean "Salary" < 6200 where "Customer_ID < 10",
        Mean "colA" > avg(last(10)) + std(last(2)),
        Mean "colA" between min(last(5)) - 1 and max(last(5)) + 1,
        ColumnCount between 10 and 20,
        ColumnCount >= avg(last(10)),
        ColumnCount between min(last(10))-1 and max(last(10))+1
    ]""",
    "lengths_and_freshness": """Rules = [
        ColumnLength "Postal_Code" = 5,
        ColumnLength "weightinkgs" = 2 where "weightinkgs > 10",
        (ColumnLength "Postal_Code" > 4) AND (ColumnValues "Postal_Code" != NULL),
        DataFreshness "Order_Date" <= 24 hours,
        DataFreshness "Order_Date" between 2 days and 5 days,
        (DataFreshness "Order_Date" <= 24 hours) OR (ColumnValues "Order_Date" = NULL)
    ]""",
    "sql_and_references": """Rules = [
        CustomSql "select count(*) from primary" between 10 and 20,
        CustomSql "select Name from primary where Age > 18",
        CustomSql "select Name from primary where Age > 18" with threshold > 0.5,
        ReferentialIntegrity "zipcode" "reference.zipcode" >= 0.9,
        ReferentialIntegrity "city,state" "reference.{ref_city,ref_state}" = 1.0,
        ReferentialIntegrity "city,state" "reference.{ref_city,ref_state}" > avg(last(10)),
        RowCountMatch "reference" >= 0.9,
        SchemaMatch "reference" = 1.0
    ]""",
    "keys_and_types": """Rules = [
        IsPrimaryKey "Customer_ID",
        IsPrimaryKey "Customer_ID" where "Customer_ID < 10",
        IsPrimaryKey "colA" "colB" "colC",
        IsPrimaryKey colA "colB" "colC",
        ColumnDataType "colA" = "INTEGER",
        ColumnDataType "colA" = "INTEGER" with threshold > 0.9,
        Completeness "colA" between 0.4 and 0.8,
        Uniqueness "email" > 0.95,
        UniqueValueRatio "email" >= 0.9,
        DistinctValuesCount "state" > 3,
        Entropy "Star_Rating" > 1,
        StandardDeviation "Star_Rating" < 1.5,
        Sum "transaction_total" > 500000,
        ColumnExists "load_dt",
        ColumnCorrelation "height" "weight" > 0.8,
        ColumnNamesMatchPattern "^[a-z_]+$"
    ]""",
}


@pytest.mark.parametrize("name", sorted(DOC_RULESETS))
def test_documented_rulesets_parse_and_print_back(name: str) -> None:
    ruleset = parse(DOC_RULESETS[name])
    assert ruleset.rules
    assert parse(ruleset.to_dqdl()) == ruleset


def test_a_rule_becomes_a_typed_object_with_its_text_and_position() -> None:
    ruleset = parse(
        'Rules = [\n  RowCount > 0,\n  ColumnValues "amount" between 1 and 9 where "status = \'open\'" '
        "with threshold > 0.9\n]",
        source="orders.dqdl",
    )
    rule = ruleset.rules[1]
    assert rule == Rule(
        "ColumnValues",
        ("amount",),
        Condition("between", (Num(1), Num(9))),
        "status = 'open'",
        Condition(">", (Num(0.9),)),
    )
    assert isinstance(rule, Rule)
    assert (rule.line, rule.column) == (3, 3)
    assert rule.text == 'ColumnValues "amount" between 1 and 9 where "status = \'open\'" with threshold > 0.9'
    assert ruleset.source == "orders.dqdl"


@pytest.mark.parametrize(
    ("text", "condition"),
    [
        (
            'ColumnValues "c" in ["US", NULL, EMPTY, WHITESPACES_ONLY]',
            Condition("in", (Str("US"), Keyword("NULL"), Keyword("EMPTY"), Keyword("WHITESPACES_ONLY"))),
        ),
        ('ColumnValues "c" not in [21, 22]', Condition("in", (Num(21), Num(22)), negated=True)),
        ('ColumnValues "c" not between -5 and 5', Condition("between", (Num(-5), Num(5)), negated=True)),
        ('ColumnValues "c" not matches "[0-9]+"', Condition("matches", (Str("[0-9]+"),), negated=True)),
        ('ColumnValues "c" != NULL', Condition("!=", (Keyword("NULL"),))),
        (
            'ColumnValues "d" > (now() - 3 days)',
            Condition(">", (BinOp("-", Call("now"), Duration(3, "days")),)),
        ),
        (
            'DataFreshness "d" between 2 days and 5 days',
            Condition("between", (Duration(2, "days"), Duration(5, "days"))),
        ),
        (
            "RowCount > min(last(5)) - 1",
            Condition(">", (BinOp("-", Call("min", (Call("last", (Num(5),)),)), Num(1)),)),
        ),
        ("RowCount > 1 + 2 * 3", Condition(">", (BinOp("+", Num(1), BinOp("*", Num(2), Num(3))),))),
        ('ColumnDataType "c" in ["DATE", "timestamp"]', Condition("in", (Str("DATE"), Str("timestamp")))),
    ],
)
def test_conditions(text: str, condition: Condition) -> None:
    (rule,) = parse(f"Rules = [ {text} ]").rules
    assert isinstance(rule, Rule)
    assert rule.condition == condition


def test_composites_bind_and_before_or_and_keep_their_text() -> None:
    (node,) = parse("Rules = [ (RowCount > 1) or (RowCount > 2) and (ColumnCount > 3) ]").rules
    assert isinstance(node, CompositeRule) and node.op == "or"
    assert isinstance(node.rules[1], CompositeRule) and node.rules[1].op == "and"
    assert node.text == "(RowCount > 1) or (RowCount > 2) and (ColumnCount > 3)"
    (chain,) = parse("Rules = [ ((RowCount > 1) and (RowCount > 2)) and (RowCount > 3) ]").rules
    assert isinstance(chain, CompositeRule) and len(chain.rules) == 3
    (inner,) = parse('Rules = [ (ColumnValues "d" > (now() - 1 days)) and (IsComplete "d") ]').rules
    assert isinstance(inner, CompositeRule)
    assert [r.text for r in inner.rules] == ['ColumnValues "d" > (now() - 1 days)', 'IsComplete "d"']


def test_comments_analyzers_metadata_sources_and_variables() -> None:
    ruleset = parse("""
        # nightly checks
        Metadata = { "Version": "1.0" }
        DataSources = { "Primary": "processed.orders", "AdditionalDataSources": ["processed.customers"] }
        allowed = ["US", "CA"]
        sql = "select count(*) from primary where note = '#1'"
        Rules = [
            ColumnValues "country" in $allowed,  # inline comment
            CustomSql $sql > 0
        ]
        Analyzers = [ RowCount, Completeness "country" ]
    """)
    first, second = ruleset.rules
    assert isinstance(first, Rule) and first.condition == Condition("in", (Str("US"), Str("CA")))
    assert isinstance(second, Rule) and second.params == ("select count(*) from primary where note = '#1'",)
    assert [a.rule_type for a in ruleset.analyzers] == ["RowCount", "Completeness"]
    assert ruleset.metadata == {"Version": "1.0"}
    assert ruleset.data_sources["AdditionalDataSources"] == ("processed.customers",)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Rules = [ RowCount > 0, ]", "a trailing comma: remove the ',' before ']'"),
        ('Metadata = { "Owners": "me" } Rules = [ RowCount > 0 ]', "Metadata does not take the key 'Owners'"),
        ('DataSources = { "reference": "t" } Rules = [ RowCount > 0 ]', "DataSources does not take the key"),
        ('DataSources = { "AdditionalDataSources": "t" } Rules = [ RowCount > 0 ]', "is a list of names"),
        ("Rules = [ RowCount > 0 ] Rules = [ RowCount > 1 ]", "syntax error: unexpected 'Rules'"),
        ("Rules = [ RowCount BETWEEN 1 AND 5 ]", "DQDL writes 'between' in lower case, not 'BETWEEN'"),
        ('Rules = [ ColumnValues "a" IN ["x"] ]', "DQDL writes 'in' in lower case"),
        ("Rules = [ FileFreshness > 9:30 ]", 'a time of day is quoted: "9:30 PM" or "21:30"'),
        ("Rules = [ ColumnValues \"a\" = 'x' ]", "DQDL strings are in double quotes"),
        ("Rules = [ RowCount > 0 ] ]", "the ruleset goes on after its last section"),
        ('Rules = [ ColumnValues "d" = (now() - 3 weeks) ]', "'weeks' is not a unit"),
        ("n = 5\nRules = [ RowCount > 0 ]", "variables hold a quoted string or a list of them"),
        ('a = "x"\na = "y"\nRules = [ RowCount > 0 ]', "variable 'a' is already defined"),
        ("Rules = [ FileSize < 5 ZB ]", "'ZB' is not a unit; sizes take B, KB, MB, GB, TB"),
        ('Rules = [ ColumnValues "d" > now() - 1 days ]', "date arithmetic goes in parentheses"),
        ('Rules = [ ColumnValues "d" > (now() - 1) ]', "date arithmetic adds or subtracts a duration"),
        ('Rules = [ ColumnValues "d" > "2024-02-30" ]', "is not a date"),
        ('Rules = [ FileFreshness > "13:50 PM" ]', "is not a time of day"),
        ('Rules = [ RowCount > 0 labels=["k"="v", "k"="w"] ]', "label key 'k' appears twice"),
        ('Rules = [ AllStatistics "id" ]', "AllStatistics is an analyzer"),
        ('Rules = [ RowCount > 0 ] Analyzers = [ IsComplete "a" ]', "IsComplete is not an analyzer"),
    ],
)
def test_what_the_reference_grammar_rejects_is_rejected(text: str, problem: str) -> None:
    assert problem in str(error(text))


def test_escaped_quotes_in_strings() -> None:
    (rule,) = parse(r'Rules = [ RowCount > 0 where "status = \"open\"" ]').rules
    assert isinstance(rule, Rule) and rule.where == 'status = "open"'
    assert parse(Ruleset((rule,)).to_dqdl()).rules == (rule,)


def test_parse_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.dqdl"
    path.write_text('Rules = [\n  RowCount > 0,\n  IsComplete "a",\n    RowCont > 5\n]\n')
    with pytest.raises(DQDLError) as caught:
        parse_file(path)
    assert str(caught.value).startswith(f"{path}:4:5: unknown rule type 'RowCont'; did you mean 'RowCount'?")


# -- errors ------------------------------------------------------------------------------------


def error(text: str) -> DQDLError:
    with pytest.raises(DQDLError) as caught:
        parse(text, source="rules.dqdl")
    return caught.value


def test_unknown_rule_type_names_line_column_rule_and_suggestion() -> None:
    exc = error("Rules = [\n  RowCount > 0,\n    RowCont > 5\n]")
    assert (
        str(exc) == "rules.dqdl:3:5: unknown rule type 'RowCont'; did you mean 'RowCount'? (in: RowCont > 5)"
    )
    assert (exc.line, exc.column, exc.rule) == (3, 5, "RowCont > 5")
    assert isinstance(exc, LakeplaneError) and isinstance(exc, ValueError)
    assert exc.to_dict()["line"] == 3


def test_syntax_error_points_at_the_token() -> None:
    message = str(error('Rules = [\n  RowCount > 0\n  IsComplete "a"\n]'))
    assert message.startswith("rules.dqdl:3:3: syntax error: unexpected 'IsComplete'; expected ")
    assert '(in: IsComplete "a")' in message
    assert str(error("Rules = [ RowCount > ]")).startswith("rules.dqdl:1:22: syntax error: unexpected ']'")
    assert "unexpected end of the ruleset" in str(error("Rules = [ RowCount > 5"))
    assert "unexpected character '@'" in str(error("Rules = [ RowCount > 5 @ ]"))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('Completeness "a" "b" > 0.5', 'Completeness takes 1 parameter (Completeness "column"), got 2'),
        ('RowCount "id" > 100', "RowCount takes no parameters, got 1"),
        ('IsComplete "a" > 3', "IsComplete takes no condition"),
        ('Mean "a"', "Mean needs a condition"),
        ('ColumnCount > 1 where "a > 1"', "ColumnCount does not take a where clause"),
        ("RowCount > 1 with threshold > 0.5", "RowCount does not take 'with threshold'"),
        ('ColumnValues "a" > 1 with weight > 2', "tag 'with weight' takes one value after '='"),
        ('ColumnValues "a" > avg(last(3))', "dynamic bounds (last(k)) are for rules that measure one number"),
        ('Mean "a" > "high"', "Mean compares numbers (Mean > 0.9), not strings"),
        ('RowCount matches "x"', "RowCount compares numbers (RowCount > 0.9), not strings"),
        (
            'DataFreshness "d" <= 24',
            "DataFreshness compares durations (DataFreshness <= 24 hours), not numbers",
        ),
        ('ColumnValues "a" in [1, "x"]', "the condition mixes number and string values"),
        ('ColumnValues "a" between "x" and "y"', "'between' does not compare strings"),
        ('ColumnDataType "a" = "INTEGR"', "unknown data type \"INTEGR\"; did you mean 'INTEGER'?"),
        ('ColumnValues "a" in $nope', "unknown variable '$nope'"),
        ('ColumnValues "a" matches "[a-"', "bad regular expression"),
        ('RowCount > 1 where "a > (select 1)"', "a where clause cannot hold a query"),
        ('RowCount > 1 where "a >"', "where clause does not parse"),
        ('CustomSql "delete from primary" > 1', "CustomSql: only read-only queries are allowed, not DELETE"),
        ('CustomSql "select 1" > 0 with threshold > 0.5', "takes a condition or 'with threshold', not both"),
        ('ReferentialIntegrity "a,b" "ref.{x}" = 1.0', "2 primary columns but 1 reference columns"),
        ('ReferentialIntegrity "a" "ref" = 1.0', 'expected "alias.column"'),
        ('ColumnLength "a" > avg(last(2))', "ColumnLength takes plain numbers"),
    ],
)
def test_rules_that_do_not_fit_their_type(text: str, problem: str) -> None:
    message = str(error(f"Rules = [\n  RowCount > 0,\n  {text}\n]"))
    assert message.startswith("rules.dqdl:3:")  # the rule's line; the column of the rule or the bad token
    assert problem in message
    assert message.endswith(f"(in: {text})")


def test_a_document_needs_rules() -> None:
    assert (
        "unexpected end of the ruleset; expected 'Analyzers', 'DataSources', 'DefaultLabels', 'Rules'"
        in str(error('Metadata = { "Version": "1.0" }'))
    )
    assert "no rules or analyzers" in str(error("Rules = [ ]"))


# -- round trips -------------------------------------------------------------------------------

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12)
numbers = st.one_of(
    st.integers(-(10**6), 10**6).map(float),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).map(lambda v: round(v, 4)),
)
history = st.builds(
    lambda f, k: Call(f, (Call("last", (Num(float(k)),)),)),
    st.sampled_from(["avg", "min", "max", "sum", "std"]),
    st.integers(1, 30),
)
metric_operand = st.recursive(
    st.one_of(numbers.map(Num), history),
    lambda inner: st.builds(BinOp, st.sampled_from(["+", "-", "*", "/"]), inner, inner),
    max_leaves=4,
)
metric_condition = st.one_of(
    st.builds(
        lambda op, v: Condition(op, (v,)), st.sampled_from([">", ">=", "<", "<=", "=", "!="]), metric_operand
    ),
    st.builds(lambda a, b, n: Condition("between", (a, b), n), metric_operand, metric_operand, st.booleans()),
    st.builds(
        lambda vs, n: Condition("in", tuple(Num(v) for v in vs), n),
        st.lists(numbers, min_size=1, max_size=4),
        st.booleans(),
    ),
)
strings = st.one_of(names.map(Str), st.sampled_from([Keyword("NULL"), Keyword("EMPTY")]))
value_lists = st.one_of(
    st.lists(strings, min_size=1, max_size=4), st.lists(numbers.map(Num), min_size=1, max_size=4)
)
metric_rules = st.builds(
    lambda kind, column, condition, where: Rule(kind, (column,), condition, where),
    st.sampled_from(["Mean", "Sum", "Completeness", "StandardDeviation", "Entropy", "DistinctValuesCount"]),
    names,
    metric_condition,
    st.one_of(st.none(), st.just("amount > 0"), st.just("note = 'a \"b\"'")),
)
value_rules = st.builds(
    lambda column, values, negated, threshold: Rule(
        "ColumnValues",
        (column,),
        Condition("in", tuple(values), negated),
        threshold=None if threshold is None else Condition(">", (Num(threshold),)),
    ),
    names,
    value_lists,
    st.booleans(),
    st.one_of(st.none(), st.floats(0, 1).map(lambda v: round(v, 3))),
)
row_count = st.builds(lambda c: Rule("RowCount", (), c), metric_condition)
leaf = st.one_of(metric_rules, value_rules, row_count)
node = st.recursive(
    leaf,
    lambda inner: st.builds(
        lambda op, parts: CompositeRule(op, tuple(_flatten(op, parts))),
        st.sampled_from(["and", "or"]),
        st.lists(inner, min_size=2, max_size=3),
    ),
    max_leaves=6,
)


def _flatten(op: str, parts: list[Rule | CompositeRule]) -> list[Rule | CompositeRule]:
    out: list[Rule | CompositeRule] = []
    for part in parts:  # the parser flattens (a and b) and c, so generated rulesets must too
        out.extend(part.rules if isinstance(part, CompositeRule) and part.op == op else [part])
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(node, min_size=1, max_size=5))
def test_printed_rulesets_parse_back_to_the_same_rules(rules: list[Rule | CompositeRule]) -> None:
    ruleset = Ruleset(tuple(rules))
    assert parse(ruleset.to_dqdl()) == ruleset
