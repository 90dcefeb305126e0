"""Ad-hoc queries over lake tables: compiled (governed when the lake is), placed, run and audited."""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa

from lakeplane.catalog import LakeCatalog
from lakeplane.catalog.scan import plan_scan
from lakeplane.config import CONFIG_FILE
from lakeplane.engines.base import Capability, Engine, EngineSession, ScanSource
from lakeplane.engines.cancel import join_current_scope
from lakeplane.engines.compute import Compute
from lakeplane.errors import EngineError, LakeplaneError, QueryError
from lakeplane.governance.plane import Governance
from lakeplane.query.admission import Admission, Ticket
from lakeplane.query.compiler import CompiledQuery, TableBinding, compile_query, referenced_tables
from lakeplane.query.estimate import ScanEstimate, estimate_scan
from lakeplane.query.reuse import (
    ResultCache,
    ReusePolicy,
    result_key,
    volatile_reason,
    with_cache_hit,
    workgroup_reuse,
)
from lakeplane.query.warm import TableVersion, WarmState, compile_key, scan_key, session_key, table_versions

#: The dialect people write queries in (the CLI's, and Athena's).
DEFAULT_DIALECT = "trino"


class Queries:
    """Read-only SQL over the lake, as a principal when the lake is governed.

    Args:
        catalog: the lake's catalog.
        compute: engines and their placement.
        governance: the lake's governance plane.
        resolve: a table name as written to its full name (``zone.table`` uses the project's domain).
        results_dir: where reused results are stored (default ``<state dir>/results``).

    A ``Queries`` keeps compiled queries, plans and sandboxed sessions for as long as it lives
    (:mod:`lakeplane.query.warm`), each valid only while the tables it was made from stay as they
    were, so a long-lived process (the query server) pays the fixed cost of a query once per snapshot.
    """

    def __init__(
        self,
        catalog: LakeCatalog,
        compute: Compute,
        governance: Governance,
        resolve: Callable[[str], str],
        results_dir: Path | None = None,
    ) -> None:
        self.catalog = catalog
        self.compute = compute
        self.governance = governance
        self.resolve = resolve
        self.warm = WarmState(catalog)
        self.results = ResultCache(results_dir or compute.state_dir / "results")
        self._policy_digest: tuple[object, str] | None = None
        self._names_digest: tuple[object, str] | None = None
        weakref.finalize(self, self.warm.close)

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
        reuse: bool | ReusePolicy | None = None,
    ) -> pa.RecordBatchReader:
        """Run one read-only query and stream its result, within its workgroup's limits; every query,
        run or refused, is recorded in the history.

        The result's schema metadata says whether it was reused (:func:`lakeplane.query.reuse.cache_hit`).

        Args:
            reuse: reuse a stored result: None as the principal's workgroup says (no workgroup: no
                reuse), True for up to an hour old, False never, or a :class:`ReusePolicy`.

        Raises:
            QueryError: a governed lake and no principal, or SQL that is not one read-only query.
            AccessDenied: the principal may not read what the query reads (audited).
            QueryRefused: its workgroup refused it before it read anything.
        """
        ticket = self.admission.begin(sql, principal)
        try:
            return self._run(sql, params, principal, dialect, reuse, ticket)
        except BaseException as exc:
            ticket.fail(exc)
            raise

    def _run(
        self,
        sql: str,
        params: Mapping[str, Any] | None,
        principal: str | None,
        dialect: str,
        reuse: bool | ReusePolicy | None,
        ticket: Ticket,
    ) -> pa.RecordBatchReader:
        governed = self.governance.enabled
        if governed and principal is None:
            raise QueryError(
                f"{self.governance.path.name} governs this lake: name a principal (lakeplane query --as NAME)"
            )
        engine, compiled, versions = self._compiled(sql, params, principal, dialect)
        table, hit = self._reused_or_run(engine, compiled, versions, principal, reuse, ticket)
        if governed:
            self.governance.record_allowed(compiled, principal or "", sql, table.num_rows)
        ticket.finish(table.num_rows, cache_hit=hit)
        table = with_cache_hit(table, hit)
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())

    # -- the warm path: compiled SQL, plans and sessions reused while the tables stay as they were --
    def _compiled(
        self, sql: str, params: Mapping[str, Any] | None, principal: str | None, dialect: str
    ) -> tuple[Engine[Any], CompiledQuery, dict[str, TableVersion]]:
        """The engine a query runs on, the query compiled for it (from the compile cache while its
        tables keep their metadata files), and the version of each table it reads."""
        auto = self.compute.config.engine.type == "auto"
        placement = self.compute.place(None)
        engine = self.compute.placed_engine(placement)
        compiled, versions = self._compile_warm(sql, params, principal, read=dialect, write=engine.dialect)
        if auto:
            placement = self.compute.place(
                sum(self._plan(b, versions[b.table], []).bytes for b in compiled.tables)
            )
            if placement.engine != engine.name:
                engine = self.compute.placed_engine(placement)
                compiled, versions = self._compile_warm(
                    sql, params, principal, read=dialect, write=engine.dialect
                )
        return engine, compiled, versions

    def _compile_warm(
        self, sql: str, params: Mapping[str, Any] | None, principal: str | None, *, read: str, write: str
    ) -> tuple[CompiledQuery, dict[str, TableVersion]]:
        governed = self.governance.enabled
        key = compile_key(
            sql,
            params,
            principal,
            read=read,
            write=write,
            policy=self._policy_label() if governed else "",
            mask_key=self.governance.key() if governed else b"",
            names=self._names_label(),
        )
        cached = self.warm.compiled.get(key)
        if cached is not None:
            return cached
        before = self._versions_as_written(sql, read)
        compiled = self.compile(sql, params, principal, read=read, write=write)
        versions = table_versions(self.catalog, [b.table for b in compiled.tables])
        # Cached only when no table moved while compiling: then the compile read exactly these versions.
        if before is not None and all(before.get(t) == v for t, v in versions.items()):
            self.warm.compiled.put(key, compiled, versions)
        return compiled, versions

    def _versions_as_written(self, sql: str, dialect: str) -> dict[str, TableVersion] | None:
        try:
            return table_versions(
                self.catalog, [self.resolve(name) for name in referenced_tables(sql, dialect)]
            )
        except LakeplaneError:
            return None  # the compile reports it

    def _policy_label(self) -> str:
        """The policy version in force, with the column bindings it holds (they grow as tables are
        added under one version number)."""
        version = self.governance.version()
        remembered = self._policy_digest
        if remembered is None or remembered[0] is not version:
            bindings = json.dumps(version.bindings, sort_keys=True).encode()
            remembered = (version, f"{version.label}:{hashlib.sha256(bindings).hexdigest()}")
            self._policy_digest = remembered
        return remembered[1]

    def _names_label(self) -> str:
        """The catalog's table names as this process knows them (a new table can make a short name
        ambiguous), by digest, worked out again only when the catalog reads them again."""
        names = self.catalog.table_names()
        remembered = self._names_digest
        if remembered is None or remembered[0] is not names:
            digest = hashlib.sha256("\n".join(map(str, names)).encode()).hexdigest()
            remembered = self._names_digest = (names, digest)
        return remembered[1]

    def _plan(
        self, binding: TableBinding, version: TableVersion, planned: list[tuple[Any, ScanSource]]
    ) -> ScanSource:
        key = scan_key(binding, version)
        source = self.warm.plans.get(key)
        if source is None:
            source = plan_scan(self.catalog, binding.table, binding.row_filter)
            planned.append((key, source))
        return source

    def _reused_or_run(
        self,
        engine: Engine[Any],
        compiled: CompiledQuery,
        versions: dict[str, TableVersion],
        principal: str | None,
        reuse: bool | ReusePolicy | None,
        ticket: Ticket,
    ) -> tuple[pa.Table, bool]:
        """The query's rows and whether they were reused: a stored result while it may be (see
        :mod:`lakeplane.query.reuse`), else run within the workgroup's limits (admitted before anything
        is read), and stored when the policy says so. A reused result reads nothing, so no cap applies."""
        policy = self._reuse(ticket, reuse)
        key = None
        if policy is not None and volatile_reason(compiled.expression) is None:
            key = result_key(
                compiled, versions, self._policy_label() if self.governance.enabled else "ungoverned"
            )
            stored = self.results.get(key, policy.max_age_s)
            if stored is not None:
                return stored, True
        admitted = ticket.admit(compiled)  # refuses over the workgroup's caps, before anything is read
        try:
            table, unchanged = self._execute(engine, compiled, versions, admitted)
        finally:
            ticket.release()
        if key is not None and unchanged:
            self.results.put(key, table)
        return table, False

    def _reuse(self, ticket: Ticket, reuse: bool | ReusePolicy | None) -> ReusePolicy | None:
        if isinstance(reuse, ReusePolicy):
            return reuse
        if reuse is not None:
            return ReusePolicy() if reuse else None
        group = ticket.workgroup
        return workgroup_reuse(group.config.result_reuse if group else None)

    def _execute(
        self,
        engine: Engine[Any],
        compiled: CompiledQuery,
        versions: dict[str, TableVersion],
        admitted: ScanEstimate,
    ) -> tuple[pa.Table, bool]:
        """Run ``compiled`` in a sandboxed session; True with the rows when they are exactly the
        tables at ``versions`` (only then are the plans and the session kept for later queries).

        A new session reads the files admission planned (and priced), a pooled one the same files.
        """
        planned: list[tuple[Any, ScanSource]] = []

        def source_for(binding: TableBinding) -> ScanSource:
            source = admitted.sources.get(binding.alias)
            if source is None:
                return self._plan(binding, versions[binding.table], planned)
            planned.append((scan_key(binding, versions[binding.table]), source))
            return source

        pooled = engine.name == "duckdb"  # in-process sessions only; Spark's are per job
        key = session_key(compiled.tables, versions)

        def open_session() -> EngineSession:
            session = self.compute.session(engine, "query", (Capability.SANDBOX,))
            try:
                for binding in compiled.tables:
                    session.register_scan(binding.alias, source_for(binding))
                session.sandbox()
            except BaseException:
                session.close()
                raise
            return session

        session = self.warm.sessions.borrow(key, open_session) if pooled else open_session()
        if pooled:
            join_current_scope(session)  # a pooled session was opened for an earlier statement
        try:
            table = session.arrow_reader(compiled.sql).read_all()
        except EngineError as exc:
            session.close()
            if not self.governance.enabled:
                raise
            # The secured SQL holds the hash key's material: say what failed, without it.
            raise EngineError(
                self.governance.redact_key_material(str(exc)), retryable=exc.retryable
            ) from None
        except BaseException:
            session.close()
            raise
        # Rows from pooled sessions and cached plans are exactly ``versions``; a plan made now is
        # too unless a table moved while it was made.
        unchanged = not planned or table_versions(self.catalog, list(versions)) == versions
        if pooled and unchanged:
            self.warm.sessions.give_back(key, session)
        else:
            session.close()
        if unchanged:
            for plan_key, source in planned:
                self.warm.plans.put(plan_key, source)
        return table, unchanged

    def close(self) -> None:
        """Close the pooled sessions (also done when the process exits)."""
        self.warm.close()
