"""Turn lark's DQDL parse tree into a typed :class:`~lakeplane.quality.rules.Ruleset`.

:class:`RulesetBuilder` walks the tree once: it checks the document's sections (``Metadata`` and
``DataSources`` keys, variables, labels), substitutes ``$variables``, folds negative literals, drops
the connector words (``of``, ``and``) between parameters, and keeps every rule's text and position.
Rule-type checks (parameters, the kind of condition) happen afterwards in
:mod:`lakeplane.quality.validate`. Every problem raises :class:`~lakeplane.errors.DQDLError` through
``raise_at``, naming the source, line, column and the construct.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import NoReturn

from lark import Token, Tree

from lakeplane.errors import did_you_mean
from lakeplane.quality.rules import (
    BinOp,
    Call,
    CompositeRule,
    Condition,
    DateLit,
    Duration,
    Keyword,
    Neg,
    Num,
    Operand,
    Rule,
    RuleNode,
    Ruleset,
    Size,
    Str,
    TagValue,
    TimeOfDay,
)

RaiseAt = Callable[[str, int, int, str], NoReturn]
Labels = tuple[tuple[str, str], ...]
Variable = Operand | tuple[Operand, ...]

METADATA_KEYS = ("Version",)
DATA_SOURCE_KEYS = ("Primary", "AdditionalDataSources")
MAX_LABELS, MAX_LABEL_KEY, MAX_LABEL_VALUE = 10, 128, 256


class RulesetBuilder:
    """Builds one ruleset from its parse tree; ``raise_at(problem, line, column, construct)`` reports."""

    def __init__(self, text: str, source: str, raise_at: RaiseAt) -> None:
        self.text = text
        self.source = source
        self.raise_at = raise_at
        self.variables: dict[str, Variable] = {}
        self.default_labels: Labels = ()

    def ruleset(self, tree: Tree) -> Ruleset:
        metadata: dict[str, str | tuple[str, ...]] = {}
        sources: dict[str, str | tuple[str, ...]] = {}
        rules: list[RuleNode] = []
        analyzers: list[Rule] = []
        for child in (c for c in tree.children if isinstance(c, Tree)):
            if child.data == "metadata":
                metadata = self._dictionary(child, "Metadata", METADATA_KEYS)
            elif child.data == "data_sources":
                sources = self._dictionary(child, "DataSources", DATA_SOURCE_KEYS)
            elif child.data == "variable":
                self._variable(child)
            elif child.data == "default_labels":
                self.default_labels = self._labels(child, "DefaultLabels", ())
            else:  # sections
                for section in (s for s in child.children if isinstance(s, Tree)):
                    nodes = [c for c in section.children if isinstance(c, Tree)]
                    if section.data == "rules_section":
                        rules.extend(self._rule_node(node) for node in nodes)
                    else:
                        analyzers.extend(self._leaf(node) for node in nodes)
        if not rules and not analyzers:
            line = self.text.count("\n", 0, len(self.text.rstrip())) + 1
            self.raise_at("no rules or analyzers: a ruleset needs at least one", line, 1, "")
        return Ruleset(
            tuple(rules), tuple(analyzers), metadata, sources, self.source, default_labels=self.default_labels
        )

    # -- positions ---------------------------------------------------------------------------
    def span(self, tree: Tree) -> tuple[str, int, int]:
        """The text of ``tree`` (widened to balance parentheses lark leaves out), line and column."""
        start, end = _balance(self.text, tree.meta.start_pos, tree.meta.end_pos)
        line = self.text.count("\n", 0, start) + 1
        column = start - (self.text.rfind("\n", 0, start) + 1) + 1
        return self.text[start:end], line, column

    def fail(self, problem: str, node: Tree | Token, construct: str = "") -> NoReturn:
        if isinstance(node, Token):
            line, column = node.line or 1, node.column or 1
        else:
            line, column = node.meta.line, node.meta.column
        self.raise_at(problem, line, column, construct)

    # -- document sections -------------------------------------------------------------------
    def _dictionary(
        self, tree: Tree, section: str, allowed: tuple[str, ...]
    ) -> dict[str, str | tuple[str, ...]]:
        body = tree.children[0]
        assert isinstance(body, Tree)
        if body.data == "empty_dictionary":
            self.fail(f"{section} is empty; give at least one of {', '.join(allowed)}", tree, section)
        out: dict[str, str | tuple[str, ...]] = {}
        for pair in (p for p in body.children if isinstance(p, Tree)):
            key_token, value = pair.children
            assert isinstance(key_token, Token)
            key = unquote(key_token)
            if key not in allowed:
                hint = did_you_mean(key, allowed) or f"; its keys are {', '.join(allowed)}"
                self.fail(f"{section} does not take the key {key!r}{hint}", key_token, section)
            out[key] = (
                tuple(unquote(t) for t in value.children if t is not None)
                if isinstance(value, Tree)
                else unquote(value)
            )
        extra = out.get("AdditionalDataSources")
        if extra is not None and not isinstance(extra, tuple):
            self.fail('"AdditionalDataSources" is a list of names: ["table", ...]', tree, section)
        primary = out.get("Primary")
        if primary is not None and not isinstance(primary, str):
            self.fail('"Primary" is one name, not a list', tree, section)
        return out

    def _variable(self, tree: Tree) -> None:
        name_token, value = tree.children
        assert isinstance(name_token, Token) and isinstance(value, Tree)
        name = str(name_token)
        construct = self.span(tree)[0]
        if name[0] in "._":
            self.fail(f"variable name '{name}' cannot start with '.' or '_'", name_token, construct)
        if name in self.variables:
            self.fail(f"variable '{name}' is already defined", name_token, construct)
        is_list = value.data == "value_list"
        items = [c for c in value.children if isinstance(c, Tree)] if is_list else [value]
        resolved: list[Operand] = []
        for item in items:
            if item.data == "variable_ref" or (
                item.data == "string" and _names_variable(unquote(item.children[0]))
            ):
                self.fail(
                    f"variable '{name}' refers to another variable; nested variables are not supported",
                    item,
                    construct,
                )
            operand = self.operand(item)
            if not isinstance(operand, Str | Keyword):
                self.fail(
                    f"variable '{name}' holds {self.span(item)[0]}: variables hold a quoted string or a "
                    'list of them, e.g. codes = ["A1", "B2"]',
                    item,
                    construct,
                )
            resolved.append(operand)
        self.variables[name] = tuple(resolved) if is_list else resolved[0]

    def _labels(self, tree: Tree, keyword: str, inherited: Labels) -> Labels:
        construct = self.span(tree)[0]
        pairs = [p for p in tree.children if isinstance(p, Tree)]
        if not pairs:
            self.fail(f'{keyword} is empty; give at least one "key"="value"', tree, construct)
        if len(inherited) + len(pairs) > MAX_LABELS:
            self.fail(
                f"too many labels: at most {MAX_LABELS} per rule, DefaultLabels included", tree, construct
            )
        labels: dict[str, str] = {}
        for pair in pairs:
            key_token, value_token = pair.children
            key, value = unquote(key_token), unquote(value_token)
            if not key or not value:
                self.fail("a label's key and value cannot be empty", pair, construct)
            if len(key) > MAX_LABEL_KEY:
                self.fail(f"label key is {len(key)} characters; at most {MAX_LABEL_KEY}", pair, construct)
            if len(value) > MAX_LABEL_VALUE:
                self.fail(
                    f"label value is {len(value)} characters; at most {MAX_LABEL_VALUE}", pair, construct
                )
            if key in labels:
                self.fail(f"label key {key!r} appears twice", pair, construct)
            labels[key] = value
        return tuple(labels.items())

    def _merged_labels(self, tree: Tree | None) -> Labels:
        if tree is None:
            return self.default_labels
        own = self._labels(tree, "labels", self.default_labels)
        return tuple((dict(self.default_labels) | dict(own)).items())

    # -- rules -------------------------------------------------------------------------------
    def _rule_node(self, tree: Tree) -> RuleNode:
        if tree.data == "dq_rule":
            return self._leaf(tree)
        if tree.data == "group":
            inner_tree, labels_tree = tree.children
            assert isinstance(inner_tree, Tree)
            inner = self._rule_node(inner_tree)
            if labels_tree is None:
                return inner
            assert isinstance(labels_tree, Tree)
            return _with_labels(inner, self._merged_labels(labels_tree))
        op = "and" if tree.data == "and_rule" else "or"
        parts: list[RuleNode] = []
        for child in tree.children:
            assert isinstance(child, Tree)
            node = self._rule_node(child)
            # (a and b) and c means a and b and c: one composite, as it prints (unless labelled)
            if isinstance(node, CompositeRule) and node.op == op and node.labels == self.default_labels:
                parts.extend(node.rules)
            else:
                parts.append(node)
        text, line, column = self.span(tree)
        return CompositeRule(op, tuple(parts), self.default_labels, text, line, column)  # type: ignore[arg-type]

    def _leaf(self, tree: Tree) -> Rule:
        text, line, column = self.span(tree)
        name, *rest = tree.children
        params: list[str] = []
        condition: Condition | None = None
        where: str | None = None
        threshold: Condition | None = None
        tags: dict[str, TagValue] = {}
        labels = self.default_labels
        for child in rest:
            if not isinstance(child, Tree):
                continue
            if child.data == "param":
                params.append(self._param(child, text))
            elif child.data == "where":
                where = unquote(child.children[0])
                if not where.strip():
                    self.fail("where clause is empty", child, text)
            elif child.data == "labels":
                labels = self._merged_labels(child)
            elif child.data == "list_tag":
                tags[str(child.children[0])] = self._list_tag(child, text)
            elif child.data == "tag":
                tag_token, tag_condition = child.children
                assert isinstance(tag_token, Token) and isinstance(tag_condition, Tree)
                if str(tag_token).lower() == "threshold":
                    if threshold is not None:
                        self.fail("'with threshold' appears twice", tag_token, text)
                    threshold = self.condition(tag_condition, text)
                else:
                    tags[str(tag_token)] = self._tag_value(tag_token, tag_condition, text)
            else:
                condition = self.condition(child, text)
        return Rule(
            str(name),
            tuple(params),
            condition,
            where,
            threshold,
            tuple(tags.items()),
            labels,
            text=text,
            line=line,
            column=column,
        )

    def _param(self, tree: Tree, rule: str) -> str:
        token = tree.children[-1]
        assert isinstance(token, Token)
        if token.type == "STRING":
            return unquote(token)
        if token.type == "VARIABLE":
            value = self._lookup(token, rule)
            if not isinstance(value, Str):
                self.fail(
                    f"variable '{str(token)[1:]}' is used as a parameter: it must hold one string",
                    token,
                    rule,
                )
            return value.value
        return str(token)

    def _list_tag(self, tree: Tree, rule: str) -> tuple[str, ...]:
        name, comparator, values = tree.children
        assert isinstance(name, Token) and isinstance(values, Tree)
        items = [self.operand(c, rule) for c in values.children if isinstance(c, Tree)]
        if str(comparator) != "=" or not all(isinstance(item, Str) for item in items):
            self.fail(f"tag 'with {name}' takes = and a list of quoted strings", name, rule)
        return tuple(item.value for item in items if isinstance(item, Str))

    def _tag_value(self, name: Token, tree: Tree, rule: str) -> str | float:
        condition = self.condition(tree, rule)
        value = condition.operands[0] if condition.operands else None
        if condition.op != "=" or condition.negated or len(condition.operands) != 1:
            self.fail(
                f"tag 'with {name}' takes one value after '=', e.g. with {name} = \"value\"", name, rule
            )
        if isinstance(value, Str):
            return value.value
        if isinstance(value, Num):
            return value.value
        self.fail(f"tag 'with {name}' takes a quoted string or a number", name, rule)

    def condition(self, tree: Tree, rule: str) -> Condition:
        kind = tree.data
        if kind == "compare":
            comparator, operand = tree.children
            assert isinstance(operand, Tree)
            return Condition(str(comparator), (self.operand(operand, rule),))  # type: ignore[arg-type]
        negated = tree.children[0] is not None
        if kind == "between":
            low, high = tree.children[1:]
            assert isinstance(low, Tree) and isinstance(high, Tree)
            return Condition("between", (self.operand(low, rule), self.operand(high, rule)), negated)
        if kind == "matches":
            return Condition("matches", (Str(unquote(tree.children[1])),), negated)
        values = tree.children[1]
        if isinstance(values, Token):  # in $variable
            resolved = self._lookup(values, rule)
            items = resolved if isinstance(resolved, tuple) else (resolved,)
        else:
            assert isinstance(values, Tree)
            items = tuple(self.operand(c, rule) for c in values.children if isinstance(c, Tree))
        return Condition("in", items, negated)

    def _lookup(self, token: Token, rule: str) -> Variable:
        name = str(token)[1:]
        if name not in self.variables:
            self.fail(f"unknown variable '${name}'{did_you_mean(name, self.variables)}", token, rule)
        return self.variables[name]

    # -- operands ----------------------------------------------------------------------------
    def operand(self, node: Tree, rule: str = "", parenthesized: bool = False) -> Operand:
        kind, children = node.data, node.children
        if kind == "paren":
            inner = children[0]
            assert isinstance(inner, Tree)
            return self.operand(inner, rule, parenthesized=True)
        if kind == "number":
            return Num(float(str(children[0])))
        if kind == "string":
            return Str(unquote(children[0]))
        if kind == "date":
            return self._date(children[0], rule)
        if kind == "time":
            return self._time(children[0], rule)
        if kind == "duration":
            unit_tree = children[1]
            assert isinstance(unit_tree, Tree)
            return Duration(float(str(children[0])), str(unit_tree.children[0]))  # type: ignore[arg-type]
        if kind == "size":
            return Size(float(str(children[0])), str(children[1]))  # type: ignore[arg-type]
        if kind in ("null", "empty", "whitespaces_only"):
            return Keyword(str(kind).upper())  # type: ignore[arg-type]
        if kind == "variable_ref":
            token = children[0]
            assert isinstance(token, Token)
            value = self._lookup(token, rule)
            if isinstance(value, tuple):
                self.fail(f"variable '{token}' is a list; use it as 'in {token}'", token, rule)
            if not isinstance(value, Str | Keyword):
                self.fail(f"variable '{token}' must hold a string here", token, rule)
            return value
        if kind == "call":
            args = tuple(self.operand(c, rule) for c in children[1:] if isinstance(c, Tree))
            return Call(str(children[0]), args)
        operands = [self.operand(c, rule) for c in children if isinstance(c, Tree)]
        if kind == "neg":
            (inner,) = operands
            return Num(-inner.value) if isinstance(inner, Num) else Neg(inner)
        left, right = operands
        is_date = isinstance(left, Call) and left.name == "now" and kind in ("add", "sub")
        if is_date and not parenthesized:
            self.fail(
                "date arithmetic goes in parentheses: (now() - 3 days)", node, rule or self.span(node)[0]
            )
        return BinOp({"add": "+", "sub": "-", "mul": "*", "div": "/"}[str(kind)], left, right)  # type: ignore[arg-type]

    def _date(self, token: Token | Tree | None, rule: str) -> DateLit:
        assert isinstance(token, Token)
        try:
            return DateLit(dt.date.fromisoformat(unquote(token)))
        except ValueError:
            self.fail(f"{token} is not a date (YYYY-MM-DD)", token, rule)

    def _time(self, token: Token | Tree | None, rule: str) -> TimeOfDay:
        assert isinstance(token, Token)
        text = unquote(token)
        clock, _, half = text.partition(" ")
        hour, minute = (int(part) for part in clock.split(":"))
        valid = minute < 60 and (1 <= hour <= 12 if half else hour < 24)
        if not valid:
            self.fail(f'{token} is not a time of day ("9:30 PM" or "21:30")', token, rule)
        if half:
            hour = hour % 12 + (12 if half == "PM" else 0)
        return TimeOfDay(hour, minute, text)


def _with_labels(node: RuleNode, labels: Labels) -> RuleNode:
    if isinstance(node, Rule):
        return Rule(
            node.rule_type,
            node.params,
            node.condition,
            node.where,
            node.threshold,
            node.tags,
            labels,
            text=node.text,
            line=node.line,
            column=node.column,
        )
    return CompositeRule(node.op, node.rules, labels, node.text, node.line, node.column)


def _names_variable(text: str) -> bool:
    """Whether ``text`` holds a ``$name`` (a variable inside a variable's value)."""
    index = text.find("$")
    return index >= 0 and index + 1 < len(text) and (text[index + 1].isalpha() or text[index + 1] == "_")


def unquote(token: object) -> str:
    """The text of a quoted DQDL string token, with ``\\"`` and ``\\\\`` unescaped."""
    body = str(token)[1:-1]
    out, i = [], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body) and body[i + 1] in '"\\':
            out.append(body[i + 1])
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def _balance(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen ``text[start:end]`` to include the parentheses lark drops from a node's span."""
    depth, lowest = 0, 0
    i = start
    while i < end:
        char = text[i]
        if char == '"':  # skip strings: CustomSql "select count(*) ..." has its own parentheses
            i += 1
            while i < end and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            lowest = min(lowest, depth)
        i += 1
    for _ in range(-lowest):  # closing parentheses without their opening ones: reach back
        start = text.rfind("(", 0, start)
    for _ in range(depth - lowest):  # opening ones without their closing ones: reach forward
        end = text.find(")", end) + 1
    return start, end
