"""Metadata statements answered from what one principal may see: ``SHOW``, ``DESCRIBE``, ``EXPLAIN``,
``information_schema`` and ``pg_catalog``.

:func:`answer_metadata` is what every SQL front door asks first: it answers a metadata statement and
returns None for anything else (which then runs as a governed query). The catalog views answer from
the principal's :class:`~lakeplane.query.shadow_catalog.ShadowCatalog`: a table it may read no
column of is not listed, a denied column is not listed, a masked column has the type its mask gives.
``EXPLAIN`` shows the secured plan (tables, columns, masks, row filters) without the hash key.

Namespaces appear as schemas named ``domain_zone`` (``adtech_processed``); queries may name tables
that way, or as lakeplane does (``adtech.processed.impressions``, ``processed.impressions``,
``impressions``): :meth:`Introspection.lake_names` maps the first form back.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import threading
import time
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from lakeplane.errors import QueryError, TableNotFoundError
from lakeplane.query.pg_compat import pg_compatible
from lakeplane.query.shadow_catalog import ShadowCatalog, build_shadow, schema_name

if TYPE_CHECKING:
    from lakeplane.lake import Lake

#: How long a principal's catalog is used before the catalog and policy are checked for changes.
RECHECK_S = 2.0

_SHOW_TABLES = re.compile(r"^SHOW\s+TABLES(?:\s+(?:FROM|IN)\s+(?P<schema>\S+))?$", re.I)
_SHOW_SCHEMAS = re.compile(r"^SHOW\s+(?:SCHEMAS|DATABASES)$", re.I)
_DESCRIBE = re.compile(r"^(?:SHOW\s+COLUMNS\s+(?:FROM|IN)|DESCRIBE|DESC)\s+(?P<table>[\w.\"]+)$", re.I)
_EXPLAIN = re.compile(r"^EXPLAIN\s+(?:\((?:[^)]*)\)\s*|ANALYZE\s+|VERBOSE\s+)*(?P<query>.+)$", re.I | re.S)
_STRING = re.compile(r"'(?:[^']|'')*'")
_CATALOG_WORDS = re.compile(
    r"\b(pg_catalog|information_schema|pg_[a-z_]+|current_schemas?|current_database|current_catalog|"
    r"current_user|session_user|current_role|format_type|obj_description|"
    r"col_description|shobj_description|has_\w+_privilege|version\s*\(\s*\))",
    re.I,
)


class Introspection:
    """Metadata answers over one lake, with each principal's catalog built once per version.

    Calls are serialised: the catalog's and the governance plane's caches are not made for threads.
    """

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._lock = threading.RLock()
        self._shadows: dict[str, tuple[float, ShadowCatalog]] = {}
        self._namespaces: tuple[float, dict[str, str]] | None = None

    def signature(self) -> tuple[object, ...]:
        """What a principal's catalog depends on: the policy and every table's metadata file."""
        catalog = self.lake.catalog
        tables = tuple((str(ref), catalog.load(ref).metadata_location) for ref in catalog.list_tables())
        return (self.lake.governance.version().digest, tables)

    def shadow(self, principal: str) -> ShadowCatalog:
        """``principal``'s catalog, rebuilt when a table or the policy changed."""
        with self._lock:
            now = time.monotonic()
            held = self._shadows.get(principal)
            if held is not None and now - held[0] < RECHECK_S:
                return held[1]
            signature = self.signature()
            if held is None or held[1].signature != signature:
                shadow = build_shadow(self.lake.catalog, self.lake.governance, principal, signature)
            else:
                shadow = held[1]
            self._shadows[principal] = (now, shadow)
            return shadow

    def namespaces(self) -> dict[str, str]:
        """Every ``domain_zone`` schema name of the lake and its namespace (all tables, not one
        principal's: a query naming a table it may not read is refused as ``lakeplane query`` would)."""
        with self._lock:
            now = time.monotonic()
            if self._namespaces is None or now - self._namespaces[0] >= RECHECK_S:
                found = {schema_name(r): f"{r.domain}.{r.zone}" for r in self.lake.catalog.list_tables()}
                self._namespaces = (now, found)
            return self._namespaces[1]

    def lake_names(self, expression: exp.Expr) -> exp.Expr:
        """Table references to ``domain_zone.table`` rewritten to ``domain.zone.table``."""
        schemas = self.namespaces()
        for table in expression.find_all(exp.Table):
            if table.args.get("catalog") is None and table.db in schemas:
                domain, zone = schemas[table.db].split(".", 1)
                table.set("catalog", exp.to_identifier(domain))
                table.set("db", exp.to_identifier(zone))
        return expression

    def lake_sql(self, sql: str, params: Sequence[Any] = ()) -> str:
        """A client's statement (PostgreSQL SQL) as lakeplane runs it (DuckDB SQL): ``domain_zone``
        schemas mapped to namespaces, ``$n`` parameters bound as typed literals (never spliced text).
        SQL that does not parse is passed on as is, for the governed compile to refuse it.

        Raises:
            QueryError: a ``$n`` parameter without a value.
        """
        try:
            statements = [s for s in sqlglot.parse(sql, read="postgres") if s is not None]
        except (ParseError, TokenError):
            return sql
        if len(statements) != 1:
            return sql
        expression = self.lake_names(statements[0])

        def bind(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Parameter) and isinstance(node.this, exp.Literal):
                number = int(node.this.name)
                if not 1 <= number <= len(params):
                    raise QueryError(f"parameter ${number} has no value", column=f"${number}")
                return value_literal(params[number - 1])
            return node

        return expression.transform(bind).sql(dialect="duckdb")

    def answer(self, sql: str, principal: str, params: Sequence[Any] = ()) -> pa.Table | None:
        """The answer to a metadata statement, or None when ``sql`` is not one.

        Raises:
            TableNotFoundError: DESCRIBE of a table that does not exist or that ``principal`` may not read.
            QueryError: a catalog query the catalog views cannot answer.
            AccessDenied: EXPLAIN of a query ``principal`` may not run (audited).
        """
        text = sql.strip().rstrip(";").strip()
        if found := _SHOW_TABLES.match(text):
            return self._show_tables(principal, found["schema"])
        if _SHOW_SCHEMAS.match(text):
            shadow = self.shadow(principal)
            rows = sorted(shadow.schemas.items())
            return pa.table({"schema": [r[0] for r in rows], "namespace": [r[1] for r in rows]})
        if found := _DESCRIBE.match(text):
            return self._describe(principal, found["table"])
        if found := _EXPLAIN.match(text):
            return self._explain(principal, found["query"])
        if is_catalog_query(text):
            return self._catalog_query(principal, text, params)
        return None

    def _show_tables(self, principal: str, schema: str | None) -> pa.Table:
        shadow = self.shadow(principal)
        wanted = schema.strip('"') if schema else None
        rows = []
        for name in shadow.tables:
            domain, zone, table = name.split(".")
            if wanted in (None, f"{domain}_{zone}", f"{domain}.{zone}", domain):
                rows.append((f"{domain}_{zone}", table, name))
        return pa.table(
            {"schema": [r[0] for r in rows], "name": [r[1] for r in rows], "table": [r[2] for r in rows]}
        )

    def _describe(self, principal: str, written: str) -> pa.Table:
        shadow = self.shadow(principal)
        parts = [p.strip('"') for p in written.split(".")]
        if len(parts) == 2 and parts[0] in shadow.schemas:
            parts = [*shadow.schemas[parts[0]].split("."), parts[1]]
        with self._lock:
            full = self.lake.resolve_table(".".join(parts))
        columns = shadow.tables.get(full)
        if columns is None:  # it exists, but this principal may read none of it: as if it did not
            raise TableNotFoundError(f"table '{written}' not found", table=written)
        return pa.table(
            {
                "column_name": [c[0] for c in columns],
                "data_type": [c[1] for c in columns],
                "access": [c[2] for c in columns],
            }
        )

    def _explain(self, principal: str, query: str) -> pa.Table:
        with self._lock:
            plan = self.lake.explain(self.lake_sql(query), principal, dialect="duckdb")
        lines = [f"Secured SQL: {plan['sql']}", f"Policy version: {plan['policy_version']}"]
        lines.append(f"Tables: {', '.join(plan['tables'])}")
        lines.append(f"Columns read: {', '.join(plan['columns_read'])}")
        for column, kind in sorted(plan["masks"].items()):
            lines.append(f"Mask: {column} ({kind})")
        for row_filter in plan["row_filters"]:
            lines.append(f"Row filter: {row_filter}")
        return pa.table({"QUERY PLAN": lines})

    def _catalog_query(self, principal: str, sql: str, params: Sequence[Any]) -> pa.Table:
        shadow = self.shadow(principal)
        try:
            return shadow.query(pg_compatible(sql), params)
        except duckdb.Error as exc:
            raise QueryError(f"catalog query not supported: {str(exc).splitlines()[0]}") from None


