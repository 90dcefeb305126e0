"""The shipped price table, its errors, this machine's price, and the Price List parser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lakeplane.compute.pricelist import parse_price_list_item, refresh_prices
from lakeplane.compute.prices import DEFAULT_PRICES, load_prices, tiered_month_usd
from lakeplane.config_compute import HereConfig
from lakeplane.errors import ConfigError, PriceRefreshError


def test_shipped_table_has_the_known_us_east_1_list_prices() -> None:
    p = load_prices()
    assert p.region == "us-east-1" and p.as_of
    assert p.instance("r6g.2xlarge").on_demand == 0.4032
    assert p.instance("r6g.2xlarge").emr == 0.1008
    assert p.instance("m6g.xlarge").on_demand == 0.154
    assert p.instance("r5.4xlarge").on_demand == 1.008
    assert p.serverless.rates["x86_64"].vcpu_hour == 0.052624
    assert p.serverless.rates["x86_64"].gb_hour == 0.0057785
    assert p.glue.dpu_hour == 0.44 and p.glue.flex_dpu_hour == 0.29
    assert p.glue.minimum_seconds == 60 and p.glue.minimum_workers == 2
    assert p.athena.per_tb == 5.0 and p.athena.minimum_mb == 10
    for family in ("r6g", "m6g", "r5", "r6i"):
        for size in ("xlarge", "2xlarge", "4xlarge", "8xlarge"):
            assert p.instance(f"{family}.{size}").vcpu > 0
    assert set(p.sources) == {"ec2", "spot", "emr_serverless", "glue", "athena", "s3"}
    assert load_prices(region="eu-west-1").instance("r6g.2xlarge").on_demand == 0.4512


def test_spot_price_is_on_demand_less_the_family_discount() -> None:
    p = load_prices()
    # r6g's typical discount is 70 %: 0.4032 x 0.30
    assert p.spot_hourly("r6g.2xlarge") == pytest.approx(0.4032 * 0.30)


def test_athena_bills_at_least_10_mb_rounded_up_to_the_megabyte() -> None:
    athena = load_prices().athena
    # 1 byte bills 10 MB: 10 / 1,048,576 TB x $5
    assert athena.query_usd(1) == pytest.approx(10 / 1048576 * 5)
    # 100 GB = 102,400 MB: 102,400 / 1,048,576 TB x $5 = $0.48828125
    assert athena.query_usd(100 * 2**30) == pytest.approx(0.48828125)
    # 10 MB and one byte rounds up to 11 MB
    assert athena.query_usd(10 * 2**20 + 1) == pytest.approx(11 / 1048576 * 5)


def test_standard_storage_tiers_apply_in_order() -> None:
    s3 = load_prices().s3
    # 600 TB = 614,400 GB: 51,200 x 0.023 + 460,800 x 0.022 + 102,400 x 0.021
    assert tiered_month_usd(s3.standard, 614_400) == pytest.approx(1177.6 + 10137.6 + 2150.4)
    assert tiered_month_usd(s3.standard, 1000) == pytest.approx(23.0)


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    text = DEFAULT_PRICES.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "prices.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_a_wrong_value_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = _broken(tmp_path, "dpu_hour: 0.44", "dpu_hour: cheap")
    with pytest.raises(ConfigError) as raised:
        load_prices(path)
    assert raised.value.file == str(path)
    assert raised.value.key == "regions.us-east-1.glue.dpu_hour"


def test_a_missing_key_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = _broken(tmp_path, "      flex_dpu_hour: 0.29\n", "")
    with pytest.raises(ConfigError) as raised:
        load_prices(path)
    assert raised.value.key == "regions.us-east-1.glue.flex_dpu_hour"


def test_unknown_region_and_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no prices for region 'eu-west-9'.*did you mean 'eu-west-1'"):
        load_prices(region="eu-west-9")
    with pytest.raises(ConfigError, match="does not exist"):
        load_prices(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("as_of: [", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_prices(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="no instance type 'r6g.3xlarge'"):
        load_prices().instance("r6g.3xlarge")


def test_here_price_configured_instance_or_cheapest_fitting() -> None:
    from lakeplane.compute.prices import here_price

    p = load_prices()
    assert here_price(HereConfig(per_hour=0.1), p, 2, 8).usd_per_hour == 0.1
    assert here_price(HereConfig(instance="r5.xlarge"), p, 2, 8).usd_per_hour == 0.252
    # 2 cores, 24 GB: the cheapest instance with at least that is r6g.xlarge (4 vCPU, 32 GB, $0.2016)
    fitting = here_price(HereConfig(), p, 2, 24)
    assert fitting.usd_per_hour == 0.2016 and "r6g.xlarge" in fitting.assumption
    with pytest.raises(ConfigError, match="no instance"):
        here_price(HereConfig(), p, 512, 8)


def _price_list_document(instance: str, usd: str, unit: str = "Hrs") -> str:
    """One ``GetProducts`` PriceList entry in the API's documented shape."""
    return json.dumps(
        {
            "product": {
                "productFamily": "Compute Instance",
                "attributes": {
                    "instanceType": instance,
                    "regionCode": "us-east-1",
                    "operatingSystem": "Linux",
                    "vcpu": "8",
                    "memory": "64 GiB",
                },
                "sku": "ABCDEFGH12345678",
            },
            "serviceCode": "AmazonEC2",
            "terms": {
                "OnDemand": {
                    "ABCDEFGH12345678.JRTCKXETXF": {
                        "priceDimensions": {
                            "ABCDEFGH12345678.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": unit,
                                "pricePerUnit": {"USD": usd},
                                "description": f"${usd} per On Demand Linux {instance} Instance Hour",
                            }
                        },
                        "sku": "ABCDEFGH12345678",
                        "effectiveDate": "2026-11-01T00:00:00Z",
                    }
                }
            },
            "version": "20261101000000",
            "publicationDate": "2026-11-01T00:00:00Z",
        }
    )


