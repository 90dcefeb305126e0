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
from lakeplane.errors import PolicyError
from lakeplane.governance.access import bind_columns
from lakeplane.governance.policy import Policy

#: How often recording a version may lose the race for its number before giving up.
RECORD_ATTEMPTS = 20

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
        """The version of ``policy``: the latest if unchanged (binding new tables), else a new one.

        Safe when several processes record at once: each version number is inserted once (the
        primary key decides who got it), so a process that lost the race reads again and either
        finds its policy recorded by the winner or takes the next number. Bindings of new tables
        are merged into the row only if it still holds the bindings this process read.
        """
        for _ in range(RECORD_ATTEMPTS):
            latest = self.latest()
            if latest is not None and latest.digest == policy.digest:
                merged = bind_columns(policy, schemas(), latest.bindings)
                if merged == latest.bindings:
                    return latest
                with self.engine.begin() as conn:
                    updated = conn.execute(
                        VERSIONS.update()
                        .where(
                            VERSIONS.c.version == latest.number,
                            VERSIONS.c.bindings == json.dumps(latest.bindings, sort_keys=True),
                        )
                        .values(bindings=json.dumps(merged, sort_keys=True))
                    ).rowcount
                if updated:
                    return PolicyVersion(latest.number, latest.digest, latest.applied_at, merged)
                continue  # another process merged bindings first: merge into theirs
            # A new version keeps the bindings of the columns it still names (renamed since, maybe).
            bindings = bind_columns(policy, schemas(), latest.bindings if latest else None)
            number = (latest.number if latest else 0) + 1
            at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            try:
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
            except sa.exc.IntegrityError:
                continue  # another process took this number: read what it recorded
            return PolicyVersion(number, policy.digest, at, bindings)
        raise PolicyError(
            f"could not record the policy's version: {RECORD_ATTEMPTS} other versions were recorded "
            "while trying; try again",
            retryable=True,
        )


def _version(row: sa.Row[tuple[object, ...]]) -> PolicyVersion:
    data = row._mapping
    return PolicyVersion(
        int(data["version"]), str(data["digest"]), str(data["applied_at"]), json.loads(str(data["bindings"]))
    )
