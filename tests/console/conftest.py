"""A governed demo lake with recorded runs, a failing quality rule on telco data, queries by three
principals and a token each, for the console's tests.

The principals are the demo policy's: ``ana`` (analyst: telco PII hashed, card numbers to their
last four), ``eve`` (EU team: only EU rows, card numbers redacted), ``ian`` (intern: denied every
telco table) and ``fred`` (fraud: sees telco unmasked), made a console admin here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from lakeplane.config_console import ConsoleConfig
from lakeplane.demo import telco
from lakeplane.demo.generator import generate_day
from lakeplane.demo.run import build_project
from lakeplane.errors import AccessDenied
from lakeplane.governance.tokens import access_tokens
from lakeplane.lake import Lake, open_lake
from lakeplane.pipelines.store import RunRecord

DAY = dt.date(2026, 11, 1)
CDR = "telco.processed.cdr"
SUBSCRIBERS = "telco.processed.subscribers"
STATS = "adtech.curated.daily_campaign_stats"

#: A second pipeline: one non-blocking check on the CDR table that fails for long calls in both
#: regions, so its recorded outcome holds raw rows (unmasked numbers, US and EU) as the engine read them.
CHECKS_PIPELINE = """
steps:
  long_calls: {quality: quality/long_calls.dqdl, table: telco.processed.cdr, blocking: false}
"""
LONG_CALLS = 'Rules = [ ColumnValues "duration_s" < 600 ]\n'
SLOS = """
slos:
  cells_fresh: {kind: freshness, table: telco.curated.cell_daily, objective: 100000d}
  nightly_dq: {kind: dq_pass_rate, pipeline: nightly, objective: 0.5}
"""


@dataclass
class ConsoleLake:
    """The lake, its runs, a token per principal, and raw values some principals must never see."""

    lake: Lake
    config: ConsoleConfig
    runs: list[RunRecord]
    tokens: dict[str, str]
    #: Every raw MSISDN, IMSI and card number of the telco tables (ana and eve see them masked).
    raw_identifiers: set[str]
    #: The call ids, MSISDNs and IMSIs of US calls and every card number: eve sees only EU rows
    #: (their numbers unmasked) and card numbers redacted.
    hidden_from_eve: set[str]
    #: The ids of the EU calls failing the long-calls rule (eve may see them).
    eu_failing_call_ids: set[str]


@pytest.fixture(scope="package")
def console_lake(tmp_path_factory: pytest.TempPathFactory) -> ConsoleLake:
    root = tmp_path_factory.mktemp("console")
    lake = build_project(root / "project")
    project = lake.project_dir
    (project / "pipelines" / "dq_checks.yaml").write_text(CHECKS_PIPELINE)
    (project / "quality" / "long_calls.dqdl").write_text(LONG_CALLS)
    with (project / "lakeplane.yaml").open("a") as config:
        config.write(SLOS)
    lake = open_lake(project)
    files = telco.generate_day(root / "drops", DAY, 300) | generate_day(root / "drops", DAY, 2000).files
    for dataset, paths in files.items():
        lake.land(dataset, paths, DAY)
    runs = [lake.run_pipeline("nightly", DAY), lake.run_pipeline("dq_checks", DAY)]
    assert [r.state for r in runs] == ["succeeded", "succeeded"], [r.reason for r in runs]

    lake.query(f"SELECT msisdn, region, count(*) AS calls FROM {CDR} GROUP BY 1, 2 LIMIT 5", principal="ana")
    lake.query(f"SELECT call_id, region FROM {CDR} LIMIT 5", principal="eve")
    lake.query(f"SELECT campaign_id, clicks FROM {STATS} LIMIT 5", principal="ian")
    with pytest.raises(AccessDenied):
        lake.query(f"SELECT * FROM {CDR}", principal="ian")

    fred = "fred"  # sees telco unmasked: the raw values to look for
    cdr = lake.query(
        f"SELECT call_id, msisdn, imsi, region, duration_s FROM {CDR}", principal=fred
    ).to_pylist()
    subscribers = lake.query(f"SELECT msisdn, imsi, card_pan FROM {SUBSCRIBERS}", principal=fred).to_pylist()
    raw = {str(r[c]) for r in cdr for c in ("msisdn", "imsi")}
    raw |= {str(r[c]) for r in subscribers for c in ("msisdn", "imsi", "card_pan")}
    tokens = access_tokens(lake.governance)
    return ConsoleLake(
        lake=lake,
        config=ConsoleConfig(admins=["fred"], port=0),
        runs=runs,
        tokens={who: tokens.create(who).secret for who in ("ana", "eve", "ian", "fred")},
        raw_identifiers=raw,
        hidden_from_eve=_only_in_us(cdr) | {str(r["card_pan"]) for r in subscribers},
        eu_failing_call_ids={
            str(r["call_id"]) for r in cdr if r["region"] == "EU" and r["duration_s"] >= 600
        },
    )


def _only_in_us(cdr: list[dict[str, object]]) -> set[str]:
    """Call ids, MSISDNs and IMSIs found on US calls and on no EU call."""
    values = {
        region: {str(r[c]) for r in cdr if r["region"] == region for c in ("call_id", "msisdn", "imsi")}
        for region in ("EU", "US")
    }
    return values["US"] - values["EU"]


@pytest.fixture(scope="package")
def console_server(console_lake: ConsoleLake) -> Iterator[str]:
    """The console served on a free port of 127.0.0.1; yields its URL."""
    from lakeplane.console.server import ConsoleServer

    with ConsoleServer(console_lake.lake, console_lake.config) as server:
        yield server.url


def page_paths(console: ConsoleLake, readable: list[str]) -> list[str]:
    """Every page a principal reading ``readable`` can open, without their /api twins."""
    paths = ["/", "/runs", "/tables", "/quality", "/slos", "/queries", "/access"]
    paths += [f"/runs/{r.run_id}" for r in console.runs]
    for table in readable:
        paths += [
            f"/tables/{table}",
            f"/tables/{table}?sample=1",
            f"/lineage/{table}",
            f"/quality?table={table}",
        ]
        paths += [f"/lineage/{table}?direction=upstream&depth=5", f"/access?column={table}.ds"]
    return paths


def api_path(path: str) -> str:
    return "/api/overview" if path == "/" else f"/api{path}"
