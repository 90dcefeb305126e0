"""Refreshing the price table from the AWS Price List API (boto3's ``pricing`` client).

Only the figures the API publishes per instance type are refreshed (EC2 On-Demand Linux per hour,
the EMR uplift per hour); the rest of the table is kept as it is, with a new ``as_of``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lakeplane.compute.prices import load_prices, shipped_prices_text
from lakeplane.errors import MissingDependencyError, PriceRefreshError

#: The Price List API answers from these endpoints only; us-east-1 serves every region's prices.
PRICING_ENDPOINT_REGION = "us-east-1"


@dataclass(frozen=True)
class PriceListItem:
    """One product of a Price List document with its On-Demand price per unit."""

    sku: str
    attributes: dict[str, str]
    usd: float
    unit: str


def parse_price_list_item(document: str | dict[str, Any]) -> PriceListItem:
    """One entry of ``GetProducts``'s ``PriceList`` (a JSON string): the product's attributes and
    its On-Demand price (``terms.OnDemand.<offer>.priceDimensions.<rate>.pricePerUnit.USD``).

    Raises:
        ValueError: the document has no product or no On-Demand USD price.
    """
    data = json.loads(document) if isinstance(document, str) else document
    product = data.get("product") or {}
    attributes = product.get("attributes")
    if not isinstance(attributes, dict):
        raise ValueError("price list document has no product attributes")
    for offer in (data.get("terms") or {}).get("OnDemand", {}).values():
        for dimension in (offer.get("priceDimensions") or {}).values():
            usd = (dimension.get("pricePerUnit") or {}).get("USD")
            if usd is not None:
                return PriceListItem(
                    sku=str(product.get("sku", "")),
                    attributes={str(k): str(v) for k, v in attributes.items()},
                    usd=float(usd),
                    unit=str(dimension.get("unit", "")),
                )
    raise ValueError("price list document has no On-Demand USD price")


def _ec2_filters(region: str, instance_type: str) -> list[dict[str, str]]:
    terms = {
        "regionCode": region,
        "instanceType": instance_type,
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
    }
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in terms.items()]


def _emr_filters(region: str, instance_type: str) -> list[dict[str, str]]:
    terms = {"regionCode": region, "instanceType": instance_type, "softwareType": "EMR"}
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in terms.items()]


def _one_price(client: Any, service: str, filters: list[dict[str, str]], region: str) -> float | None:
    try:
        answer = client.get_products(ServiceCode=service, Filters=filters, MaxResults=10)
    except Exception as exc:  # botocore's errors: no credentials, denied, throttled
        raise PriceRefreshError(
            f"the AWS Price List API refused {service} prices for {region}: {exc}",
            region=region,
            service=service,
            retryable=True,
        ) from exc
    prices = [parse_price_list_item(doc) for doc in answer.get("PriceList", [])]
    hourly = [p.usd for p in prices if p.unit.lower().startswith("hr") and p.usd > 0]
    return min(hourly) if hourly else None


def refresh_prices(region: str, out: Path, source: Path | None = None, client: Any = None) -> Path:
    """Write to ``out`` the price table at ``source`` (default: the shipped one) with ``region``'s
    EC2 On-Demand and EMR uplift prices fetched from the AWS Price List API, dated today.

    Raises:
        PriceRefreshError: no AWS credentials are configured, or the API refused a request.
        MissingDependencyError: boto3 is not installed.
    """
    table = load_prices(source, region)
    if client is None:
        try:
            import boto3
        except ImportError:
            raise MissingDependencyError(
                "refreshing prices needs boto3: pip install 'lakeplane[s3]'", extra="s3"
            ) from None
        session = boto3.Session()
        if session.get_credentials() is None:
            raise PriceRefreshError(
                "no AWS credentials: the Price List API needs them (set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE); the shipped price table is dated "
                f"{table.as_of}",
                region=region,
            )
        client = session.client("pricing", region_name=PRICING_ENDPOINT_REGION)
    data = yaml.safe_load(Path(source).read_text(encoding="utf-8") if source else shipped_prices_text())
    instances = data["regions"][region]["ec2"]["instances"]
    for name in table.instances:
        on_demand = _one_price(client, "AmazonEC2", _ec2_filters(region, name), region)
        emr = _one_price(client, "ElasticMapReduce", _emr_filters(region, name), region)
        if on_demand is not None:
            instances[name]["on_demand"] = on_demand
        if emr is not None:
            instances[name]["emr"] = emr
    data["as_of"] = dt.date.today().isoformat()
    data["regions"][region]["ec2"]["source"] = "AWS Price List API (GetProducts)"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    load_prices(out, region)
    return out
