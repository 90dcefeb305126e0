"""Parse DQDL text into a :class:`~lakeplane.quality.rules.Ruleset`, checking every rule against its type.

Parsing is lark's LALR parser over :data:`~lakeplane.quality.grammar.GRAMMAR`; a
:class:`~lakeplane.quality.build.RulesetBuilder` turns the tree into typed rules (variables
substituted, negative literals folded) and :func:`~lakeplane.quality.validate.validate_rule` checks
each rule's parameters and condition. Every problem raises :class:`DQDLError` naming the source,
line, column and the rule as written.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import sys
import uuid
from pathlib import Path
from typing import NoReturn

import lark
from lark import Lark
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr

from lakeplane.errors import DQDLError
from lakeplane.quality.build import RulesetBuilder
from lakeplane.quality.grammar import GRAMMAR
from lakeplane.quality.rules import Rule, Ruleset
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
    """The LALR parser of :data:`GRAMMAR`.

    Building its tables takes about 60 ms, loading them about 6 ms: they are kept in the user's
    cache folder (``$XDG_CACHE_HOME/lakeplane``, else ``~/.cache/lakeplane``), in a file named by
    the grammar, lark's and Python's versions and written whole before it is given its name, so a
    process never reads half a file. Where the folder cannot be used, they are built each time.
    """
    options = {"parser": "lalr", "propagate_positions": True, "maybe_placeholders": True}
    versions = f"{lark.__version__}\0{sys.version_info[:2]}\0{GRAMMAR}"
    try:
        folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lakeplane"
    except RuntimeError:  # no home folder to keep them in
        return Lark(GRAMMAR, **options)
    cached = folder / f"dqdl-{hashlib.sha256(versions.encode()).hexdigest()[:16]}.lark"
    try:
        with open(cached, "rb") as saved:
            return Lark.load(saved)
    except Exception:  # missing, unreadable or from another lark: build it again
        pass
    parser = Lark(GRAMMAR, **options)
    fresh = cached.with_name(f"{cached.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(fresh, "wb") as out:
            parser.save(out)
        os.replace(fresh, cached)
    except OSError:  # not kept: the next process builds it again
        with contextlib.suppress(OSError):
            fresh.unlink(missing_ok=True)
    return parser


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

    def at(problem: str, line: int, column: int, construct: str) -> NoReturn:
        raise_at(problem, source, line, column, construct)

    ruleset = RulesetBuilder(text, source, at).ruleset(tree)
    for leaf in ruleset.leaves():
        validate_rule(leaf, rule_failer(leaf, source))
    for analyzer in ruleset.analyzers:
        validate_analyzer(analyzer, rule_failer(analyzer, source))
    return ruleset


def parse_file(path: str | os.PathLike[str]) -> Ruleset:
    """Parse the DQDL file at ``path``; messages name it as given."""
    return parse(Path(path).read_text(encoding="utf-8"), source=str(path))


_FRIENDLY = {
    "NAME": "a rule type or name",
    "STRING": "a quoted string",
    "NUMBER": "a number",
    "INT": "a whole number",
    "DATE": 'a date ("YYYY-MM-DD")',
    "TIME": 'a time of day ("9:30 PM" or "21:30")',
    "SIZE_UNIT": "a size unit (B, KB, MB, GB, TB)",
    "COMPARATOR": "a comparison (> >= < <= = !=)",
    "VARIABLE": "a $variable",
    "$END": "the end of the ruleset",
}


def _syntax_error(exc: UnexpectedInput, text: str, source: str) -> NoReturn:
    lines = text.splitlines() or [""]
    found = ""
    if isinstance(exc, UnexpectedCharacters):
        found = text[exc.pos_in_stream or 0]
        what = f"unexpected character {found!r}"
        expected: set[str] = set(exc.allowed or ())
        line, column = exc.line, exc.column
    elif isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        found = str(exc.token.value)
        what = f"unexpected {found!r}"
        expected = set(exc.expected)
        line, column = exc.token.line or 1, exc.token.column or 1
    else:
        what = "unexpected end of the ruleset"
        expected = set(getattr(exc, "expected", None) or ())
        line, column = len(lines), len(lines[-1]) + 1
    names = sorted({_describe_terminal(name) for name in expected})
    hint = f"; expected {', '.join(names[:8])}{' ...' if len(names) > 8 else ''}" if names else ""
    before = text[: exc.pos_in_stream or 0].rstrip() if exc.pos_in_stream is not None else text.rstrip()
    construct = _construct(found, before, expected)
    rule = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    raise_at(f"syntax error: {what}{construct or hint}", source, line, column, rule)


_UNITS = "sizes take B, KB, MB, GB, TB and durations days, hours, minutes"
_TIME_WORDS = {"second", "sec", "min", "minute", "hour", "day", "week", "month", "year"}


def _looks_like_unit(word: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z]{0,2}[Bb]", word)) or word.lower().rstrip("s") in _TIME_WORDS


def _construct(found: str, before: str, expected: set[str]) -> str:
    """What the writer most likely meant, for the mistakes DQDL writers make most."""
    if before[-1:].isdigit() and _looks_like_unit(found):
        return f": '{found}' is not a unit; {_UNITS}"
    if found == ":" and before[-1:].isdigit():
        return ': a time of day is quoted: "9:30 PM" or "21:30"'
    if found == "'":
        return "; DQDL strings are in double quotes"
    words = before.split()
    for word in (found, words[-1] if words else ""):
        if word != word.lower() and word.lower() in ("between", "in", "not", "matches"):
            return f"; DQDL writes '{word.lower()}' in lower case, not '{word}'"
    if found == "]" and before.endswith(","):
        return "; a trailing comma: remove the ',' before ']'"
    if found and "RULES" not in expected and before.endswith("]") and expected <= {"ANALYZERS", "$END"}:
        return "; the ruleset goes on after its last section"
    return ""


def _describe_terminal(name: str) -> str:
    if name in _FRIENDLY:
        return _FRIENDLY[name]
    try:
        pattern = _parser().get_terminal(name).pattern
    except KeyError:
        return name
    return f"'{pattern.value}'" if isinstance(pattern, PatternStr) else name
