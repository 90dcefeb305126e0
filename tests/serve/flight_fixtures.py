"""The governed demo lake, tokens and a running Flight SQL service, shared by the Flight SQL tests.

The service runs on 127.0.0.1 in a thread of the test process over the governed demo lake. What each
principal sees follows the demo policy: ``ana`` (analyst) has hash masks on the telco pii columns and
no access to the quarantine tables, ``eve`` (eu_team) row filters on region and no adtech, ``ian``
(intern) adtech only, and here one column denied (``adtech.processed.impressions.user_id``).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from typing import Any

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from lakeplane.demo import generator, telco
from lakeplane.demo.run import build_project
from lakeplane.errors import LakeplaneError
from lakeplane.governance.tokens import AccessTokens, access_tokens
from lakeplane.lake import Lake
from lakeplane.serve.flight import FlightSqlService
from lakeplane.serve.flight_protocol import encode, pack_any

DAY = dt.date(2026, 11, 1)
PRINCIPALS = ("ana", "eve", "ian")


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The governed demo lake with one small telco and ad-tech day."""
    root = tmp_path_factory.mktemp("flight")
    built = build_project(root / "project")
    policy = built.project_dir / "policy.yaml"
    # one column denied inside a table ian otherwise reads
    policy.write_text(
        policy.read_text().replace(
            "grants:\n",
            "grants:\n  - to: role:intern\n    deny: [SELECT]\n    on: adtech.processed.impressions.user_id\n",
        )
    )
    files = (
        telco.generate_day(root / "drops", DAY, 400) | generator.generate_day(root / "drops", DAY, 300).files
    )
    for dataset, paths in files.items():
        built.land(dataset, paths, DAY)
    built.run(DAY)
    return built


@pytest.fixture(scope="module")
def tokens(lake: Lake) -> AccessTokens:
    return access_tokens(lake.governance)


@pytest.fixture(scope="module")
def secrets_of(tokens: AccessTokens) -> dict[str, str]:
    return {p: tokens.create(p, label=f"flight-{p}").secret for p in PRINCIPALS}


class Running:
    """A service serving in a thread, and the lines it logged."""

    def __init__(self, service: FlightSqlService) -> None:
        self.service = service
        self.thread = threading.Thread(target=service.serve, daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 20) -> float:
        """Shut the service down; how long that took."""
        started = time.perf_counter()
        self.service.shutdown()
        self.thread.join(timeout)
        assert not self.thread.is_alive()
        return time.perf_counter() - started


SERVER_LOG: list[str] = []


@pytest.fixture(scope="module")
def server(lake: Lake) -> Iterator[FlightSqlService]:
    running = Running(FlightSqlService(lake, "127.0.0.1", 0, log=SERVER_LOG.append))
    yield running.service
    running.stop()


def connect(service: FlightSqlService, user: str, secret: str, **options: str) -> Any:
    return flight_sql.connect(
        service.uri, db_kwargs={"username": user, "password": secret, **options}, autocommit=True
    )


def fetch(service: FlightSqlService, user: str, secret: str, sql: str, params: Any = None) -> pa.Table:
    with connect(service, user, secret) as conn, conn.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetch_arrow_table()


def raw_client(service: FlightSqlService, user: str, secret: str) -> tuple[flight.FlightClient, Any]:
    client = flight.connect(service.uri)
    header = client.authenticate_basic_token(user, secret)
    return client, flight.FlightCallOptions(headers=[header])


def statement(sql: str) -> flight.FlightDescriptor:
    return flight.FlightDescriptor.for_command(pack_any("CommandStatementQuery", encode([(1, sql)])))


def normal(table: pa.Table) -> list[tuple[Any, ...]]:
    return sorted((tuple(r.values()) for r in table.to_pylist()), key=repr)


def answer(lake: Lake, sql: str, principal: str, params: dict[str, Any] | None = None) -> Any:
    """``Lake.query``'s answer: the table, or the error it raised."""
    try:
        return lake.query(sql, params, principal=principal)
    except LakeplaneError as exc:
        return exc
