"""The governance security suite's shared world: one governed demo lake, its raw values, masked oracles.

The lake is the demo project (``build_project(path)``, governed) with two days of telco drops and one
small ad-tech day, built once per test run. Two additions to the demo, both in the temporary copy only:

* the policy gains ``cara`` (role ``billing``): the CDR, subscribers and curated telco tables, except
  ``imsi`` (denied on both tables) and ``card_pan`` (denied through its ``pci`` tag), so that
  column-level denials can be tested. Nothing it adds applies to ana, eve, fred or ian.
* one CDR line of the second day carries a malformed ``duration_s``, as partner files do, so the telco
  quarantine table holds a raw line.

What the demo policy promises is written out below (:data:`EXPECTED_MASKS`, :data:`EXPECTED_ROW_FILTERS`)
rather than read back from the code under test; the oracles are built from it: plain DuckDB tables
that are already masked and filtered for one principal, against which governed results are compared.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from lakeplane.demo import generator, telco
from lakeplane.demo.run import build_project
from lakeplane.governance.masks import MaskSpec, keyed_pads, mask_expression
from lakeplane.lake import Lake

DAYS = (dt.date(2026, 11, 1), dt.date(2026, 11, 2))
CALLS_PER_DAY = 2_000
IMPRESSIONS = 500
CDR = "telco.processed.cdr"
SUBSCRIBERS = "telco.processed.subscribers"
TELCO_TABLES = (CDR, SUBSCRIBERS)
#: The line of the second day's CDR drop whose duration is made malformed (a US caller's call).
MALFORMED_LINE = 1
MASK_KEY = "lakeplane governance suite key"

#: Masks the demo policy gives each principal on the telco tables, in policy form.
EXPECTED_MASKS: dict[str, dict[str, dict[str, Any]]] = {
    "ana": {
        CDR: {"msisdn": "hash", "imsi": "hash"},
        SUBSCRIBERS: {"msisdn": "hash", "imsi": "hash", "card_pan": {"last": 4}},
    },
    "eve": {CDR: {}, SUBSCRIBERS: {"card_pan": "redact"}},
    "fred": {CDR: {}, SUBSCRIBERS: {}},
    "cara": {CDR: {}, SUBSCRIBERS: {}},
}
#: Row filters the demo policy gives each principal on both telco tables (DuckDB SQL).
EXPECTED_ROW_FILTERS: dict[str, str | None] = {
    "ana": None,
    "eve": "region = 'EU'",
    "fred": None,
    "cara": None,
}

_CARA = {
    "    ian: {roles: [intern]}\n": "    ian: {roles: [intern]}\n    cara: {roles: [billing]}\n",
    "roles: [analyst, eu_team, fraud, intern, pipeline]": "roles: [analyst, eu_team, fraud, intern, pipeline, billing]",
    "grants:\n": """grants:
  - to: role:billing
    privileges: [SELECT]
    on: telco.processed.cdr
  - to: role:billing
    privileges: [SELECT]
    on: telco.processed.subscribers
  - to: role:billing
    privileges: [SELECT]
    on: telco.curated
  - to: role:billing
    deny: [SELECT]
    tags: {sensitivity: [pci]}
  - to: role:billing
    deny: [SELECT]
    on: telco.processed.cdr.imsi
  - to: role:billing
    deny: [SELECT]
    on: telco.processed.subscribers.imsi
