"""DuckDB 1.5's iceberg extension attaches to ``lakeplane catalog serve`` and reads what lakeplane reads.

DuckDB runs in the readers' own environment (``reader_python``), loading the iceberg, avro and httpfs
extensions from their pip packages (``duckdb-extension-*``): nothing is downloaded at run time.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from lakeplane.catalog.rest import CatalogServer, catalog_server
from lakeplane.governance.tokens import access_tokens
from lakeplane.lake import Lake
from tests.conftest import governed_demo

DAY = dt.date(2026, 11, 1)

#: Loads the extensions from their pip packages, attaches, lists and reads; prints JSON.
READER = textwrap.dedent(
    """
    import json, pathlib, sys
    import duckdb
    import duckdb_extension_avro, duckdb_extension_httpfs, duckdb_extension_iceberg

    endpoint, credentials, out = sys.argv[1:4]
    tables = sys.argv[4:]
    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions = false")
    for package in (duckdb_extension_httpfs, duckdb_extension_avro, duckdb_extension_iceberg):
        name = package.__name__.removeprefix("duckdb_extension_")
        folder = pathlib.Path(package.__file__).parent / "extensions" / f"v{duckdb.__version__}"
        con.execute(f"LOAD '{folder / (name + '.duckdb_extension')}'")
    con.execute(f"CREATE SECRET lake_token (TYPE iceberg, {credentials})")
    con.execute(
        f"ATTACH '' AS lake (TYPE iceberg, SECRET lake_token, ENDPOINT '{endpoint}', "
        "SUPPORT_NESTED_NAMESPACES true)"
    )
    listed = sorted(f"{schema}.{name}" for _, schema, name, *_ in con.execute("SHOW ALL TABLES").fetchall())
    errors = {}
    for i, table in enumerate(tables):
        domain, zone, name = table.split(".")
        try:
            con.execute(
                f'COPY (SELECT * FROM lake."{domain}.{zone}".{name}) TO \\'{out}/{i}.parquet\\' (FORMAT parquet)'
            )
        except duckdb.Error as exc:
            errors[table] = str(exc)
    print(json.dumps({"tables": listed, "errors": errors}))
    """
)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root = tmp_path_factory.mktemp("attach")
    return governed_demo(root, 300, 200, DAY)


@pytest.fixture(scope="module")
def server(lake: Lake) -> Iterator[CatalogServer]:
    with catalog_server(lake.catalog, lake.governance, lake.config.storage, log=lambda line: None) as running:
        yield running


def attach(
    reader: Path, server: CatalogServer, credentials: str, out: Path, tables: list[str]
) -> dict[str, Any]:
    """Run DuckDB in the readers' environment; ``credentials`` are the iceberg secret's options."""
    script = out / "reader.py"
    script.write_text(READER)
    done = subprocess.run(
        [str(reader), str(script), server.url, credentials, str(out), *tables],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def rows(table: Any) -> list[str]:
    return sorted(repr(sorted(r.items())) for r in table.to_pylist())


@pytest.mark.slow
def test_duckdb_attaches_and_reads_what_lakeplane_reads(reader_python, lake, server, tmp_path):
    secret = access_tokens(lake.governance).create("role:pipeline").secret
    tables = ["telco.processed.cdr", "adtech.processed.impressions", "adtech.curated.daily_campaign_stats"]
    found = attach(reader_python, server, f"TOKEN '{secret}'", tmp_path, tables)
    assert found["tables"] == sorted(str(t) for t in lake.tables())
    assert found["errors"] == {}
    for i, table in enumerate(tables):
        duck = pq.read_table(tmp_path / f"{i}.parquet")
        ours = lake.query(f"SELECT * FROM {table}", principal="role:pipeline")
        assert duck.num_rows == ours.num_rows > 0
        assert duck.column_names == ours.column_names
        assert rows(duck) == rows(ours), table


@pytest.mark.slow
def test_duckdb_sees_only_what_the_principal_reads_unrestricted(reader_python, lake, server, tmp_path):
    secret = access_tokens(lake.governance).create("ana").secret
    found = attach(
        reader_python,
        server,
        f"TOKEN '{secret}'",
        tmp_path,
        ["telco.processed.cdr", "telco.curated.cell_daily"],
    )
    assert "telco.processed.cdr" not in found["tables"]
    assert "telco.curated.cell_daily" in found["tables"]
    assert list(found["errors"]) == ["telco.processed.cdr"]


@pytest.mark.slow
def test_duckdb_attaches_with_oauth2_client_credentials(reader_python, lake, server, tmp_path):
    secret = access_tokens(lake.governance).create("ian").secret
    credentials = (
        f"CLIENT_ID 'ian', CLIENT_SECRET '{secret}', OAUTH2_SERVER_URI '{server.url}/v1/oauth/tokens'"
    )
    found = attach(reader_python, server, credentials, tmp_path, ["adtech.processed.campaigns"])
    assert found["tables"] and all(t.startswith("adtech.") for t in found["tables"])
    assert found["errors"] == {}
    assert (
        pq.read_table(tmp_path / "0.parquet").num_rows
        == lake.query("SELECT count(*) AS n FROM adtech.processed.campaigns", principal="ian")
        .column("n")[0]
        .as_py()
    )
