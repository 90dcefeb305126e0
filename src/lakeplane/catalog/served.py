"""The catalog as one principal sees it when an engine attaches directly (``lakeplane catalog serve``).

An engine that loads a table through the REST catalog reads its data files itself: every row and
every column, as stored. No mask, row filter or column denial of the policy can apply to it. So a
principal is given a table here only where the policy leaves it *unrestricted* on that table (a
SELECT grant on every column, no mask, no row filter): then reading the files whole shows it nothing
governed SQL would not. A table where it has SELECT but with masks, row filters or denied columns is
*restricted*: not listed, and loading it is refused with 403, so that principal reads it through
governed SQL (``lakeplane query``). A table where it may see no column is *hidden*: neither listed nor
admitted to exist (404). A namespace is listed only when it (or one below it) holds a table listed.

Every load, given or refused, goes to the audit log.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Literal

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import CommitTableRequest

from lakeplane.catalog.catalog import LakeCatalog, TableRef
from lakeplane.errors import AccessDenied, CommitConflictError, NamespaceNotFoundError, TableNotFoundError
from lakeplane.governance.access import TableAccess, may
from lakeplane.governance.audit_records import AuditEvent
from lakeplane.governance.plane import Governance
from lakeplane.governance.policy import Principal

Verdict = Literal["direct", "restricted", "hidden"]

#: Commit updates that need INSERT; every other update needs ALTER, except those never allowed.
_PRIVILEGE_OF_UPDATE = {
    action: "INSERT"
    for action in (
        "add-snapshot",
        "set-snapshot-ref",
        "remove-snapshot-ref",
        "set-statistics",
        "remove-statistics",
        "set-partition-statistics",
        "remove-partition-statistics",
    )
}
_NEVER_UPDATED = frozenset({"set-location", "assign-uuid"})
Namespace = tuple[str, ...]


@dataclass(frozen=True)
class DirectRead:
    """Whether one principal may read one table's files directly, and why."""

    table: str
    verdict: Verdict
    because: str


def direct_read(access: TableAccess) -> DirectRead:
    """The verdict for a reader that reads ``access.table``'s files whole."""
    if not access.visible:
        return DirectRead(access.table, "hidden", "no SELECT on any column")
    limits = []
    masked = sorted(access.masked)
    if masked:
        limits.append(f"masks on {', '.join(masked)}")
    denied = [c.column for c in access.columns if c.access == "denied"]
    if denied:
        limits.append(f"no SELECT on {', '.join(denied)}")
    if access.row_filters:
        limits.append(f"row filters ({'; '.join(access.filter_rules)})")
    if limits:
        return DirectRead(
            access.table,
            "restricted",
            f"{'; '.join(limits)}: a direct reader would read the files whole, so "
            f"'{access.principal}' reads this table through governed SQL only",
        )
    return DirectRead(access.table, "direct", "; ".join(sorted({c.because for c in access.visible})))


