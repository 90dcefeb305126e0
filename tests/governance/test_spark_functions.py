"""The Spark sandbox end to end: a governed principal on a Spark-engine lake reaches no JVM method,
no file name and none of the driver's settings or environment, while value functions still run."""

from __future__ import annotations

import pytest

from lakeplane.errors import QueryError
from lakeplane.lake import Lake
from tests.conftest import on_engine
from tests.governance.conftest import GovernedDemo

IMPRESSIONS = "adtech.processed.impressions"  # the intern may read adtech


@pytest.fixture(scope="module")
def spark_lake(governed: GovernedDemo) -> Lake:
    return on_engine(governed.lake, "spark")


@pytest.mark.parametrize(
    "sql, params, refused",
    [
        (
            f"SELECT reflect('java.lang.System', 'getenv', 'HOME') AS home FROM {IMPRESSIONS} LIMIT 1",
            None,
            r"function reflect\(\) is not allowed on spark",
        ),
        (
            f"SELECT java_method('java.lang.System', 'getProperty', 'user.home') FROM {IMPRESSIONS} LIMIT 1",
            None,
            r"function java_method\(\) is not allowed on spark",
        ),
        (
            f"SELECT DISTINCT input_file_name() AS f FROM {IMPRESSIONS}",
            None,
            r"function input_file_name\(\) is not allowed on spark",
        ),
        (
            f"SELECT :probe AS k, count(*) AS n FROM {IMPRESSIONS}",
            {"probe": "${env:LAKEPLANE_MASK_KEY}${system:user.home}"},
            r"'\$\{' is not allowed in SQL for spark",
        ),
    ],
)
def test_the_intern_reaches_nothing_past_the_values_on_spark(
    spark_lake: Lake, sql: str, params: dict[str, str] | None, refused: str
) -> None:
    audited = len(spark_lake.governance.audit_log().search(principal="ian", limit=10_000))
    with pytest.raises(QueryError, match=refused):
        spark_lake.query(sql, params, principal="ian", dialect="spark")
    after = spark_lake.governance.audit_log().search(principal="ian", limit=10_000)
    assert len(after) == audited, "a refused query runs nothing, so it reads nothing to audit"


def test_value_functions_still_run_on_spark(spark_lake: Lake) -> None:
    result = spark_lake.query(
        f"SELECT upper(substr(campaign_id, 1, 3)) AS c, sha2(user_id, 256) AS h, count(*) AS n "
        f"FROM {IMPRESSIONS} GROUP BY 1, 2 ORDER BY n DESC LIMIT 3",
        principal="ian",
        dialect="spark",
    )
    assert result.num_rows == 3
    assert all(len(h) == 64 for h in result.column("h").to_pylist())
