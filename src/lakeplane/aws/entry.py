"""What an EMR step, an EMR Serverless job run or a Glue job runs: lakeplane's own step.

``python -m lakeplane.aws.entry --project s3://code/proj/project.zip --lake-root s3://lake/root
--pipeline nightly [--step impressions ...] --ds 2026-11-01`` fetches the project's files, opens the
project with its lake at ``--lake-root``, and runs each named step (every step of the pipeline, in
dependency order, when none is named; ``--model NAME`` runs one model) for the day through
:func:`~lakeplane.pipelines.steps.execute_step`, as a local pipeline run's step process does. Each
step's metrics are printed as one JSON line; a step that fails prints its error as JSON on stderr and
the process exits 1, which fails the job run (and so the Step Functions task).

Arguments it does not know (Glue adds ``--JOB_ID``, ``--job-bookmark-option``, ...) are ignored.
S3 is reached with boto3's usual credential chain (the job's role on AWS).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from lakeplane.errors import ConfigError, LakeplaneError, StorageError
from lakeplane.lake import Lake, open_lake
from lakeplane.pipelines.definition import StepSpec
from lakeplane.pipelines.steps import execute_step


def main(argv: list[str] | None = None) -> int:
    """Run the job ``argv`` describes; 0 when every step succeeded, 1 when one failed."""
    args = _parser().parse_known_args(argv)[0]
    step = "?"
    try:
        ds = _day(args.ds)
        with tempfile.TemporaryDirectory(prefix="lakeplane-job-") as workdir:
            project_dir = fetch_project(args.project, Path(workdir))
            overrides = {"storage": {"root": args.lake_root}} if args.lake_root else None
            lake = open_lake(project_dir, overrides)
            for step, spec in steps_to_run(lake, args.pipeline, args.model, _steps(args.step)):
                metrics = execute_step(lake, spec, ds)
                print(
                    json.dumps(
                        {"step": step, "ds": ds.isoformat(), "ok": True, "metrics": metrics}, default=str
                    )
                )
    except LakeplaneError as exc:
        print(json.dumps({"step": step, "ok": False, **exc.to_dict()}, default=str), file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lakeplane.aws.entry", allow_abbrev=False)
    parser.add_argument("--project", required=True, help="s3:// or local project.zip, or a project folder")
    parser.add_argument("--lake-root", default=None, help="the lake's root (s3://bucket/prefix)")
    job = parser.add_mutually_exclusive_group(required=True)
    job.add_argument("--pipeline")
    job.add_argument("--model")
    parser.add_argument("--step", action="append", default=[], help="a step (or steps, comma-separated)")
    parser.add_argument("--ds", required=True, help="the business date, YYYY-MM-DD")
    return parser


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--ds '{text}' is not a date (YYYY-MM-DD)", key="ds") from None


def _steps(given: list[str]) -> list[str]:
    return [name.strip() for value in given for name in value.split(",") if name.strip()]


def steps_to_run(
    lake: Lake, pipeline: str | None, model: str | None, steps: list[str]
) -> list[tuple[str, StepSpec]]:
    """The steps to run, in order: the named ones of ``pipeline`` (all when none), or ``model``."""
    if model is not None:
        return [(lake.model(model).name, StepSpec(model=model))]
    found = lake.pipeline(pipeline or "")
    for name in steps:
        if name not in found.steps:
            raise ConfigError(
                f"pipeline '{found.name}' has no step '{name}' (steps: {', '.join(found.steps)})", key=name
            )
    return [(name, found.steps[name]) for name in found.order() if not steps or name in steps]


def fetch_project(location: str, workdir: Path) -> Path:
    """The project folder: ``location`` itself, or ``project.zip`` (local or ``s3://``) unpacked."""
    if location.startswith("s3://"):
        data = _read_s3(location)
    elif Path(location).is_dir():
        return Path(location)
    else:
        try:
            data = Path(location).read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read project archive {location}: {exc}", path=location) from None
    target = workdir / "project"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(target)
    return target


def _read_s3(uri: str) -> bytes:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        body: Any = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
        return bytes(body.read())
    except (BotoCoreError, ClientError) as exc:
        raise StorageError(f"cannot read project archive {uri}: {exc}", path=uri, retryable=True) from None


if __name__ == "__main__":
    sys.exit(main())
