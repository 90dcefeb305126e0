"""Parse DQDL text into a :class:`~lakeplane.quality.rules.Ruleset`, checking every rule against its type.

Parsing is lark's LALR parser over :data:`~lakeplane.quality.grammar.GRAMMAR`; a :class:`_Builder`
turns the tree into typed rules (variables substituted, negative literals folded) and
:func:`~lakeplane.quality.validate.validate_rule` checks each rule's parameters and condition. Every
problem raises :class:`DQDLError` naming the source, line, column and the rule as written.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, NoReturn

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr

from lakeplane.errors import DQDLError, did_you_mean
from lakeplane.quality.grammar import GRAMMAR
from lakeplane.quality.rules import (
    BinOp,
    Call,
    CompositeRule,
    Condition,
    Duration,
    Keyword,
    Neg,
    Num,
    Operand,
    Rule,
    RuleNode,
    Ruleset,
    Str,
)
from lakeplane.quality.validate import Fail, validate_analyzer, validate_rule


def raise_at(problem: str, source: str, line: int, column: int, rule: str) -> NoReturn:
    """Raise a :class:`DQDLError` as ``source:line:column: problem (in: rule)``."""
    snippet = " ".join(rule.split())
    where = f" (in: {snippet})" if snippet else ""
    raise DQDLError(
        f"{source}:{line}:{column}: {problem}{where}", source=source, line=line, column=column, rule=snippet
    )


def rule_failer(rule: Rule, source: str) -> Fail:
    """A ``fail(problem)`` that raises :class:`DQDLError` pointing at ``rule``."""

    def fail(problem: str) -> NoReturn:
        raise_at(problem, source, rule.line, rule.column, rule.text)

    return fail


@functools.cache
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=True)


def parse(text: str, source: str = "<dqdl>") -> Ruleset:
    """Parse a DQDL document (``Rules = [ ... ]``, optionally ``Analyzers``, ``Metadata``, variables).

    Raises:
        DQDLError: a syntax error, an unknown or unsupported rule type, or a rule whose parameters or
            condition do not fit its type.
    """
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        _syntax_error(exc, text, source)
    return _Builder(text, source).ruleset(tree)


def parse_file(path: str | os.PathLike[str]) -> Ruleset:
    """Parse the DQDL file at ``path``; messages name it as given."""
    return parse(Path(path).read_text(encoding="utf-8"), source=str(path))


_FRIENDLY = {
    "NAME": "a rule type or name",
    "STRING": "a quoted string",
    "NUMBER": "a number",
    "COMPARATOR": "a comparison (> >= < <= = !=)",
    "VARIABLE": "a $variable",
    "$END": "the end of the ruleset",
}


def _syntax_error(exc: UnexpectedInput, text: str, source: str) -> NoReturn:
    lines = text.splitlines() or [""]
    if isinstance(exc, UnexpectedCharacters):
        what = f"unexpected character {text[exc.pos_in_stream or 0]!r}"
        expected: set[str] = set(exc.allowed or ())
        line, column = exc.line, exc.column
    elif isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        what = f"unexpected {exc.token.value!r}"
        expected = set(exc.expected)
        line, column = exc.token.line or 1, exc.token.column or 1
    else:
        what = "unexpected end of the ruleset"
        expected = set(getattr(exc, "expected", None) or ())
        line, column = len(lines), len(lines[-1]) + 1
    names = sorted({_describe_terminal(name) for name in expected})
    hint = f"; expected {', '.join(names[:8])}{' ...' if len(names) > 8 else ''}" if names else ""
    rule = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    raise_at(f"syntax error: {what}{hint}", source, line, column, rule)


def _describe_terminal(name: str) -> str:
    if name in _FRIENDLY:
        return _FRIENDLY[name]
    try:
        pattern = _parser().get_terminal(name).pattern
    except KeyError:
        return name
    return f"'{pattern.value}'" if isinstance(pattern, PatternStr) else name


class _Builder:
    """Turns lark's tree into typed rules, keeping each rule's text and position."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.variables: dict[str, Operand | tuple[Operand, ...]] = {}

    def ruleset(self, tree: Tree) -> Ruleset:
        rules: list[RuleNode] = []
        analyzers: list[Rule] = []
        metadata: dict[str, str | tuple[str, ...]] = {}
        sources: dict[str, str | tuple[str, ...]] = {}
        seen: set[str] = set()
        for child in tree.children:
            if not isinstance(child, Tree):
                continue
            if child.data in ("metadata", "data_sources"):
                into = metadata if child.data == "metadata" else sources
                into.update(self._dictionary(child.children[0]))
            elif child.data == "variable":
                name, value = child.children
                self.variables[str(name)] = (
                    self._value_list(value)
                    if isinstance(value, Tree) and value.data == "value_list"
                    else self._operand(value)
                )
            else:
                if child.data in seen:
                    section = "Rules" if child.data == "rules_section" else "Analyzers"
                    self._fail(f"{section} appears twice", child, "")
                seen.add(str(child.data))
                nodes = [c for c in child.children if isinstance(c, Tree)]
                if child.data == "rules_section":
                    rules.extend(self._rule_node(node) for node in nodes)
                else:
                    analyzers.extend(self._leaf(node) for node in nodes)
        for leaf in (leaf for node in rules for leaf in node.leaves()):
            validate_rule(leaf, rule_failer(leaf, self.source))
        for analyzer in analyzers:
            validate_analyzer(analyzer, rule_failer(analyzer, self.source))
        return Ruleset(tuple(rules), tuple(analyzers), metadata, sources, self.source)

    # -- positions ---------------------------------------------------------------------------
    def _span(self, tree: Tree) -> tuple[str, int, int]:
        """The text of ``tree`` (widened to balance parentheses lark leaves out), line and column."""
        start, end = _balance(self.text, tree.meta.start_pos, tree.meta.end_pos)
        line = self.text.count("\n", 0, start) + 1
        column = start - (self.text.rfind("\n", 0, start) + 1) + 1
        return self.text[start:end], line, column

    def _fail(self, problem: str, node: Tree | Token, rule: str) -> NoReturn:
        if isinstance(node, Token):
            line, column = node.line or 1, node.column or 1
        else:
            line, column = node.meta.line, node.meta.column
        raise_at(problem, self.source, line, column, rule)

    # -- rules -------------------------------------------------------------------------------
    def _rule_node(self, tree: Tree) -> RuleNode:
        if tree.data == "dq_rule":
            return self._leaf(tree)
        op = "and" if tree.data == "and_rule" else "or"
        parts: list[RuleNode] = []
        for child in tree.children:
            node = self._rule_node(child)
            # (a and b) and c means a and b and c: one composite, as it prints
            parts.extend(node.rules if isinstance(node, CompositeRule) and node.op == op else [node])
        text, line, column = self._span(tree)
        return CompositeRule(op, tuple(parts), text=text, line=line, column=column)  # type: ignore[arg-type]

    def _leaf(self, tree: Tree) -> Rule:
        text, line, column = self._span(tree)
        name, *rest = tree.children
        params: list[str] = []
        condition: Condition | None = None
        where: str | None = None
        threshold: Condition | None = None
        for child in rest:
            if not isinstance(child, Tree):
                continue
            if child.data == "param":
                token = child.children[0]
                assert isinstance(token, Token)
                params.append(_unquote(token) if token.type == "STRING" else str(token))
            elif child.data == "where":
                where = _unquote(child.children[0])
            elif child.data == "tag":
                tag, cond = child.children
                if str(tag) != "threshold":
                    self._fail(f"unknown tag 'with {tag}'; DQDL rules take 'with threshold'", tag, text)
                if threshold is not None:
                    self._fail("'with threshold' appears twice", tag, text)
                threshold = self._condition(cond, text)
            else:
                condition = self._condition(child, text)
        return Rule(str(name), tuple(params), condition, where, threshold, text=text, line=line, column=column)

    def _condition(self, tree: Tree, rule: str) -> Condition:
        kind = tree.data
        if kind == "compare":
            comparator, operand = tree.children
            return Condition(str(comparator), (self._operand(operand),))  # type: ignore[arg-type]
        negated = tree.children[0] is not None
        if kind == "between":
            return Condition(
                "between", (self._operand(tree.children[1]), self._operand(tree.children[2])), negated
            )
        if kind == "matches":
            return Condition("matches", (Str(_unquote(tree.children[1])),), negated)
        values = tree.children[1]
        if isinstance(values, Token):  # in $variable
            resolved = self._variable(values, rule)
            items = resolved if isinstance(resolved, tuple) else (resolved,)
        else:
            items = self._value_list(values)
        return Condition("in", items, negated)

    def _value_list(self, tree: Tree) -> tuple[Operand, ...]:
        return tuple(self._operand(c) for c in tree.children if c is not None)

    def _variable(self, token: Token, rule: str) -> Operand | tuple[Operand, ...]:
        name = str(token)[1:]
        if name not in self.variables:
            self._fail(f"unknown variable '${name}'{did_you_mean(name, self.variables)}", token, rule)
        return self.variables[name]

    def _operand(self, node: Tree | Token) -> Operand:
        if isinstance(node, Token):  # pragma: no cover - the grammar wraps every terminal
            raise TypeError(node)
        kind, children = node.data, node.children
        if kind == "number":
            return Num(float(str(children[0])))
        if kind == "string":
            return Str(_unquote(children[0]))
        if kind == "duration":
            unit = str(children[1].children[0])
            return Duration(float(str(children[0])), unit)  # type: ignore[arg-type]
        if kind in ("null", "empty", "whitespaces_only"):
            return Keyword(kind.upper())  # type: ignore[arg-type]
        if kind == "variable_ref":
            token = children[0]
            assert isinstance(token, Token)
            value = self._variable(token, "")
            if isinstance(value, tuple):
                self._fail(f"variable '{token}' is a list; use it as 'in {token}'", token, "")
            return value
        if kind == "call":
            args = tuple(self._operand(c) for c in children[1:] if c is not None)
            return Call(str(children[0]).lower(), args)
        if kind == "neg":
            inner = self._operand(children[0])
            return Num(-inner.value) if isinstance(inner, Num) else Neg(inner)
        left, right = (self._operand(c) for c in children)
        return BinOp({"add": "+", "sub": "-", "mul": "*", "div": "/"}[kind], left, right)  # type: ignore[arg-type]

    def _dictionary(self, tree: Tree) -> dict[str, str | tuple[str, ...]]:
        out: dict[str, str | tuple[str, ...]] = {}
        for pair in (p for p in tree.children if isinstance(p, Tree)):
            key, value = pair.children
            out[_unquote(key)] = (
                tuple(_unquote(t) for t in value.children if t is not None)
                if isinstance(value, Tree)
                else _unquote(value)
            )
        return out


def _unquote(token: Any) -> str:
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
