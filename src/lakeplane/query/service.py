"""Ad-hoc queries over lake tables: compiled (governed when the lake is), placed, run and audited."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

import pyarrow as pa

from lakeplane.catalog import LakeCatalog
from lakeplane.catalog.scan import plan_scan
from lakeplane.config import CONFIG_FILE
from lakeplane.engines.base import Capability
from lakeplane.engines.compute import Compute
from lakeplane.errors import EngineError, QueryError
from lakeplane.governance.plane import Governance
from lakeplane.query.admission import Admission, Ticket
from lakeplane.query.compiler import CompiledQuery, TableBinding, compile_query
from lakeplane.query.estimate import ScanEstimate, estimate_scan

#: The dialect people write queries in (the CLI's, and Athena's).
DEFAULT_DIALECT = "trino"


class Queries:
    """Read-only SQL over the lake, as a principal when the lake is governed.

    Args:
        catalog: the lake's catalog.
        compute: engines and their placement.
        governance: the lake's governance plane.
        resolve: a table name as written to its full name (``zone.table`` uses the project's domain).
    """

    def __init__(
        self, catalog: LakeCatalog, compute: Compute, governance: Governance, resolve: Callable[[str], str]
    ) -> None:
        self.catalog = catalog
        self.compute = compute
        self.governance = governance
        self.resolve = resolve

    def input_bytes(self, tables: list[TableBinding]) -> int:
        """Bytes of the data files planned for the given query bindings (catalog statistics)."""
        return sum(plan_scan(self.catalog, b.table, b.row_filter).bytes for b in tables)

    def compile(
        self, sql: str, params: Mapping[str, Any] | None, principal: str | None, *, read: str, write: str
    ) -> CompiledQuery:
        """``sql`` compiled for an engine of dialect ``write``; secured for ``principal`` if governed."""
        if self.governance.enabled:
            return self.governance.compile(
                sql, principal or "", self.resolve, read=read, write=write, params=params
            )
        return compile_query(sql, self.resolve, read=read, write=write, params=params)

    @cached_property
    def admission(self) -> Admission:
        """Workgroups, their running slots and the query history (:mod:`lakeplane.query.admission`)."""
        policy = self.governance.policy
        return Admission(
            self.catalog,
            self.compute.config,
            self.compute.project_dir / CONFIG_FILE,
            lambda: policy() if self.governance.enabled else None,
        )

    def estimate(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        principal: str | None = None,
        dialect: str = DEFAULT_DIALECT,
    ) -> ScanEstimate:
        """What ``sql`` would scan for ``principal``, from the manifests, without running it."""
        if self.governance.enabled and principal is None:
            raise QueryError(
                f"{self.governance.path.name} governs this lake: name a principal (lakeplane query --as NAME)"
            )
        compiled = self.compile(sql, params, principal, read=dialect, write="duckdb")
        return estimate_scan(self.catalog, compiled)

    def run(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        principal: str | None = None,
        dialect: str = DEFAULT_DIALECT,
    ) -> pa.RecordBatchReader:
        """Run one read-only query and stream its result, within its workgroup's limits; every query,
        run or refused, is recorded in the history.

        Raises:
            QueryError: a governed lake and no principal, or SQL that is not one read-only query.
            AccessDenied: the principal may not read what the query reads (audited).
            QueryRefused: its workgroup refused it before it read anything.
        """
        ticket = self.admission.begin(sql, principal)
        try:
            return self._run(sql, params, principal, dialect, ticket)
        except BaseException as exc:
            ticket.fail(exc)
            raise

    def _run(
        self,
        sql: str,
        params: Mapping[str, Any] | None,
        principal: str | None,
        dialect: str,
        ticket: Ticket,
    ) -> pa.RecordBatchReader:
        governed = self.governance.enabled
        if governed and principal is None:
            raise QueryError(
                f"{self.governance.path.name} governs this lake: name a principal (lakeplane query --as NAME)"
            )
        auto = self.compute.config.engine.type == "auto"
        placement = self.compute.place(None)
        engine = self.compute.placed_engine(placement)
        compiled = self.compile(sql, params, principal, read=dialect, write=engine.dialect)
        if auto:
            placement = self.compute.place(self.input_bytes(compiled.tables))
            if placement.engine != engine.name:
                engine = self.compute.placed_engine(placement)
                compiled = self.compile(sql, params, principal, read=dialect, write=engine.dialect)
        planned = ticket.admit(compiled)  # refuses over the workgroup's caps, before anything is read
        session = self.compute.session(engine, "query", (Capability.SANDBOX,))
        try:
            for binding in compiled.tables:
                session.register_scan(binding.alias, planned.sources[binding.alias])
            session.sandbox()
            table = session.arrow_reader(compiled.sql).read_all()
        except EngineError as exc:
            if not governed:
                raise
            # The secured SQL holds the hash key's material: say what failed, without it.
            raise EngineError(
                self.governance.redact_key_material(str(exc)), retryable=exc.retryable
            ) from None
        finally:
            session.close()
            ticket.release()
        if governed:
            self.governance.record_allowed(compiled, principal or "", sql, table.num_rows)
        ticket.finish(table.num_rows)
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
