"""Workgroups: which one a principal's queries run in (``workgroups:`` of ``lakeplane.yaml``).

``members`` are written as a policy's ``to:``: ``user:ana`` (or ``ana``), ``role:analyst``,
``group:telco_staff``, resolved through the policy's principals: a user is in a workgroup naming
the user, one of its roles or one of its groups.

A principal that several workgroups name runs in the **first declared** of them (the order of the
file), as a firewall's first matching rule; a principal no workgroup names runs in ``default`` if
one is declared, else uncapped (no workgroup). Without a policy file (an ungoverned lake) only user
names can match.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lakeplane.config import ResultReuseConfig, WorkgroupConfig
from lakeplane.documents import read_document
from lakeplane.errors import ConfigError, LakeplaneError, PolicyError
from lakeplane.governance.policy import Policy

#: The workgroup of principals no other workgroup names, when declared.
DEFAULT_WORKGROUP = "default"


@dataclass(frozen=True)
class Workgroup:
    """One declared workgroup and its limits."""

    name: str
    config: WorkgroupConfig

    @property
    def result_reuse(self) -> ResultReuseConfig:
        return self.config.result_reuse

    @property
    def cutoff(self) -> int | None:
        return self.config.bytes_scanned_cutoff_per_query

    @property
    def daily(self) -> int | None:
        return self.config.bytes_scanned_per_day

    @property
    def max_concurrent(self) -> int | None:
        return self.config.max_concurrent


class Workgroups:
    """Finds a principal's workgroup.

    Args:
        configs: the ``workgroups:`` section, in the order written.
        config_file: ``lakeplane.yaml`` (named by errors).
        policy: the lake's policy, or None when the lake is not governed.
    """

    def __init__(
        self,
        configs: Mapping[str, WorkgroupConfig],
        config_file: Path,
        policy: Callable[[], Policy | None],
    ) -> None:
        self.configs = dict(configs)
        self.config_file = config_file
        self._policy = policy
        self._members: tuple[str, dict[str, frozenset[str]]] | None = None

    def workgroup_for(self, principal: str | None) -> Workgroup | None:
        """The workgroup ``principal``'s queries run in, or None when they run uncapped.

        Raises:
            ConfigError: a workgroup names a principal the policy does not know (file and key).
            PolicyError: ``principal`` is not a principal of the policy.
        """
        if not self.configs:
            return None
        policy = self._policy()
        identities = _identities(policy, principal)
        for name, members in self._resolved(policy).items():
            if members & identities:
                return Workgroup(name, self.configs[name])
        if DEFAULT_WORKGROUP in self.configs:
            return Workgroup(DEFAULT_WORKGROUP, self.configs[DEFAULT_WORKGROUP])
        return None

    def get(self, name: str) -> Workgroup:
        if name not in self.configs:
            raise ConfigError(
                f"{self.config_file}: no workgroup '{name}' (declared: {', '.join(self.configs) or 'none'})",
                file=str(self.config_file),
                key=f"workgroups.{name}",
            )
        return Workgroup(name, self.configs[name])

    def _resolved(self, policy: Policy | None) -> dict[str, frozenset[str]]:
        """Each workgroup's members as qualified references (``role:analyst``), checked once per policy."""
        digest = policy.digest if policy is not None else ""
        if self._members is None or self._members[0] != digest:
            resolved = {
                name: frozenset(
                    self._member(policy, name, position, member)
                    for position, member in enumerate(config.members)
                )
                for name, config in self.configs.items()
            }
            self._members = (digest, resolved)
        return self._members[1]

    def _member(self, policy: Policy | None, workgroup: str, position: int, member: str) -> str:
        if policy is None:
            return member if ":" in member else f"user:{member}"
        try:
            found = policy.principal(member)
        except PolicyError:
            raise self._error(
                ("workgroups", workgroup, "members", str(position)),
                f"unknown principal '{member}' (not in {policy.path.name})",
            ) from None
        return f"{found.kind}:{found.name}"

    def _error(self, loc: tuple[str, ...], problem: str) -> LakeplaneError:
        if self.config_file.exists():
            return read_document(self.config_file, error=ConfigError).error(loc, problem)
        key = ".".join(loc)
        return ConfigError(f"{self.config_file}: {key}: {problem}", file=str(self.config_file), key=key)


def _identities(policy: Policy | None, principal: str | None) -> frozenset[str]:
    """Who ``principal`` is, as members are written: itself, its roles and its groups."""
    if principal is None:
        return frozenset()
    if policy is None:
        return frozenset({principal if ":" in principal else f"user:{principal}"})
    return policy.principal(principal).identities
