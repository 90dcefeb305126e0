"""Access decisions on a real governed lake: precedence, tags, renames, row filters, answers."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from lakeplane.errors import AccessDenied, QueryError
from lakeplane.lake import Lake, open_lake

DAY = dt.date(2026, 11, 1)
CONFIG = """
name: shop
datasets:
  crm/customers:
    format: ndjson
    table: shop.processed.customers
    key: [id]
    fields:
      id: {type: long, required: true}
      name: {type: string}
      email: {type: string}
      card: {type: string}
      region: {type: string}
      birthday: {type: date}
"""
POLICY = """
principals:
  users:
    ana: {roles: [analyst], attributes: {region: EU}}
    bob: {roles: [analyst, auditor], attributes: {region: US}}
    cy: {roles: [support]}
    dee: {}
  roles: [analyst, auditor, support, pipeline]
tags:
  sensitivity: [public, pii, pci]
tag_assignments:
  shop: {sensitivity: public}
  shop.processed.customers.email: {sensitivity: pii}
  shop.processed.customers.card: {sensitivity: [pii, pci]}
grants:
  - to: [role:analyst, role:support]
    privileges: [SELECT]
    on: shop
  - to: role:auditor
    deny: [SELECT]
    on: shop.processed.customers.birthday
  - to: role:pipeline
    privileges: [SELECT, INSERT]
    on: shop
masks:
  - to: role:analyst
    tags: {sensitivity: [pii]}
    mask: hash
  - to: role:analyst
    tags: {sensitivity: [pci]}
    mask: {last: 4}
  - to: role:support
    on: shop.processed.customers.card
    mask: null
  - to: role:support
    on: shop.processed.customers.card
    mask: {first: 2}
  - to: role:support
    on: shop.processed.customers.birthday
    mask: {truncate: year}
row_filters:
  - to: role:analyst
    on: shop.processed.customers
    where: "region = current_principal_attr('region')"
