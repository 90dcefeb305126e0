"""DQDL's file rules, measured on files rather than rows: ``FileFreshness``, ``FileSize``,
``FileMatch`` and ``FileUniqueness``.

Each rule checks the files at its path (a folder means every file below it), or without a path the
raw batches of the dataset under test (:mod:`lakeplane.quality.files_source`). Tags narrow the files
first: ``recentFiles = N`` keeps the N most recently modified, ``uriRegex`` keeps those whose path
matches (searched, not anchored), ``filterOrder = ["uriRegex", "recentFiles"]`` applies them in that
order (default: ``recentFiles`` first).

``FileFreshness`` and ``FileSize`` test each file and pass when every file passes, or with ``with
threshold`` when the share of passing files (the compliance) meets it. ``FileMatch`` compares each
file's checksum with a list, or two paths' files with each other (paired by their path below the
folder named). ``FileUniqueness`` is the number of distinct contents over the number of files.
Every outcome reports the metrics Glue gathers: the file count, the compliance, the uniqueness
ratio, the smallest and largest size.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from lakeplane.quality.expressions import Bounds, check_metric, format_value
from lakeplane.quality.files_conditions import (
    FILTER_TAGS,
    Span,
    format_time,
    holds,
    instants,
    select_files,
    size_span,
    time_zone,
)
from lakeplane.quality.files_source import (
    DEFAULT_HASH,
    HASH_ALGORITHMS,
    FileEntry,
    FileSource,
    FilesUnavailable,
)
from lakeplane.quality.plan import (
    Measurement,
    Resolver,
    RuleProblem,
    ScanResults,
    Target,
    flag_tag,
    planner,
    scalar_tag,
)
from lakeplane.quality.rules import (
    Condition,
    DateLit,
    Num,
    Operand,
    Rule,
    Size,
    Str,
    format_operand,
)
from lakeplane.quality.validate import Fail

__all__ = ["FileSource"]

#: Failing files named in a message; the rest are counted.
SHOWN_FILES = 5


# -- choosing the files ------------------------------------------------------------------------


def _entries(rule: Rule, target: Target, path: str | None) -> list[FileEntry]:
    source = _source(rule, target)
    try:
        found = source.files(path)
    except FilesUnavailable as exc:
        raise RuleProblem(f"{rule.rule_type}: {exc}") from None
    return select_files(rule, found)


def _source(rule: Rule, target: Target) -> FileSource:
    if target.files is None:
        raise RuleProblem(
            f"{rule.rule_type}: no files can be found for this check (it was given no file source)"
        )
    return target.files


def _path(rule: Rule) -> str | None:
    return rule.params[0] if rule.params else None


def _no_files(rule: Rule) -> str:
    path = _path(rule)
    return f"no files to check at {path if path is not None else 'the dataset under test'}; FileCount 0"


def _compliance(
    rule: Rule,
    target: Target,
    entries: list[FileEntry],
    failing: list[FileEntry],
    expected: str,
    shown: Callable[[FileEntry], str],
    extra: str = "",
) -> Measurement:
    """A rule that tests each file: every file must pass, or the passing share meet the threshold."""
    total = len(entries)
    if not total:
        return Measurement(None, verdict=False, detail=_no_files(rule))
    share = (total - len(failing)) / total
    if failing:
        names = ", ".join(shown(e) for e in failing[:SHOWN_FILES])
        more = f" and {len(failing) - SHOWN_FILES} more" if len(failing) > SHOWN_FILES else ""
        detail = f"{len(failing)} of {total} files fail {expected}: {names}{more}"
    else:
        detail = f"{'the one file meets' if total == 1 else f'all {total} files meet'} {expected}"
    detail += f"; FileCount {total}, compliance {format_value(share)}{extra}"
    if rule.threshold is None:
        return Measurement(share, verdict=not failing, detail=detail)
    check = check_metric(rule.threshold, share, Bounds(target.now))
    verdict = "meets" if check.passed else "does not meet"
    return Measurement(share, verdict=check.passed, detail=f"{detail}; {verdict} threshold {check.expected}")


def _when(entry: FileEntry) -> str:
    return f"{entry.name} {'landed' if entry.landed else 'modified'} {format_time(entry.modified)}"


def _resolved(
    condition: Condition,
    spans: Sequence[Span],
    literal: Callable[[Operand], bool],
    show: Callable[[float], str],
) -> str:
    """``condition`` as written, with the value each computed operand stood for."""
    text = condition.to_dqdl()
    computed = [
        f"{format_operand(o)} = {show(s[0])}"
        for o, s in zip(condition.operands, spans, strict=True)
        if not literal(o)
    ]
    return f"{text} ({'; '.join(computed)})" if computed else text


# -- the rules ---------------------------------------------------------------------------------


@planner("FileFreshness", tags=[*FILTER_TAGS, "timeZone"])
def _file_freshness(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    _check_tags(rule, fail)
    condition = _condition(rule)
    zone = time_zone(rule)

    def measure(r: ScanResults) -> Measurement:
        now = target.now if target.now.tzinfo else target.now.replace(tzinfo=dt.UTC)
        spans = [instants(rule, o, now, zone) for o in condition.operands]
        entries = _entries(rule, target, _path(rule))
        failing = [e for e in entries if not holds(condition, e.modified.timestamp(), spans)]
        expected = _resolved(
            condition,
            spans,
            lambda o: isinstance(o, DateLit),
            lambda s: format_time(dt.datetime.fromtimestamp(s, dt.UTC)),
        )
        return _compliance(rule, target, entries, failing, expected, _when)

    return measure


@planner("FileSize", tags=FILTER_TAGS)
def _file_size(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    _check_tags(rule, fail)
    condition = _condition(rule)
    spans = [size_span(rule, o) for o in condition.operands]

    def measure(r: ScanResults) -> Measurement:
        entries = _entries(rule, target, _path(rule))
        failing = [e for e in entries if not holds(condition, float(e.size), spans)]
        sizes = [e.size for e in entries]
        extra = f", MinimumFileSize {min(sizes)} B, MaximumFileSize {max(sizes)} B" if sizes else ""
        expected = _resolved(condition, spans, lambda o: isinstance(o, Size | Num), lambda s: f"{s:.0f} B")
        return _compliance(rule, target, entries, failing, expected, lambda e: f"{e.name} {e.size} B", extra)

    return measure


@planner("FileUniqueness", tags=[*FILTER_TAGS, "hashAlgorithm", "matchFileName"])
def _file_uniqueness(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    _check_tags(rule, fail)
    algorithm = _algorithm(rule)
    by_name = flag_tag(rule, "matchFileName")

    def measure(r: ScanResults) -> Measurement:
        entries = _entries(rule, target, _path(rule))
        if not entries:
            return Measurement(None, verdict=False, detail=_no_files(rule))
        source = _source(rule, target)
        groups = _same_files(entries, [_checksum(rule, source, e, algorithm) for e in entries], by_name)
        ratio = len(groups) / len(entries)
        repeated = [" = ".join(e.name for e in group) for group in groups if len(group) > 1]
        same = "same content or name" if by_name else "same content"
        duplicates = f"; duplicates ({same}): {', '.join(repeated[:SHOWN_FILES])}" if repeated else ""
        return Measurement(
            ratio,
            detail=f"FileCount {len(entries)}, {len(groups)} distinct, FileUniquenessRatio "
            f"{format_value(ratio)}{duplicates}",
        )

    return measure


@planner("FileMatch", tags=[*FILTER_TAGS, "hashAlgorithm"])
def _file_match(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    _check_tags(rule, fail)
    algorithm = _algorithm(rule)
    if len(rule.params) == 2:
        return lambda r: _match_paths(rule, target, algorithm)
    condition = rule.condition
    if condition is None or condition.op not in ("in", "=", "!="):
        raise RuleProblem(
            'FileMatch takes two paths, or a checksum list: FileMatch "path" in ["<checksum>", ...]'
        )
    expected: set[str] = set()
    for operand in condition.operands:
        if not isinstance(operand, Str):
            raise RuleProblem(f"FileMatch: {format_operand(operand)} is not a checksum (a quoted hex string)")
        expected.add(operand.value.strip().lower())
    refused = condition.negated or condition.op == "!="

    def measure(r: ScanResults) -> Measurement:
        entries = _entries(rule, target, _path(rule))
        source = _source(rule, target)
        sums = {e.uri: _checksum(rule, source, e, algorithm) for e in entries}
        failing = [e for e in entries if (sums[e.uri] in expected) == refused]
        return _compliance(
            rule,
            target,
            entries,
            failing,
            f"{condition.to_dqdl()} ({algorithm})",
            lambda e: f"{e.name} {algorithm} {sums[e.uri]}",
        )

    return measure


def _match_paths(rule: Rule, target: Target, algorithm: str) -> Measurement:
    """Two paths' files are the same: equal checksums, paired by their path below each folder (two
    single files are paired whatever their names)."""
    source = _source(rule, target)
    left, right = (_entries(rule, target, p) for p in rule.params)
    if len(left) == 1 and len(right) == 1:
        pairs = {left[0].name: (left[0], right[0])}
        only_left: list[str] = []
        only_right: list[str] = []
    else:
        ours, theirs = {e.relative: e for e in left}, {e.relative: e for e in right}
        pairs = {k: (ours[k], theirs[k]) for k in sorted(ours.keys() & theirs.keys())}
        only_left, only_right = sorted(ours.keys() - theirs.keys()), sorted(theirs.keys() - ours.keys())
    differ = [
        k
        for k, (a, b) in pairs.items()
        if _checksum(rule, source, a, algorithm) != _checksum(rule, source, b, algorithm)
    ]
    compared = len(pairs) + len(only_left) + len(only_right)
    matched = len(pairs) - len(differ)
    parts = [f"{matched} of {compared} files match ({algorithm})"]
    for label, names in (
        ("differ", differ),
        (f"only in {rule.params[0]}", only_left),
        (f"only in {rule.params[1]}", only_right),
    ):
        if names:
            more = f" and {len(names) - SHOWN_FILES} more" if len(names) > SHOWN_FILES else ""
            parts.append(f"{label}: {', '.join(names[:SHOWN_FILES])}{more}")
    parts.append(f"FileCount {len(left) + len(right)}")
    passed = compared > 0 and matched == compared
    return Measurement(matched / compared if compared else None, verdict=passed, detail="; ".join(parts))


def _same_files(entries: list[FileEntry], sums: list[str], by_name: bool) -> list[list[FileEntry]]:
    """Groups of files that are the same: equal checksums (or, ``by_name``, equal names too)."""
    parent = list(range(len(entries)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, str], int] = {}
    for i, (entry, digest) in enumerate(zip(entries, sums, strict=True)):
        for key in [("sum", digest)] + ([("name", entry.name)] if by_name else []):
            if key in first:
                parent[root(i)] = root(first[key])
            else:
                first[key] = i
    groups: dict[int, list[FileEntry]] = {}
    for i, entry in enumerate(entries):
        groups.setdefault(root(i), []).append(entry)
    return list(groups.values())


def _check_tags(rule: Rule, fail: Fail) -> None:
    """A tag value that cannot apply (an unknown time zone or hash algorithm, ``recentFiles = 0``, a
    bad regular expression) is the ruleset's mistake: reported with its line, as the public grammar
    reports an unknown time zone, before anything is read."""
    try:
        time_zone(rule)
        select_files(rule, [])
        _algorithm(rule)
        flag_tag(rule, "matchFileName")
    except RuleProblem as problem:
        fail(str(problem))


def _condition(rule: Rule) -> Condition:
    if rule.condition is None:
        raise RuleProblem(f"{rule.rule_type} needs a condition")
    return rule.condition


def _algorithm(rule: Rule) -> str:
    value = scalar_tag(rule, "hashAlgorithm")
    if value is None:
        return DEFAULT_HASH
    name = str(value).strip().upper()
    if name not in HASH_ALGORITHMS:
        raise RuleProblem(
            f"{rule.rule_type}: unknown hashAlgorithm '{value}'; use {', '.join(HASH_ALGORITHMS)} "
            f"(default {DEFAULT_HASH})"
        )
    return name


def _checksum(rule: Rule, source: FileSource, entry: FileEntry, algorithm: str) -> str:
    try:
        return source.checksum(entry, algorithm).lower()
    except FilesUnavailable as exc:
        raise RuleProblem(f"{rule.rule_type}: {exc}") from None