def test_price_list_parser_reads_the_on_demand_price() -> None:
    item = parse_price_list_item(_price_list_document("r6g.2xlarge", "0.4032000000"))
    assert item.usd == 0.4032 and item.unit == "Hrs"
    assert item.attributes["instanceType"] == "r6g.2xlarge"
    with pytest.raises(ValueError, match="no On-Demand"):
        parse_price_list_item({"product": {"attributes": {}}, "terms": {}})


class PriceListClient:
    """A Price List endpoint answering from documents in the API's format (no network here)."""

    def __init__(self, prices: dict[tuple[str, str], str]) -> None:
        self.prices = prices
        self.calls: list[str] = []

    def get_products(
        self, ServiceCode: str, Filters: list[dict[str, str]], MaxResults: int
    ) -> dict[str, Any]:
        instance = next(f["Value"] for f in Filters if f["Field"] == "instanceType")
        self.calls.append(f"{ServiceCode}:{instance}")
        usd = self.prices.get((ServiceCode, instance))
        return {"PriceList": [] if usd is None else [_price_list_document(instance, usd)]}


def test_refresh_writes_fetched_prices_and_keeps_the_rest(tmp_path: Path) -> None:
    client = PriceListClient(
        {("AmazonEC2", "r6g.2xlarge"): "0.5000", ("ElasticMapReduce", "r6g.2xlarge"): "0.125"}
    )
    out = refresh_prices("us-east-1", tmp_path / "p.yaml", client=client)
    table = load_prices(out)
    assert table.instance("r6g.2xlarge").on_demand == 0.5
    assert table.instance("r6g.2xlarge").emr == 0.125
    assert table.instance("m6g.xlarge").on_demand == 0.154  # not answered: kept
    assert "AmazonEC2:m6g.xlarge" in client.calls and "ElasticMapReduce:r5.4xlarge" in client.calls


def test_refresh_without_credentials_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(PriceRefreshError, match="no AWS credentials") as raised:
        refresh_prices("us-east-1", tmp_path / "p.yaml")
    assert raised.value.region == "us-east-1"
    assert not (tmp_path / "p.yaml").exists()
