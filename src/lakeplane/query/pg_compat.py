"""What PostgreSQL clients' catalog queries need that DuckDB's ``pg_catalog`` lacks.

psql, JDBC, psycopg and SQLAlchemy send PostgreSQL's own catalog SQL. DuckDB parses it and carries
many ``pg_catalog`` views; :func:`pg_compatible` points the rest at what :func:`extend_catalogs`
adds: macros named ``lp_<function>``, views ``lp_catalog.<catalog>`` with the columns DuckDB's lack
(or empty ones for catalogs it has not), and ``information_schema`` views without lakeplane's own
schemas. Measured against psql 15 (``\\dt``, ``\\d``, ``\\dn``, ``\\l``) and SQLAlchemy 2's
PostgreSQL reflection.
"""

from __future__ import annotations

import re

import duckdb

#: The server version clients are told (SQLAlchemy and JDBC parse it from ``version()``).
SERVER_VERSION = "15.0"
VERSION_TEXT = f"PostgreSQL {SERVER_VERSION} (lakeplane, governed SQL on DuckDB)"

#: What ``pg_catalog`` functions DuckDB lacks return here (psql, JDBC and SQLAlchemy call them).
_MACROS = {
    "pg_get_userbyid": "(id) AS 'lakeplane'",
    "pg_encoding_to_char": "(id) AS 'UTF8'",
    "pg_get_expr": "(a, b) AS NULL, (a, b, c) AS NULL",
    "pg_get_function_identity_arguments": "(id) AS ''",
    "pg_get_statisticsobjdef_columns": "(id) AS NULL",
    "pg_relation_is_publishable": "(id) AS false",
    "pg_get_partkeydef": "(id) AS NULL",
    "pg_get_indexdef": "(a) AS NULL, (a, b, c) AS NULL",
    "pg_get_triggerdef": "(a) AS NULL, (a, b) AS NULL",
    "pg_get_constraintdef": "(a) AS NULL, (a, b) AS NULL",
    "pg_get_ruledef": "(a) AS NULL, (a, b) AS NULL",
    "pg_get_viewdef": "(a) AS NULL, (a, b) AS NULL",
    "pg_get_serial_sequence": "(a, b) AS NULL",
    "pg_tablespace_location": "(id) AS ''",
    "pg_table_size": "(id) AS 0",
    "pg_total_relation_size": "(id) AS 0",
    "pg_relation_size": "(id) AS 0, (id, fork) AS 0",
    "pg_database_size": "(id) AS 0",
    "pg_backend_pid": "() AS 0",
    "has_database_privilege": "(a, b) AS true, (a, b, c) AS true",
    "has_table_privilege": "(a, b) AS true, (a, b, c) AS true",
    "has_schema_privilege": "(a, b) AS true, (a, b, c) AS true",
    "has_column_privilege": "(a, b, c) AS true, (a, b, c, d) AS true",
    "pg_is_in_recovery": "() AS false",
    # PostgreSQL's names, which SQLAlchemy's reflection and psql's \\d show (strings are text)
    "format_type": "(oid, typmod) AS CASE oid WHEN 16 THEN 'boolean' WHEN 17 THEN 'bytea' "
    "WHEN 20 THEN 'bigint' WHEN 21 THEN 'smallint' WHEN 23 THEN 'integer' WHEN 25 THEN 'text' "
    "WHEN 1043 THEN 'text' WHEN 700 THEN 'real' WHEN 701 THEN 'double precision' WHEN 1082 THEN 'date' "
    "WHEN 1083 THEN 'time without time zone' WHEN 1114 THEN 'timestamp without time zone' "
    "WHEN 1184 THEN 'timestamp with time zone' WHEN 1186 THEN 'interval' WHEN 2950 THEN 'uuid' "
    "WHEN 114 THEN 'json' WHEN 1700 THEN CASE WHEN typmod > 4 THEN 'numeric(' || ((typmod - 4) >> 16) || ',' "
    "|| ((typmod - 4) & 65535) || ')' ELSE 'numeric' END ELSE pg_catalog.format_type(oid, typmod) END",
    "pg_collation_is_visible": "(id) AS true",
    "pg_type_is_visible": "(id) AS true",
    "pg_function_is_visible": "(id) AS true",
    "to_regtype": "(name) AS (SELECT min(oid) FROM pg_catalog.pg_type WHERE typname = name)",
    "to_regclass": "(name) AS (SELECT min(oid) FROM pg_catalog.pg_class WHERE relname = name)",
    "array_upper": "(a, d) AS len(a)",
    "array_lower": "(a, d) AS 1",
    "txid_current": "() AS 1",
    "obj_description": "(a) AS NULL, (a, b) AS NULL",
    "col_description": "(a, b) AS NULL",
    "shobj_description": "(a, b) AS NULL",
}


