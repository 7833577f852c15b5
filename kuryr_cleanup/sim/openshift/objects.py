"""Builders of OpenShift's cluster objects, in the exact shape OpenShift 4.14 has them.

Namespace, ClusterOperator, the multus DaemonSet, Network.config,
Network.operator and Infrastructure. They do not store anything: callers pass the result to
`store.kube_put`.
"""

from __future__ import annotations

import uuid
from typing import Any

from kuryr_cleanup.sim.cluster_version import OPENSHIFT_VERSION
from kuryr_cleanup.sim.store import Store, iso_now

MULTUS_NAMESPACE = "openshift-multus"
KUBELET_VERSION = "v1.27.10+28ed2d7"

CONFIG_API = "config.openshift.io/v1"
OPERATOR_API = "operator.openshift.io/v1"

# The ClusterOperators of a 4.14 cluster on OpenStack (subset large enough for preflight checks).
CLUSTER_OPERATORS: tuple[str, ...] = (
    "authentication",
    "cloud-controller-manager",
    "cloud-credential",
    "cluster-autoscaler",
    "config-operator",
    "console",
    "dns",
    "etcd",
    "image-registry",
    "ingress",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "machine-api",
    "machine-config",
    "monitoring",
    "network",
    "openshift-apiserver",
    "storage",
)


def timestamp(store: Store | None = None) -> str:
    return iso_now(store.clock.now() if store is not None else None)


def condition(ctype: str, status: str, reason: str = "", message: str = "", when: str | None = None) -> dict[str, Any]:
    cond: dict[str, Any] = {"type": ctype, "status": status, "lastTransitionTime": when or timestamp()}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def make_namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A Namespace as the API returns it once created (Active, the `kubernetes` finalizer in spec)."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **(labels or {})}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def make_cluster_operator(name: str, version: str = OPENSHIFT_VERSION) -> dict[str, Any]:
    """A healthy ClusterOperator: Available=True, Progressing=False, Degraded=False, Upgradeable=True."""
    now = timestamp()
    return {
        "apiVersion": CONFIG_API,
        "kind": "ClusterOperator",
        "metadata": {
            "name": name,
            "annotations": {
                "include.release.openshift.io/self-managed-high-availability": "true",
                "include.release.openshift.io/single-node-developer": "true",
            },
        },
        "spec": {},
        "status": {
            "conditions": [
                condition("Available", "True", "AsExpected", "", now),
                condition("Progressing", "False", "AsExpected", "", now),
                condition("Degraded", "False", "AsExpected", "", now),
                condition("Upgradeable", "True", "AsExpected", "", now),
            ],
            "extension": None,
            "relatedObjects": [{"group": "", "name": f"openshift-{name}", "resource": "namespaces"}],
            "versions": [{"name": "operator", "version": version}],
        },
    }


