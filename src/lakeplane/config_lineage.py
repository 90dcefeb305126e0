"""``lineage:`` in ``lakeplane.yaml``: where OpenLineage run events go.

    lineage:
      openlineage:
        transport: file             # or http
        path: lineage/events.ndjson # file: one event per line, relative to the project folder
        # url: http://127.0.0.1:5000  (http; events are POSTed to url/endpoint)

Without ``openlineage`` no events are sent; lineage edges are recorded in the catalog either way.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from lakeplane.config_base import Strict


class OpenLineageConfig(Strict):
    """The transport OpenLineage run events are sent through."""

    transport: Literal["file", "http"]
    #: file: the file events are appended to (relative paths are below the project folder).
    path: str | None = None
    #: http: the receiver's base URL; events are POSTed to ``url`` + ``endpoint``.
    url: str | None = None
    endpoint: str = "api/v1/lineage"
    #: http: seconds to wait for the receiver, and how many times to retry a failed send.
    timeout: float = Field(default=5.0, gt=0)
    retries: int = Field(default=0, ge=0)
    #: The namespace of the lake's jobs and datasets in the events; default ``lakeplane:<name>``.
    namespace: str | None = None

    @model_validator(mode="after")
    def _needs_target(self) -> OpenLineageConfig:
        if self.transport == "file" and not self.path:
            raise ValueError("transport: file needs path (the file events are appended to)")
        if self.transport == "http" and not self.url:
            raise ValueError("transport: http needs url (the OpenLineage receiver)")
        return self


class LineageConfig(Strict):
    """Column lineage and OpenLineage events."""

    openlineage: OpenLineageConfig | None = None