#: Columns psql, JDBC and SQLAlchemy read that DuckDB's ``pg_catalog`` views lack, with PostgreSQL's
#: values for a plain table; the views are extended in the schema ``lp_catalog``.
_EXTRA_COLUMNS = {
    "pg_class": {"relforcerowsecurity": "false"},
    "pg_attribute": {},
    "pg_namespace": {},
    "pg_type": {},
    "pg_index": {},
    "pg_constraint": {},
    "pg_attrdef": {},
    "pg_description": {},
    "pg_proc": {},
}
#: Catalogs DuckDB does not have: empty, or holding the one database and role lakeplane shows.
_EXTRA_TABLES = {
    "pg_database": "SELECT 1::BIGINT AS oid, 'lakeplane' AS datname, 10::BIGINT AS datdba, 6 AS encoding, "
    "'c' AS datlocprovider, false AS datistemplate, true AS datallowconn, -1 AS datconnlimit, "
    "'C' AS datcollate, 'C' AS datctype, NULL::VARCHAR AS daticulocale, NULL::VARCHAR[] AS datacl, "
    "0::BIGINT AS dattablespace",
    "pg_roles": "SELECT 10::BIGINT AS oid, 'lakeplane' AS rolname, false AS rolsuper, false AS rolinherit, "
    "false AS rolcreaterole, false AS rolcreatedb, true AS rolcanlogin, false AS rolreplication, "
    "-1 AS rolconnlimit, NULL::TIMESTAMP AS rolvaliduntil, false AS rolbypassrls, "
    "NULL::VARCHAR[] AS rolconfig",
    "pg_user": "SELECT 'lakeplane' AS usename, 10::BIGINT AS usesysid, false AS usesuper",
    "pg_inherits": "SELECT 0::BIGINT AS inhrelid, 0::BIGINT AS inhparent, 0 AS inhseqno, "
    "false AS inhdetachpending WHERE false",
    "pg_policy": "SELECT 0::BIGINT AS oid, '' AS polname, 0::BIGINT AS polrelid, '' AS polcmd, "
    "true AS polpermissive, []::BIGINT[] AS polroles, NULL::VARCHAR AS polqual, "
    "NULL::VARCHAR AS polwithcheck WHERE false",
    "pg_statistic_ext": "SELECT 0::BIGINT AS oid, 0::BIGINT AS stxrelid, '' AS stxname, 0::BIGINT AS "
    "stxnamespace, 0 AS stxstattarget, []::VARCHAR[] AS stxkind, []::INTEGER[] AS stxkeys WHERE false",
    "pg_publication": "SELECT 0::BIGINT AS oid, '' AS pubname, false AS puballtables, false AS pubviaroot "
    "WHERE false",
    "pg_publication_rel": "SELECT 0::BIGINT AS oid, 0::BIGINT AS prpubid, 0::BIGINT AS prrelid, "
    "NULL::VARCHAR AS prqual, NULL::INTEGER[] AS prattrs WHERE false",
    "pg_publication_namespace": "SELECT 0::BIGINT AS oid, 0::BIGINT AS pnpubid, 0::BIGINT AS pnnspid "
    "WHERE false",
    "pg_trigger": "SELECT 0::BIGINT AS oid, 0::BIGINT AS tgrelid, '' AS tgname, false AS tgisinternal, "
    "'' AS tgenabled, 0::BIGINT AS tgparentid WHERE false",
    "pg_rewrite": "SELECT 0::BIGINT AS oid, '' AS rulename, 0::BIGINT AS ev_class WHERE false",
    "pg_foreign_table": "SELECT 0::BIGINT AS ftrelid, 0::BIGINT AS ftserver WHERE false",
    "pg_partitioned_table": "SELECT 0::BIGINT AS partrelid, '' AS partstrat WHERE false",
    "pg_extension": "SELECT 0::BIGINT AS oid, '' AS extname, '' AS extversion WHERE false",
    "pg_event_trigger": "SELECT 0::BIGINT AS oid, '' AS evtname WHERE false",
    "pg_sequence": "SELECT 0::BIGINT AS seqrelid, 0::BIGINT AS seqtypid, 0::BIGINT AS seqstart, "
    "0::BIGINT AS seqincrement, 0::BIGINT AS seqmax, 0::BIGINT AS seqmin, 0::BIGINT AS seqcache, "
    "false AS seqcycle WHERE false",
    "pg_collation": "SELECT 100::BIGINT AS oid, 'default' AS collname, 11::BIGINT AS collnamespace "
    "WHERE false",
}
#: Functions a client's query calls that are answered by the macro ``lp_<name>``.
MACRO_FUNCTIONS = tuple(_MACROS)
#: Every catalog a client's query is pointed at ``lp_catalog`` for.
EXTENDED_CATALOGS = tuple(_EXTRA_COLUMNS) + tuple(_EXTRA_TABLES)