def make_multus_daemonset(node_count: int) -> dict[str, Any]:
    """DaemonSet openshift-multus/multus, rolled out on `node_count` nodes (A6 waits on it)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": "multus",
            "namespace": MULTUS_NAMESPACE,
            "generation": 1,
            "annotations": {
                "deprecated.daemonset.template.generation": "1",
                "kubernetes.io/description": "This daemon set launches the Multus networking component on each node.\n",
                "release.openshift.io/version": OPENSHIFT_VERSION,
            },
            "ownerReferences": [
                {
                    "apiVersion": OPERATOR_API,
                    "blockOwnerDeletion": True,
                    "controller": True,
                    "kind": "Network",
                    "name": "cluster",
                    "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, "network.operator/cluster")),
                }
            ],
        },
        "spec": {
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "multus"}},
            "template": {
                "metadata": {
                    "labels": {"app": "multus", "component": "network", "openshift.io/component": "network",
                               "type": "infra"},
                },
                "spec": {
                    "containers": [
                        {
                            "name": "kube-multus",
                            "image": "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:" + "1" * 64,
                            "command": ["/bin/bash", "-ec", "--"],
                            "env": [{"name": "KUBERNETES_NODE_NAME",
                                     "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}}],
                        }
                    ],
                    "hostNetwork": True,
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "priorityClassName": "system-node-critical",
                    "tolerations": [{"operator": "Exists"}],
                },
            },
            "updateStrategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "10%"}, "type": "RollingUpdate"},
        },
        "status": {
            "currentNumberScheduled": node_count,
            "desiredNumberScheduled": node_count,
            "numberAvailable": node_count,
            "numberMisscheduled": 0,
            "numberReady": node_count,
            "observedGeneration": 1,
            "updatedNumberScheduled": node_count,
        },
    }


DEFAULT_CLUSTER_NETWORK = [{"cidr": "10.128.0.0/14", "hostPrefix": 23}]
DEFAULT_SERVICE_NETWORK = ["172.30.0.0/16"]


def make_network_config(
    network_type: str = "Kuryr",
    cluster_network: list[dict[str, Any]] | None = None,
    service_network: list[str] | None = None,
    mtu: int = 1400,
) -> dict[str, Any]:
    """Network.config.openshift.io/cluster (the cluster's network type in spec and status)."""
    cluster_network = cluster_network or [dict(c) for c in DEFAULT_CLUSTER_NETWORK]
    service_network = service_network or list(DEFAULT_SERVICE_NETWORK)
    return {
        "apiVersion": CONFIG_API,
        "kind": "Network",
        "metadata": {"name": "cluster", "generation": 2},
        "spec": {
            "clusterNetwork": [dict(c) for c in cluster_network],
            "externalIP": {"policy": {}},
            "networkType": network_type,
            "serviceNetwork": list(service_network),
        },
        "status": {
            "clusterNetwork": [dict(c) for c in cluster_network],
            "clusterNetworkMTU": mtu,
            "networkType": network_type,
            "serviceNetwork": list(service_network),
        },
    }


def make_network_operator(
    network_type: str = "Kuryr",
    cluster_network: list[dict[str, Any]] | None = None,
    service_network: list[str] | None = None,
) -> dict[str, Any]:
    """Network.operator.openshift.io/cluster, the CNO's own configuration (spec.migration lives here)."""
    cluster_network = cluster_network or [dict(c) for c in DEFAULT_CLUSTER_NETWORK]
    service_network = service_network or list(DEFAULT_SERVICE_NETWORK)
    default_network: dict[str, Any] = {"type": network_type}
    if network_type == "Kuryr":
        default_network["kuryrConfig"] = {
            "enablePortPoolsPrepopulation": False,
            "openStackServiceNetwork": "172.30.0.0/15",
            "poolBatchPorts": 3,
            "poolMaxPorts": 0,
            "poolMinPorts": 1,
        }
    now = timestamp()
    return {
        "apiVersion": OPERATOR_API,
        "kind": "Network",
        "metadata": {"name": "cluster", "generation": 2},
        "spec": {
            "clusterNetwork": [dict(c) for c in cluster_network],
            "defaultNetwork": default_network,
            "deployKubeProxy": False,
            "disableNetworkDiagnostics": False,
            "logLevel": "Normal",
            "managementState": "Managed",
            "observedConfig": None,
            "operatorLogLevel": "Normal",
            "serviceNetwork": list(service_network),
            "unsupportedConfigOverrides": None,
        },
        "status": {
            "conditions": [
                condition("ManagementStateDegraded", "False", when=now),
                condition("Degraded", "False", when=now),
                condition("Upgradeable", "True", when=now),
                condition("Progressing", "False", when=now),
                condition("Available", "True", when=now),
            ],
            "readyReplicas": 0,
            "version": OPENSHIFT_VERSION,
        },
    }


def make_infrastructure(infra_id: str, cluster_domain: str = "sim.example.com") -> dict[str, Any]:
    """Infrastructure/cluster: `status.infrastructureName` is the infraID every Kuryr tag carries."""
    cluster_name = infra_id.rsplit("-", 1)[0]
    return {
        "apiVersion": CONFIG_API,
        "kind": "Infrastructure",
        "metadata": {"name": "cluster", "generation": 1},
        "spec": {
            "cloudConfig": {"key": "config", "name": "cloud-provider-config"},
            "platformSpec": {"type": "OpenStack"},
        },
        "status": {
            "apiServerInternalURI": f"https://api-int.{cluster_name}.{cluster_domain}:6443",
            "apiServerURL": f"https://api.{cluster_name}.{cluster_domain}:6443",
            "controlPlaneTopology": "HighlyAvailable",
            "cpuPartitioning": "None",
            "etcdDiscoveryDomain": "",
            "infrastructureName": infra_id,
            "infrastructureTopology": "HighlyAvailable",
            "platform": "OpenStack",
            "platformStatus": {
                "openstack": {
                    "apiServerInternalIP": "10.196.0.5",
                    "apiServerInternalIPs": ["10.196.0.5"],
                    "cloudName": "openstack",
                    "ingressIP": "10.196.0.7",
                    "ingressIPs": ["10.196.0.7"],
                    "loadBalancer": {"type": "OpenShiftManagedDefault"},
                },
                "type": "OpenStack",
            },
        },
    }
