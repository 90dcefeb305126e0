"""Transient EMR on EC2 (``RunJobFlow``) and EMR Serverless (``StartJobRun``) requests.

The EMR cluster is born for one run and dies after it: On-Demand primary and core fleets (the core
fleet holds HDFS and the shuffle, so it is not Spot), a Spot task fleet diversified over several
instance families with the ``price-capacity-optimized`` strategy, managed scaling between the
configured limits, and auto-termination once idle. Each pipeline step is one EMR step running
lakeplane's entry module through ``spark-submit``, in dependency order.
"""

from __future__ import annotations

import hashlib
from typing import Any

from lakeplane.aws.settings import BOOTSTRAP_SCRIPT, ENTRY_SCRIPT, AwsProject

#: What a failed EMR step does to the steps after it: they would read what it did not write.
ACTION_ON_FAILURE = "CANCEL_AND_WAIT"


def run_job_flow(project: AwsProject) -> dict[str, Any]:
    """The keyword arguments of ``emr.run_job_flow`` for the project's job and day."""
    emr = project.aws.emr
    project.check_catalog()
    instances: dict[str, Any] = {
        "InstanceFleets": instance_fleets(project),
        "KeepJobFlowAliveWhenNoSteps": False,
        "TerminationProtected": False,
    }
    if emr.subnets:
        instances["Ec2SubnetIds"] = list(emr.subnets)
    return {
        "Name": f"{project.job.slug}-{project.ds.isoformat()}",
        "LogUri": f"{project.log_uri}/emr/",
        "ReleaseLabel": emr.release_label,
        "Applications": [{"Name": "Spark"}],
        "Instances": instances,
        "Steps": [emr_step(project, step.name) for step in project.job.steps],
        "BootstrapActions": [
            {
                "Name": "install lakeplane",
                "ScriptBootstrapAction": {"Path": project.code(BOOTSTRAP_SCRIPT), "Args": [project.wheel]},
            }
        ],
        "Configurations": [{"Classification": "spark-defaults", "Properties": project.spark_conf()}],
        "AutoTerminationPolicy": {"IdleTimeout": int(emr.idle_timeout_s)},
        "ManagedScalingPolicy": {
            "ComputeLimits": {
                "UnitType": "InstanceFleetUnits",
                "MinimumCapacityUnits": emr.min_capacity,
                "MaximumCapacityUnits": emr.max_capacity,
                "MaximumOnDemandCapacityUnits": emr.max_on_demand_capacity,
                "MaximumCoreCapacityUnits": max(emr.core_capacity, emr.max_on_demand_capacity),
            }
        },
        "JobFlowRole": emr.instance_profile,
        "ServiceRole": emr.service_role,
        "VisibleToAllUsers": True,
        "StepConcurrencyLevel": 1,
        "Tags": [{"Key": k, "Value": v} for k, v in project.tags().items()],
    }


def instance_fleets(project: AwsProject) -> list[dict[str, Any]]:
    """Primary and core On-Demand; the task fleet Spot, falling back to On-Demand if Spot is short."""
    emr = project.aws.emr
    fleets = [
        {
            "Name": "primary",
            "InstanceFleetType": "MASTER",
            "TargetOnDemandCapacity": 1,
            "InstanceTypeConfigs": _types({t: 1 for t in emr.primary_types}),
        },
        {
            "Name": "core",
            "InstanceFleetType": "CORE",
            "TargetOnDemandCapacity": emr.core_capacity,
            "InstanceTypeConfigs": _types(emr.core_types),
            "LaunchSpecifications": {"OnDemandSpecification": {"AllocationStrategy": "lowest-price"}},
        },
    ]
    if emr.task_capacity:
        fleets.append(
            {
                "Name": "task-spot",
                "InstanceFleetType": "TASK",
                "TargetSpotCapacity": emr.task_capacity,
                "TargetOnDemandCapacity": 0,
                "InstanceTypeConfigs": _types(emr.task_types),
                "LaunchSpecifications": {
                    "SpotSpecification": {
                        "TimeoutDurationMinutes": emr.spot_timeout_minutes,
                        "TimeoutAction": "SWITCH_TO_ON_DEMAND",
                        "AllocationStrategy": "price-capacity-optimized",
                    },
                    "OnDemandSpecification": {"AllocationStrategy": "lowest-price"},
                },
            }
        )
    return fleets


def _types(weights: dict[str, int]) -> list[dict[str, Any]]:
    return [{"InstanceType": name, "WeightedCapacity": weight} for name, weight in weights.items()]


def emr_step(project: AwsProject, step: str, ds: str | None = None) -> dict[str, Any]:
    """One EMR step: ``spark-submit`` of lakeplane's entry for ``step`` (``ds`` overrides the day)."""
    return {
        "Name": step,
        "ActionOnFailure": ACTION_ON_FAILURE,
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": spark_submit(project, [step], ds)},
    }


def spark_submit(project: AwsProject, steps: list[str], ds: str | None = None) -> list[str]:
    return [
        "spark-submit",
        "--deploy-mode",
        "client",  # the driver runs on the primary node, where the bootstrap installed lakeplane
        project.code(ENTRY_SCRIPT),
        *project.entry_args(steps, ds),
    ]


# -- EMR Serverless ------------------------------------------------------------------------------
def start_job_run(project: AwsProject) -> dict[str, Any]:
    """The keyword arguments of ``emr-serverless.start_job_run``: every step of the job, in order,
    in one job run (Step Functions runs them one job run per step)."""
    project.check_catalog()
    name = f"{project.job.slug}-{project.ds.isoformat()}"
    return {
        "applicationId": serverless_application(project),
        "clientToken": hashlib.sha256(name.encode()).hexdigest()[:32],  # one run per job and day
        "executionRoleArn": serverless_role(project),
        "name": name,
        "jobDriver": serverless_driver(project, project.entry_args()),
        "configurationOverrides": {
            "applicationConfiguration": [
                {"classification": "spark-defaults", "properties": project.spark_conf()}
            ],
            "monitoringConfiguration": {
                "s3MonitoringConfiguration": {"logUri": f"{project.log_uri}/emr-serverless/"}
            },
        },
        "executionTimeoutMinutes": max(1, round(project.job.timeout_s / 60)),
        "tags": project.tags(),
    }


def serverless_application(project: AwsProject) -> str:
    return project.need(
        project.aws.serverless.application_id,
        "serverless.application_id",
        "the EMR Serverless Spark application",
    )


def serverless_role(project: AwsProject) -> str:
    return project.need(
        project.aws.serverless.execution_role, "serverless.execution_role", "the role job runs take"
    )


def serverless_driver(project: AwsProject, entry_args: list[str]) -> dict[str, Any]:
    """``sparkSubmit``: the entry script, its arguments, and the wheel and Python environment."""
    parameters = [f"--py-files {project.wheel}"]
    python_env = project.aws.serverless.python_env
    if python_env:
        parameters += [
            f"--conf spark.archives={python_env}#environment",
            "--conf spark.emr-serverless.driverEnv.PYSPARK_PYTHON=./environment/bin/python",
            "--conf spark.executorEnv.PYSPARK_PYTHON=./environment/bin/python",
        ]
    else:
        project.warn(
            "aws.serverless.python_env is not set: the application's image must already hold "
            "lakeplane's dependencies (pyiceberg, duckdb, pyarrow)"
        )
    return {
        "sparkSubmit": {
            "entryPoint": project.code(ENTRY_SCRIPT),
            "entryPointArguments": entry_args,
            "sparkSubmitParameters": " ".join(parameters),
        }
    }
