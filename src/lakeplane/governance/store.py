"""Policy versions, recorded in the catalog's database: every change to the policy gets a number.

A version keeps the policy text and the Iceberg field ids its column names were bound to when it was
first used, so a later rename of a column keeps its grants, tags and masks.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from pyiceberg.schema import Schema

from lakeplane.catalog.state import ensure_tables
from lakeplane.governance.access import bind_columns
from lakeplane.governance.policy import Policy

_META = sa.MetaData()
VERSIONS = sa.Table(
    "lakeplane_policy_versions",
    _META,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("applied_at", sa.String(40), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("bindings", sa.Text, nullable=False),
)


@dataclass(frozen=True)
class PolicyVersion:
    """One recorded version of the policy."""

    number: int
    digest: str
    applied_at: str
    bindings: dict[str, int]

    @property
    def label(self) -> str:
        return f"v{self.number}-{self.digest[:12]}"


class PolicyStore:
    """Reads and records policy versions.

    Args:
        engine: the catalog's database (``lake.catalog.state_engine``); the table is created in it
            if it is missing.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        ensure_tables(engine, VERSIONS)

    def latest(self) -> PolicyVersion | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(VERSIONS).order_by(VERSIONS.c.version.desc()).limit(1)).first()
        return _version(row) if row else None

    def history(self) -> list[PolicyVersion]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(VERSIONS).order_by(VERSIONS.c.version)).all()
        return [_version(r) for r in rows]

    def record(self, policy: Policy, schemas: Callable[[], dict[str, Schema]]) -> PolicyVersion:
        """The version of ``policy``: the latest if unchanged (binding new tables), else a new one."""
        latest = self.latest()
        if latest is not None and latest.digest == policy.digest:
            merged = bind_columns(policy, schemas(), latest.bindings)
            if merged != latest.bindings:
                with self.engine.begin() as conn:
                    conn.execute(
                        VERSIONS.update()
                        .where(VERSIONS.c.version == latest.number)
                        .values(bindings=json.dumps(merged, sort_keys=True))
                    )
                return PolicyVersion(latest.number, latest.digest, latest.applied_at, merged)
            return latest
        bindings = bind_columns(policy, schemas())
        number = (latest.number if latest else 0) + 1
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with self.engine.begin() as conn:
            conn.execute(
                VERSIONS.insert().values(
                    version=number,
                    digest=policy.digest,
                    applied_at=at,
                    text=policy.text,
                    bindings=json.dumps(bindings, sort_keys=True),
                )
            )
        return PolicyVersion(number, policy.digest, at, bindings)


def _version(row: sa.Row[tuple[object, ...]]) -> PolicyVersion:
    data = row._mapping
    return PolicyVersion(
        int(data["version"]), str(data["digest"]), str(data["applied_at"]), json.loads(str(data["bindings"]))
    )
