"""The price table: dated public AWS list prices per region, and the shapes' stated constants.

``prices.yaml`` (shipped beside this module, or a file named by ``cost.prices``) is read into frozen
dataclasses. A missing or wrong key is a :class:`~lakeplane.errors.ConfigError` naming the file and
the dotted key, so a hand-edited table fails at load, not halfway through a cost report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from lakeplane.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from lakeplane.config_compute import HereConfig

#: The table shipped with lakeplane.
DEFAULT_PRICES = Path(__file__).with_name("prices.yaml")

#: AWS bills data volumes in binary units: a GB is 2**30 bytes, a TB 2**40.
GB = 2**30
TB = 2**40
MB = 2**20


@dataclass(frozen=True)
class Instance:
    """An EC2 instance type: its size, its On-Demand price and the EMR uplift, USD per hour."""

    name: str
    vcpu: int
    memory_gb: float
    on_demand: float
    emr: float
    arch: str

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]


@dataclass(frozen=True)
class ServerlessRate:
    """EMR Serverless per vCPU-hour and per GB-hour, for one architecture."""

    vcpu_hour: float
    gb_hour: float


@dataclass(frozen=True)
class ServerlessPrices:
    rates: Mapping[str, ServerlessRate]
    storage_gb_hour: float
    free_storage_gb: float


@dataclass(frozen=True)
class GluePrices:
    dpu_hour: float
    flex_dpu_hour: float
    dpu_vcpu: int
    dpu_memory_gb: float
    minimum_seconds: float
    minimum_workers: int


@dataclass(frozen=True)
class AthenaPrices:
    per_tb: float
    minimum_mb: float

    def query_usd(self, bytes_scanned: float) -> float:
        """One query: bytes rounded up to the megabyte, at least the minimum, at ``per_tb``."""
        billed_mb = max(self.minimum_mb, math.ceil(bytes_scanned / MB))
        return billed_mb * MB / TB * self.per_tb


@dataclass(frozen=True)
class Tier:
    """A volume tier: ``gb_month`` applies to the storage up to ``up_to_tb`` (None: the rest)."""

    up_to_tb: float | None
    gb_month: float


@dataclass(frozen=True)
class IntelligentTiering:
    frequent: tuple[Tier, ...]
    infrequent: float
    archive_instant: float
    archive: float
    deep_archive: float
    monitoring_per_1000_objects: float


@dataclass(frozen=True)
class S3Prices:
    standard: tuple[Tier, ...]
    intelligent_tiering: IntelligentTiering
    standard_ia: float
    glacier_instant: float
    glacier_flexible: float
    glacier_deep_archive: float
    put_per_1000: float
    get_per_1000: float


def tiered_month_usd(tiers: tuple[Tier, ...], gb: float) -> float:
    """A month of ``gb`` gigabytes over volume ``tiers`` (each tier's price on its slice)."""
    usd, below = 0.0, 0.0
    for tier in tiers:
        top = math.inf if tier.up_to_tb is None else tier.up_to_tb * 1024
        slice_gb = max(0.0, min(gb, top) - below)
        usd += slice_gb * tier.gb_month
        below = top
        if gb <= top:
            break
    return usd


@dataclass(frozen=True)
class EmrConstants:
    bootstrap_seconds: float
    primary: str
    node: str
    usable_memory_fraction: float
    core_fraction: float
    min_core: int
    spot_rework_fraction: float
    max_nodes: int
    billing_minimum_seconds: float


@dataclass(frozen=True)
class ServerlessConstants:
    start_seconds: float
    billed_start_seconds: float
    architecture: str
    driver_vcpu: int
    driver_memory_gb: float
    executor_vcpu: int
    executor_min_memory_gb: float
    executor_max_memory_gb: float
    min_executors: int
    billing_minimum_seconds: float
    max_vcpu: int


@dataclass(frozen=True)
class GlueConstants:
    start_seconds: float
    flex_start_seconds: float
    worker: str
    max_workers: int


@dataclass(frozen=True)
class AthenaConstants:
    start_seconds: float
    scan_bytes_per_second: float
    max_seconds: float


@dataclass(frozen=True)
class ShapeConstants:
    """Start-up times, billing rules and capacity limits: not prices, stated constants."""

    emr: EmrConstants
    serverless: ServerlessConstants
    glue: GlueConstants
    athena: AthenaConstants
    hours_per_month: float


@dataclass(frozen=True)
class PriceTable:
    """One region's prices on the date ``as_of``, and where each section's figures come from."""

    path: str
    region: str
    as_of: str
    sources: Mapping[str, str]
    instances: Mapping[str, Instance]
    spot_discount: Mapping[str, float]
    serverless: ServerlessPrices
    glue: GluePrices
    athena: AthenaPrices
    s3: S3Prices
    shapes: ShapeConstants

    def instance(self, name: str) -> Instance:
        """The instance type ``name``; a name not in the table is a ConfigError."""
        try:
            return self.instances[name]
        except KeyError:
            raise ConfigError(
                f"{self.path}: no instance type '{name}' in regions.{self.region}.ec2.instances"
                + did_you_mean(name, self.instances),
                file=self.path,
                key=f"regions.{self.region}.ec2.instances.{name}",
            ) from None

    def spot_hourly(self, name: str) -> float:
        """The Spot price of ``name``: On-Demand less its family's typical discount."""
        instance = self.instance(name)
        return instance.on_demand * (1 - self.spot_discount.get(instance.family, 0.0))

    def serverless_rate(self, architecture: str | None = None) -> ServerlessRate:
        arch = architecture or self.shapes.serverless.architecture
        try:
            return self.serverless.rates[arch]
        except KeyError:
            raise ConfigError(
                f"{self.path}: no EMR Serverless rate for architecture '{arch}'",
                file=self.path,
                key=f"regions.{self.region}.emr_serverless.{arch}",
            ) from None


class Reader:
    """Typed access to a parsed YAML mapping; a missing or wrong value names file and dotted key.

    Shared by the price table and scenario files.
    """

    def __init__(self, file: str, data: Any, key: str = "") -> None:
        self.file, self.data, self.key = file, data, key
        if not isinstance(data, dict):
            raise self.error(key or "(top)", "a mapping")

    def error(self, key: str, expected: str) -> ConfigError:
        return ConfigError(f"{self.file}: '{key}' must be {expected}", file=self.file, key=key)

    def path(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def raw(self, name: str) -> Any:
        if name not in self.data:
            raise ConfigError(
                f"{self.file}: missing key '{self.path(name)}'", file=self.file, key=self.path(name)
            )
        return self.data[name]

    def sub(self, name: str) -> Reader:
        return Reader(self.file, self.raw(name), self.path(name))

    def number(self, name: str, *, low: float = 0.0) -> float:
        value = self.raw(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
            raise self.error(self.path(name), f"a number >= {low:g}")
        return float(value)

    def integer(self, name: str, *, low: int = 0) -> int:
        value = self.raw(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.error(self.path(name), f"an integer >= {low}")
        return value

    def text(self, name: str) -> str:
        value = self.raw(name)
        if not isinstance(value, str) or not value:
            raise self.error(self.path(name), "a non-empty string")
        return value

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)

    def items(self, name: str) -> list[Reader]:
        """The list under ``name``, each item a mapping."""
        values = self.raw(name)
        if not isinstance(values, list):
            raise self.error(self.path(name), "a list")
        return [Reader(self.file, v, f"{self.path(name)}[{i}]") for i, v in enumerate(values)]

    def fraction(self, name: str) -> float:
        value = self.number(name)
        if value > 1:
            raise self.error(self.path(name), "a fraction between 0 and 1")
        return value

    def tiers(self, name: str) -> tuple[Tier, ...]:
        items = self.raw(name)
        if not isinstance(items, list) or not items:
            raise self.error(self.path(name), "a list of {up_to_tb, gb_month} tiers")
        tiers = []
        for i, item in enumerate(items):
            tier = Reader(self.file, item, f"{self.path(name)}[{i}]")
            top = tier.number("up_to_tb") if "up_to_tb" in item else None
            tiers.append(Tier(up_to_tb=top, gb_month=tier.number("gb_month")))
        if tiers[-1].up_to_tb is not None:
            raise self.error(self.path(name), "a tier list whose last tier has no up_to_tb")
        return tuple(tiers)


def shipped_prices_text() -> str:
    """The shipped ``prices.yaml``, read as package data (lakeplane may run from a wheel's zip)."""
    return resources.files(__package__ or "lakeplane.compute").joinpath("prices.yaml").read_text("utf-8")


def load_prices(path: Path | None = None, region: str = "us-east-1") -> PriceTable:
    """Read the price table at ``path`` (default: the shipped one) for ``region``.

    Raises:
        ConfigError: the file is missing or not YAML, a key is missing or has the wrong type, or
            the region is not in the file; the error names the file and the dotted key.
    """
    file = str(path or DEFAULT_PRICES)
    try:
        data = yaml.safe_load(Path(file).read_text(encoding="utf-8") if path else shipped_prices_text())
    except FileNotFoundError:
        raise ConfigError(f"price table {file} does not exist", file=file) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file} is not valid YAML: {exc}", file=file) from None
    top = Reader(file, data)
    regions = top.sub("regions")
    if region not in regions.data:
        raise ConfigError(
            f"{file}: no prices for region '{region}' (has {', '.join(sorted(regions.data))})"
            + did_you_mean(region, regions.data),
            file=file,
            key=f"regions.{region}",
        )
    r = regions.sub(region)
    return PriceTable(
        path=file,
        region=region,
        as_of=str(top.raw("as_of")),
        sources={
            name: r.sub(name).text("source")
            for name in ("ec2", "spot", "emr_serverless", "glue", "athena", "s3")
        },
        instances=_instances(r.sub("ec2").sub("instances")),
        spot_discount=_spot(r.sub("spot").sub("discount")),
        serverless=_serverless(r.sub("emr_serverless")),
        glue=_glue(r.sub("glue")),
        athena=AthenaPrices(
            per_tb=r.sub("athena").number("per_tb"), minimum_mb=r.sub("athena").number("minimum_mb")
        ),
        s3=_s3(r.sub("s3")),
        shapes=_shapes(top.sub("shapes")),
    )


def _instances(section: Reader) -> dict[str, Instance]:
    instances = {}
    for name in section.data:
        item = section.sub(str(name))
        instances[str(name)] = Instance(
            name=str(name),
            vcpu=item.integer("vcpu", low=1),
            memory_gb=item.number("memory_gb"),
            on_demand=item.number("on_demand"),
            emr=item.number("emr"),
            arch=item.text("arch"),
        )
    return instances


def _spot(section: Reader) -> dict[str, float]:
    return {str(family): section.fraction(str(family)) for family in section.data}


def _serverless(section: Reader) -> ServerlessPrices:
    rates = {
        arch: ServerlessRate(
            vcpu_hour=section.sub(arch).number("vcpu_hour"), gb_hour=section.sub(arch).number("gb_hour")
        )
        for arch in ("x86_64", "arm64")
    }
    return ServerlessPrices(
        rates=rates,
        storage_gb_hour=section.number("storage_gb_hour"),
        free_storage_gb=section.number("free_storage_gb"),
    )


def _glue(section: Reader) -> GluePrices:
    return GluePrices(
        dpu_hour=section.number("dpu_hour"),
        flex_dpu_hour=section.number("flex_dpu_hour"),
        dpu_vcpu=section.integer("dpu_vcpu", low=1),
        dpu_memory_gb=section.number("dpu_memory_gb"),
        minimum_seconds=section.number("minimum_seconds"),
        minimum_workers=section.integer("minimum_workers", low=1),
    )


def _s3(section: Reader) -> S3Prices:
    it = section.sub("intelligent_tiering")
    requests = section.sub("requests")
    return S3Prices(
        standard=section.tiers("standard"),
        intelligent_tiering=IntelligentTiering(
            frequent=it.tiers("frequent"),
            infrequent=it.number("infrequent"),
            archive_instant=it.number("archive_instant"),
            archive=it.number("archive"),
            deep_archive=it.number("deep_archive"),
            monitoring_per_1000_objects=it.number("monitoring_per_1000_objects"),
        ),
        standard_ia=section.number("standard_ia"),
        glacier_instant=section.number("glacier_instant"),
        glacier_flexible=section.number("glacier_flexible"),
        glacier_deep_archive=section.number("glacier_deep_archive"),
        put_per_1000=requests.number("put_per_1000"),
        get_per_1000=requests.number("get_per_1000"),
    )


def _shapes(section: Reader) -> ShapeConstants:
    emr, sls, glue, athena = (section.sub(n) for n in ("emr", "emr_serverless", "glue", "athena"))
    return ShapeConstants(
        emr=EmrConstants(
            bootstrap_seconds=emr.number("bootstrap_seconds"),
            primary=emr.text("primary"),
            node=emr.text("node"),
            usable_memory_fraction=emr.fraction("usable_memory_fraction"),
            core_fraction=emr.fraction("core_fraction"),
            min_core=emr.integer("min_core", low=1),
            spot_rework_fraction=emr.number("spot_rework_fraction"),
            max_nodes=emr.integer("max_nodes", low=1),
            billing_minimum_seconds=emr.number("billing_minimum_seconds"),
        ),
        serverless=ServerlessConstants(
            start_seconds=sls.number("start_seconds"),
            billed_start_seconds=sls.number("billed_start_seconds"),
            architecture=sls.text("architecture"),
            driver_vcpu=sls.integer("driver_vcpu", low=1),
            driver_memory_gb=sls.number("driver_memory_gb"),
            executor_vcpu=sls.integer("executor_vcpu", low=1),
            executor_min_memory_gb=sls.number("executor_min_memory_gb"),
            executor_max_memory_gb=sls.number("executor_max_memory_gb"),
            min_executors=sls.integer("min_executors"),
            billing_minimum_seconds=sls.number("billing_minimum_seconds"),
            max_vcpu=sls.integer("max_vcpu", low=1),
        ),
        glue=GlueConstants(
            start_seconds=glue.number("start_seconds"),
            flex_start_seconds=glue.number("flex_start_seconds"),
            worker=glue.text("worker"),
            max_workers=glue.integer("max_workers", low=1),
        ),
        athena=AthenaConstants(
            start_seconds=athena.number("start_seconds"),
            scan_bytes_per_second=athena.number("scan_bytes_per_second", low=1),
            max_seconds=athena.number("max_seconds", low=1),
        ),
        hours_per_month=section.sub("standing").number("hours_per_month", low=1),
    )


@dataclass(frozen=True)
class HerePrice:
    """What an hour of this machine costs, and the assumption that price rests on."""

    usd_per_hour: float
    assumption: str


def here_price(here: HereConfig, prices: PriceTable, cores: int, memory_gb: float) -> HerePrice:
    """The hourly price of this machine: ``cost.here.per_hour``, or the On-Demand price of
    ``cost.here.instance``, or of the cheapest instance in the table with at least ``cores`` vCPUs
    and ``memory_gb`` of memory.

    Raises:
        ConfigError: ``cost.here.instance`` is not in the table, or no instance is large enough.
    """
    if here.per_hour is not None:
        return HerePrice(
            here.per_hour, f"this machine costs ${here.per_hour:.4f}/h, as set in cost.here.per_hour"
        )
    if here.instance is not None:
        instance = prices.instance(here.instance)
        return HerePrice(
            instance.on_demand,
            f"this machine is priced as one {instance.name} On-Demand in {prices.region} "
            f"(${instance.on_demand:.4f}/h, cost.here.instance)",
        )
    fitting = [i for i in prices.instances.values() if i.vcpu >= cores and i.memory_gb >= memory_gb]
    if not fitting:
        raise ConfigError(
            f"no instance in {prices.path} has {cores} vCPUs and {memory_gb:.0f} GB; "
            "set cost.here.per_hour or cost.here.instance",
            key="cost.here",
        )
    cheapest = min(fitting, key=lambda i: (i.on_demand, i.name))
    return HerePrice(
        cheapest.on_demand,
        f"this machine ({cores} cores, {memory_gb:.0f} GB) is priced as the cheapest instance with "
        f"at least that: one {cheapest.name} On-Demand in {prices.region} "
        f"(${cheapest.on_demand:.4f}/h)",
    )