def value_literal(value: Any) -> exp.Expression:
    """A parameter's value as a typed SQL literal."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float | decimal.Decimal):
        return exp.Literal.number(str(value))
    if isinstance(value, dt.datetime):
        kind = exp.DataType.Type.TIMESTAMPTZ if value.tzinfo else exp.DataType.Type.TIMESTAMP
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), kind)
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)
    if isinstance(value, bytes):
        return exp.cast(
            exp.Literal.string("".join(f"\\x{b:02x}" for b in value)), exp.DataType.Type.VARBINARY
        )
    return exp.Literal.string(str(value))


def is_catalog_query(sql: str) -> bool:
    """Whether ``sql`` reads the catalog views or asks the server about itself (outside literals)."""
    return _CATALOG_WORDS.search(_STRING.sub("''", sql)) is not None


_INTROSPECTIONS: weakref.WeakKeyDictionary[Lake, Introspection] = weakref.WeakKeyDictionary()
_CREATING = threading.Lock()


def introspection(lake: Lake) -> Introspection:
    """The lake's metadata answers (one per lake, so its catalogs are built once)."""
    with _CREATING:
        found = _INTROSPECTIONS.get(lake)
        if found is None:
            found = _INTROSPECTIONS[lake] = Introspection(lake)
        return found


def answer_metadata(lake: Lake, sql: str, principal: str, params: Sequence[Any] = ()) -> pa.Table | None:
    """The answer to ``sql`` when it is a metadata statement (SHOW, DESCRIBE, EXPLAIN, a catalog
    view or server function), from what ``principal`` may see; None for any other statement.
    ``params`` are the values of ``$1``, ``$2``... in a catalog query."""
    return introspection(lake).answer(sql, principal, params)
