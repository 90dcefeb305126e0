"""The governance plane of one lake: its policy, the versions recorded, the mask key and the audit log.

Governance is on when the project holds its policy file (``governance.policy``, default
``policy.yaml``); then every query names a principal, is compiled by :func:`compile_secured`, and
leaves an audit record whether it was allowed or denied.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pyiceberg.schema import Schema

from lakeplane.catalog import LakeCatalog
from lakeplane.config import GovernanceConfig
from lakeplane.errors import AccessDenied, ConfigError
from lakeplane.governance.access import ColumnDecision, TableAccess, may, table_access
from lakeplane.governance.answers import Change, Visibility, diff, explain, who_can_see
from lakeplane.governance.audit import AuditEvent, AuditLog
from lakeplane.governance.masks import redact_key
from lakeplane.governance.policy import Policy, Principal, load_policy
from lakeplane.governance.secure import GOVERNED_REWRITES, compile_secured
from lakeplane.governance.store import PolicyStore, PolicyVersion
from lakeplane.query.compiler import CompiledQuery, Rewrite

#: The environment variable holding the audit key; else ``.lakeplane/audit.key`` is made once.
AUDIT_KEY_ENV = "LAKEPLANE_AUDIT_KEY"


class Governance:
    """Policy, versions, key and audit for one lake project."""

    def __init__(
        self, config: GovernanceConfig, project_dir: Path, state_dir: Path, catalog: Callable[[], LakeCatalog]
    ) -> None:
        self.config = config
        self.path = project_dir / config.policy
        self.state_dir = state_dir
        self._catalog = catalog
        self._policy: tuple[float, Policy] | None = None
        self._version: PolicyVersion | None = None
        self._audit: AuditLog | None = None

    @property
    def enabled(self) -> bool:
        return self.path.exists()

    @property
    def catalog(self) -> LakeCatalog:
        return self._catalog()

    def policy(self) -> Policy:
        """The policy file, validated (re-read when it changes)."""
        mtime = self.path.stat().st_mtime
        if self._policy is None or self._policy[0] != mtime:
            self._policy = (mtime, load_policy(self.path))
            self._version = None
        return self._policy[1]

    def version(self) -> PolicyVersion:
        """The recorded version of the current policy (recording a new one when it changed)."""
        policy = self.policy()
        if self._version is None or self._version.digest != policy.digest:
            self._version = PolicyStore(self.catalog.state_engine).record(policy, self._schemas)
        return self._version

    def versions(self) -> list[PolicyVersion]:
        """Every recorded version of the policy, the current one recorded first if it is new."""
        self.version()
        return PolicyStore(self.catalog.state_engine).history()

    def _schemas(self) -> dict[str, Schema]:
        return {str(ref): self.catalog.load(ref).schema() for ref in self.catalog.list_tables()}

    def principal(self, name: str) -> Principal:
        return self.policy().principal(name)

    def access(self, principal: str | Principal, table: str) -> TableAccess:
        who = self.principal(principal) if isinstance(principal, str) else principal
        schema = self.catalog.load(table).schema()
        return table_access(self.policy(), self.version().bindings, who, table, schema)

    def column(self, principal: Principal, table: str, column: str) -> ColumnDecision | None:
        return self.access(principal, table).column(column)

    def key(self) -> bytes:
        """The hash-mask key: from the environment, else a key file made once (mode 600)."""
        return _secret(self.config.mask_key_env, self.state_dir / "mask.key")

    def audit_key(self) -> bytes:
        """The key audit records are signed with: ``$LAKEPLANE_AUDIT_KEY``, else a key file made once
        (``.lakeplane/audit.key``, mode 600).

        A key of its own, not the mask key nor one derived from it: the mask key's material is written
        into the secured SQL every engine runs (and so may reach engine logs and plans), and rotating
        it must not orphan the audit log. Every process that appends to one log (a shared PostgreSQL
        catalog) needs the same audit key.
        """
        return _secret(AUDIT_KEY_ENV, self.state_dir / "audit.key")

    def compile(
        self,
        sql: str,
        principal: str,
        resolve: Callable[[str], str],
        *,
        read: str,
        write: str,
        params: Mapping[str, Any] | None = None,
        rewrites: tuple[Rewrite, ...] = GOVERNED_REWRITES,
        salt_buckets: int | None = None,
    ) -> CompiledQuery:
        """Compile ``sql`` for ``principal`` with ``rewrites``; a denial is audited before it is raised."""
        who = self.principal(principal)
        try:
            return compile_secured(
                sql,
                resolve,
                lambda table: self.access(who, table),
                self.key(),
                principal=who.name,
                read=read,
                write=write,
                params=params,
                rewrites=rewrites,
                salt_buckets=salt_buckets,
            )
        except AccessDenied as exc:
            self.audit(
                AuditEvent(
                    principal=who.name,
                    policy_version=self.version().label,
                    sql=sql,
                    decision="denied",
                    reason=str(exc),
                    tables=[t] if (t := getattr(exc, "table", None)) else [],
                )
            )
            raise

    def record_allowed(self, secured: CompiledQuery, principal: str, sql: str, rows: int | None) -> None:
        self.audit(
            AuditEvent(
                principal=principal,
                policy_version=self.version().label,
                sql=sql,
                decision="allowed",
                reason="; ".join(sorted({c.because for a in secured.access.values() for c in a.visible})),
                tables=[a.table for a in secured.access.values()],
                columns=secured.columns_read,
                masks=secured.masks,
                filters=secured.filters,
                rows=rows,
            )
        )

    def audit(self, event: AuditEvent) -> None:
        self.audit_log().append(event)

    def audit_log(self) -> AuditLog:
        if self._audit is None:
            self._audit = AuditLog(
                self.catalog.state_engine, self.audit_key(), head_file=self.state_dir / "audit.head"
            )
        return self._audit

    def redact_key_material(self, sql: str) -> str:
        """SQL safe to show a person: the mask key's material replaced by a placeholder."""
        return redact_key(sql, self.key())

    # -- answers a governance team asks for ----------------------------------------------------
    def require_enabled(self) -> None:
        """Raises ConfigError when the project has no policy file."""
        if not self.enabled:
            raise ConfigError(
                f"no {self.path.name} in {self.path.parent}: governance is off", file=str(self.path)
            )

    def require_write(self, principal: str, table: str) -> None:
        """Raises AccessDenied unless ``principal`` holds an INSERT grant on ``table``."""
        if not may(self.policy(), self.principal(principal), "INSERT", table):
            raise AccessDenied(
                f"principal '{principal}' may not write table {table} (no INSERT grant)",
                principal=principal,
                table=table,
                column=None,
            )

    def who_can_see(self, table: str, column: str) -> list[Visibility]:
        """For every principal: unmasked, masked (how) or denied on ``table.column``, and why."""
        self.require_enabled()
        return who_can_see(
            self.policy(), self.version().bindings, table, column, self.catalog.load(table).schema()
        )

    def explain(
        self, sql: str, principal: str, resolve: Callable[[str], str], *, read: str, write: str
    ) -> dict[str, Any]:
        """The secured SQL that would run for ``principal``, and every decision behind it."""
        self.require_enabled()
        secured = self.compile(sql, principal, resolve, read=read, write=write)
        return {
            "principal": principal,
            "policy_version": self.version().label,
            **explain(secured, self.redact_key_material),
        }

    def policy_diff(self, new_policy: Path) -> list[Change]:
        """Who gains or loses what on which columns if ``new_policy`` replaced the current one."""
        self.require_enabled()
        return diff(self.policy(), self.version().bindings, new_policy, self._schemas())


def _secret(env: str, path: Path) -> bytes:
    """A key from the environment variable ``env``, else from ``path``, made once (mode 600)."""
    from_env = os.environ.get(env)
    if from_env:
        return from_env.encode()
    if not path.exists():
        # Written whole under a name of its own, then linked into place: a thread or process racing
        # to make it reads one complete key, never an empty file being written.
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
        try:
            os.link(partial, path)
        except FileExistsError:
            pass  # another made it first: theirs is the key
        finally:
            partial.unlink(missing_ok=True)
    return path.read_text().strip().encode()
