"""What one principal may see of one table: per column unmasked, masked or denied, and row filters.

Columns are matched by Iceberg field id once a policy is bound to the catalog (:func:`bind_columns`),
so renaming a column keeps its grants, tags and masks. Tags are inherited domain → namespace →
table → column; a key assigned lower overrides the same key assigned higher.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pyiceberg.schema import Schema
from sqlglot import exp

from lakeplane.errors import PolicyError
from lakeplane.governance.masks import MaskSpec
from lakeplane.governance.policy import Policy, Principal, Rule, bind_row_filter

Access = Literal["unmasked", "masked", "denied"]


@dataclass(frozen=True)
class ColumnDecision:
    """One column for one principal, and the rule that decided it."""

    column: str
    field_id: int
    type: str
    access: Access
    because: str
    mask: MaskSpec | None = None


@dataclass(frozen=True)
class TableAccess:
    """One table for one principal."""

    principal: str
    table: str
    columns: list[ColumnDecision]
    row_filters: list[exp.Expression] = field(default_factory=list)
    filter_rules: list[str] = field(default_factory=list)

    @property
    def visible(self) -> list[ColumnDecision]:
        return [c for c in self.columns if c.access != "denied"]

    @property
    def masked(self) -> dict[str, MaskSpec]:
        return {c.column: c.mask for c in self.columns if c.mask is not None}

    def column(self, name: str) -> ColumnDecision | None:
        return next((c for c in self.columns if c.column == name), None)


def bind_columns(
    policy: Policy, schemas: dict[str, Schema], bound_before: dict[str, int] | None = None
) -> dict[str, int]:
    """Field ids of every column the policy names, for the tables that exist now.

    Columns in ``bound_before`` (an earlier version's bindings) that the policy still names keep
    their field id: they may have been renamed since.

    Raises:
        PolicyError: a named column is not in its (existing) table, with the policy's file and line.
    """
    paths = _column_paths(policy)
    named = {path for path, _ in paths}
    bound = {path: i for path, i in (bound_before or {}).items() if path in named}
    for path, line in paths:
        table, column = path.rsplit(".", 1)
        if table not in schemas or path in bound:
            continue
        names = {f.name: f.field_id for f in schemas[table].fields}
        if column not in names:
            raise PolicyError(
                f"{policy.path}{f':{line}' if line else ''}: table {table} has no column '{column}'",
                file=str(policy.path),
                line=line,
                column=path,
            )
        bound[path] = names[column]
    return bound


def _column_paths(policy: Policy) -> list[tuple[str, int | None]]:
    paths: list[tuple[str, int | None]] = [
        (target, None) for target in policy.document.tag_assignments if target.count(".") == 3
    ]
    paths += [(r.on, r.line) for r in policy.rules if r.on and r.on.count(".") == 3]
    return paths


def table_access(
    policy: Policy, bindings: dict[str, int], principal: Principal, table: str, schema: Schema
) -> TableAccess:
    """Decide every column of ``table`` for ``principal``, and the row filters that bind them."""
    columns = []
    for column in schema.fields:
        tags = effective_tags(policy, bindings, table, column.name, column.field_id)
        applicable = [
            r
            for r in policy.rules
            if r.to & principal.identities
            and _matches(r, bindings, table, column.name, column.field_id, tags)
        ]
        columns.append(_decide(column.name, column.field_id, str(column.field_type), applicable))
    filters, because = [], []
    for rule in policy.rules:
        if rule.kind == "filter" and rule.on == table and rule.to & principal.identities and rule.where:
            filters.append(bind_row_filter(rule.where, principal))
            because.append(rule.describe())
    return TableAccess(principal.name, table, columns, filters, because)


def _decide(name: str, field_id: int, kind: str, rules: list[Rule]) -> ColumnDecision:
    denies = [r for r in rules if r.kind == "deny" and "SELECT" in r.privileges]
    if denies:
        return ColumnDecision(name, field_id, kind, "denied", denies[0].describe())
    allows = [r for r in rules if r.kind == "allow" and "SELECT" in r.privileges]
    if not allows:
        return ColumnDecision(name, field_id, kind, "denied", "no grant")
    masks = [r for r in rules if r.kind == "mask" and r.mask is not None]
    if masks:
        strongest = max(masks, key=lambda r: (r.mask.rank if r.mask else 0, -r.index))
        return ColumnDecision(name, field_id, kind, "masked", strongest.describe(), strongest.mask)
    return ColumnDecision(name, field_id, kind, "unmasked", allows[0].describe())


def _matches(
    rule: Rule, bindings: dict[str, int], table: str, column: str, field_id: int, tags: dict[str, set[str]]
) -> bool:
    if rule.kind == "filter":
        return False
    if rule.on is not None:
        parts = rule.on.split(".")
        if len(parts) == 4:
            bound = bindings.get(rule.on)
            return rule.on.rsplit(".", 1)[0] == table and (
                bound == field_id if bound is not None else parts[3] == column
            )
        return table == rule.on or table.startswith(rule.on + ".")
    return all(tags.get(key, set()) & values for key, values in (rule.tags or {}).items())


def effective_tags(
    policy: Policy, bindings: dict[str, int], table: str, column: str, field_id: int
) -> dict[str, set[str]]:
    """The column's tags after inheritance: a key assigned lower overrides the same key above."""
    domain, zone, _ = table.split(".")
    levels = [domain, f"{domain}.{zone}", table]
    column_paths = [
        p
        for p in policy.document.tag_assignments
        if p.count(".") == 3
        and p.rsplit(".", 1)[0] == table
        and (bindings.get(p) == field_id if p in bindings else p.rsplit(".", 1)[1] == column)
    ]
    tags: dict[str, set[str]] = {}
    for path in [*levels, *column_paths]:
        for key, values in policy.document.tag_assignments.get(path, {}).items():
            tags[key] = {values} if isinstance(values, str) else set(values)
    return tags


def may(policy: Policy, principal: Principal, privilege: str, table: str) -> bool:
    """Whether ``principal`` holds ``privilege`` on the table itself (for INSERT, ALTER, DESCRIBE)."""
    rules = [
        r
        for r in policy.rules
        if r.to & principal.identities
        and r.on is not None
        and (table == r.on or table.startswith(r.on + "."))
        and privilege in r.privileges
    ]
    return not any(r.kind == "deny" for r in rules) and any(r.kind == "allow" for r in rules)
