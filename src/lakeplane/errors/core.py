"""The errors of the lake itself: configuration, storage, catalog, ingest, models, queries,
engines, governance, quality, pipelines, tokens, registering, schema evolution and workgroups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lakeplane.errors.base import LakeplaneError


# -- configuration and project files ------------------------------------------------------------
@dataclass(eq=False, kw_only=True)
class ConfigError(LakeplaneError, ValueError):
    """A project file or setting is wrong.

    Attributes:
        file: the file the wrong value is in.
        key: the dotted key, e.g. ``engine.threads``.
        line: the key's 1-based line in ``file``, when it is in the file.
        variable: the environment variable (``LAKEPLANE__ENGINE__THREADS``) that set the wrong value.
        value: the wrong value, where showing it helps (a cron expression).
    """

    file: str | None = None
    key: str | None = None
    line: int | None = None
    variable: str | None = None
    value: str | None = None


@dataclass(eq=False, kw_only=True)
class PipelineError(ConfigError):
    """A pipeline file is wrong beyond its keys: a dependency on an unknown ``step``, or a ``cycle``."""

    step: str | None = None
    cycle: list[str] | None = None


@dataclass(eq=False, kw_only=True)
class UnknownNameError(LakeplaneError, KeyError):
    """A ``name`` (engine, catalog, storage backend) is not registered."""

    name: str


@dataclass(eq=False, kw_only=True)
class MissingDependencyError(LakeplaneError, ImportError):
    """An optional dependency is not installed; ``extra`` names what to install."""

    extra: str


# -- storage, catalog, ingest -------------------------------------------------------------------
@dataclass(eq=False, kw_only=True)
class StorageError(LakeplaneError, OSError):
    """Reading or writing lake storage failed at ``path``."""

    path: str | None = None
    retryable: bool = True


@dataclass(eq=False, kw_only=True)
class LandingError(LakeplaneError, ValueError):
    """A ``file`` cannot be landed in the raw zone (missing, unknown format, wrong dataset)."""

    file: str


@dataclass(eq=False, kw_only=True)
class CatalogError(LakeplaneError):
    """The catalog (at ``uri``) refused an operation on ``table`` or could not be reached."""

    uri: str | None = None
    table: str | None = None
    retryable: bool = True


@dataclass(eq=False, kw_only=True)
class CommitConflictError(CatalogError):
    """A commit of ``operation`` to ``table`` lost the race to other writers ``attempts`` times in a
    row; nothing of it is visible. Running the step again (later, or with fewer writers) can help.

    Attributes:
        operation: what was being committed (``overwrite_partitions``, ``publish``, ``create``...).
        attempts: how many commits were tried, the first one included.
        cause: the last conflict, as the catalog reported it.
    """

    table: str
    operation: str
    attempts: int
    cause: str | None = None
    retryable: bool = True


@dataclass(eq=False, kw_only=True)
class TableNotFoundError(CatalogError, LookupError):
    """A ``table`` named in SQL or on the command line does not exist."""

    table: str
    retryable: bool = False


@dataclass(eq=False, kw_only=True)
class IngestError(LakeplaneError):
    """An ingest step could not turn raw batches of ``dataset`` into a processed table."""

    dataset: str | None = None
    ds: str | None = None
    batch: str | None = None


@dataclass(eq=False, kw_only=True)
class QuarantineRateExceeded(IngestError):
    """A ``batch`` had more malformed records (``rate``) than the dataset allows (``limit``)."""

    dataset: str
    batch: str
    rate: float
    limit: float


# -- models, queries, engines -------------------------------------------------------------------
@dataclass(eq=False, kw_only=True)
class ModelError(LakeplaneError, ValueError):
    """A SQL model is wrong (header, SQL, result columns, materialisation).

    Attributes:
        file: the model file; ``line`` and ``key`` point into its header.
        key: the header key, or the unique key's columns when a merge key is not unique.
        table, column, type: a result column that cannot be written, and its engine type.
        cycle: models that read each other.
    """

    file: str | None = None
    line: int | None = None
    key: str | list[str] | None = None
    table: str | None = None
    column: str | None = None
    type: str | None = None
    cycle: list[str] | None = None


@dataclass(eq=False, kw_only=True)
class QueryError(LakeplaneError, ValueError):
    """SQL that lakeplane will not run: not read-only, unparseable, or naming unknown tables.

    Attributes:
        column: a column name, or the character position of a parse error (with ``line``).
    """

    table: str | None = None
    column: str | int | None = None
    line: int | None = None
    dialect: str | None = None
    statement: str | None = None
    statements: int | None = None
    parameter: str | None = None
    function: str | None = None
    clause: str | None = None


@dataclass(eq=False, kw_only=True)
class EngineError(LakeplaneError):
    """An engine failed while running a job; ``retryable`` when the compute was lost, not the SQL wrong.

    Attributes:
        sql: the statement that failed.
        engine, job, missing: ``job`` needs capabilities (their names) the ``engine`` lacks.
        table: a table the engine cannot read.
        out_of_memory: the engine ran out of memory (no fallback that needs more can help).
    """

    sql: str | None = None
    engine: str | None = None
    job: str | None = None
    missing: list[str] | None = None
    table: str | None = None
    out_of_memory: bool = False


# -- governance ---------------------------------------------------------------------------------
@dataclass(eq=False, kw_only=True)
class AccessDenied(LakeplaneError, PermissionError):
    """The policy does not let ``principal`` read (or write) ``table``, or its ``column``."""

    principal: str
    table: str
    column: str | None = None


@dataclass(eq=False, kw_only=True)
class PolicyError(LakeplaneError, ValueError):
    """A policy file is wrong (``file``, ``line``, ``key``), or names an unknown principal or column."""

    file: str | None = None
    line: int | None = None
    key: str | None = None
    principal: str | None = None
    table: str | None = None
    column: str | None = None


@dataclass(eq=False, kw_only=True)
class MaskSpecError(LakeplaneError, ValueError):
    """A mask in the policy is malformed; ``mask`` holds it as written."""

    mask: Any


@dataclass(eq=False, kw_only=True)
class MaskTypeError(LakeplaneError, TypeError):
    """A mask (of ``kind``) does not apply to a column of type ``column_type``."""

    column_type: str
    kind: str | None = None


@dataclass(eq=False, kw_only=True)
class AuditError(LakeplaneError):
    """The audit log was misused, is damaged, or lost a race too often (then ``retryable`` is true).

    Attributes:
        seq: a malformed record.
        decision, rows, limit: an argument out of range.
    """

    seq: int | None = None
    decision: str | None = None
    rows: int | None = None
    limit: int | None = None


# -- quality ------------------------------------------------------------------------------------
@dataclass(eq=False, kw_only=True)
class DQDLError(LakeplaneError, ValueError):
    """A DQDL ruleset is wrong at ``source:line:column``; ``rule`` is the rule as written."""

    source: str
    line: int
    column: int
    rule: str


@dataclass(eq=False, kw_only=True)
class QualityGateFailed(LakeplaneError):
    """Blocking data-quality ``rules`` failed on ``table``: the step's output was not published."""

    rules: list[dict[str, Any]]
    table: str | None = None


