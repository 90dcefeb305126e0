"""Who is looking: the logged-in principal, whether it administers the console, and the tables it may read.

A table is readable when the policy lets the principal read at least one of its columns: exactly the
tables ``SHOW TABLES`` lists for it. Every page asks :meth:`Viewer.can_read` before it names a
table; a table it cannot read is absent, not greyed out. The readable set is worked out once per
policy version and catalog state (:class:`Viewers`), so a page does not decide every table again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from lakeplane.errors import PolicyError

if TYPE_CHECKING:
    from lakeplane.lake import Lake

#: How long a principal's readable tables are used before the policy and catalog are checked again.
RECHECK_S = 2.0


@dataclass(frozen=True)
class Viewer:
    """The principal a page is drawn for."""

    #: The policy's name of the principal (``ana``).
    principal: str
    #: Its identities (``user:ana``, ``role:analyst``, ``group:telco_staff``).
    identities: frozenset[str]
    #: Whether it may see every principal's queries and audit records (``console.admins``).
    admin: bool
    #: The full names (``domain.zone.table``) of the tables it may read a column of.
    readable: frozenset[str]
    #: The tables of the lake it may not read.
    hidden: frozenset[str] = frozenset()

    def names_hidden(self, text: str | None) -> bool:
        """Whether ``text`` (SQL, an audit reason) names a table ``viewer`` may not read, in full
        (``telco.processed.cdr``) or by zone (``processed.cdr``)."""
        if not text or not self.hidden:
            return False
        lowered = text.lower()
        return any(t in lowered or t.split(".", 1)[1] in lowered for t in self.hidden)

    def can_read(self, table: str | None) -> bool:
        return table is not None and table in self.readable

    def can_see_principal(self, principal: str | None) -> bool:
        """Whether records made by ``principal`` (a query, an audit record) may be shown."""
        return self.admin or principal == self.principal


class Viewers:
    """Each principal's :class:`Viewer`, rebuilt when the policy or a table changes."""

    def __init__(self, lake: Lake, admins: list[str]) -> None:
        self.lake = lake
        self.admins = frozenset(a if ":" in a else f"user:{a}" for a in admins)
        self._lock = threading.Lock()
        self._held: dict[str, tuple[float, tuple[object, ...], Viewer]] = {}

    def signature(self) -> tuple[object, ...]:
        """The policy version and every table's metadata file: what readable tables depend on."""
        catalog = self.lake.catalog
        with catalog.state_engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT table_namespace, table_name, metadata_location FROM iceberg_tables "
                    "WHERE catalog_name = :catalog ORDER BY table_namespace, table_name"
                ),
                {"catalog": catalog.iceberg.name},
            ).all()
        tables = tuple((f"{r[0]}.{r[1]}", str(r[2])) for r in rows)
        return (self.lake.governance.version().digest, tables)

    def get(self, principal: str) -> Viewer:
        """The viewer for ``principal`` (a name the policy knows).

        Raises:
            PolicyError: the policy does not know ``principal``.
        """
        with self._lock:
            now = time.monotonic()
            held = self._held.get(principal)
            if held is not None and now - held[0] < RECHECK_S:
                return held[2]
            signature = self.signature()
            if held is not None and held[1] == signature:
                self._held[principal] = (now, signature, held[2])
                return held[2]
            viewer = self._build(principal, signature)
            self._held[principal] = (now, signature, viewer)
            return viewer

    def _build(self, principal: str, signature: tuple[object, ...]) -> Viewer:
        governance = self.lake.governance
        who = governance.principal(principal)
        tables = signature[1]
        assert isinstance(tables, tuple)
        readable = set()
        for name, _ in tables:
            try:
                if governance.access(who, name).visible:
                    readable.add(name)
            except PolicyError:
                continue  # a table the policy cannot bind yet is read by nobody
        identities = frozenset(who.identities)
        hidden = frozenset(name for name, _ in tables) - readable
        return Viewer(who.name, identities, bool(identities & self.admins), frozenset(readable), hidden)
