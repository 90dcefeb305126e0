"""Answers a governance team asks for: who can see a column, what SQL would run, what a change does."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pyiceberg.schema import Schema

from lakeplane.errors import PolicyError
from lakeplane.governance.access import ColumnDecision, bind_columns, table_access
from lakeplane.governance.policy import Policy, load_policy
from lakeplane.query.compiler import CompiledQuery


@dataclass(frozen=True)
class Visibility:
    """What one principal gets of one column."""

    principal: str
    sees: str  # unmasked, masked, denied
    mask: str | None
    row_filters: list[str]
    because: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def who_can_see(
    policy: Policy, bindings: dict[str, int], table: str, column: str, schema: Schema
) -> list[Visibility]:
    """Every principal of the policy and what it gets of ``table.column``, with the deciding rule."""
    if column not in schema.column_names:
        raise PolicyError(f"table {table} has no column '{column}'", table=table, column=column)
    answers = []
    for ref in sorted(
        policy.known_principals(), key=lambda r: (("user", "role", "group").index(r.split(":")[0]), r)
    ):
        principal = policy.principal(ref)
        access = table_access(policy, bindings, principal, table, schema)
        decision = access.column(column)
        assert decision is not None
        filters = [f.sql() for f in access.row_filters] if decision.access != "denied" else []
        answers.append(
            Visibility(
                ref, decision.access, decision.mask.kind if decision.mask else None, filters, decision.because
            )
        )
    return answers


def explain(secured: CompiledQuery, redact: Callable[[str], str]) -> dict[str, Any]:
    """What a secured query will run and why, as plain data (key material removed by ``redact``)."""
    return {
        "sql": redact(secured.sql),
        "tables": [b.table for b in secured.tables],
        "columns_read": secured.columns_read,
        "masks": secured.masks,
        "row_filters": secured.filters,
        "decisions": {
            access.table: {
                c.column: {"access": c.access, "mask": c.mask.kind if c.mask else None, "because": c.because}
                for c in access.columns
            }
            for access in secured.access.values()
        },
    }


@dataclass(frozen=True)
class Change:
    """One principal's access to one column, before and after a policy change."""

    principal: str
    column: str
    before: str
    after: str
    kind: str  # gains, loses, changes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def diff(
    current: Policy, bindings: dict[str, int], new_path: Path, schemas: dict[str, Schema]
) -> list[Change]:
    """Who gains or loses what on which columns if ``new_path`` replaced the current policy."""
    new = load_policy(new_path)
    new_bindings = bind_columns(new, schemas)
    changes = []
    principals = sorted(current.known_principals() | new.known_principals())
    for table, schema in sorted(schemas.items()):
        for ref in principals:
            before = _states(current, bindings, ref, table, schema)
            after = _states(new, new_bindings, ref, table, schema)
            for column in schema.column_names:
                if before[column] != after[column]:
                    changes.append(
                        Change(
                            ref,
                            f"{table}.{column}",
                            before[column],
                            after[column],
                            _kind(before[column], after[column]),
                        )
                    )
    return changes


def _states(policy: Policy, bindings: dict[str, int], ref: str, table: str, schema: Schema) -> dict[str, str]:
    if ref not in policy.known_principals():
        return {c: "denied (no such principal)" for c in schema.column_names}
    access = table_access(policy, bindings, policy.principal(ref), table, schema)
    filters = " AND ".join(f.sql() for f in access.row_filters)
    return {c.column: _state(c, filters) for c in access.columns}


def _state(decision: ColumnDecision, filters: str) -> str:
    if decision.access == "denied":
        return "denied"
    text = f"masked ({decision.mask.kind})" if decision.mask else "unmasked"
    return f"{text} where {filters}" if filters else text


def _kind(before: str, after: str) -> str:
    if before.startswith("denied"):
        return "gains"
    if after.startswith("denied"):
        return "loses"
    return "changes"
