"""An Athena workgroup (``CreateWorkGroup``) carrying a lakeplane workgroup's scan cap.

``bytes_scanned_cutoff_per_query`` of ``workgroups:`` becomes ``BytesScannedCutoffPerQuery``, the
result location is ``aws.athena.output_location``, and the workgroup's settings override the
client's (``EnforceWorkGroupConfiguration``), as lakeplane enforces its own caps before a query runs.
"""

from __future__ import annotations

import re
from typing import Any

from lakeplane.aws.settings import AwsProject
from lakeplane.config import WorkgroupConfig
from lakeplane.errors import ConfigError, did_you_mean

#: Athena refuses a per-query cutoff under 10 MB.
MIN_CUTOFF = 10_000_000
DEFAULT_WORKGROUP = "default"


def create_work_group(project: AwsProject, workgroup: str | None = None) -> dict[str, Any]:
    """The keyword arguments of ``athena.create_work_group`` for ``workgroup`` of ``workgroups:``
    (by default the ``default`` workgroup, else the first declared)."""
    name, config = pick_workgroup(project, workgroup)
    configuration: dict[str, Any] = {
        "ResultConfiguration": {
            "OutputLocation": project.need(
                project.aws.athena.output_location, "athena.output_location", "where query results go"
            )
        },
        "EnforceWorkGroupConfiguration": True,
        "PublishCloudWatchMetricsEnabled": True,
        "EngineVersion": {"SelectedEngineVersion": project.aws.athena.engine_version},
    }
    cutoff = config.bytes_scanned_cutoff_per_query if config else None
    if cutoff is None:
        project.warn(f"workgroup '{name}' has no bytes_scanned_cutoff_per_query: no scan cap")
    elif cutoff < MIN_CUTOFF:
        project.warn(
            f"workgroups.{name}.bytes_scanned_cutoff_per_query {cutoff} is under Athena's minimum "
            f"{MIN_CUTOFF}: rendered as {MIN_CUTOFF}"
        )
        configuration["BytesScannedCutoffPerQuery"] = MIN_CUTOFF
    else:
        configuration["BytesScannedCutoffPerQuery"] = cutoff
    return {
        "Name": re.sub(r"[^A-Za-z0-9._-]+", "-", f"lakeplane-{project.config.name}-{name}"),
        "Configuration": configuration,
        "Description": f"lakeplane workgroup {name} of project {project.config.name}",
        "Tags": [{"Key": k, "Value": v} for k, v in project.tags().items()],
    }


def pick_workgroup(project: AwsProject, workgroup: str | None) -> tuple[str, WorkgroupConfig | None]:
    """The named workgroup, else ``default``, else the first declared; ``(default, None)`` if none."""
    declared = project.config.workgroups
    if workgroup is not None:
        if workgroup not in declared:
            raise ConfigError(
                f"unknown workgroup '{workgroup}'{did_you_mean(workgroup, declared)} "
                f"(workgroups: {', '.join(declared) or 'none'})",
                key=f"workgroups.{workgroup}",
            )
        return workgroup, declared[workgroup]
    if DEFAULT_WORKGROUP in declared:
        return DEFAULT_WORKGROUP, declared[DEFAULT_WORKGROUP]
    if declared:
        first = next(iter(declared))
        return first, declared[first]
    project.warn("no workgroups: in lakeplane.yaml; rendering an uncapped 'default' workgroup")
    return DEFAULT_WORKGROUP, None
