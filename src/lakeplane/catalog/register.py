"""``register``: existing data into the lake, as a principal when the lake is governed.

Parquet files (:mod:`lakeplane.catalog.register_files`) or a whole Iceberg table by its metadata file
(:mod:`lakeplane.catalog.register_metadata`); the principal needs INSERT on an existing table and
CREATE for a new one, and every decision is audited.
"""

from __future__ import annotations

from collections.abc import Sequence

from lakeplane.catalog.catalog import LakeCatalog
from lakeplane.catalog.register_files import register_files
from lakeplane.catalog.register_metadata import register_metadata_file
from lakeplane.catalog.registration import Mode, RegisteredFile, RegisterProgress, RegisterResult
from lakeplane.errors import AccessDenied, AmbiguousTableError, RegisterError, TableNotFoundError
from lakeplane.governance.access import may
from lakeplane.governance.audit import AuditEvent
from lakeplane.governance.plane import Governance

__all__ = ["Mode", "RegisterProgress", "RegisterResult", "RegisteredFile", "Registrations"]


class Registrations:
    """``register``: existing data into a table, as a principal when the lake is governed.

    Args:
        catalog: the lake's catalog.
        governance: checks the principal's INSERT (CREATE for a new table) and audits the outcome.
        default_domain: the project's domain, for ``zone.name`` table names.
    """

    def __init__(self, catalog: LakeCatalog, governance: Governance, default_domain: str) -> None:
        self.catalog = catalog
        self.governance = governance
        self.default_domain = default_domain

    def register(
        self,
        table: str,
        sources: Sequence[str],
        *,
        partition_by: Sequence[str] = (),
        mode: Mode = "auto",
        principal: str | None = None,
        dry_run: bool = False,
        progress: RegisterProgress | None = None,
    ) -> RegisterResult:
        """Register ``sources`` (Parquet files and folders, or one ``*.metadata.json``) as ``table``.

        Raises:
            RegisterError: a source that does not fit (nothing is committed).
            AccessDenied: the principal lacks INSERT on the table (CREATE when it is new).
        """
        try:
            ref = self.catalog.resolve(table, self.default_domain)
        except AmbiguousTableError:
            raise
        except TableNotFoundError as exc:
            raise RegisterError(
                f"{exc}; a new table is named <zone>.<name> or <domain>.<zone>.<name>",
                table=table,
                reason="usage",
            ) from None
        if not sources:
            raise RegisterError("name at least one source", table=str(ref), reason="usage")
        metadata = [s for s in sources if s.endswith(".metadata.json")]
        if metadata and len(sources) > 1:
            raise RegisterError(
                f"{metadata[0]}: a table's metadata file is registered alone, not with other sources",
                table=str(ref),
                file=metadata[0],
                reason="usage",
            )
        exists = self.catalog.table_exists(ref)
        what = f"REGISTER {ref} FROM {', '.join(sources)}"
        who = self._authorize(principal, "INSERT" if exists else "CREATE", str(ref), what)
        if metadata:
            result = register_metadata_file(self.catalog, ref, metadata[0], dry_run)
        else:
            result = register_files(self.catalog, ref, list(sources), partition_by, mode, dry_run, progress)
        if who and not dry_run:
            self.governance.audit(
                AuditEvent(
                    principal=who,
                    policy_version=self.governance.version().label,
                    sql=what,
                    decision="allowed",
                    reason=f"{'INSERT' if exists else 'CREATE'} on {ref}",
                    tables=[str(ref)],
                    rows=result.rows,
                )
            )
        return result

    def _authorize(self, principal: str | None, privilege: str, table: str, what: str) -> str | None:
        if not self.governance.enabled:
            return None
        if not principal:
            raise RegisterError(
                f"{self.governance.path.name} governs this lake: "
                "name a principal (lakeplane register --as NAME)",
                table=table,
                reason="principal",
            )
        who = self.governance.principal(principal)
        if not may(self.governance.policy(), who, privilege, table):
            reason = f"principal '{who.name}' may not register into {table} (no {privilege} grant)"
            self.governance.audit(
                AuditEvent(
                    principal=who.name,
                    policy_version=self.governance.version().label,
                    sql=what,
                    decision="denied",
                    reason=reason,
                    tables=[table],
                )
            )
            raise AccessDenied(reason, principal=who.name, table=table)
        return who.name