_HIDDEN_SCHEMAS = "('lp_catalog', 'main')"
#: Rows a client never sees: the ``lp_catalog`` schema itself and DuckDB's empty ``main`` schema.
_HIDDEN = {
    "pg_namespace": f"nspname NOT IN {_HIDDEN_SCHEMAS}",
    "pg_class": "relnamespace NOT IN (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'lp_catalog')",
}
#: ``information_schema`` views without lakeplane's own schemas (``lp_catalog.information_schema_<view>``).
INFORMATION_SCHEMA = {
    "schemata": f"schema_name NOT IN {_HIDDEN_SCHEMAS}",
    "tables": f"table_schema NOT IN {_HIDDEN_SCHEMAS}",
    "columns": f"table_schema NOT IN {_HIDDEN_SCHEMAS}",
    "views": f"table_schema NOT IN {_HIDDEN_SCHEMAS}",
}


def extend_catalogs(con: duckdb.DuckDBPyConnection) -> None:
    """Add to ``con`` what the catalog queries of PostgreSQL clients need (see :func:`pg_compatible`)."""
    for name, body in _MACROS.items():
        con.execute(f"CREATE MACRO lp_{name}{body}")
    for alias in ("regtype", "regclass", "regproc", "regprocedure", "regnamespace", "regrole", "regoper"):
        con.execute(f"CREATE TYPE {alias} AS BIGINT")
    con.execute("CREATE SCHEMA lp_catalog")
    for name, extra in _EXTRA_COLUMNS.items():
        have = {r[0] for r in con.execute(f"SELECT column_name FROM (DESCRIBE pg_catalog.{name})").fetchall()}
        added = "".join(f", {value} AS {column}" for column, value in extra.items() if column not in have)
        where = f" WHERE {_HIDDEN[name]}" if name in _HIDDEN else ""
        con.execute(f"CREATE VIEW lp_catalog.{name} AS SELECT *{added} FROM pg_catalog.{name}{where}")
    for name, where in INFORMATION_SCHEMA.items():
        con.execute(
            f"CREATE VIEW lp_catalog.information_schema_{name} AS "
            f"SELECT * FROM information_schema.{name} WHERE {where}"
        )
    for name, select in _EXTRA_TABLES.items():
        con.execute(f"CREATE VIEW lp_catalog.{name} AS {select}")


_PG_REWRITES = (
    (re.compile(r"OPERATOR\s*\(\s*pg_catalog\.([^)\s]+)\s*\)", re.I), r"\1"),
    (re.compile(r"\s+COLLATE\s+pg_catalog\.\"?default\"?", re.I), ""),
    (re.compile(r"\b(?:pg_catalog\.)?version\s*\(\s*\)", re.I), f"'{VERSION_TEXT}'"),
    (re.compile(r"\b(?:pg_catalog\.)?current_database\s*\(\s*\)", re.I), "'lakeplane'"),
    (re.compile(rf"\b(?:pg_catalog\.)?({'|'.join(EXTENDED_CATALOGS)})\b(?!\s*\()", re.I), r"lp_catalog.\1"),
    (re.compile(rf"\b(?:pg_catalog\.)?({'|'.join(MACRO_FUNCTIONS)})\s*\(", re.I), r"lp_\1("),
    (re.compile(r"\bpg_catalog\.(\w+)\s*\(", re.I), r"\1("),
    (re.compile(r"::\s*pg_catalog\.", re.I), "::"),
    (
        re.compile(rf"\binformation_schema\s*\.\s*({'|'.join(INFORMATION_SCHEMA)})\b", re.I),
        r"lp_catalog.information_schema_\1",
    ),
    (re.compile(r"\bjson_build_object\s*\(", re.I), "json_object("),
)


def pg_compatible(sql: str) -> str:
    """A client's catalog query rewritten for the database :func:`extend_catalogs` prepared."""
    for pattern, replacement in _PG_REWRITES:
        sql = pattern.sub(replacement, sql)
    return sql
