"""A Step Functions state machine (``CreateStateMachine``) for a pipeline's DAG.

The steps run level by level: a level's steps depend only on earlier levels, so a level of several
steps is a ``Parallel`` state with one branch per step. Each step is a ``.sync`` task (an EMR
Serverless job run, a Glue job run, or an EMR step on a cluster the machine creates first), so the
state waits for it and fails when it fails. ``Retry`` is the step's retry policy: its attempts, first
interval, backoff rate, longest delay and jitter.

A gated step (a blocking ``quality`` step, or a model whose gate is its header's ``quality``) that
still fails after its retries goes to a ``Fail`` state named for the gate, error
``QualityGateFailed``. The execution's input is ``{"ds": "YYYY-MM-DD"}``.

Redrive: ``RedriveExecution`` (``aws stepfunctions redrive-execution --execution-arn ...``) restarts a
failed execution at the states that did not succeed, with the same input; the steps that finished
are not run again. A step that crashed or timed out is redriven; a gate's ``Fail`` state is final by
design: fix the data and start a new execution for the day (each step is idempotent per day).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from lakeplane.aws import emr, glue
from lakeplane.aws.jobs import RemoteStep
from lakeplane.aws.settings import AwsProject

GATE_ERROR = "QualityGateFailed"
RUNNERS = ("emr-serverless", "glue", "emr")
#: Step Functions refuses longer state names.
MAX_STATE_NAME = 80
CREATE_CLUSTER = "create cluster"
TERMINATE_CLUSTER = "terminate cluster"


def create_state_machine(project: AwsProject, runs_on: str | None = None) -> dict[str, Any]:
    """The keyword arguments of ``stepfunctions.create_state_machine`` for the project's job."""
    runner = runs_on or project.aws.stepfunctions.runs_on
    definition = state_machine_definition(project, runner)
    return {
        "name": project.job.slug,
        "definition": json.dumps(definition, indent=2),
        "roleArn": project.need(
            project.aws.stepfunctions.role, "stepfunctions.role", "the role the state machine runs as"
        ),
        "type": "STANDARD",  # EXPRESS machines cannot be redriven and run at most five minutes
        "tags": [{"key": k, "value": v} for k, v in project.tags().items()],
    }


def state_machine_definition(project: AwsProject, runner: str) -> dict[str, Any]:
    """The Amazon States Language document: levels in sequence, a level's steps in parallel."""
    states: dict[str, Any] = {}
    chain: list[str] = []
    if runner == "emr":
        states[CREATE_CLUSTER] = _create_cluster(project)
        chain.append(CREATE_CLUSTER)
    for index, level in enumerate(project.job.levels()):
        if len(level) == 1:
            states.update(_step_states(project, level[0], runner))
            chain.append(level[0].name)
        else:
            name = f"level {index + 1}: " + ", ".join(step.name for step in level)
            if len(name) > MAX_STATE_NAME:
                name = f"level {index + 1} ({len(level)} steps)"
            states[name] = {
                "Type": "Parallel",
                "Branches": [_branch(project, step, runner) for step in level],
                "ResultPath": None,
            }
            chain.append(name)
    if runner == "emr":
        states[TERMINATE_CLUSTER] = {
            "Type": "Task",
            "Resource": "arn:aws:states:::elasticmapreduce:terminateCluster.sync",
            "Parameters": {"ClusterId.$": "$.cluster.ClusterId"},
            "ResultPath": None,
        }
        chain.append(TERMINATE_CLUSTER)
    for current, following in itertools.pairwise(chain):
        states[current]["Next"] = following
    states[chain[-1]]["End"] = True
    return {
        "Comment": f"lakeplane {project.job.kind} {project.job.name} of project {project.config.name}; "
        'input {"ds": "YYYY-MM-DD"}',
        "StartAt": chain[0],
        "States": states,
    }


def _branch(project: AwsProject, step: RemoteStep, runner: str) -> dict[str, Any]:
    states = _step_states(project, step, runner)
    states[step.name]["End"] = True
    return {"StartAt": step.name, "States": states}


def gate_state(step: RemoteStep) -> str:
    """The name of the ``Fail`` state a gated step's failure ends in."""
    return f"{step.name} quality gate"


