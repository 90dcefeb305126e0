"""``lakeplane storage``: the lake's storage tiers (``storage lifecycle``)."""

from __future__ import annotations

import click

from lakeplane.cli.context import Context, common_options, pass_ctx


@click.group()
@common_options
def storage() -> None:
    """The lake's storage: S3 lifecycle (storage classes, expirations) and raw retention."""


@storage.command()
@click.option("--apply", "apply_", is_flag=True, help="Set it on the lake's S3 bucket and read it back.")
@click.option(
    "--as",
    "principal",
    metavar="PRINCIPAL",
    help="Who applies it (audited with a raw retention). Default: you.",
)
@common_options
@pass_ctx
def lifecycle(ctx: Context, apply_: bool, principal: str | None) -> None:
    """Render the S3 lifecycle configuration of lakeplane.yaml (storage: lifecycle:, retention:).

    One rule per zone: raw moves to Intelligent-Tiering and Glacier; processed and curated drop
    incomplete uploads and old versions. It is the PutBucketLifecycleConfiguration request boto3
    takes, validated against botocore's model; --apply sends it (keeping the bucket's other rules)
    when the lake is on S3. Raw data expires only by storage.retention.raw, and applying that is
    written to the audit log.
    """
    result = ctx.lake().storage_lifecycle(apply=apply_, principal=principal)
    if ctx.printer.json:
        ctx.printer.emit(result.to_dict())
        return
    rules = result.request["LifecycleConfiguration"]["Rules"]
    ctx.printer.table(
        f"lifecycle of {result.storage}",
        ["rule", "prefix", "transitions", "expiration", "noncurrent", "abort uploads"],
        [
            [
                r["ID"],
                r["Filter"].get("Prefix", ""),
                ", ".join(f"{t['StorageClass']} at {t['Days']}d" for t in r.get("Transitions", [])),
                f"{r['Expiration']['Days']}d" if "Expiration" in r else "never",
                f"{r['NoncurrentVersionExpiration']['NoncurrentDays']}d"
                if "NoncurrentVersionExpiration" in r
                else "",
                f"{r['AbortIncompleteMultipartUpload']['DaysAfterInitiation']}d"
                if "AbortIncompleteMultipartUpload" in r
                else "",
            ]
            for r in rules
        ],
    )
    ctx.printer.line(result.note)