# -- pipelines ----------------------------------------------------------------------------------
@dataclass(eq=False, kw_only=True)
class RunNotFound(LakeplaneError, LookupError):
    """No run has the id ``run_id``."""

    run_id: str


@dataclass(eq=False, kw_only=True)
class RunBusy(LakeplaneError):
    """Another run of the same ``pipeline`` and day (``ds``) holds the day, so this one cannot go on:
    a run waited ``waited_s`` seconds for it (retryable: the other run will end), or a redrive was
    asked of ``run_id`` while its runner is still alive.

    Attributes:
        holder_run: the run that holds the day; ``holder`` is its runner, ``host:pid``.
    """

    pipeline: str
    ds: str
    holder_run: str
    holder: str | None = None
    run_id: str | None = None
    waited_s: float | None = None


@dataclass(eq=False, kw_only=True)
class BookmarkError(LakeplaneError, LookupError):
    """A step's bookmark cannot be shown or moved: unknown ``step`` of ``pipeline``, a step kind
    that keeps none, or a run (``run_id``) that cannot be rewound to."""

    step: str | None = None
    pipeline: str | None = None
    run_id: str | None = None


# -- access tokens and the REST catalog ---------------------------------------------------------
@dataclass(eq=False, kw_only=True)
class TokenError(LakeplaneError, ValueError):
    """An access token cannot be made or found: unknown ``token`` (id or label), a taken ``label``,
    a ``principal`` the policy does not know, or an ``expires`` that is not a duration."""

    token: str | None = None
    label: str | None = None
    principal: str | None = None
    expires: str | None = None