def _step_states(project: AwsProject, step: RemoteStep, runner: str) -> dict[str, Any]:
    task: dict[str, Any] = {"Type": "Task", **_task(project, step, runner), "ResultPath": None}
    task["TimeoutSeconds"] = max(1, int(step.timeout_s))
    retry = _retry(step)
    if retry:
        task["Retry"] = [retry]
    states = {step.name: task}
    if step.gate:
        task["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": gate_state(step)}]
        states[gate_state(step)] = {
            "Type": "Fail",
            "Error": GATE_ERROR,
            "Cause": f"step {step.name} failed its quality gate ({step.gate}) or could not run; "
            "the task's error is in the execution history",
        }
    return states


def _retry(step: RemoteStep) -> dict[str, Any] | None:
    """Step Functions counts retries; lakeplane counts attempts (the first try included)."""
    policy = step.retries
    if policy.attempts <= 1:
        return None
    return {
        "ErrorEquals": ["States.ALL"],
        "IntervalSeconds": max(1, round(policy.interval_s)),
        "MaxAttempts": policy.attempts - 1,
        "BackoffRate": policy.backoff_rate,
        "MaxDelaySeconds": max(1, round(policy.max_delay_s)),
        "JitterStrategy": "FULL" if policy.jitter else "NONE",
    }


def _array(args: list[str]) -> str:
    """``States.Array(...)`` of ``args``, the placeholder ``<ds>`` taken from the execution's input."""
    quoted = ", ".join("$.ds" if a == "<ds>" else "'" + a.replace("'", "\\'") + "'" for a in args)
    return f"States.Array({quoted})"


def _task(project: AwsProject, step: RemoteStep, runner: str) -> dict[str, Any]:
    if runner == "glue":
        return {
            "Resource": "arn:aws:states:::glue:startJobRun.sync",
            "Parameters": {
                "JobName": glue.job_name(project),
                "Arguments": {"--step": step.name, "--ds.$": "$.ds"},
            },
        }
    if runner == "emr-serverless":
        driver = emr.serverless_driver(project, [])["sparkSubmit"]
        return {
            "Resource": "arn:aws:states:::emr-serverless:startJobRun.sync",
            "Parameters": {
                "ApplicationId": emr.serverless_application(project),
                "ExecutionRoleArn": emr.serverless_role(project),
                "Name.$": f"States.Format('{project.job.slug}-{step.name}-{{}}', $.ds)",
                "JobDriver": {
                    "SparkSubmit": {
                        "EntryPoint": driver["entryPoint"],
                        "EntryPointArguments.$": _array(project.entry_args([step.name], ds="<ds>")),
                        "SparkSubmitParameters": driver["sparkSubmitParameters"],
                    }
                },
                "ConfigurationOverrides": {
                    "MonitoringConfiguration": {
                        "S3MonitoringConfiguration": {"LogUri": f"{project.log_uri}/emr-serverless/"}
                    }
                },
            },
        }
    if runner == "emr":
        submit = emr.spark_submit(project, [step.name], ds="<ds>")
        return {
            "Resource": "arn:aws:states:::elasticmapreduce:addStep.sync",
            "Parameters": {
                "ClusterId.$": "$.cluster.ClusterId",
                "Step": {
                    "Name": step.name,
                    "ActionOnFailure": "CONTINUE",
                    "HadoopJarStep": {
                        "Jar": "command-runner.jar",
                        "Args.$": _array(submit),
                    },
                },
            },
        }
    raise ValueError(f"unknown runner '{runner}'; expected one of {', '.join(RUNNERS)}")


def _create_cluster(project: AwsProject) -> dict[str, Any]:
    """``createCluster.sync`` with the ``RunJobFlow`` request minus its steps (added one by one),
    kept alive between steps and ended by the last state (or by its idle timeout after a failure)."""
    request = emr.run_job_flow(project)
    del request["Steps"]
    request["Instances"]["KeepJobFlowAliveWhenNoSteps"] = True
    request["StepConcurrencyLevel"] = max(1, max(len(level) for level in project.job.levels()))
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::elasticmapreduce:createCluster.sync",
        "Parameters": request,
        "ResultPath": "$.cluster",
    }
