"""``policy.yaml``: principals, tags, grants, masks and row filters, validated with file and line.

A policy names lake objects by path: ``telco`` (a domain: every namespace in it), ``telco.processed``
(a namespace), ``telco.processed.cdr`` (a table) or ``telco.processed.cdr.msisdn`` (a column).
Principals are written ``user:NAME``, ``role:NAME`` or ``group:NAME``; a bare name is looked up as a
user, then a role, then a group.

Precedence is fixed: a deny beats a mask, a mask beats an allow; when several masks apply to one
column the most restrictive wins (``MaskSpec.rank``); row filters that apply are all enforced (AND).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import sqlglot
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlglot import exp
from sqlglot.errors import ParseError

from lakeplane.documents import Document, read_document
from lakeplane.errors import PolicyError
from lakeplane.governance.masks import MaskSpec

PRIVILEGES = ("SELECT", "INSERT", "ALTER", "DESCRIBE", "CREATE")
ATTRIBUTE_FUNCTION = "current_principal_attr"
PRINCIPAL_FUNCTION = "current_principal"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UserSpec(_Strict):
    roles: list[str] = []
    attributes: dict[str, str] = {}


class Principals(_Strict):
    users: dict[str, UserSpec] = {}
    roles: list[str] = []
    groups: dict[str, list[str]] = {}


class _Targeted(_Strict):
    to: list[str]

    @field_validator("to", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class GrantSpec(_Targeted):
    """An allow (``privileges``) or a deny (``deny``) on a path or on columns matching tags."""

    privileges: list[str] = []
    deny: list[str] = []
    on: str | None = None
    tags: dict[str, list[str]] | None = None
    grant_option: bool = False

    @field_validator("privileges", "deny")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        upper = [v.upper() for v in value]
        for privilege in upper:
            if privilege not in PRIVILEGES:
                raise ValueError(f"unknown privilege '{privilege}'; expected {', '.join(PRIVILEGES)}")
        return upper


class MaskRule(_Targeted):
    on: str | None = None
    tags: dict[str, list[str]] | None = None
    mask: Any


class RowFilterRule(_Targeted):
    on: str
    where: str


class PolicyDocument(_Strict):
    principals: Principals = Principals()
    tags: dict[str, list[str]] = {}
    tag_assignments: dict[str, dict[str, str | list[str]]] = {}
    grants: list[GrantSpec] = []
    masks: list[MaskRule] = []
    row_filters: list[RowFilterRule] = Field(default=[])


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user (with roles, groups, attributes) or a role or group acting alone."""

    name: str
    kind: Literal["user", "role", "group"]
    identities: frozenset[str]
    attributes: dict[str, str]


@dataclass(frozen=True)
class Rule:
    """One grant, deny, mask or row filter, with where it was written (for 'because ...')."""

    kind: Literal["allow", "deny", "mask", "filter"]
    index: int
    to: frozenset[str]
    on: str | None
    tags: dict[str, frozenset[str]] | None
    privileges: frozenset[str] = frozenset()
    mask: MaskSpec | None = None
    where: exp.Expression | None = None
    grant_option: bool = False
    line: int | None = None

    def describe(self) -> str:
        target = (
            f"on {self.on}"
            if self.on
            else "on tags "
            + ", ".join(f"{k}={'|'.join(sorted(v))}" for k, v in sorted((self.tags or {}).items()))
        )
        privileges = " ".join(sorted(self.privileges))
        what = {
            "allow": privileges,
            "deny": f"deny {privileges}",
            "filter": "row filter",
            "mask": f"mask {self.mask.kind if self.mask else ''}",
        }[self.kind]
        return f"{self.kind} #{self.index + 1} ({', '.join(sorted(self.to))} {what} {target})"


@dataclass(frozen=True)
class Policy:
    """A validated policy file."""

    path: Path
    text: str
    document: PolicyDocument
    rules: tuple[Rule, ...]
    digest: str

    def principal(self, name: str) -> Principal:
        """Resolve ``name`` (``user:x``, ``role:x``, ``group:x`` or bare) to a principal."""
        ref = self._qualify(name)
        if ref is None:
            known = sorted(self.known_principals())
            raise PolicyError(
                f"unknown principal '{name}' (known: {', '.join(known) or 'none'})", principal=name
            )
        kind, bare = ref.split(":", 1)
        identities = {ref}
        attributes: dict[str, str] = {}
        if kind == "user":
            user = self.document.principals.users[bare]
            identities |= {f"role:{r}" for r in user.roles}
            attributes = dict(user.attributes)
        identities |= {
            f"group:{g}"
            for g, members in self.document.principals.groups.items()
            if bare in members and kind == "user"
        }
        return Principal(bare, kind, frozenset(identities), attributes)  # type: ignore[arg-type]

    def known_principals(self) -> set[str]:
        p = self.document.principals
        return (
            {f"user:{u}" for u in p.users}
            | {f"role:{r}" for r in self.all_roles()}
            | {f"group:{g}" for g in p.groups}
        )

    def all_roles(self) -> set[str]:
        p = self.document.principals
        return set(p.roles) | {r for u in p.users.values() for r in u.roles}

    def _qualify(self, name: str) -> str | None:
        known = self.known_principals()
        if ":" in name:
            return name if name in known else None
        for kind in ("user", "role", "group"):
            if f"{kind}:{name}" in known:
                return f"{kind}:{name}"
        return None


