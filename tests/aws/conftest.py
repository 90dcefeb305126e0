"""A moto server with every service the AWS targets use, and demo projects configured for it.

The server runs moto's Step Functions interpreter (``stepfunctions.execute_state_machine`` of its
``/moto-api/config``), which calls the services a task names through the server's own port.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from lakeplane.demo.run import build_project
from lakeplane.lake import Lake, open_lake
from tests.moto_server import moto_server

KEY = "testing"
REGION = "us-east-1"
CODE_BUCKET = "lakeplane-code"
ROLE = "arn:aws:iam::123456789012:role/lakeplane-jobs"


@dataclass(frozen=True)
class MotoAws:
    """A running moto server and clients for it."""

    url: str

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=KEY,
            aws_secret_access_key=KEY,
        )


def _post(url: str, body: dict[str, Any] | None = None) -> None:
    data = json.dumps(body).encode() if body is not None else b""
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"), timeout=10):
        pass


@pytest.fixture(scope="session")
def moto_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto-aws") / "moto.log") as url:
        yield url


@pytest.fixture
def moto_aws(moto_server_url: str) -> MotoAws:
    """The session's moto server, emptied for this test (jobs and machines keep fixed names)."""
    _post(f"{moto_server_url}/moto-api/reset")
    _post(f"{moto_server_url}/moto-api/config", {"stepfunctions": {"execute_state_machine": True}})
    aws = MotoAws(moto_server_url)
    aws.client("s3").create_bucket(Bucket=CODE_BUCKET)
    return aws


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """boto3 finds the moto server's dummy credentials in the environment, and no profile."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def write_settings(project: Path, settings: dict[str, Any]) -> None:
    """Merge ``settings`` into the project's lakeplane.yaml (section by section)."""
    path = project / "lakeplane.yaml"
    document = yaml.safe_load(path.read_text())
    for section, values in settings.items():
        if isinstance(values, dict) and isinstance(document.get(section), dict):
            document[section] = {**document[section], **values}
        else:
            document[section] = values
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def aws_settings(endpoint: str | None, application_id: str = "app00000001") -> dict[str, Any]:
    """An ``aws:`` section naming every key a submit needs."""
    return {
        "region": REGION,
        "endpoint": endpoint,
        "code_uri": f"s3://{CODE_BUCKET}/code",
        "log_uri": f"s3://{CODE_BUCKET}/logs",
        "lake_root": "s3://lakeplane-lake/lake",
        "serverless": {"application_id": application_id, "execution_role": ROLE},
        "glue": {"role": ROLE, "workers": 4, "flex": True},
        "stepfunctions": {"role": ROLE, "runs_on": "glue"},
        "athena": {"output_location": f"s3://{CODE_BUCKET}/athena/"},
    }


def configured_demo(root: Path, endpoint: str | None, **extra: Any) -> Lake:
    """The demo project with a complete ``aws:`` section (and ``extra`` sections) in its file."""
    lake = build_project(root / "project", governed=False)
    write_settings(lake.project_dir, {"aws": aws_settings(endpoint), **extra})
    return open_lake(lake.project_dir)