class ServedCatalog:
    """Lists and loads tables for a principal, as :func:`direct_read` decides.

    Calls are serialised: the catalog's and the governance plane's caches are not made for threads.

    Args:
        catalog: the lake's catalog.
        governance: the lake's governance plane (it must have a policy).
        file_config: what readers need to reach the lake's files, given with every loaded table
            (``s3.endpoint`` and the like for a lake on S3).
    """

    def __init__(self, catalog: LakeCatalog, governance: Governance, file_config: dict[str, str]) -> None:
        governance.require_enabled()
        self.catalog = catalog
        self.governance = governance
        self.file_config = dict(file_config)
        self._lock = threading.Lock()

    def principal(self, name: str) -> Principal:
        with self._lock:
            return self.governance.principal(name)

    def namespaces(self, who: Principal, parent: Namespace = ()) -> list[Namespace]:
        """The namespaces right under ``parent`` (the top when empty) holding a table ``who`` may read."""
        with self._lock:
            if parent:
                self._require_namespace(who, parent)
            found = {
                ref.namespace[: len(parent) + 1]
                for ref in self._direct(who)
                if ref.namespace[: len(parent)] == parent and len(ref.namespace) > len(parent)
            }
            return sorted(found)

    def namespace(self, who: Principal, namespace: Namespace) -> Namespace:
        """``namespace`` itself, when it holds a table ``who`` may read.

        Raises:
            NamespaceNotFoundError: otherwise.
        """
        with self._lock:
            self._require_namespace(who, namespace)
            return namespace

    def tables(self, who: Principal, namespace: Namespace) -> list[TableRef]:
        """The tables of ``namespace`` that ``who`` may read directly."""
        with self._lock:
            self._require_namespace(who, namespace)
            return [ref for ref in self._direct(who) if ref.namespace == namespace]

    def load(self, who: Principal, namespace: Namespace, name: str) -> dict[str, Any]:
        """The table as the REST protocol's LoadTableResult: metadata location, metadata, config.

        Raises:
            TableNotFoundError: no such table, or ``who`` may see none of its columns.
            AccessDenied: ``who`` is restricted on it (masks, row filters, denied columns).
        """
        with self._lock:
            ref, decision = self._admit(who, namespace, name, "LOAD TABLE")
            table = self.catalog.load(ref)
            self._audit(
                who, ref, "LOAD TABLE", "allowed", decision.because, [f.name for f in table.schema().fields]
            )
            return {
                "metadata-location": table.metadata_location,
                "metadata": json.loads(table.metadata.model_dump_json()),
                "config": dict(self.file_config),
            }

    def commit(
        self, who: Principal, namespace: Namespace, name: str, request: CommitTableRequest
    ) -> dict[str, Any]:
        """Apply a writer's commit (``catalog serve --allow-write``): the CommitTableResponse.

        Only a principal that may load the table may commit to it, and each update needs its
        privilege: snapshots, refs and statistics ``INSERT``; schema, partition spec, sort order and
        properties ``ALTER``. Moving the table's location or changing its UUID is never allowed.
        The catalog checks the request's requirements against the table as it is (optimistic
        concurrency): a writer that lost a race gets 409 and retries.

        Raises:
            TableNotFoundError, AccessDenied: as :meth:`load`, or a privilege is missing.
            CommitConflictError: a requirement does not hold any more.
        """
        with self._lock:
            ref, _ = self._admit(who, namespace, name, "COMMIT TABLE")
            actions = [update.action for update in request.updates]
            what = "COMMIT TABLE"
            detail = f": {', '.join(actions) or 'no update'}"
            for action in actions:
                privilege = _PRIVILEGE_OF_UPDATE.get(action, "ALTER")
                if action in _NEVER_UPDATED or not may(self.governance.policy(), who, privilege, str(ref)):
                    because = (
                        f"'{action}' is not allowed through the REST catalog"
                        if action in _NEVER_UPDATED
                        else f"'{action}' needs {privilege} on {ref}"
                    )
                    self._audit(who, ref, what, "denied", because, [], detail)
                    raise AccessDenied(
                        f"table {ref}: {because}", principal=who.name, table=str(ref), column=None
                    )
            table = self.catalog.load(ref)
            try:
                done = self.catalog.iceberg.commit_table(table, request.requirements, request.updates)
            except CommitFailedException as exc:
                self._audit(who, ref, what, "denied", f"commit conflict: {exc}", [], detail)
                raise CommitConflictError(
                    f"table {ref}: commit refused: {exc}; load the table and try again",
                    table=str(ref),
                    operation="commit",
                    attempts=1,
                    cause=str(exc),
                ) from None
            self._audit(who, ref, what, "allowed", f"new metadata {done.metadata_location}", [], detail)
            return {
                "metadata-location": done.metadata_location,
                "metadata": json.loads(done.metadata.model_dump_json()),
            }

    def exists(self, who: Principal, namespace: Namespace, name: str) -> bool:
        """Whether ``who`` may load the table (answers HEAD requests; not audited: nothing is read)."""
        with self._lock:
            ref = _table_ref(namespace, name)
            return ref is not None and ref in self._direct(who)

    # -- under the lock ------------------------------------------------------------------------
    def _admit(
        self, who: Principal, namespace: Namespace, name: str, what: str
    ) -> tuple[TableRef, DirectRead]:
        """The table, when ``who`` may read its files whole; a refusal is audited."""
        ref = _table_ref(namespace, name)
        if ref is None or not self.catalog.table_exists(ref):
            raise TableNotFoundError(f"table '{'.'.join((*namespace, name))}' does not exist", table=name)
        decision = direct_read(self.governance.access(who, str(ref)))
        if decision.verdict != "direct":
            self._audit(who, ref, what, "denied", decision.because, [])
            if decision.verdict == "hidden":
                raise TableNotFoundError(f"table '{ref}' does not exist", table=str(ref))
            raise AccessDenied(
                f"table {ref}: {decision.because}", principal=who.name, table=str(ref), column=None
            )
        return ref, decision

    def _decisions(self, who: Principal) -> dict[TableRef, DirectRead]:
        return {ref: direct_read(self.governance.access(who, str(ref))) for ref in self.catalog.list_tables()}

    def _direct(self, who: Principal) -> list[TableRef]:
        return [ref for ref, d in self._decisions(who).items() if d.verdict == "direct"]

    def _require_namespace(self, who: Principal, namespace: Namespace) -> None:
        if not any(ref.namespace[: len(namespace)] == namespace for ref in self._direct(who)):
            raise NamespaceNotFoundError(
                f"namespace '{'.'.join(namespace)}' does not exist", namespace=".".join(namespace)
            )

    def _audit(
        self,
        who: Principal,
        ref: TableRef,
        what: str,
        decision: str,
        because: str,
        columns: list[str],
        detail: str = "",
    ) -> None:
        self.governance.audit(
            AuditEvent(
                principal=who.name,
                policy_version=self.governance.version().label,
                sql=f"{what} {ref}{detail} (Iceberg REST catalog: the engine handles the files itself)",
                decision=decision,
                reason=because,
                tables=[str(ref)],
                columns=columns,
            )
        )


def _table_ref(namespace: Namespace, name: str) -> TableRef | None:
    if len(namespace) != 2 or not all(namespace) or not name:
        return None
    return TableRef(namespace[0], namespace[1], name)
