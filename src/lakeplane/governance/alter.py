"""Governance of ``lakeplane alter``: who may change a table's schema, what the policy forbids
dropping, and the audit record of every change (with the schema before and after)."""

from __future__ import annotations

from sqlglot import exp

from lakeplane.errors import AccessDenied, PolicyError
from lakeplane.governance.access import may
from lakeplane.governance.audit_records import AuditEvent
from lakeplane.governance.plane import Governance

#: The privilege a principal needs on a table (or its zone or domain) to change its schema.
ALTER = "ALTER"


class AlterPolicy:
    """The :class:`~lakeplane.catalog.evolution.AlterGuard` of a lake: a no-op when it is not governed."""

    def __init__(self, governance: Governance) -> None:
        self.governance = governance

    def authorize(self, principal: str | None, table: str, change: str) -> None:
        """Raises unless ``principal`` holds ALTER on ``table``; a refusal is audited.

        The policy's column names are bound to field ids first (a recorded policy version), so a
        grant, tag or mask on a column follows it through the rename about to happen.

        Raises:
            PolicyError: the lake is governed and no principal was named.
            AccessDenied: the principal holds no ALTER grant on the table.
        """
        if not self.governance.enabled:
            return
        if not principal:
            policy_file = self.governance.path.name
            raise PolicyError(
                f"{policy_file} governs this lake: name a principal (lakeplane alter --as NAME)", table=table
            )
        who = self.governance.principal(principal)
        version = self.governance.version()
        if may(self.governance.policy(), who, ALTER, table):
            return
        denied = AccessDenied(
            f"principal '{who.name}' may not alter table {table} (no {ALTER} grant)",
            principal=who.name,
            table=table,
        )
        self.governance.audit(
            AuditEvent(
                principal=who.name,
                policy_version=version.label,
                sql=f"ALTER TABLE {table} {change}",
                decision="denied",
                reason=str(denied),
                tables=[table],
            )
        )
        raise denied

    def policy_references(self, table: str, column: str, field_id: int) -> list[str]:
        """Where the policy names ``column`` of ``table``: tag assignments, grants and masks on it
        (matched by the field id their name was bound to) and row filters using its name."""
        if not self.governance.enabled:
            return []
        policy = self.governance.policy()
        bindings = self.governance.version().bindings
        path = f"{table}.{column}"

        def names_it(target: str) -> bool:
            if target.count(".") != 3 or target.rsplit(".", 1)[0] != table:
                return False
            bound = bindings.get(target)
            return bound == field_id if bound is not None else target == path

        found = [f"tag_assignments {t}" for t in policy.document.tag_assignments if names_it(t)]
        for rule in policy.rules:
            where = f"line {rule.line}" if rule.line else f"#{rule.index + 1}"
            if rule.on and names_it(rule.on):
                found.append(f"{rule.kind} on {rule.on} ({where})")
            elif (
                rule.kind == "filter"
                and rule.on == table
                and rule.where is not None
                and any(c.name == column for c in rule.where.find_all(exp.Column))
            ):
                found.append(f"row filter on {table} ({where})")
        return found

    def record(
        self, principal: str | None, table: str, change: str, columns: list[str], before: str, after: str
    ) -> None:
        """Audit a committed change with the schema before and after (governed lakes)."""
        if not self.governance.enabled or not principal:
            return
        self.governance.audit(
            AuditEvent(
                principal=self.governance.principal(principal).name,
                policy_version=self.governance.version().label,
                sql=f"ALTER TABLE {table} {change}",
                decision="allowed",
                reason=f"before: {before}; after: {after}",
                tables=[table],
                columns=[f"{table}.{column}" for column in columns],
            )
        )
