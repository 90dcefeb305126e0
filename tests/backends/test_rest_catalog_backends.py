"""The REST catalog of a lake on S3 (moto server), and access tokens in a PostgreSQL catalog."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from pyiceberg.catalog.rest import RestCatalog

from lakeplane.catalog.rest import catalog_server
from lakeplane.demo.generator import DayDrop
from lakeplane.demo.run import build_project
from lakeplane.errors import AuthenticationError
from lakeplane.governance.tokens import AccessTokens, access_tokens
from lakeplane.lake import open_lake
from tests.backends.conftest import DAY1, S3_KEY, S3_REGION, S3Endpoint

TABLE = "adtech.processed.impressions"


@pytest.mark.s3
@pytest.mark.slow
def test_pyiceberg_reads_an_s3_lake_through_the_rest_catalog(
    tmp_path: Path, moto_s3: S3Endpoint, s3_bucket: str, backend_drops: dict[dt.date, DayDrop]
) -> None:
    build_project(tmp_path / "project")
    lake = open_lake(tmp_path / "project", moto_s3.storage_overrides(f"s3://{s3_bucket}/lake"))
    drop = backend_drops[DAY1]
    for dataset, files in drop.files.items():
        lake.land(dataset, files, drop.day)
    lake.run(drop.day)
    secret = access_tokens(lake.governance).create("role:pipeline").secret

    with catalog_server(lake.catalog, lake.governance, lake.config.storage, log=lambda line: None) as server:
        keys = {"s3.access-key-id": S3_KEY, "s3.secret-access-key": S3_KEY}  # the reader's own
        table = RestCatalog("lake", uri=server.url, token=secret, **keys).load_table(TABLE)
        assert table.metadata_location.startswith(f"s3://{s3_bucket}/lake/processed/adtech/impressions/")
        assert table.io.properties["s3.endpoint"] == moto_s3.url
        assert table.io.properties["s3.region"] == S3_REGION
        scanned = table.scan().to_arrow()

        bare = RestCatalog("lake", uri=server.url, token=secret)
        assert "s3.access-key-id" not in bare.load_table(TABLE).io.properties  # lakeplane's keys stay home

    answer = lake.query(f"SELECT * FROM {TABLE}", principal="role:pipeline")
    assert scanned.num_rows == answer.num_rows > 0
    assert scanned.column_names == answer.column_names
    assert sorted(map(repr, scanned.to_pylist())) == sorted(map(repr, answer.to_pylist()))


@pytest.mark.postgres
def test_tokens_in_a_postgresql_catalog(pg_catalog_uri: str) -> None:
    engine = sa.create_engine(pg_catalog_uri.replace("postgresql://", "postgresql+psycopg://"))
    known = {"ana": "user:ana", "user:ana": "user:ana"}
    # two stores on one database, as two servers sharing the catalog would have
    first, second = (AccessTokens(engine, known.__getitem__) for _ in range(2))
    made = first.create("ana", label="shared", lifetime=dt.timedelta(days=1))
    assert second.authenticate(made.secret) == "user:ana"
    assert [t.label for t in second.all()] == ["shared"]
    second.revoke("shared")
    with pytest.raises(AuthenticationError, match="revoked"):
        first.authenticate(made.secret)
