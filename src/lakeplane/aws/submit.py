"""``lakeplane aws submit``: upload the code bundle, then create or start the rendered request.

Every call goes through boto3 with the region of ``aws.region`` (and ``aws.endpoint`` when set, an
emulator). Credentials come from boto3's own chain (environment, shared files, instance role);
without any, submitting fails before anything is sent.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakeplane.aws.bundle import BundleFile, build_bundle
from lakeplane.aws.render import Rendered, lakeplane_version, render_job
from lakeplane.config_aws import AwsConfig
from lakeplane.errors import AwsError

if TYPE_CHECKING:
    from lakeplane.lake import Lake

#: Terminal states per service, and those of them that mean success.
DONE = {
    "emr": ({"TERMINATED", "TERMINATED_WITH_ERRORS", "WAITING"}, {"TERMINATED", "WAITING"}),
    "emr-serverless": ({"SUCCESS", "FAILED", "CANCELLED"}, {"SUCCESS"}),
    "glue": ({"SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR"}, {"SUCCEEDED"}),
    "stepfunctions": ({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}, {"SUCCEEDED"}),
}

NO_CREDENTIALS = (
    "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE with "
    "~/.aws/credentials, or `aws configure` / `aws sso login`), or run where an IAM role applies"
)


@dataclass
class Submission:
    """What a submit created or started, and (with ``wait``) how it ended."""

    target: str
    operation: str
    ids: dict[str, str]
    uploaded: list[str] = field(default_factory=list)
    state: str | None = None
    succeeded: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "operation": self.operation,
            "ids": self.ids,
            "uploaded": self.uploaded,
            "state": self.state,
            "succeeded": self.succeeded,
            **self.details,
        }


class AwsClients:
    """boto3 clients for one region and endpoint; every call's failure becomes an :class:`AwsError`."""

    def __init__(self, config: AwsConfig) -> None:
        import boto3

        self.config = config
        self.session = boto3.session.Session(region_name=config.region)
        if self.session.get_credentials() is None:
            raise AwsError(NO_CREDENTIALS, code="NoCredentials")
        self._clients: dict[str, Any] = {}

    def call(self, service: str, method: str, **request: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.config.endpoint)
        try:
            return getattr(self._clients[service], method)(**request)
        except NoCredentialsError:
            raise AwsError(NO_CREDENTIALS, service=service, operation=method, code="NoCredentials") from None
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise AwsError(
                f"{service} {method} failed: {error.get('Code')}: {error.get('Message')}",
                service=service,
                operation=method,
                code=error.get("Code"),
            ) from None
        except BotoCoreError as exc:
            raise AwsError(
                f"{service} {method} failed: {exc}", service=service, operation=method, retryable=True
            ) from None


def submit(
    rendered: Rendered,
    config: AwsConfig,
    bundle: Callable[[], list[BundleFile]],
    wait: bool = False,
    timeout_s: float = 3600,
    glue_job: Rendered | None = None,
) -> Submission:
    """Upload ``bundle()`` to ``aws.code_uri`` (jobs only), then send ``rendered``; ``glue_job``
    (a state machine whose steps run as Glue job runs) is created or updated first.

    Raises:
        AwsError: a required ``aws:`` key is missing, no credentials, or AWS refused a call.
    """
    missing = [w for r in (rendered, glue_job) if r for w in r.warnings if " is not set (" in w]
    if missing:
        raise AwsError(
            "cannot submit with placeholders in the request: " + "; ".join(missing),
            service=rendered.target.service,
            code="MissingSettings",
        )
    clients = AwsClients(config)
    uploaded = (
        [] if rendered.target.name == "athena-workgroup" else _upload(clients, config, rendered, bundle())
    )
    if glue_job is not None:
        ensure_glue_job(clients, glue_job.request)
    send = SENDERS[rendered.target.name]
    submission = send(clients, rendered)
    submission.uploaded = uploaded
    if wait and rendered.target.name in POLLERS:
        _wait(clients, submission, rendered.target.name, timeout_s)
    return submission


