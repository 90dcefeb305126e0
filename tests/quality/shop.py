"""A small shop project for quality tests: orders, stores and a ledger, landed and ingested by day."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lakeplane import Lake, open_lake

#: dataset -> (table, key, fields): the first field is the key and required.
DATASETS: dict[str, tuple[str, dict[str, str]]] = {
    "pos/orders": ("shop.processed.orders", {"order_id": "long", "amount": "double"}),
    "crm/stores": ("shop.processed.stores", {"store": "long"}),
    "erp/ledger": ("shop.processed.ledger", {"order_id": "long", "amount": "double"}),
}

Rows = Sequence[Mapping[str, Any]]


def shop_config(datasets: Sequence[str]) -> str:
    """``lakeplane.yaml`` of a project named ``shop`` holding ``datasets``."""
    lines = ["name: shop", "datasets:"]
    for name in datasets:
        table, fields = DATASETS[name]
        key = next(iter(fields))
        lines += [
            f"  {name}:",
            "    format: ndjson",
            f"    table: {table}",
            f"    key: [{key}]",
            "    fields:",
        ]
        for field, kind in fields.items():
            required = ", required: true" if field == key else ""
            lines.append(f"      {field}: {{type: {kind}{required}}}")
    return "\n".join(lines) + "\n"


def shop_lake(root: Path, drops: Mapping[str, Mapping[dt.date, Rows]]) -> Lake:
    """A shop project under ``root``: each dataset's rows landed and ingested for each day."""
    project = root / "shop"
    project.mkdir()
    (project / "lakeplane.yaml").write_text(shop_config(list(drops)))
    lake = open_lake(project)
    for dataset, days in drops.items():
        for day, rows in days.items():
            drop = root / f"{dataset.replace('/', '-')}-{day}.ndjson"
            drop.write_text("".join(json.dumps(dict(row)) + "\n" for row in rows))
            lake.land(dataset, [drop], day)
            lake.ingest(dataset, day)
    return lake


def orders(*pairs: tuple[int, float | None]) -> list[dict[str, Any]]:
    """Order rows from ``(order_id, amount)`` pairs."""
    return [{"order_id": i, "amount": a} for i, a in pairs]


def order_ids(ids: range) -> list[dict[str, Any]]:
    return [{"order_id": i} for i in ids]
