"""What a Flight SQL client browses: catalogs, schemas, tables and their columns, per principal.

Flight SQL's catalog is lakeplane's domain and its database schema is the zone, so ``telco.processed.cdr``
is catalog ``telco``, schema ``processed``, table ``cdr``. A principal is shown a table when the policy
gives it SELECT on at least one column (the rule :func:`lakeplane.catalog.served.direct_read` calls
*hidden* otherwise), and a catalog or schema only when it holds such a table. A table's schema is the one
governed SQL serves that principal (``SELECT *``): denied columns left out, masked columns with the
type their mask produces, every column nullable, and string and list types as the engine returns them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pyarrow as pa
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.schema import Schema

import lakeplane
from lakeplane.catalog import LakeCatalog
from lakeplane.catalog.catalog import TableRef
from lakeplane.catalog.served import direct_read
from lakeplane.governance.access import TableAccess
from lakeplane.governance.plane import Governance
from lakeplane.governance.policy import Principal
from lakeplane.serve.flight_protocol import GetDbSchemas, GetTables

TABLE_TYPE = "TABLE"
CATALOGS_SCHEMA = pa.schema([pa.field("catalog_name", pa.utf8(), nullable=False)])
DB_SCHEMAS_SCHEMA = pa.schema(
    [pa.field("catalog_name", pa.utf8()), pa.field("db_schema_name", pa.utf8(), nullable=False)]
)
TABLES_SCHEMA = pa.schema(
    [
        pa.field("catalog_name", pa.utf8()),
        pa.field("db_schema_name", pa.utf8()),
        pa.field("table_name", pa.utf8(), nullable=False),
        pa.field("table_type", pa.utf8(), nullable=False),
    ]
)
TABLES_WITH_SCHEMA = TABLES_SCHEMA.append(pa.field("table_schema", pa.binary(), nullable=False))
TABLE_TYPES_SCHEMA = pa.schema([pa.field("table_type", pa.utf8(), nullable=False)])

#: Masks whose result is a string whatever the column's type.
_STRING_MASKS = frozenset({"hash", "first", "last"})
_SQL_INFO_VALUE = pa.union(
    [
        pa.field("string_value", pa.utf8()),
        pa.field("bool_value", pa.bool_()),
        pa.field("bigint_value", pa.int64()),
        pa.field("int32_bitmask", pa.int32()),
        pa.field("string_list", pa.list_(pa.utf8())),
        pa.field("int32_to_int32_list_map", pa.map_(pa.int32(), pa.list_(pa.int32()))),
    ],
    mode="dense",
)
SQL_INFO_SCHEMA = pa.schema(
    [pa.field("info_name", pa.uint32(), nullable=False), pa.field("value", _SQL_INFO_VALUE, nullable=False)]
)
#: The SqlInfo ids answered (FlightSql.proto's ``SqlInfo``), with their union member and value.
_SQL_INFO: dict[int, tuple[int, object]] = {
    0: (0, "lakeplane"),  # FLIGHT_SQL_SERVER_NAME
    1: (0, lakeplane.__version__),  # FLIGHT_SQL_SERVER_VERSION
    2: (0, pa.__version__),  # FLIGHT_SQL_SERVER_ARROW_VERSION
    3: (1, True),  # FLIGHT_SQL_SERVER_READ_ONLY
    4: (1, True),  # FLIGHT_SQL_SERVER_SQL
    5: (1, False),  # FLIGHT_SQL_SERVER_SUBSTRAIT
    8: (3, 0),  # FLIGHT_SQL_SERVER_TRANSACTION: none
    9: (1, True),  # FLIGHT_SQL_SERVER_CANCEL
    100: (3, 0),  # FLIGHT_SQL_SERVER_STATEMENT_TIMEOUT: none
    101: (3, 0),  # FLIGHT_SQL_SERVER_TRANSACTION_TIMEOUT: none
    504: (0, '"'),  # SQL_IDENTIFIER_QUOTE_CHAR
    506: (1, False),  # SQL_ALL_TABLES_ARE_SELECTABLE: the policy decides
    529: (0, "zone"),  # SQL_SCHEMA_TERM
    531: (0, "domain"),  # SQL_CATALOG_TERM
}


class FlightCatalog:
    """Answers the browsing commands for one principal at a time.

    Callers serialise calls: the catalog's and the governance plane's caches are not made for threads.
    """

    def __init__(self, catalog: LakeCatalog, governance: Governance) -> None:
        self.catalog = catalog
        self.governance = governance

    def visible(self, who: Principal) -> list[tuple[TableRef, TableAccess]]:
        """Every table ``who`` may select from, with what it may see of each."""
        found = []
        for ref in self.catalog.list_tables():
            access = self.governance.access(who, str(ref))
            if direct_read(access).verdict != "hidden":
                found.append((ref, access))
        return found

    def catalogs(self, who: Principal) -> pa.Table:
        names = sorted({ref.domain for ref, _ in self.visible(who)})
        return pa.table([pa.array(names, pa.utf8())], schema=CATALOGS_SCHEMA)

    def db_schemas(self, who: Principal, command: GetDbSchemas) -> pa.Table:
        pairs = sorted(
            {
                (ref.domain, ref.zone)
                for ref, _ in self.visible(who)
                if _named(ref.domain, command.catalog) and like(ref.zone, command.schema_pattern)
            }
        )
        return pa.Table.from_pylist(
            [{"catalog_name": c, "db_schema_name": s} for c, s in pairs], schema=DB_SCHEMAS_SCHEMA
        )

    def tables(self, who: Principal, command: GetTables) -> pa.Table:
        if command.table_types and TABLE_TYPE not in command.table_types:
            return (TABLES_WITH_SCHEMA if command.include_schema else TABLES_SCHEMA).empty_table()
        rows = []
        for ref, access in self.visible(who):
            if not (
                _named(ref.domain, command.catalog)
                and like(ref.zone, command.schema_pattern)
                and like(ref.name, command.table_pattern)
            ):
                continue
            row: dict[str, object] = {
                "catalog_name": ref.domain,
                "db_schema_name": ref.zone,
                "table_name": ref.name,
                "table_type": TABLE_TYPE,
            }
            if command.include_schema:
                schema = served_schema(self.catalog.load(ref).schema(), access, ref)
                row["table_schema"] = schema.serialize().to_pybytes()
            rows.append(row)
        rows.sort(key=lambda r: (r["catalog_name"], r["db_schema_name"], r["table_name"]))
        schema = TABLES_WITH_SCHEMA if command.include_schema else TABLES_SCHEMA
        return pa.Table.from_pylist(rows, schema=schema)


def table_types() -> pa.Table:
    return pa.table([pa.array([TABLE_TYPE], pa.utf8())], schema=TABLE_TYPES_SCHEMA)


def sql_info(requested: Iterable[int]) -> pa.Table:
    """The SqlInfo values asked for (all known ones when none is named); unknown ids are left out."""
    ids = [i for i in (list(requested) or sorted(_SQL_INFO)) if i in _SQL_INFO]
    members: list[list[object]] = [[] for _ in range(6)]
    codes, offsets = [], []
    for info in ids:
        code, value = _SQL_INFO[info]
        codes.append(code)
        offsets.append(len(members[code]))
        members[code].append(value)
    children = [pa.array(values, type=_SQL_INFO_VALUE.field(i).type) for i, values in enumerate(members)]
    value = pa.UnionArray.from_dense(
        pa.array(codes, pa.int8()),
        pa.array(offsets, pa.int32()),
        children,
        [_SQL_INFO_VALUE.field(i).name for i in range(6)],
        list(range(6)),
    )
    return pa.Table.from_arrays([pa.array(ids, pa.uint32()), value], schema=SQL_INFO_SCHEMA)


def served_schema(schema: Schema, access: TableAccess, ref: TableRef) -> pa.Schema:
    """The Arrow schema governed ``SELECT *`` returns ``access.principal`` from this table."""
    arrow = schema_to_pyarrow(schema, include_field_ids=False)
    fields = []
    for column in access.visible:
        kind = _as_served(arrow.field(column.column).type)
        remarks = ""
        if column.mask is not None:
            remarks = f"masked ({column.mask.kind})"
            redacted_text = column.mask.kind == "redact" and pa.types.is_string(kind)
            if column.mask.kind in _STRING_MASKS or redacted_text:
                kind = pa.utf8()
        metadata = {
            "ARROW:FLIGHT:SQL:CATALOG_NAME": ref.domain,
            "ARROW:FLIGHT:SQL:DB_SCHEMA_NAME": ref.zone,
            "ARROW:FLIGHT:SQL:TABLE_NAME": ref.name,
            "ARROW:FLIGHT:SQL:TYPE_NAME": column.type,
            "ARROW:FLIGHT:SQL:IS_READ_ONLY": "1",
            "ARROW:FLIGHT:SQL:REMARKS": remarks,
        }
        fields.append(pa.field(column.column, kind, nullable=True, metadata=metadata))
    return pa.schema(fields)


def like(value: str, pattern: str | None) -> bool:
    """SQL LIKE as Flight SQL's filter patterns use it: ``%`` any run, ``_`` one character; None: all."""
    if pattern is None:
        return True
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _named(value: str, wanted: str | None) -> bool:
    return wanted is None or value == wanted


def _as_served(kind: pa.DataType) -> pa.DataType:
    """The engine's form of a type: ``string``, ``binary`` and ``list`` rather than their large forms."""
    if pa.types.is_large_string(kind):
        return pa.utf8()
    if pa.types.is_large_binary(kind):
        return pa.binary()
    if pa.types.is_large_list(kind) or pa.types.is_list(kind):
        return pa.list_(pa.field(kind.value_field.name, _as_served(kind.value_type)))
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, _as_served(f.type)) for f in kind])
    if pa.types.is_map(kind):
        return pa.map_(_as_served(kind.key_type), _as_served(kind.item_type))
    return kind