def _upload(clients: AwsClients, config: AwsConfig, rendered: Rendered, files: list[BundleFile]) -> list[str]:
    bucket, _, prefix = (config.code_uri or "").removeprefix("s3://").partition("/")
    folder = "/".join(p for p in (prefix, rendered.job.project) if p)
    uploaded = []
    for item in files:
        key = f"{folder}/{item.name}"
        clients.call("s3", "put_object", Bucket=bucket, Key=key, Body=item.data)
        uploaded.append(f"s3://{bucket}/{key}")
    return uploaded


# -- per target ----------------------------------------------------------------------------------
def _emr(clients: AwsClients, rendered: Rendered) -> Submission:
    answer = clients.call("emr", "run_job_flow", **rendered.request)
    return Submission("emr", "RunJobFlow", {"cluster_id": answer["JobFlowId"]})


def _serverless(clients: AwsClients, rendered: Rendered) -> Submission:
    answer = clients.call("emr-serverless", "start_job_run", **rendered.request)
    return Submission(
        "emr-serverless",
        "StartJobRun",
        {"application_id": answer["applicationId"], "job_run_id": answer["jobRunId"]},
    )


def _glue(clients: AwsClients, rendered: Rendered) -> Submission:
    name = ensure_glue_job(clients, rendered.request)
    arguments = {"--ds": rendered.ds.isoformat()}
    answer = clients.call("glue", "start_job_run", JobName=name, Arguments=arguments)
    return Submission("glue", "CreateJob", {"job_name": name, "job_run_id": answer["JobRunId"]})


def ensure_glue_job(clients: AwsClients, request: dict[str, Any]) -> str:
    """Create the Glue job ``request`` describes, or update it to that if it exists; its name."""
    name = str(request["Name"])
    if _exists(clients, "glue", "get_job", JobName=name):
        update = {k: v for k, v in request.items() if k not in ("Name", "Tags")}
        clients.call("glue", "update_job", JobName=name, JobUpdate=update)
    else:
        clients.call("glue", "create_job", **request)
    return name


def _stepfunctions(clients: AwsClients, rendered: Rendered) -> Submission:
    request = rendered.request
    arn = _state_machine_arn(clients, request["name"])
    if arn:
        clients.call(
            "stepfunctions",
            "update_state_machine",
            stateMachineArn=arn,
            definition=request["definition"],
            roleArn=request["roleArn"],
        )
    else:
        arn = clients.call("stepfunctions", "create_state_machine", **request)["stateMachineArn"]
    execution = clients.call(
        "stepfunctions",
        "start_execution",
        stateMachineArn=arn,
        name=f"{rendered.ds.isoformat()}-{uuid.uuid4().hex[:8]}",
        input=json.dumps({"ds": rendered.ds.isoformat()}),
    )
    return Submission(
        "stepfunctions",
        "CreateStateMachine",
        {"state_machine_arn": arn, "execution_arn": execution["executionArn"]},
    )


def _athena(clients: AwsClients, rendered: Rendered) -> Submission:
    request = rendered.request
    name = request["Name"]
    configuration = request["Configuration"]
    listed = clients.call("athena", "list_work_groups").get("WorkGroups", [])
    if name in {group["Name"] for group in listed}:
        updates = {
            "EnforceWorkGroupConfiguration": configuration["EnforceWorkGroupConfiguration"],
            "PublishCloudWatchMetricsEnabled": configuration["PublishCloudWatchMetricsEnabled"],
            "ResultConfigurationUpdates": configuration["ResultConfiguration"],
            "EngineVersion": configuration["EngineVersion"],
        }
        if "BytesScannedCutoffPerQuery" in configuration:
            updates["BytesScannedCutoffPerQuery"] = configuration["BytesScannedCutoffPerQuery"]
        else:
            updates["RemoveBytesScannedCutoffPerQuery"] = True
        clients.call("athena", "update_work_group", WorkGroup=name, ConfigurationUpdates=updates)
    else:
        clients.call("athena", "create_work_group", **request)
    stored = clients.call("athena", "get_work_group", WorkGroup=name)["WorkGroup"]
    cutoff = stored.get("Configuration", {}).get("BytesScannedCutoffPerQuery")
    return Submission(
        "athena-workgroup",
        "CreateWorkGroup",
        {"workgroup": name},
        state=stored.get("State"),
        details={"bytes_scanned_cutoff_per_query": cutoff},
    )