"""
ROWS = [
    {
        "id": 1,
        "name": "Ada",
        "email": "ada@example.com",
        "card": "4111111111111111",
        "region": "EU",
        "birthday": "1990-05-17",
    },
    {
        "id": 2,
        "name": "Bo",
        "email": "bo@example.com",
        "card": "5500000000000004",
        "region": "US",
        "birthday": "1985-12-01",
    },
    {"id": 3, "name": "Cy", "email": None, "card": "340000000000009", "region": "EU", "birthday": None},
]


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    project = tmp_path / "shop"
    project.mkdir()
    (project / "lakeplane.yaml").write_text(CONFIG)
    drop = tmp_path / "customers.ndjson"
    drop.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    lake = open_lake(project)
    lake.land("crm/customers", [drop], DAY)
    lake.ingest("crm/customers", DAY)
    (project / "policy.yaml").write_text(POLICY)
    return open_lake(project)


def rows(lake: Lake, sql: str, who: str) -> list[dict[str, object]]:
    return lake.query(sql, principal=who).to_pylist()


def test_masks_and_row_filter_for_an_analyst(lake: Lake) -> None:
    got = rows(lake, "SELECT id, email, card, region FROM processed.customers ORDER BY id", "ana")
    assert [r["id"] for r in got] == [1, 3], "only the analyst's region"
    assert got[0]["email"] != "ada@example.com" and len(str(got[0]["email"])) == 64
    assert got[1]["email"] is None, "a hashed NULL stays NULL"
    assert got[0]["card"] == got[0]["card"] and len(str(got[0]["card"])) == 64, (
        "card is tagged pii and pci: of hash and last-4 the more restrictive, hash, wins"
    )


def test_strongest_mask_wins_and_deny_beats_mask(lake: Lake) -> None:
    card = lake.governance.access("cy", "shop.processed.customers").column("card")
    assert card is not None and card.mask is not None and card.mask.kind == "null"
    got = rows(lake, "SELECT card, birthday FROM processed.customers ORDER BY id", "cy")
    assert [r["card"] for r in got] == [None, None, None]
    assert [str(r["birthday"]) for r in got] == ["1990-01-01", "1985-01-01", "None"]
    with pytest.raises(AccessDenied) as caught:
        rows(lake, "SELECT birthday FROM processed.customers", "bob")
    err = caught.value
    assert (err.principal, err.table, err.column) == ("bob", "shop.processed.customers", "birthday")
    assert "deny" in str(err)
    star = rows(lake, "SELECT * FROM processed.customers ORDER BY id", "bob")
    assert "birthday" not in star[0] and set(star[0]) >= {"id", "email", "card"}


def test_no_grant_means_no_table(lake: Lake) -> None:
    with pytest.raises(AccessDenied, match="principal 'dee' may not read table shop.processed.customers"):
        rows(lake, "SELECT id FROM processed.customers", "dee")
    with pytest.raises(QueryError, match="name a principal"):
        lake.query("SELECT id FROM processed.customers")


def test_hash_masks_still_join(lake: Lake) -> None:
    got = rows(
        lake,
        "SELECT a.id, b.id AS other FROM processed.customers a JOIN processed.customers b "
        "ON a.email = b.email ORDER BY 1",
        "ana",
    )
    assert got == [{"id": 1, "other": 1}]


def test_renaming_a_column_keeps_its_mask(lake: Lake) -> None:
    lake.governance.version()  # binds the policy's column names to field ids
    table = lake.catalog.load("shop.processed.customers")
    with table.update_schema() as update:
        update.rename_column("email", "mail")
    fresh = open_lake(lake.project_dir)
    decision = fresh.governance.access("ana", "shop.processed.customers").column("mail")
    assert decision is not None and decision.access == "masked" and decision.mask is not None
    assert decision.mask.kind == "hash"


def test_who_can_see_and_explain(lake: Lake) -> None:
    answers = {a.principal: a for a in lake.who_can_see("processed.customers.card")}
    assert (answers["user:ana"].sees, answers["user:ana"].mask) == ("masked", "hash")
    assert answers["user:ana"].row_filters == ["region = 'EU'"]
    assert (answers["user:cy"].sees, answers["user:cy"].mask) == ("masked", "null")
    assert answers["user:dee"].sees == "denied" and answers["user:dee"].because == "no grant"
    assert answers["role:pipeline"].sees == "unmasked"
    plan = lake.explain("SELECT card FROM processed.customers", "ana")
    assert plan["masks"] == {
        "shop.processed.customers.card": "hash",
        "shop.processed.customers.email": "hash",
    }
    assert "region = 'EU'" in plan["sql"] and plan["row_filters"]
    assert lake.governance.key().decode() not in plan["sql"]


def test_policy_diff_names_gains_and_losses(lake: Lake, tmp_path: Path) -> None:
    new = tmp_path / "new.yaml"
    new.write_text(
        POLICY.replace(
            "  - to: role:auditor\n    deny: [SELECT]\n    on: shop.processed.customers.birthday\n", ""
        ).replace("    mask: {truncate: year}", "    mask: null")
    )
    changes = {(c.principal, c.column): c for c in lake.policy_diff(new)}
    gained = changes[("user:bob", "shop.processed.customers.birthday")]
    assert (gained.before, gained.kind) == ("denied", "gains")
    assert gained.after == "unmasked where region = NULL" or gained.after.startswith("unmasked")
    changed = changes[("user:cy", "shop.processed.customers.birthday")]
    assert (changed.before, changed.after, changed.kind) == ("masked (truncate)", "masked (null)", "changes")
    assert ("user:ana", "shop.processed.customers.id") not in changes


def test_every_change_gets_a_new_version_and_every_query_an_audit_record(lake: Lake) -> None:
    first = lake.governance.version()
    rows(lake, "SELECT id FROM processed.customers", "ana")
    with pytest.raises(AccessDenied):
        rows(lake, "SELECT birthday FROM processed.customers", "bob")
    (lake.project_dir / "policy.yaml").write_text(POLICY + "\n# reviewed\n")
    second = open_lake(lake.project_dir).governance.version()
    assert (first.number, second.number) == (1, 2) and first.digest != second.digest
    log = lake.governance.audit_log()
    assert log.verify().ok
    [allowed] = log.search(principal="ana")
    assert allowed.decision == "allowed" and allowed.rows == 2 and allowed.policy_version == first.label
    assert allowed.columns == ["shop.processed.customers.id"]
    assert "region = 'EU'" in " ".join(allowed.filters)
    [denied] = log.search(principal="bob", decision="denied")
    assert "birthday" in denied.reason


def test_models_run_as_the_pipeline_principal_and_need_insert(lake: Lake) -> None:
    model = lake.project_dir / "models" / "curated" / "by_region.sql"
    model.parent.mkdir(parents=True)
    model.write_text(
        "SELECT region, count(*) AS customers, count(DISTINCT email) AS emails "
        "FROM processed.customers GROUP BY region"
    )
    lake.run(DAY)
    got = rows(lake, "SELECT region, customers FROM curated.by_region ORDER BY region", "ana")
    assert got == [{"region": "EU", "customers": 2}, {"region": "US", "customers": 1}], (
        "the pipeline reads unfiltered data; the analyst reads the curated table it may see"
    )
    (lake.project_dir / "policy.yaml").write_text(POLICY.replace("[SELECT, INSERT]", "[SELECT]"))
    with pytest.raises(AccessDenied, match="may not write table shop.curated.by_region"):
        open_lake(lake.project_dir).run(DAY)
