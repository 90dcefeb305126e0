"""``aws:`` in ``lakeplane.yaml``: the account, region and roles that rendered job requests name."""

from __future__ import annotations

from lakeplane.config_base import Strict


class AwsConfig(Strict):
    """Where ``lakeplane aws render|submit`` sends requests; ``endpoint`` points boto3 elsewhere
    (an emulator)."""

    region: str = "us-east-1"
    endpoint: str | None = None
