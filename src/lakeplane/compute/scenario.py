"""An estate described in a scenario file, priced standing and transient.

A scenario names the standing cluster (its yearly cost lines, or a node type priced 24/7), the
storage (what lands each month, what is at rest, how it is tiered), the jobs (each a
:class:`~lakeplane.compute.jobs.JobProfile`) and the fixed costs that remain after the move. The
transient estate is each job on its advised shape, plus storage, plus what remains; ``savings`` is
the fraction of the standing run-rate that saves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lakeplane.compute.advisor import Advice, advise
from lakeplane.compute.jobs import AmdahlScaling, JobProfile
from lakeplane.compute.prices import PriceTable, Reader, load_prices, tiered_month_usd
from lakeplane.compute.shapes import SHAPES
from lakeplane.errors import ConfigError
from lakeplane.units import parse_duration, parse_size

MONTHS_PER_YEAR = 12
#: Days per month on average (365 / 12).
DAYS_PER_MONTH = 365 / 12


@dataclass(frozen=True)
class Line:
    """A yearly cost line and the assumption behind it."""

    name: str
    usd_per_year: float
    assumption: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "usd_per_year": round(self.usd_per_year, 2), "assumption": self.assumption}


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    region: str
    standing: tuple[Line, ...]
    standing_notes: dict[str, Any]
    storage: Reader
    jobs: tuple[JobProfile, ...]
    fixed: tuple[Line, ...]
    nightly_job: str | None
    article: dict[str, float]


def load_scenario(path: Path) -> Scenario:
    """Read a scenario file.

    Raises:
        ConfigError: the file is missing, not YAML, or a key is missing or wrong (file and key named).
    """
    file = str(path)
    try:
        data = yaml.safe_load(Path(file).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"scenario {file} does not exist", file=file) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file} is not valid YAML: {exc}", file=file) from None
    top = Reader(file, data)
    standing = top.sub("standing")
    jobs = tuple(_job(item) for item in top.items("jobs"))
    names = [job.name for job in jobs]
    nightly = top.get("nightly_job")
    if nightly is not None and nightly not in names:
        raise ConfigError(
            f"{file}: nightly_job '{nightly}' is not one of the jobs ({', '.join(names)})",
            file=file,
            key="nightly_job",
        )
    article = top.get("article") or {}
    return Scenario(
        name=top.text("name"),
        path=file,
        region=str(top.get("region", "us-east-1")),
        standing=tuple(_line(item) for item in standing.items("cost_lines")),
        standing_notes={k: v for k, v in standing.data.items() if k != "cost_lines"},
        storage=top.sub("storage"),
        jobs=jobs,
        fixed=tuple(_line(item) for item in top.items("fixed")) if "fixed" in data else (),
        nightly_job=nightly,
        article={str(k): float(v) for k, v in article.items()},
    )


def _line(item: Reader) -> Line:
    return Line(
        name=item.text("name"),
        usd_per_year=item.number("usd_per_year"),
        assumption=str(item.get("assumption", "")),
    )


def _size(item: Reader, name: str, default: float = 0.0) -> float:
    value = item.get(name)
    if value is None:
        return default
    try:
        return float(parse_size(str(value)))
    except ValueError:
        raise item.error(item.path(name), "a size such as 20TB or 512MB") from None


def _duration(item: Reader, name: str) -> float | None:
    value = item.get(name)
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError:
        raise item.error(item.path(name), "a duration such as 300, 45s, 5m or 4h") from None


def _job(item: Reader) -> JobProfile:
    seconds = _duration(item, "seconds")
    if seconds is None:
        raise item.error(item.path("seconds"), "the run's seconds at `cores` (e.g. 3.5h)")
    cores = item.number("cores", low=1)
    input_bytes = _size(item, "input")
    split_cap = item.get("max_cores")
    scaling = AmdahlScaling(
        seconds,
        cores,
        serial_fraction=item.fraction("serial_fraction") if "serial_fraction" in item.data else 0.05,
        max_cores=float(split_cap) if split_cap is not None else None,
    )
    values = {
        "name": item.text("name"),
        "kind": item.get("kind", "batch"),
        "seconds": seconds,
        "cores": cores,
        "input_bytes": input_bytes,
        "bytes_scanned": _size(item, "bytes_scanned"),
        "peak_memory_gb": _size(item, "peak_memory") / 2**30,
        "runs_per_month": item.number("runs_per_month"),
        "arrival": item.get("arrival", "scheduled"),
        "deadline": _duration(item, "deadline"),
        "start_latency": _duration(item, "start_latency"),
        "urgent": bool(item.get("urgent", False)),
        "budget": item.number("budget") if "budget" in item.data else None,
        "concurrency": item.integer("concurrency", low=1) if "concurrency" in item.data else 1,
        "seconds_at": scaling if split_cap is not None or "serial_fraction" in item.data else None,
    }
    try:
        job = JobProfile(**values)
    except ValueError as exc:
        raise item.error(item.key, str(exc)) from None
    return job


def storage_lines(storage: Reader, prices: PriceTable) -> list[Line]:
    """A month of storage as yearly lines: raw on Intelligent-Tiering by age (frequent for its
    first month, infrequent to three months, Archive Instant after), raw older than the lifecycle
    age in its Glacier class, processed/curated on Standard, monitoring and requests."""
    s3, it = prices.s3, prices.s3.intelligent_tiering
    gb_per_tb = 1024
    landing_tb = storage.number("landing_tb_per_month")
    at_rest_tb = storage.number("at_rest_pb") * 1024
    curated_tb = storage.number("curated_pb") * 1024
    object_bytes = _size(storage, "object_size", 64 * 2**20)
    glacier_after = storage.number("glacier_after_months")
    glacier_class = storage.text("glacier_class")
    raw_tb = max(0.0, at_rest_tb - curated_tb)
    frequent_tb = min(raw_tb, landing_tb)
    infrequent_tb = min(raw_tb - frequent_tb, 2 * landing_tb)
    archive_instant_tb = min(raw_tb - frequent_tb - infrequent_tb, (glacier_after - 3) * landing_tb)
    glacier_tb = raw_tb - frequent_tb - infrequent_tb - archive_instant_tb
    glacier_classes = ("glacier_instant", "glacier_flexible", "glacier_deep_archive")
    if glacier_class not in glacier_classes:
        raise storage.error(storage.path("glacier_class"), "one of " + ", ".join(glacier_classes))
    glacier_price = float(getattr(s3, glacier_class))
    it_objects = (frequent_tb + infrequent_tb + archive_instant_tb) * 2**40 / object_bytes
    put_per_month = landing_tb * 2**40 / object_bytes
    reads_tb = storage.number("read_tb_per_month") if "read_tb_per_month" in storage.data else 0.0
    get_per_month = reads_tb * 2**40 / object_bytes
    year = MONTHS_PER_YEAR

    def line(name: str, monthly: float, assumption: str) -> Line:
        return Line(name, monthly * year, assumption)

    return [
        line(
            "raw, Intelligent-Tiering frequent",
            tiered_month_usd(it.frequent, frequent_tb * gb_per_tb),
            f"the last month's landing, {frequent_tb:,.0f} TB, at the tiered frequent rates",
        ),
        line(
            "raw, Intelligent-Tiering infrequent",
            infrequent_tb * gb_per_tb * it.infrequent,
            f"{infrequent_tb:,.0f} TB one to three months old at ${it.infrequent}/GB-month",
        ),
        line(
            "raw, Intelligent-Tiering Archive Instant",
            archive_instant_tb * gb_per_tb * it.archive_instant,
            f"{archive_instant_tb:,.0f} TB from three to {glacier_after:g} months old at "
            f"${it.archive_instant}/GB-month",
        ),
        line(
            f"raw older than {glacier_after:g} months, {glacier_class}",
            glacier_tb * gb_per_tb * glacier_price,
            f"{glacier_tb:,.0f} TB at ${glacier_price}/GB-month (lifecycle rule)",
        ),
        line(
            "processed/curated, Standard",
            tiered_month_usd(s3.standard, curated_tb * gb_per_tb),
            f"{curated_tb:,.0f} TB at the tiered Standard rates",
        ),
        line(
            "Intelligent-Tiering monitoring",
            it_objects / 1000 * it.monitoring_per_1000_objects,
            f"{it_objects:,.0f} objects of {object_bytes / 2**20:,.0f} MB at "
            f"${it.monitoring_per_1000_objects} per 1,000 a month",
        ),
        line(
            "requests",
            put_per_month / 1000 * s3.put_per_1000 + get_per_month / 1000 * s3.get_per_1000,
            f"{put_per_month:,.0f} PUTs (the landing) and {get_per_month:,.0f} GETs a month",
        ),
    ]


@dataclass(frozen=True)
class ScenarioResult:
    scenario: Scenario
    prices: PriceTable
    advice: tuple[Advice, ...]
    storage: tuple[Line, ...]

    @property
    def standing_usd_per_year(self) -> float:
        return sum(line.usd_per_year for line in self.scenario.standing)

    def job_usd_per_year(self, advice: Advice) -> float:
        if advice.choice is None or advice.choice.usd_per_month is None:
            return 0.0
        return advice.choice.usd_per_month * MONTHS_PER_YEAR

    @property
    def transient_usd_per_year(self) -> float:
        jobs = sum(self.job_usd_per_year(a) for a in self.advice)
        return (
            jobs
            + sum(line.usd_per_year for line in self.storage)
            + sum(line.usd_per_year for line in self.scenario.fixed)
        )

    @property
    def savings(self) -> float:
        standing = self.standing_usd_per_year
        return 1 - self.transient_usd_per_year / standing if standing else 0.0

    @property
    def nightly_transient_vs_serverless(self) -> float | None:
        nightly = next((a for a in self.advice if a.job.name == self.scenario.nightly_job), None)
        if nightly is None:
            return None
        spot, serverless = nightly.candidate("emr-transient-spot"), nightly.candidate("emr-serverless")
        return 1 - spot.usd / serverless.usd if serverless.usd else None

    def to_dict(self) -> dict[str, Any]:
        s = self.scenario
        nightly = self.nightly_transient_vs_serverless
        return {
            "scenario": s.name,
            "file": s.path,
            "region": s.region,
            "prices_as_of": self.prices.as_of,
            "standing_usd_per_year": round(self.standing_usd_per_year, 2),
            "transient_usd_per_year": round(self.transient_usd_per_year, 2),
            "savings": round(self.savings, 4),
            "nightly_transient_vs_serverless": None if nightly is None else round(nightly, 4),
            "article": s.article,
            "standing": {**s.standing_notes, "cost_lines": [line.to_dict() for line in s.standing]},
            "transient": {
                "jobs_usd_per_year": round(sum(self.job_usd_per_year(a) for a in self.advice), 2),
                "storage_usd_per_year": round(sum(line.usd_per_year for line in self.storage), 2),
                "fixed_usd_per_year": round(sum(line.usd_per_year for line in s.fixed), 2),
                "storage": [line.to_dict() for line in self.storage],
                "fixed": [line.to_dict() for line in s.fixed],
            },
            "jobs": [
                {**a.to_dict(), "usd_per_year": round(self.job_usd_per_year(a), 2)} for a in self.advice
            ],
        }


def evaluate(path: Path, prices: PriceTable | None = None) -> ScenarioResult:
    """Price the scenario at ``path``: every job advised, storage and fixed costs added up."""
    scenario = load_scenario(path)
    table = prices or load_prices(region=scenario.region)
    advice = tuple(advise(job, table, shapes=[s for s in SHAPES if s != "here"]) for job in scenario.jobs)
    return ScenarioResult(scenario, table, advice, tuple(storage_lines(scenario.storage, table)))
