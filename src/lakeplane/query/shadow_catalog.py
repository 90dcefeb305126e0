"""One principal's view of the catalog as an empty in-memory DuckDB database.

Each table the principal may read is an empty table there, holding only the columns it may see, each
with the type its governed query returns (a hash mask turns a number into text). A lakeplane
namespace ``domain.zone`` is the schema ``domain_zone`` (``adtech.processed.impressions`` is
``adtech_processed.impressions``), so SQL clients browse it like any PostgreSQL database and
DuckDB's own ``pg_catalog`` and ``information_schema`` answer their catalog queries. Nothing of the
lake's data is in it, and it can read no file.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
from pyiceberg.io.pyarrow import schema_to_pyarrow

from lakeplane.catalog import LakeCatalog
from lakeplane.catalog.catalog import TableRef
from lakeplane.engines.duckdb import quote_ident
from lakeplane.governance.plane import Governance
from lakeplane.governance.secure import compile_secured
from lakeplane.query.pg_compat import extend_catalogs


@dataclass
class ShadowCatalog:
    """The empty database of one principal at one catalog and policy version."""

    principal: str
    signature: tuple[object, ...]
    con: duckdb.DuckDBPyConnection
    #: ``domain_zone`` schema name -> the lakeplane namespace ``domain.zone``.
    schemas: dict[str, str] = field(default_factory=dict)
    #: full lake name -> the columns visible to the principal: (name, type, access).
    tables: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """Run ``sql`` against the empty database (serialised: one connection, many clients).

        Raises:
            duckdb.Error: the engine refuses it.
        """
        with self.lock:
            return self.con.sql(sql, params=list(params) if params else None).to_arrow_table()


def schema_name(ref: TableRef) -> str:
    return f"{ref.domain}_{ref.zone}"


def build_shadow(
    catalog: LakeCatalog, governance: Governance, principal: str, signature: tuple[object, ...]
) -> ShadowCatalog:
    """The empty database of the tables ``principal`` may read, with the columns it may see."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    con.execute("SET enable_progress_bar = false")
    extend_catalogs(con)
    shadow = ShadowCatalog(principal, signature, con)
    who = governance.principal(principal)
    key = governance.key()
    for ref in catalog.list_tables():
        name = str(ref)
        access = governance.access(who, name)
        if not access.visible:
            continue  # a table it may read no column of is not there at all
        schema = schema_name(ref)
        if schema not in shadow.schemas:
            con.execute(f"CREATE SCHEMA {quote_ident(schema)}")
            shadow.schemas[schema] = f"{ref.domain}.{ref.zone}"
        full = schema_to_pyarrow(catalog.load(ref).schema(), include_field_ids=False).empty_table()
        con.register("__lp_raw", full)
        # the governed query of the whole table, run over nothing, gives each visible column's type
        secured = compile_secured(
            f"SELECT * FROM {name}",
            lambda _, full=name: full,  # type: ignore[misc]
            lambda _, decided=access: decided,  # type: ignore[misc]
            key,
            principal=who.name,
            read="duckdb",
            write="duckdb",
        )
        alias = secured.tables[0].alias
        con.execute(f"CREATE OR REPLACE TEMP VIEW {quote_ident(alias)} AS SELECT * FROM __lp_raw")
        target = f"{quote_ident(schema)}.{quote_ident(ref.name)}"
        con.execute(f"CREATE TABLE {target} AS SELECT * FROM ({secured.sql}) LIMIT 0")
        con.execute(f"DROP VIEW {quote_ident(alias)}")
        con.unregister("__lp_raw")
        types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {target})").fetchall())
        shadow.tables[name] = [
            (c.column, str(types.get(c.column, c.type)), c.mask.kind if c.mask else c.access)
            for c in access.visible
        ]
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return shadow