def load_policy(path: Path) -> Policy:
    """Read and validate ``path``.

    Raises:
        PolicyError: with the file, the line and the problem.
    """
    document = read_document(path, error=PolicyError)
    policy_document = document.validate(PolicyDocument)
    rules = _rules(document, policy_document)
    digest = hashlib.sha256(document.text.encode()).hexdigest()
    return Policy(path, document.text, policy_document, rules, digest)


def _rules(source: Document, doc: PolicyDocument) -> tuple[Rule, ...]:
    def check_to(section: str, index: int, names: list[str]) -> frozenset[str]:
        resolved = []
        for position, name in enumerate(names):
            ref = probe._qualify(name)
            if ref is None:
                raise source.error((section, str(index), "to", str(position)), f"unknown principal '{name}'")
            resolved.append(ref)
        return frozenset(resolved)

    def check_tags(
        section: str, index: int, tags: dict[str, list[str]] | None
    ) -> dict[str, frozenset[str]] | None:
        if tags is None:
            return None
        for key, values in tags.items():
            _check_tag(source, doc, (section, str(index), "tags", key), key, values)
        return {k: frozenset(v) for k, v in tags.items()}

    def check_target(section: str, index: int, on: str | None, tags: object) -> None:
        if (on is None) == (tags is None):
            raise source.error((section, str(index)), "give exactly one of 'on' or 'tags'")
        if on is not None and not 1 <= len(on.split(".")) <= 4:
            raise source.error((section, str(index), "on"), f"'{on}' is not domain[.zone[.table[.column]]]")

    path = Path(source.source)
    lines = source.lines
    probe = Policy(path, "", doc, (), "")
    for target, assigned in doc.tag_assignments.items():
        for key, values in assigned.items():
            _check_tag(
                source,
                doc,
                ("tag_assignments", target, key),
                key,
                [values] if isinstance(values, str) else values,
            )
    for group, members in doc.principals.groups.items():
        for member in members:
            if member not in doc.principals.users:
                raise source.error(("principals", "groups", group), f"unknown user '{member}'")
    rules: list[Rule] = []
    for i, grant in enumerate(doc.grants):
        check_target("grants", i, grant.on, grant.tags)
        if bool(grant.privileges) == bool(grant.deny):
            raise source.error(("grants", str(i)), "give exactly one of 'privileges' or 'deny'")
        rules.append(
            Rule(
                "deny" if grant.deny else "allow",
                i,
                check_to("grants", i, grant.to),
                grant.on,
                check_tags("grants", i, grant.tags),
                frozenset(grant.privileges or grant.deny),
                grant_option=grant.grant_option,
                line=lines.get(("grants", str(i))),
            )
        )
    for i, rule in enumerate(doc.masks):
        check_target("masks", i, rule.on, rule.tags)
        try:
            spec = MaskSpec.parse("null" if rule.mask is None else rule.mask)  # YAML `null` is None
        except ValueError as exc:
            raise source.error(("masks", str(i), "mask"), str(exc)) from None
        rules.append(
            Rule(
                "mask",
                i,
                check_to("masks", i, rule.to),
                rule.on,
                check_tags("masks", i, rule.tags),
                mask=spec,
                line=lines.get(("masks", str(i))),
            )
        )
    for i, row_filter in enumerate(doc.row_filters):
        if len(row_filter.on.split(".")) != 3:
            raise source.error(("row_filters", str(i), "on"), f"'{row_filter.on}' is not a table")
        try:
            where = sqlglot.parse_one(row_filter.where, read="duckdb")
        except ParseError as exc:
            raise source.error(("row_filters", str(i), "where"), f"does not parse: {exc}") from None
        if where.find(exp.Select, exp.Subquery, exp.Table):
            raise source.error(
                ("row_filters", str(i), "where"),
                "a row filter is a condition on the table's own columns, without subqueries",
            )
        rules.append(
            Rule(
                "filter",
                i,
                check_to("row_filters", i, row_filter.to),
                row_filter.on,
                None,
                where=where,  # type: ignore[arg-type]
                line=lines.get(("row_filters", str(i))),
            )
        )
    return tuple(rules)


def _check_tag(
    source: Document, doc: PolicyDocument, loc: tuple[str, ...], key: str, values: list[str]
) -> None:
    if key not in doc.tags:
        raise source.error(loc, f"unknown tag '{key}' (declared: {', '.join(doc.tags) or 'none'})")
    for value in values:
        if value not in doc.tags[key]:
            raise source.error(loc, f"tag {key} has no value '{value}' (allowed: {', '.join(doc.tags[key])})")


def bind_row_filter(where: exp.Expression, principal: Principal) -> exp.Expression:
    """The filter with the caller's name and attributes put in as literals (NULL when absent)."""

    def bind(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and node.name.lower() == ATTRIBUTE_FUNCTION:
            args = node.expressions
            if len(args) != 1 or not isinstance(args[0], exp.Literal):
                return exp.Null()
            value = principal.attributes.get(args[0].this)
            return exp.Null() if value is None else exp.Literal.string(value)
        if isinstance(node, exp.Anonymous) and node.name.lower() == PRINCIPAL_FUNCTION:
            return exp.Literal.string(principal.name)
        return node

    return where.copy().transform(bind, copy=False)
