"""``lakeplane aws render``: one target's request for a pipeline or model, validated offline.

Each target names the boto3 service and operation its request is for; every rendered request is
checked with botocore's ``ParamValidator`` against that operation's input shape in the service
model shipped with botocore, so a request that renders is one boto3 would send.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from lakeplane.aws import athena, emr, glue, stepfunctions
from lakeplane.aws.jobs import JobPlan, resolve_job
from lakeplane.aws.settings import AwsProject
from lakeplane.config import LakeConfig
from lakeplane.errors import AwsRequestInvalid, ConfigError, did_you_mean

if TYPE_CHECKING:
    from lakeplane.lake import Lake


@dataclass(frozen=True)
class Target:
    """A shape a job can be sent to: the boto3 service, its operation, and how to build the request."""

    name: str
    service: str
    operation: str
    method: str
    build: Callable[[AwsProject], dict[str, Any]]


TARGETS = {
    t.name: t
    for t in (
        Target("emr", "emr", "RunJobFlow", "run_job_flow", emr.run_job_flow),
        Target("emr-serverless", "emr-serverless", "StartJobRun", "start_job_run", emr.start_job_run),
        Target("glue", "glue", "CreateJob", "create_job", glue.create_job),
        Target(
            "stepfunctions",
            "stepfunctions",
            "CreateStateMachine",
            "create_state_machine",
            stepfunctions.create_state_machine,
        ),
        Target(
            "athena-workgroup", "athena", "CreateWorkGroup", "create_work_group", athena.create_work_group
        ),
    )
}


@dataclass
class Rendered:
    """A validated request for one target, and what the config lacked to make it real."""

    target: Target
    job: JobPlan
    ds: dt.date
    request: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "operation": self.target.operation,
            "service": self.target.service,
            "method": self.target.method,
            "request": self.request,
            "target": self.target.name,
            "job": {"kind": self.job.kind, "name": self.job.name, "steps": [s.name for s in self.job.steps]},
            "ds": self.ds.isoformat(),
            "warnings": self.warnings,
        }
        if self.target.name == "stepfunctions":
            data["execution_input"] = {"ds": self.ds.isoformat()}
        return data


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise ConfigError(
            f"unknown AWS target '{name}'{did_you_mean(name, TARGETS)}; expected one of {', '.join(TARGETS)}",
            key=name,
        )
    return TARGETS[name]


def lakeplane_version() -> str:
    try:
        return version("lakeplane")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


def render(
    target_name: str,
    config: LakeConfig,
    job: JobPlan,
    ds: dt.date,
    runs_on: str | None = None,
    workgroup: str | None = None,
) -> Rendered:
    """Build and validate ``target_name``'s request for ``job`` on ``ds``.

    Raises:
        ConfigError: an unknown target, or a step runner or workgroup that does not exist.
        AwsRequestInvalid: the request does not match the operation's input shape.
    """
    target = get_target(target_name)
    project = AwsProject(config, job, ds, lakeplane_version())
    if target.name == "stepfunctions":
        if runs_on is not None and runs_on not in stepfunctions.RUNNERS:
            raise ConfigError(
                f"unknown step runner '{runs_on}'; expected one of {', '.join(stepfunctions.RUNNERS)}",
                key="aws.stepfunctions.runs_on",
            )
        request = stepfunctions.create_state_machine(project, runs_on)
    elif target.name == "athena-workgroup":
        request = athena.create_work_group(project, workgroup)
    else:
        request = target.build(project)
    validate_request(target.service, target.operation, request)
    if target.name == "stepfunctions":
        check_definition(json.loads(request["definition"]))
    return Rendered(target, job, ds, request, project.warnings)


def validate_request(service: str, operation: str, request: dict[str, Any]) -> None:
    """Check ``request`` against ``operation``'s input shape in botocore's model of ``service``.

    Raises:
        AwsRequestInvalid: naming each wrong, missing or unknown parameter.
    """
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model(service)
    shape = model.operation_model(operation).input_shape
    report = ParamValidator().validate(request, shape)
    if report.has_errors():
        problems = [line.strip() for line in report.generate_report().splitlines() if line.strip()]
        raise AwsRequestInvalid(
            f"{service} {operation} request is invalid: " + "; ".join(problems),
            service=service,
            operation=operation,
            problems=problems,
        )


def check_definition(definition: dict[str, Any]) -> None:
    """Every ``Next`` and ``StartAt`` names a state of its scope, and every chain ends.

    Raises:
        AwsRequestInvalid: naming the state whose transition goes nowhere.
    """
    problems: list[str] = []
    _check_scope(definition, "", problems)
    if problems:
        raise AwsRequestInvalid(
            "state machine definition is invalid: " + "; ".join(problems),
            service="stepfunctions",
            operation="CreateStateMachine",
            problems=problems,
        )


def _check_scope(scope: dict[str, Any], where: str, problems: list[str]) -> None:
    states: dict[str, Any] = scope.get("States", {})
    if scope.get("StartAt") not in states:
        problems.append(f"{where or 'definition'}: StartAt '{scope.get('StartAt')}' is not a state")
    for name, state in states.items():
        if len(name) > stepfunctions.MAX_STATE_NAME:
            problems.append(f"state name '{name}' is longer than {stepfunctions.MAX_STATE_NAME} characters")
        targets = [state.get("Next")] + [c.get("Next") for c in state.get("Catch", [])]
        for following in filter(None, targets):
            if following not in states:
                problems.append(f"state '{name}': Next '{following}' is not a state")
        if (
            state["Type"] not in ("Fail", "Succeed", "Choice")
            and not state.get("Next")
            and not state.get("End")
        ):
            problems.append(f"state '{name}' has neither Next nor End")
        for index, branch in enumerate(state.get("Branches", [])):
            _check_scope(branch, f"{name} branch {index + 1}", problems)


def render_job(
    lake: Lake,
    target_name: str,
    name: str,
    ds: dt.date,
    runs_on: str | None = None,
    workgroup: str | None = None,
) -> Rendered:
    """``target_name``'s request for the pipeline, model (or, for ``athena-workgroup``, workgroup)
    called ``name`` in ``lake``'s project."""
    config = lake.config
    if target_name == "athena-workgroup" and name in config.workgroups:
        job = JobPlan(config.name, name, "workgroup", ())
        return render(target_name, config, job, ds, workgroup=workgroup or name)
    job = resolve_job(config.name, name, lake.pipelines(), lake.models())
    return render(target_name, config, job, ds, runs_on, workgroup)