""",
}
CARA_DENIED = frozenset({"imsi", "card_pan"})
#: Columns each principal may not read at all (left out of its oracle's tables).
EXPECTED_DENIED: dict[str, frozenset[str]] = {"cara": CARA_DENIED}


def _add_cara(policy: Path) -> None:
    text = policy.read_text()
    for before, after in _CARA.items():
        assert before in text, f"the demo policy changed: {before!r} is gone"
        text = text.replace(before, after, 1)
    policy.write_text(text)


def _break_one_line(cdr: Path) -> dict[str, Any]:
    lines = cdr.read_text().splitlines(keepends=True)
    record = json.loads(lines[MALFORMED_LINE])
    lines[MALFORMED_LINE] = json.dumps({**record, "duration_s": "n/a"}) + "\n"
    cdr.write_text("".join(lines))
    return record


@dataclass(frozen=True)
class GovernedDemo:
    """The governed demo lake and what a test needs to know about it."""

    lake: Lake
    key: bytes
    malformed: dict[str, Any]

    @property
    def key_material(self) -> tuple[str, ...]:
        """What must never reach a user: the key and its HMAC pads as they appear in SQL."""
        return (self.key.decode(), *keyed_pads(self.key))

    def location(self, table: str) -> str:
        return self.lake.catalog.load(table).location().removeprefix("file://")

    def table_glob(self, table: str) -> str:
        """A DuckDB glob matching every data file of ``table`` (what an attacker would aim at)."""
        return f"{self.location(table)}/data/**/*.parquet"

    def data_folder_glob(self, table: str) -> str:
        """The files of one folder holding data of ``table`` (a folder a query's sandbox allows)."""
        first = min(Path(self.location(table)).glob("data/**/*.parquet"))
        return f"{first.parent}/*.parquet"


@pytest.fixture(scope="session")
def governed(tmp_path_factory: pytest.TempPathFactory) -> GovernedDemo:
    """The governed demo lake: two telco days, one ad-tech day, built once per run."""
    root = tmp_path_factory.mktemp("governance")
    lake = build_project(root / "project")
    _add_cara(lake.governance.path)
    # A fixed key (the documented key file, unless the environment names one) keeps hashes, and so the
    # goldens and the leak searches, the same on every run.
    lake.state_dir.mkdir(parents=True, exist_ok=True)
    (lake.state_dir / "mask.key").write_text(MASK_KEY)
    malformed: dict[str, Any] = {}
    for day in DAYS:
        files: dict[str, list[Path]] = telco.generate_day(root / "drops", day, CALLS_PER_DAY)
        if day == DAYS[0]:
            files |= generator.generate_day(root / "drops", day, IMPRESSIONS).files
        else:
            malformed = _break_one_line(files["telco/cdr"][0])
        for dataset, paths in files.items():
            lake.land(dataset, paths, day)
        lake.run(day)
    return GovernedDemo(lake, lake.governance.key(), malformed)


@pytest.fixture(scope="session")
def governed_lake(governed: GovernedDemo) -> Lake:
    return governed.lake


def value_texts(value: Any) -> Iterator[str]:
    """Every scalar in a result cell as text (lists, structs and maps flattened)."""
    if value is None:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from value_texts(key)
            yield from value_texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from value_texts(item)
    elif isinstance(value, bytes):
        yield value.decode("latin-1")
    else:
        yield str(value)


def cell_texts(table: pa.Table) -> list[str]:
    """Every cell of ``table`` as text, for looking for values that must not be there."""
    return [text for column in table.columns for value in column.to_pylist() for text in value_texts(value)]


_DIGIT_RUN = re.compile(r"\d{6,}")
_CALL_ID = re.compile(r"call-\d{4}-\d{8}")
# Hash outputs (md5, sha1, sha256): a digit run inside one is a coincidence, not a leaked number.
_HASH_RUN = re.compile(r"(?<![0-9a-f])(?:[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64})(?![0-9a-f])", re.IGNORECASE)


@dataclass(frozen=True)
class Scanned:
    """Result texts with their runs of six or more digits (outside hash outputs), found once."""

    texts: list[str]
    runs: list[tuple[str, list[str]]]

    @classmethod
    def of(cls, texts: Iterable[str]) -> Scanned:
        texts = list(texts)
        runs = [
            (text, found)
            for text in texts
            if any(ch.isdigit() for ch in text) and (found := _DIGIT_RUN.findall(_HASH_RUN.sub("#", text)))
        ]
        return cls(texts, runs)

    def windows(self, width: int) -> set[str]:
        """Every ``width`` consecutive digits."""
        return {
            run[i : i + width] for _, runs in self.runs for run in runs for i in range(len(run) - width + 1)
        }

    def hits(self, secrets: set[str] | frozenset[str], width: int) -> Iterator[tuple[str, str]]:
        """(text, secret) for each text holding one of ``secrets``, all ``width`` digits long."""
        for text, runs in self.runs:
            hit = next(
                (
                    w
                    for run in runs
                    for i in range(len(run) - width + 1)
                    if (w := run[i : i + width]) in secrets
                ),
                None,
            )
            if hit is not None:
                yield text, hit


@dataclass
class RawTelco:
    """The telco tables as they really are (read as fred, who sees everything), and what is secret in them."""

    cdr: pa.Table
    subscribers: pa.Table
    msisdns: set[str] = field(default_factory=set)
    imsis: set[str] = field(default_factory=set)
    pans: set[str] = field(default_factory=set)
    pan_windows: set[str] = field(default_factory=set)
    us_call_ids: set[str] = field(default_factory=set)
    us_msisdns: set[str] = field(default_factory=set)
    us_imsis: set[str] = field(default_factory=set)
    us_names: set[str] = field(default_factory=set)
    all_call_ids: set[str] = field(default_factory=set)
    eu_calls: int = 0
    eu_subscribers: int = 0

    @classmethod
    def read(cls, lake: Lake, public: Iterable[str]) -> RawTelco:
        cdr = lake.query(f"SELECT * FROM {CDR}", principal="fred")
        subscribers = lake.query(f"SELECT * FROM {SUBSCRIBERS}", principal="fred")
        raw = cls(cdr, subscribers)
        for row in subscribers.to_pylist():
            raw.msisdns.add(row["msisdn"])
            raw.imsis.add(row["imsi"])
            raw.pans.add(row["card_pan"])
            if row["region"] == "US":
                raw.us_msisdns.add(row["msisdn"])
                raw.us_imsis.add(row["imsi"])
                raw.us_names.add(row["name"])
            else:
                raw.eu_subscribers += 1
        for row in cdr.to_pylist():
            raw.msisdns.add(row["msisdn"])
            raw.imsis.add(row["imsi"])
            raw.all_call_ids.add(row["call_id"])
            if row["region"] == "US":
                raw.us_call_ids.add(row["call_id"])
                raw.us_msisdns.add(row["msisdn"])
                raw.us_imsis.add(row["imsi"])
            else:
                raw.eu_calls += 1
        # Six characters of a card number that include a hidden digit (all but the last four are hidden),
        # leaving out those that also occur in values everyone may see, which prove nothing.
        public_text = "\n".join(public)
        raw.pan_windows = {
            pan[i : i + 6]
            for pan in raw.pans
            for i in range(len(pan) - 5)
            if pan[i : i + 6] not in public_text
        }
        return raw

    def pan_leaks(self, scanned: Scanned, expected: Scanned | None = None) -> list[str]:
        """Card numbers, whole or six digits with a hidden one, in ``scanned``.

        Six digits are few: runs that ``expected`` (what the query gives over masked data) holds too are
        coincidences of hashes and the like, and are left out.
        """
        found = [f"a full card number in {text[:80]!r}" for text, _ in scanned.hits(self.pans, 16)]
        windows = self.pan_windows - expected.windows(6) if expected else self.pan_windows
        found += [f"hidden card digits {hit} in {text[:80]!r}" for text, hit in scanned.hits(windows, 6)]
        return found


def secret_digits(values: Iterable[str]) -> set[str]:
    """The ten digits that identify each msisdn (after +49) or imsi (after 26201)."""
    return {value[-10:] for value in values}


def digit_leaks(scanned: Scanned, secrets: set[str], what: str) -> list[str]:
    """Texts holding ten consecutive digits of a secret value, as :func:`secret_digits` gives them."""
    return [f"{what} ({hit}) in {text[:80]!r}" for text, hit in scanned.hits(secrets, 10)]


def call_id_leaks(scanned: Scanned, call_ids: set[str]) -> list[str]:
    return [
        f"call {hit} in {text[:80]!r}"
        for text in scanned.texts
        if "call-" in text
        for hit in _CALL_ID.findall(text)
        if hit in call_ids
    ]


def _public_values(lake: Lake) -> list[str]:
    """Text of every telco column but card_pan and of the ad-tech tables: digit runs in them that match
    part of a card number are coincidences (msisdn and imsi have their own, stricter searches)."""
    texts: list[str] = []
    for table in (CDR, SUBSCRIBERS):
        rows = lake.query(
            f"SELECT * EXCLUDE (card_pan) FROM {table}" if table == SUBSCRIBERS else f"SELECT * FROM {table}",
            principal="fred",
            dialect="duckdb",
        )
        texts += cell_texts(rows)
    for table in (
        "adtech.processed.impressions",
        "adtech.processed.campaigns",
        "adtech.processed.clicks",
        "adtech.curated.daily_campaign_stats",
        "telco.curated.cell_daily",
    ):
        texts += cell_texts(lake.query(f"SELECT * FROM {table}", principal="pipeline"))
    return texts


@pytest.fixture(scope="session")
def raw_telco(governed_lake: Lake) -> RawTelco:
    return RawTelco.read(governed_lake, _public_values(governed_lake))


class MaskedOracle:
    """Plain DuckDB over copies of the telco tables already masked and filtered for one principal.

    Built from fred's full tables, the masks of :data:`EXPECTED_MASKS` rendered by
    :func:`mask_expression` and the row filter of :data:`EXPECTED_ROW_FILTERS`; a governed query must
    return what the same query returns here.
    """

    def __init__(self, lake: Lake, raw: RawTelco, principal: str, key: bytes) -> None:
        self.principal = principal
        self.con = duckdb.connect()
        self.con.execute("ATTACH ':memory:' AS telco")
        self.con.execute("CREATE SCHEMA telco.processed")
        row_filter = EXPECTED_ROW_FILTERS[principal]
        for table, data in ((CDR, raw.cdr), (SUBSCRIBERS, raw.subscribers)):
            masks = EXPECTED_MASKS[principal][table]
            projections = []
            for column in lake.catalog.load(table).schema().fields:
                if column.name in EXPECTED_DENIED.get(principal, ()):
                    continue
                ref = exp.column(column.name, quoted=True)
                value = (
                    mask_expression(MaskSpec.parse(masks[column.name]), ref, str(column.field_type), key)
                    if column.name in masks
                    else ref
                )
                projections.append(exp.alias_(value, column.name, quoted=True).sql("duckdb"))
            self.con.register("raw_input", data)
            where = f" WHERE {row_filter}" if row_filter else ""
            self.con.execute(f"CREATE TABLE {table} AS SELECT {', '.join(projections)} FROM raw_input{where}")
            self.con.unregister("raw_input")
        self.con.execute("SET enable_external_access = false")  # it sees its own tables and nothing else

    def rows(
        self, sql: str, dialect: str = "trino", params: dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """The rows of ``sql`` (in ``dialect``, ``:name`` parameters from ``params``) over the masked
        copies, normalised and sorted."""
        expression = sqlglot.parse_one(sql, read=dialect)
        if params:
            expression = exp.replace_placeholders(expression, **params)
        return normalised(self.con.execute(expression.sql("duckdb")).fetchall())


@pytest.fixture(scope="session")
def oracles(governed: GovernedDemo, raw_telco: RawTelco) -> Iterator[dict[str, MaskedOracle]]:
    built = {who: MaskedOracle(governed.lake, raw_telco, who, governed.key) for who in EXPECTED_MASKS}
    yield built
    for oracle in built.values():
        oracle.con.close()


def _normal(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isnan(value) or math.isinf(value) else round(value, 6)
    if isinstance(value, Decimal):
        return round(float(value), 6)
    if isinstance(value, list | tuple):
        return tuple(_normal(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _normal(v)) for k, v in value.items())
    return value


def normalised(rows: Iterable[Iterable[Any]]) -> list[tuple[Any, ...]]:
    """Rows as tuples with floats rounded, in a stable order: results compare by value, not name."""
    return sorted((tuple(_normal(v) for v in row) for row in rows), key=repr)


def table_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    """The rows of an Arrow result, normalised and sorted (by position: names may repeat)."""
    return normalised(zip(*(column.to_pylist() for column in table.columns), strict=True))


def governed_rows(lake: Lake, sql: str, principal: str, dialect: str = "trino") -> list[tuple[Any, ...]]:
    """The rows ``principal`` gets for ``sql`` through the governed lake, normalised and sorted."""
    return table_rows(lake.query(sql, principal=principal, dialect=dialect))
