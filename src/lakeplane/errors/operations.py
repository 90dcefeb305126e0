"""The errors of running the lake: cost and placement, AWS targets, scaling, lineage, SLOs and
housekeeping."""

from __future__ import annotations

from dataclasses import dataclass

from lakeplane.errors.base import LakeplaneError


# -- cost model ---------------------------------------------------------------------------------
@dataclass(eq=False, kw_only=True)
class PriceRefreshError(LakeplaneError):
    """The price table could not be refreshed from the AWS Price List API.

    Attributes:
        region: the region whose prices were asked for.
        service: the Price List service code (``AmazonEC2``, ``ElasticMapReduce``), when one failed.
    """

    region: str
    service: str | None = None


# -- AWS targets --------------------------------------------------------------------------------
@dataclass(eq=False, kw_only=True)
class AwsRequestInvalid(LakeplaneError, ValueError):
    """A rendered AWS request does not match its operation in botocore's service model.

    Attributes:
        service: the boto3 service (``emr``, ``glue``).
        operation: the API operation (``RunJobFlow``).
        problems: one line per wrong, missing or unknown parameter, naming it.
    """

    service: str
    operation: str
    problems: list[str]


@dataclass(eq=False, kw_only=True)
class AwsError(LakeplaneError):
    """An AWS call failed: no credentials, a refused request, or a job that ended badly.

    Attributes:
        service: the boto3 service called.
        operation: the API operation, when one was called.
        code: AWS's error code (``AccessDeniedException``), or ``NoCredentials``.
    """

    service: str | None = None
    operation: str | None = None
    code: str | None = None


# -- scaling and cost from run history ----------------------------------------------------------
@dataclass(eq=False, kw_only=True)
class ScalingError(LakeplaneError, ValueError):
    """A scaling model cannot be fitted for ``job`` from its run history.

    Attributes:
        job: the pipeline or model.
        runs: the usable runs found.
        needed: the runs the fit needs.
    """

    job: str
    runs: int | None = None
    needed: int | None = None


@dataclass(eq=False, kw_only=True)
class JobNotFound(LakeplaneError, LookupError):
    """No pipeline or model is named ``job``; ``known`` lists those that are."""

    job: str
    known: list[str] | None = None


@dataclass(eq=False, kw_only=True)
class LineageError(LakeplaneError, LookupError):
    """Lineage of ``table`` (``column``) cannot be answered: no such table or column in the lineage
    store, or a model's query cannot be traced; ``known`` lists what there is."""

    table: str | None = None
    column: str | None = None
    known: list[str] | None = None


# -- SLOs and alerts ----------------------------------------------------------------------------
@dataclass(eq=False, kw_only=True)
class SloNotFound(LakeplaneError, LookupError):
    """No SLO in ``lakeplane.yaml``'s ``slos:`` is named ``slo``; ``known`` lists those that are."""

    slo: str
    known: list[str] | None = None


# -- housekeeping -------------------------------------------------------------------------------
@dataclass(eq=False, kw_only=True)
class MaintenanceOptionError(LakeplaneError, ValueError):
    """A housekeeping action on ``table`` was given an ``option`` it cannot use (a ``--where`` that
    names ``column``, not a partition column; a size that is not positive)."""

    table: str
    option: str
    column: str | None = None


# -- housekeeping policies and storage tiers ----------------------------------------------------
@dataclass(eq=False, kw_only=True)
class MaintenancePolicyError(LakeplaneError, ValueError):
    """``maintain all`` (or a ``maintain:`` step) was asked for an unknown ``action``."""

    action: str


@dataclass(eq=False, kw_only=True)
class MaintenanceFailed(LakeplaneError):
    """Housekeeping actions ``failed`` (``"compact adtech.processed.impressions"``); the others ran.
    Retryable when every failure was (a commit that lost a race to a writer)."""

    failed: list[str]
    retryable: bool = True


@dataclass(eq=False, kw_only=True)
class CleanupRefused(LakeplaneError, ValueError):
    """Snapshot expiry or orphan removal refused to delete files of ``table``: its ``location`` is not
    a table folder of the lake (outside the storage root, or in the raw zone)."""

    table: str
    location: str | None = None
