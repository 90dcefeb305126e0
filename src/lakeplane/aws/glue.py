"""An AWS Glue Spark job (``CreateJob``): Glue 5.0, ``glueetl``, bookmarks on, Flex when not urgent.

One Glue job per pipeline or model; a run's arguments (``--step``, ``--ds``) pick what it does, so
Step Functions starts the same job once per step. Glue installs lakeplane's wheel (and, from PyPI,
its dependencies) through ``--additional-python-modules``.
"""

from __future__ import annotations

from typing import Any

from lakeplane.aws.settings import ENTRY_SCRIPT, AwsProject


def create_job(project: AwsProject) -> dict[str, Any]:
    """The keyword arguments of ``glue.create_job`` for the project's job."""
    glue = project.aws.glue
    project.check_catalog()
    entry = project.entry_args()
    defaults = dict(zip(entry[::2], entry[1::2], strict=True))
    del defaults["--ds"]  # each run names its day
    conf = " --conf ".join(f"{k}={v}" for k, v in project.spark_conf().items())
    request: dict[str, Any] = {
        "Name": job_name(project),
        "Description": f"lakeplane {project.job.kind} {project.job.name} of project {project.config.name}",
        "Role": project.need(glue.role, "glue.role", "the IAM role Glue jobs run as"),
        "Command": {"Name": "glueetl", "ScriptLocation": project.code(ENTRY_SCRIPT), "PythonVersion": "3"},
        "GlueVersion": glue.version,
        "WorkerType": glue.worker_type,
        "NumberOfWorkers": glue.workers,
        "ExecutionClass": "FLEX" if glue.flex else "STANDARD",
        "Timeout": max(1, round(project.job.timeout_s / 60)),
        "MaxRetries": 0,  # lakeplane retries a step by its own policy (Step Functions Retry)
        "ExecutionProperty": {"MaxConcurrentRuns": max(1, len(project.job.steps))},
        "DefaultArguments": {
            **defaults,
            "--job-bookmark-option": "job-bookmark-enable",
            "--additional-python-modules": project.wheel,
            "--conf": conf,
            "--enable-metrics": "true",
            "--enable-continuous-cloudwatch-log": "true",
            "--enable-spark-ui": "true",
            "--spark-event-logs-path": f"{project.log_uri}/glue-spark-ui/",
            "--TempDir": f"{project.code_prefix}/glue-temp/",
        },
        "Tags": project.tags(),
    }
    if glue.flex and glue.worker_type not in ("G.1X", "G.2X"):
        project.warn(f"Glue Flex runs G.1X and G.2X workers only, not {glue.worker_type}")
    return request


def job_name(project: AwsProject) -> str:
    return project.job.slug


def job_run_arguments(project: AwsProject, steps: list[str] | None = None) -> dict[str, str]:
    """The arguments of one ``glue.start_job_run``: the day, and the steps when not all of them."""
    arguments = {"--ds": project.ds.isoformat()}
    if steps:
        arguments["--step"] = ",".join(steps)
    return arguments
