"""The kinds the simulated Kubernetes API serves, and the one way objects change in the store.

The registry is data: discovery documents, URL routing, list kinds and patch rules all come from it,
so adding a kind is one line. `save_object`/`drop_object` are what the API and the OpenShift
behaviours use to change an object: they bump the resourceVersion and tell watchers, the way every
write through a real apiserver ends up as one etcd revision and one watch event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kuryr_cleanup.sim.store import Store


@dataclass(frozen=True)
class Kind:
    group: str  # "" for the core API
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # Subresources: "status" (main writes ignore status, /status writes only status), "log".
    subresources: tuple[str, ...] = ()
    # Built-in kinds accept strategic merge patches; custom resources answer 415.
    builtin: bool = True
    # Whether a PUT without metadata.resourceVersion overwrites (None: as built-in kinds do, and custom
    # resources don't). Leases say no: a lock taken by overwriting would be no lock.
    unconditional_update: bool | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def store_key(self) -> str:
        return Store.kube_key(self.api_version, self.kind)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def resource(self) -> str:
        """`pods`, `kuryrports.openstack.org`: how error messages name the kind."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def allows_unconditional_update(self) -> bool:
        return self.builtin if self.unconditional_update is None else self.unconditional_update

    def verbs(self) -> list[str]:
        return ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


_ALL = ("all",)
KINDS: tuple[Kind, ...] = (
    Kind("", "v1", "Namespace", "namespaces", False, ("ns",), (), ("status", "finalize")),
    Kind("", "v1", "Service", "services", True, ("svc",), _ALL, ("status",)),
    Kind("", "v1", "Pod", "pods", True, ("po",), _ALL, ("status", "log")),
    Kind("", "v1", "Node", "nodes", False, ("no",), (), ("status",)),
    Kind("", "v1", "Event", "events", True, ("ev",)),
    Kind("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    Kind("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ("netpol",)),
    Kind("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), _ALL, ("status",)),
    # Kuryr's CRDs (as the CNO installs them): namespaced, no status subresource.
    Kind("openstack.org", "v1", "KuryrNetwork", "kuryrnetworks", True, ("kns",), builtin=False),
    Kind("openstack.org", "v1", "KuryrPort", "kuryrports", True, ("kp",), builtin=False),
    Kind("openstack.org", "v1", "KuryrLoadBalancer", "kuryrloadbalancers", True, ("klb",), builtin=False),
    Kind("openstack.org", "v1", "KuryrNetworkPolicy", "kuryrnetworkpolicies", True, ("knp",), builtin=False),
    Kind("config.openshift.io", "v1", "Network", "networks", False, (), (), ("status",), builtin=False),
    Kind("config.openshift.io", "v1", "Infrastructure", "infrastructures", False, (), (), ("status",), builtin=False),
    Kind("config.openshift.io", "v1", "ClusterOperator", "clusteroperators", False, ("co",), (), ("status",),
         builtin=False),
    Kind("config.openshift.io", "v1", "ClusterVersion", "clusterversions", False, (), (), ("status",), builtin=False),
    Kind("operator.openshift.io", "v1", "Network", "networks", False, (), (), ("status",), builtin=False),
    Kind("machineconfiguration.openshift.io", "v1", "MachineConfigPool", "machineconfigpools", False, ("mcp",), (),
         ("status",), builtin=False),
    Kind("machineconfiguration.openshift.io", "v1", "MachineConfig", "machineconfigs", False, ("mc",),
         builtin=False),
    # What a tool holds a lock with (pkg/registry/coordination/lease: AllowUnconditionalUpdate false).
    Kind("coordination.k8s.io", "v1", "Lease", "leases", True, unconditional_update=False),
)

BY_RESOURCE: dict[tuple[str, str, str], Kind] = {(k.group, k.version, k.plural): k for k in KINDS}
# The groups of built-in kinds: served by the apiserver's go-restful routes, not by the CRD handler.
BUILTIN_GROUPS = frozenset({""} | {k.group for k in KINDS if k.builtin})
BY_STORE_KEY: dict[str, Kind] = {k.store_key: k for k in KINDS}


def group_versions() -> dict[str, list[str]]:
    """Group -> served versions, in registry order (the core group is "")."""
    groups: dict[str, list[str]] = {}
    for k in KINDS:
        versions = groups.setdefault(k.group, [])
        if k.version not in versions:
            versions.append(k.version)
    return groups


def serialize(obj: Any) -> bytes:
    """An object (or list, or watch event) as the API sends it: compact JSON."""
    return json.dumps(obj, separators=(",", ":")).encode()


def object_key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return (meta.get("namespace") or "", meta["name"])


def save_object(store: Store, obj: dict[str, Any], event: str = "MODIFIED") -> dict[str, Any]:
    """Store `obj` (new or changed) with a fresh resourceVersion and tell watchers. Caller holds the lock."""
    obj["metadata"]["resourceVersion"] = store.next_resource_version()
    store.kube_objects(obj["apiVersion"], obj["kind"])[object_key(obj)] = obj
    store.notify_kube(event, obj)
    return obj


def drop_object(store: Store, obj: dict[str, Any]) -> None:
    """Remove `obj` for good (its finalizers are gone) and tell watchers. Caller holds the lock."""
    objects = store.kube_objects(obj["apiVersion"], obj["kind"])
    if objects.pop(object_key(obj), None) is not None:
        obj["metadata"]["resourceVersion"] = store.next_resource_version()
        store.notify_kube("DELETED", obj)
