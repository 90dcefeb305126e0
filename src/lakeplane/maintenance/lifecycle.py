"""Storage tiers: the lake's S3 lifecycle configuration, rendered from ``storage: lifecycle:`` and
``storage: retention:``, validated offline and applied through boto3 when the lake is on S3.

One rule per zone, on the zone's prefix (``<prefix>/raw/``): transitions to Intelligent-Tiering,
Glacier or Deep Archive, removal of incomplete multipart uploads and of noncurrent versions. Two
things are refused because they would lose data nobody asked to lose:

- an expiration (or an archive tier) on ``processed`` or ``curated``: their objects are Iceberg
  tables, whose files only snapshot expiry (``maintain expire``) may delete, and which a reader
  cannot read out of Glacier;
- an expiration on ``raw`` without ``storage.retention.raw``. Raw batches are deleted only by that
  explicit retention policy, and applying it is written to the governance audit log.

``PutBucketLifecycleConfiguration`` replaces a bucket's whole configuration, so rules that are not
this lake's (other prefixes, other tools) are read first and kept.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lakeplane.aws.render import validate_request
from lakeplane.config import StorageConfig
from lakeplane.config_maintenance import DEFAULT_LIFECYCLE, ZoneLifecycle, ZoneName
from lakeplane.errors import AwsError, ConfigError
from lakeplane.governance.audit_records import AuditEvent
from lakeplane.maintenance.actions import MaintenanceAction
from lakeplane.storage import LakeStorage

#: The storage classes a zone's objects move to, by setting, in the order S3 requires.
TRANSITIONS = (
    ("intelligent_tiering_after", "INTELLIGENT_TIERING"),
    ("glacier_after", "GLACIER"),
    ("deep_archive_after", "DEEP_ARCHIVE"),
)
#: What only raw may have: its files are read again only to re-ingest a day.
RAW_ONLY = ("glacier_after", "deep_archive_after", "expire_after")
ZONE_ORDER: tuple[ZoneName, ...] = ("raw", "processed", "curated")
#: Stands for the bucket when the lake is not on S3 (the request is shown, never sent).
LOCAL_BUCKET = "lake-bucket"


@dataclass
class LifecycleResult:
    """A rendered lifecycle configuration and, with ``applied``, what S3 holds afterwards.

    Attributes:
        storage: the lake's root.
        on_s3: the lake is on S3; otherwise nothing can be applied.
        request: the ``PutBucketLifecycleConfiguration`` request, as boto3 takes it.
        retention_days: raw batches are deleted after this many days (``storage.retention.raw``).
        applied: the request was sent.
        rules: the bucket's rules read back after applying (``GetBucketLifecycleConfiguration``).
        kept_rules: IDs of rules that are not this lake's, kept as they were.
        note: what was done, or why nothing was.
    """

    storage: str
    on_s3: bool
    request: dict[str, Any]
    retention_days: int | None
    applied: bool = False
    rules: list[dict[str, Any]] = field(default_factory=list)
    kept_rules: list[str] = field(default_factory=list)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rule_id(prefix: str, zone: str) -> str:
    """This lake's rule for ``zone``: named by the lake's prefix, so lakes sharing a bucket differ."""
    return f"lakeplane {prefix}/{zone}" if prefix else f"lakeplane {zone}"


def render_lifecycle(config: StorageConfig, bucket: str, prefix: str, config_file: Path) -> dict[str, Any]:
    """The ``PutBucketLifecycleConfiguration`` request for the lake at ``s3://bucket/prefix``,
    checked against botocore's model of S3.

    Raises:
        ConfigError: naming ``config_file`` and the key: an expiration or archive tier on a table
            zone, an expiration on raw without a retention policy, transitions out of order.
        AwsRequestInvalid: the request does not match botocore's model.
    """
    zones: dict[ZoneName, ZoneLifecycle] = {**DEFAULT_LIFECYCLE, **config.lifecycle}
    root = f"{prefix}/" if prefix else ""
    rules = []
    for zone, settings in sorted(zones.items(), key=lambda item: ZONE_ORDER.index(item[0])):
        rule = _zone_rule(zone, settings, config.retention.raw, root, config_file)
        if rule is not None:
            rules.append(rule)
    request = {"Bucket": bucket, "LifecycleConfiguration": {"Rules": rules}}
    validate_request("s3", "PutBucketLifecycleConfiguration", request)
    return request


def _zone_rule(
    zone: str, settings: ZoneLifecycle, retention: int | None, root: str, config_file: Path
) -> dict[str, Any] | None:
    def refuse(key: str, problem: str) -> ConfigError:
        where = f"storage.lifecycle.{zone}.{key}"
        return ConfigError(f"{config_file}: {where}: {problem}", file=str(config_file), key=where)

    if zone != "raw":
        for key in RAW_ONLY:
            if getattr(settings, key) is not None:
                raise refuse(
                    key,
                    f"{zone} holds Iceberg tables: their files are deleted only by snapshot expiry "
                    "(lakeplane maintain expire) and must stay readable, so no expiration or archive tier",
                )
    expire_days = settings.expire_after
    if zone == "raw":
        if expire_days is not None and retention is None:
            raise refuse(
                "expire_after",
                "raw batches are never deleted by a lifecycle rule except by an explicit retention "
                "policy: set storage.retention.raw (e.g. 7y); applying it is audited",
            )
        if expire_days is not None and expire_days != retention:
            raise refuse("expire_after", f"must be storage.retention.raw ({retention} days) or left out")
        expire_days = retention
    transitions = [
        {"Days": getattr(settings, key), "StorageClass": storage_class}
        for key, storage_class in TRANSITIONS
        if getattr(settings, key) is not None
    ]
    days = [t["Days"] for t in transitions]
    if days != sorted(set(days)):
        raise refuse("glacier_after", f"transitions must come on increasing days (got {days})")
    if expire_days is not None and days and expire_days <= days[-1]:
        raise refuse("expire_after", f"expiration ({expire_days} days) must come after the last transition")
    rule: dict[str, Any] = {
        "ID": rule_id(root.rstrip("/"), zone),
        "Filter": {"Prefix": f"{root}{zone}/"},
        "Status": "Enabled",
    }
    if transitions:
        rule["Transitions"] = transitions
    if expire_days is not None:
        rule["Expiration"] = {"Days": expire_days}
    if settings.noncurrent_expire_after is not None:
        rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": max(1, settings.noncurrent_expire_after)}
    if settings.abort_multipart_after is not None:
        rule["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": max(1, settings.abort_multipart_after)
        }
    return rule if len(rule) > 3 else None


class StorageTiers:
    """Renders and applies the lake's lifecycle configuration.

    Args:
        config: the ``storage:`` section.
        storage: the lake's storage (where it is).
        config_file: ``lakeplane.yaml``, named in errors.
        audit: appends to the governance audit log.
        policy_version: the label of the policy in force (recorded with the audit event).
        record: keeps the action in the maintenance log.
    """

    def __init__(
        self,
        config: StorageConfig,
        storage: LakeStorage,
        config_file: Path,
        audit: Callable[[AuditEvent], None],
        policy_version: Callable[[], str],
        record: Callable[[MaintenanceAction], None],
    ) -> None:
        self.config = config
        self.storage = storage
        self.config_file = config_file
        self.audit = audit
        self.policy_version = policy_version
        self.record = record

    def lifecycle(self, *, apply: bool = False, principal: str | None = None) -> LifecycleResult:
        """The lifecycle configuration; with ``apply`` sent to S3 and read back. Applying a raw
        retention is audited as ``principal`` (default: the operating-system user).

        Raises:
            ConfigError: the policy is refused (see :func:`render_lifecycle`).
            AwsError: S3 refused the request or could not be reached.
        """
        on_s3 = self.storage.scheme == "s3"
        bucket, _, prefix = self.storage.base.partition("/") if on_s3 else (LOCAL_BUCKET, "", "")
        request = render_lifecycle(self.config, bucket, prefix.strip("/"), self.config_file)
        result = LifecycleResult(self.storage.root_uri, on_s3, request, self.config.retention.raw)
        if not on_s3:
            result.note = (
                f"the lake is at {self.storage.root_uri}: storage lifecycle applies only to a lake on S3 "
                f"(s3://bucket/prefix); on one, these {len(request['LifecycleConfiguration']['Rules'])} "
                "rules would be set on its bucket"
            )
            return result
        if not apply:
            result.note = f"not applied (lakeplane storage lifecycle --apply sends it to s3://{bucket})"
            return result
        action = MaintenanceAction("lifecycle", self.storage.root_uri)
        ours = {rule["ID"] for rule in request["LifecycleConfiguration"]["Rules"]}
        mine = rule_id(prefix.strip("/"), "")
        client = self._client()
        existing = self._call(client, "get_bucket_lifecycle_configuration", Bucket=bucket, missing_ok=True)
        kept = [
            r
            for r in existing.get("Rules", [])
            if r.get("ID") not in ours and not r.get("ID", "").startswith(mine)
        ]
        request["LifecycleConfiguration"]["Rules"] = kept + request["LifecycleConfiguration"]["Rules"]
        validate_request("s3", "PutBucketLifecycleConfiguration", request)
        if result.retention_days is not None:  # audited before it is sent: never applied unaudited
            self._audit_retention(bucket, prefix.strip("/"), result.retention_days, principal)
        self._call(client, "put_bucket_lifecycle_configuration", **request)
        result.applied = True
        result.kept_rules = [str(r.get("ID")) for r in kept]
        result.rules = self._call(client, "get_bucket_lifecycle_configuration", Bucket=bucket).get(
            "Rules", []
        )
        result.note = f"applied to s3://{bucket}: {len(ours)} rules of this lake, {len(kept)} others kept"
        action.details = {"bucket": bucket, "rules": sorted(ours), "kept_rules": result.kept_rules}
        self.record(action.finish())
        return result

    def _audit_retention(self, bucket: str, prefix: str, days: int, principal: str | None) -> None:
        where = f"s3://{bucket}/{prefix + '/' if prefix else ''}raw/"
        self.audit(
            AuditEvent(
                principal=principal or getpass.getuser(),
                policy_version=self.policy_version(),
                sql=f"APPLY RETENTION ON {where} EXPIRE AFTER {days} DAYS",
                decision="allowed",
                reason=f"storage.retention.raw in {self.config_file}: raw batches are deleted "
                f"{days} days after landing",
                tables=[where],
            )
        )
        retention = MaintenanceAction("retention", self.storage.root_uri)
        retention.details = {"zone": "raw", "prefix": where, "days": days}
        self.record(retention.finish())

    def _client(self) -> Any:
        import boto3
        from botocore.config import Config

        s3 = self.config.s3
        return boto3.client(
            "s3",
            endpoint_url=s3.endpoint,
            region_name=s3.region,
            aws_access_key_id=s3.access_key_id,
            aws_secret_access_key=s3.secret_access_key,
            config=Config(s3={"addressing_style": "path" if s3.path_style else "auto"}),
        )

    @staticmethod
    def _call(client: Any, operation: str, *, missing_ok: bool = False, **request: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return dict(getattr(client, operation)(**request))
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if missing_ok and code == "NoSuchLifecycleConfiguration":
                return {}
            raise AwsError(f"s3 {operation}: {exc}", service="s3", operation=operation, code=code) from None
        except BotoCoreError as exc:
            raise AwsError(
                f"s3 {operation}: {exc}", service="s3", operation=operation, code=type(exc).__name__
            ) from None