@dataclass(eq=False, kw_only=True)
class AuthenticationError(LakeplaneError, PermissionError):
    """A bearer token is missing, unknown, revoked or expired (``reason`` says which), or names a
    principal the policy no longer knows. ``token_id`` is the token's id when it was found."""

    reason: str
    token_id: str | None = None


@dataclass(eq=False, kw_only=True)
class NamespaceNotFoundError(CatalogError, LookupError):
    """A ``namespace`` (``telco`` or ``telco.processed``) does not exist, or holds no table the asking
    principal may read."""

    namespace: str
    retryable: bool = False


@dataclass(eq=False, kw_only=True)
class ReadOnlyError(LakeplaneError, PermissionError):
    """A write (``operation``) was asked of a catalog served read-only."""

    operation: str


# -- table names and registering existing data --------------------------------------------------
@dataclass(eq=False, kw_only=True)
class AmbiguousTableError(TableNotFoundError):
    """A short ``table`` name (``name`` or ``zone.name``) fits several tables, its ``candidates``."""

    candidates: list[str]


@dataclass(eq=False, kw_only=True)
class RegisterError(LakeplaneError, ValueError):
    """Existing data cannot be registered into ``table``: nothing was committed.

    Attributes:
        file: the file (or metadata file) refused.
        column: the column at fault, when one is.
        reason: why, in a few words (``missing``, ``not parquet``, ``schema``, ``partition``,
            ``already registered``, ``metadata``...).
    """

    table: str
    file: str | None = None
    column: str | None = None
    reason: str | None = None


# -- schema evolution ---------------------------------------------------------------------------
@dataclass(eq=False, kw_only=True)
class SchemaChangeError(CatalogError, ValueError):
    """A change to the schema or partition spec of ``table`` is refused: ``change`` (what was asked)
    names ``column``, which is unknown, already taken, a partition source, named by the policy, or
    cannot take the type asked (``type``)."""

    table: str
    change: str
    column: str | None = None
    type: str | None = None
    retryable: bool = False


# -- workgroups ---------------------------------------------------------------------------------
@dataclass(eq=False, kw_only=True)
class QueryRefused(LakeplaneError):
    """A workgroup refused a query before it ran: nothing was read and nothing is billed.

    Attributes:
        workgroup: the principal's workgroup.
        principal: who asked.
        reason: ``cutoff`` (over ``bytes_scanned_cutoff_per_query``), ``daily`` (over what is left of
            ``bytes_scanned_per_day``), ``queue_full`` or ``queue_timeout``.
        limit: the cap in bytes (``cutoff``, ``daily``), or ``max_concurrent`` (the queue reasons).
        remaining: bytes left of the day's budget (``daily``).
        estimate: the bytes the query would scan.
        breakdown: what it would scan, per table: ``table``, ``partitions``, ``columns``, ``files``,
            ``bytes``.
    """

    workgroup: str
    principal: str | None = None
    reason: str
    limit: int | None = None
    remaining: int | None = None
    estimate: int | None = None
    breakdown: list[dict[str, Any]] | None = None
