"""What a PostgreSQL connection keeps between messages: prepared statements, portals, outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from lakeplane.serve.pgwire_messages import PgError
from lakeplane.serve.pgwire_types import PgColumn


class ClientGone(Exception):
    """The client closed the connection (or the server is stopping and it was idle)."""


@dataclass
class Outcome:
    """What a statement produced: a command tag, and rows when it returns any."""

    tag: str
    table: pa.Table | None = None


@dataclass
class Prepared:
    sql: str
    param_oids: list[int]
    schema: pa.Schema | None = None


@dataclass
class Portal:
    statement: Prepared
    params: list[Any]
    formats: list[int]
    outcome: Outcome | None = None
    sent: int = 0
    columns: list[PgColumn] = field(default_factory=list)


class PgStatementError(Exception):
    """A refusal of the protocol layer, already with its SQLSTATE."""

    def __init__(self, error: PgError) -> None:
        super().__init__(error.message)
        self.error = error


def ends_transaction(sql: str) -> bool:
    word = sql.strip().split(None, 1)[0].upper() if sql.strip() else ""
    return word in ("ROLLBACK", "ABORT", "COMMIT", "END")


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """The rows in the types a Describe announced (types of the same query cannot differ but in width)."""
    if table.schema.equals(schema) or len(table.schema) != len(schema):
        return table
    try:
        return table.rename_columns(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return table
