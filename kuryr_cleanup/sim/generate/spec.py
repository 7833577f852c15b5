"""What to generate: `ScenarioSpec.parse("namespaces=50,pods=4,second-cluster,fips")`."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kuryr_cleanup.sim.generate.names import CLUSTER_NETWORK, OCTAVIA_PROVIDERS_VERSION, OCTAVIA_TAGS_VERSION


def _count(key: str, value: str | None) -> int:
    if value is None:
        raise ValueError(f"{key} needs a value, e.g. {key}=3")
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{key}={value}: not a whole number") from None
    if number < 0:
        raise ValueError(f"{key}={value}: must not be negative")
    return number


def _flag(key: str, value: str | None) -> bool:
    if value is None:
        return True
    lowered = value.lower()
    if lowered in ("yes", "true", "on", "1"):
        return True
    if lowered in ("no", "false", "off", "0"):
        return False
    raise ValueError(f"{key}={value}: expected yes or no")


def _octavia_version(key: str, value: str | None) -> str:
    if value is None or not re.fullmatch(r"v?2\.\d+", value):
        raise ValueError(f"{key}={value}: expected an Octavia API version such as 2.4 or 2.27")
    return value.lstrip("v")


def _infra_id(key: str, value: str | None) -> str:
    # The installer's infraID: the cluster name (at most 27 characters) and 5 random characters.
    if value is None or not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,26})-[a-z0-9]{5}", value):
        raise ValueError(f"{key}={value}: expected an infraID such as ostest-abc12 (<cluster name>-<5 chars>)")
    return value


def _provider(key: str, value: str | None) -> str:
    if value not in ("amphora", "ovn"):
        raise ValueError(f"{key}={value}: expected amphora or ovn")
    return value


def _pool(key: str, value: str | None) -> str:
    if value not in ("master", "worker"):
        raise ValueError(f"{key}={value}: expected master or worker (a MachineConfigPool)")
    return value


def _names(key: str, value: str | None) -> tuple[str, ...]:
    """A list value: `azs=az1,az2` (the items after the first that are no spec key belong to it) or
    `azs=az1:az2`."""
    names = tuple(n.strip() for n in (value or "").split(":") if n.strip())
    if not names or not all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", n) for n in names):
        raise ValueError(f"{key}={value}: expected names such as az1,az2")
    return names


# spec key -> (field name, parser, help). The help text is what docs/scenarios.md lists.
_KEYS: dict[str, tuple[str, Callable[[str, str | None], Any], str]] = {
    "namespaces": ("namespaces", _count, "user namespaces ns-1..ns-N (the openshift-* ones come on top)"),
    "pods": ("pods", _count, "pods per user namespace"),
    "services": ("services", _count, "Services (Octavia LBs) per user namespace"),
    "policies": ("policies", _count, "NetworkPolicies (security groups) per user namespace"),
    "masters": ("masters", _count, "control-plane nodes"),
    "workers": ("workers", _count, "worker nodes (default: 2, more when the pods need them)"),
    "pool-ports": ("pool_ports", _count, "Kuryr pool ports per node and namespace with pods there"),
    "second-cluster": ("second_cluster", _flag, "another Kuryr cluster's OpenStack resources in the project"),
    "untagged": ("untagged", _count, "Kuryr resources of each kind whose tagging failed"),
    "fips": ("fips", _flag, "LoadBalancer Services with Kuryr (pool) and user floating IPs"),
    "error-lbs": ("error_lbs", _count, "load balancers in provisioning_status ERROR"),
    "octavia": ("octavia", _octavia_version, "Octavia API version (below 2.5: the tag is in descriptions)"),
    "lb-provider": ("lb_provider", _provider, "Octavia provider (default: ovn from Octavia 2.6, else amphora)"),
    "legacy-names": ("legacy_names", _flag, "CNO names without the <infraID>- prefix (before mid-2019)"),
    "installer-router": ("installer_router", _flag, "the router carries the installer's description"),
    "geneve-rule": ("geneve_rule", _flag, "the node security groups already allow UDP 6081"),
    "user-resources": ("user_resources", _flag, "resources of the project's users that must not be touched"),
    "mtu": ("mtu", _count, "MTU of the node network"),
    "host-prefix": ("host_prefix", _count, "prefix length of namespace subnets (default: 23, smaller if needed)"),
    "seed": ("seed", _count, "random seed: same seed, same ids"),
    "infra-id": ("infra_id", _infra_id, "this cluster's infraID (default: derived from the seed)"),
    "dvr": ("dvr", _flag, "ML2/OVS with DVR: distributed routers, centralized-SNAT and FIP agent gateway ports"),
    "azs": ("azs", _names, "availability zones the nodes are spread over, round robin"),
    "other-project": ("other_project", _flag, "a second project with look-alikes, and an admin cloud sim-admin"),
    "octavia-upgraded": ("octavia_upgraded", _flag, "some LBs predate Octavia 2.5: tag only in descriptions"),
    "finished-pods": ("finished_pods", _count, "pods that finished (Succeeded or Failed) long ago"),
    "paused-pool": ("paused_pool", _pool, "a MachineConfigPool with spec.paused (the MCO rolls nothing out)"),
    "upgrading": ("upgrading", _flag, "a cluster upgrade is in progress (ClusterVersion Progressing=True)"),
}


@dataclass(frozen=True)
class ScenarioSpec:
    """What to generate. Defaults give a small realistic cluster."""

    namespaces: int = 5
    pods: int = 3
    services: int = 2
    policies: int = 1
    masters: int = 3
    workers: int | None = None
    pool_ports: int = 1
    second_cluster: bool = False
    untagged: int = 0
    fips: bool = False
    error_lbs: int = 0
    octavia: str | None = None
    lb_provider: str | None = None
    legacy_names: bool = False
    installer_router: bool = True
    geneve_rule: bool = False
    user_resources: bool = True
    mtu: int = 1450
    host_prefix: int | None = None
    seed: int = 7
    infra_id: str | None = None
    dvr: bool = False
    azs: tuple[str, ...] = ()
    other_project: bool = False
    octavia_upgraded: bool = False
    finished_pods: int = 0
    paused_pool: str | None = None
    upgrading: bool = False

    def __post_init__(self) -> None:
        if self.masters < 1:
            raise ValueError("masters must be at least 1")
        if self.mtu < 1280:
            raise ValueError(f"mtu={self.mtu}: below the IPv4 minimum a node network needs (1280)")
        if self.host_prefix is not None and not 16 <= self.host_prefix <= 29:
            raise ValueError(f"host-prefix={self.host_prefix}: expected 16..29 inside {CLUSTER_NETWORK}")
        if self.lb_provider == "ovn" and self.octavia and version_tuple(self.octavia) < OCTAVIA_PROVIDERS_VERSION:
            raise ValueError(f"lb-provider=ovn needs Octavia >= 2.6 (octavia={self.octavia})")
        if self.octavia_upgraded and self.octavia and version_tuple(self.octavia) < OCTAVIA_TAGS_VERSION:
            raise ValueError(f"octavia-upgraded means Octavia >= 2.5 now (octavia={self.octavia})")

    @classmethod
    def parse(cls, text: str) -> ScenarioSpec:
        """`key=value` items or bare flags, comma separated: `namespaces=5,fips,octavia=2.4`."""
        values: dict[str, Any] = {}
        list_key: str | None = None  # the list-valued key whose items may follow, comma separated
        for item in (text or "").split(","):
            item = item.strip()
            if not item:
                continue
            key, sep, value = item.partition("=")
            key = key.strip().lower().replace("_", "-")
            if key not in _KEYS and not sep and list_key is not None:
                name, parse_value, _ = _KEYS[list_key]
                values[name] = values[name] + parse_value(list_key, item)
                continue
            if key not in _KEYS:
                raise ValueError(f"unknown scenario key {key!r}; known keys: {', '.join(_KEYS)}")
            name, parse_value, _ = _KEYS[key]
            values[name] = parse_value(key, value.strip() if sep else None)
            list_key = key if parse_value is _names else None
        return cls(**values)

    def text(self) -> str:
        """The spec back as text (only what differs from the defaults), for logs and fixture metadata."""
        defaults = ScenarioSpec()
        items = []
        for key, (name, _, _) in _KEYS.items():
            value = getattr(self, name)
            if value == getattr(defaults, name):
                continue
            if isinstance(value, tuple):
                value = ",".join(value)
            items.append(key if value is True else f"{key}={'no' if value is False else value}")
        return ",".join(items)


def version_tuple(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)