def _exists(clients: AwsClients, service: str, method: str, **request: Any) -> bool:
    try:
        clients.call(service, method, **request)
    except AwsError as exc:
        if exc.code in ("EntityNotFoundException", "InvalidRequestException", "ResourceNotFoundException"):
            return False
        raise
    return True


def _state_machine_arn(clients: AwsClients, name: str) -> str | None:
    token: dict[str, str] = {}
    while True:
        page = clients.call("stepfunctions", "list_state_machines", **token)
        for machine in page.get("stateMachines", []):
            if machine["name"] == name:
                return str(machine["stateMachineArn"])
        if not page.get("nextToken"):
            return None
        token = {"nextToken": page["nextToken"]}


SENDERS: dict[str, Callable[[AwsClients, Rendered], Submission]] = {
    "emr": _emr,
    "emr-serverless": _serverless,
    "glue": _glue,
    "stepfunctions": _stepfunctions,
    "athena-workgroup": _athena,
}


# -- waiting -------------------------------------------------------------------------------------
def _emr_state(clients: AwsClients, ids: dict[str, str]) -> str:
    return str(
        clients.call("emr", "describe_cluster", ClusterId=ids["cluster_id"])["Cluster"]["Status"]["State"]
    )


def _serverless_state(clients: AwsClients, ids: dict[str, str]) -> str:
    run = clients.call(
        "emr-serverless", "get_job_run", applicationId=ids["application_id"], jobRunId=ids["job_run_id"]
    )
    return str(run["jobRun"]["state"])


def _glue_state(clients: AwsClients, ids: dict[str, str]) -> str:
    run = clients.call("glue", "get_job_run", JobName=ids["job_name"], RunId=ids["job_run_id"])
    return str(run["JobRun"]["JobRunState"])


def _execution_state(clients: AwsClients, ids: dict[str, str]) -> str:
    return str(
        clients.call("stepfunctions", "describe_execution", executionArn=ids["execution_arn"])["status"]
    )


POLLERS: dict[str, Callable[[AwsClients, dict[str, str]], str]] = {
    "emr": _emr_state,
    "emr-serverless": _serverless_state,
    "glue": _glue_state,
    "stepfunctions": _execution_state,
}


def _wait(clients: AwsClients, submission: Submission, target: str, timeout_s: float) -> None:
    terminal, good = DONE[target]
    deadline = time.monotonic() + timeout_s
    delay = 0.5
    while True:
        submission.state = POLLERS[target](clients, submission.ids)
        if submission.state in terminal:
            submission.succeeded = submission.state in good
            return
        if time.monotonic() > deadline:
            raise AwsError(
                f"{target}: still {submission.state} after {timeout_s:.0f} s ({submission.ids})",
                service=target,
                code="Timeout",
                retryable=True,
            )
        time.sleep(delay)
        delay = min(delay * 2, 30)


def submit_job(
    lake: Lake,
    target: str,
    name: str,
    ds: dt.date,
    runs_on: str | None = None,
    workgroup: str | None = None,
    wait: bool = False,
    timeout_s: float = 3600,
) -> Submission:
    """Render ``target``'s request for ``name`` in ``lake``'s project and submit it (with the Glue
    job its steps run as, for a state machine on Glue)."""
    rendered = render_job(lake, target, name, ds, runs_on, workgroup)
    glue_job = None
    if target == "stepfunctions" and (runs_on or lake.config.aws.stepfunctions.runs_on) == "glue":
        glue_job = render_job(lake, "glue", name, ds)
    root = lake.config.storage.root
    lake_folder = None if root.startswith("s3://") else lake.project_dir / root

    def bundle() -> list[BundleFile]:
        return build_bundle(lake.project_dir, lake_folder, lakeplane_version())

    return submit(rendered, lake.config.aws, bundle, wait, timeout_s, glue_job)
