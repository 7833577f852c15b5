"""OpenShift's side of the migration, simulated: object builders and the operators' behaviours.

Builders (`make_*`) return cluster objects in the exact shape OpenShift 4.14 has them (Node with MCO
annotations, MachineConfigPool with its conditions and counts, rendered MachineConfig with the
`ovs-configuration.service` unit, ClusterOperator, the multus DaemonSet, Network.config,
Network.operator, Infrastructure), so the scenario generator and the behaviours write the same shapes.
They do not store anything: callers pass the result to `store.kube_put`.

Behaviours (`OpenShiftBehaviours`) react to API writes and to Nova reboots on the store's clock:
- MCO: `Network.operator spec.migration` set -> every pool renders a new MachineConfig (whose
  `configure-ovs.sh` argument is the migration's network type), goes Updating, and its nodes take the
  config one at a time (desiredConfig, state Working, reboot, currentConfig, state Done) -> Updated.
- CNO: `Network.config spec.networkType` switched -> the multus DaemonSet rolls out, ClusterOperators
  go Progressing then settle, and `status.networkType` follows once every node has rebooted since the
  switch (boot IDs recorded at the switch, kept in `store.settings` so a snapshot keeps them).
- Reboot: Nova's `server_reboot` event or `/_sim/reboot-by-ip` -> the node goes NotReady, then Ready
  with a new bootID after the "server_reboot" + "node_boot" delays.

Faults (`store.behaviour_faults`, set with PUT /_sim/behaviours; each value a name or a list):
- `degraded_pool`: pool name(s) whose rollout stops with the first node Degraded.
- `lost_node`: node name(s) that never come back from a reboot (NotReady for good).
- `degraded_operator`: ClusterOperator name(s) that report Degraded=True and never settle.
- `crashloop_pod`: "<namespace>/<name>" of pod(s) kept in CrashLoopBackOff.
"""

from __future__ import annotations

import hashlib
import uuid
import weakref
from collections.abc import Iterable
from typing import Any

from kuryr_cleanup.sim import kube_resources
from kuryr_cleanup.sim.store import Store, iso_now

MCO_NAMESPACE = "openshift-machine-config-operator"
MULTUS_NAMESPACE = "openshift-multus"
OPENSHIFT_VERSION = "4.14.12"
KUBELET_VERSION = "v1.27.10+28ed2d7"

# Node annotations the machine-config-daemon maintains.
ANN_CURRENT = "machineconfiguration.openshift.io/currentConfig"
ANN_DESIRED = "machineconfiguration.openshift.io/desiredConfig"
ANN_STATE = "machineconfiguration.openshift.io/state"
ANN_REASON = "machineconfiguration.openshift.io/reason"

MC_API = "machineconfiguration.openshift.io/v1"
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

# Operators that roll out again when the cluster network type changes.
OPERATORS_PROGRESSING_ON_SWITCH: tuple[str, ...] = ("network", "dns", "ingress", "kube-apiserver", "monitoring")


def _now(store: Store | None = None) -> str:
    return iso_now(store.clock.now() if store is not None else None)


def _condition(ctype: str, status: str, reason: str = "", message: str = "", when: str | None = None) -> dict[str, Any]:
    cond: dict[str, Any] = {"type": ctype, "status": status, "lastTransitionTime": when or _now()}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def new_boot_id() -> str:
    return str(uuid.uuid4())


# -- builders ----------------------------------------------------------------------------------
def make_namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A Namespace as the API returns it once created (Active, the `kubernetes` finalizer in spec)."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **(labels or {})}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def rendered_config_name(role: str, network_type: str) -> str:
    """`rendered-<pool>-<hash>`: the MCO names rendered configs by a hash of their content."""
    digest = hashlib.md5(f"{role}/{network_type}".encode(), usedforsecurity=False).hexdigest()
    return f"rendered-{role}-{digest}"


def ovs_configuration_unit(network_type: str) -> dict[str, Any]:
    """The systemd unit the MCO templates with the cluster's network type (what A4 checks for)."""
    contents = (
        "[Unit]\n"
        "Description=Configures OVS with proper host networking configuration\n"
        "# This service is used to move a physical NIC into OVS and reconfigure OVS to use the host IP\n"
        "Requires=openvswitch.service\n"
        "Wants=NetworkManager-wait-online.service\n"
        "After=firstboot-osupdate.target\n"
        "After=NetworkManager-wait-online.service openvswitch.service network.service nodeip-configuration.service\n"
        "Before=kubelet-dependencies.target node-valid-hostname.service\n"
        "\n"
        "[Service]\n"
        "# Need oneshot to delay kubelet\n"
        "Type=oneshot\n"
        f"ExecStart=/usr/local/bin/configure-ovs.sh {network_type}\n"
        "StandardOutput=journal+console\n"
        "StandardError=journal+console\n"
        "\n"
        "[Install]\n"
        "RequiredBy=kubelet-dependencies.target\n"
    )
    return {"contents": contents, "enabled": True, "name": "ovs-configuration.service"}


def make_rendered_machine_config(role: str, network_type: str, pool_uid: str | None = None) -> dict[str, Any]:
    """A rendered MachineConfig for `role` ("master"/"worker") whose OVS unit runs for `network_type`."""
    name = rendered_config_name(role, network_type)
    meta: dict[str, Any] = {
        "name": name,
        "annotations": {
            "machineconfiguration.openshift.io/generated-by-controller-version": "d5d6a8b1f6b1e4f2b1ae1e7c0c8c2bb6",
            "machineconfiguration.openshift.io/release-image-version": OPENSHIFT_VERSION,
        },
    }
    if pool_uid:
        meta["ownerReferences"] = [
            {
                "apiVersion": MC_API,
                "blockOwnerDeletion": True,
                "controller": True,
                "kind": "MachineConfigPool",
                "name": role,
                "uid": pool_uid,
            }
        ]
    return {
        "apiVersion": MC_API,
        "kind": "MachineConfig",
        "metadata": meta,
        "spec": {
            "config": {
                "ignition": {"version": "3.4.0"},
                "storage": {"files": []},
                "systemd": {
                    "units": [
                        {"enabled": True, "name": "kubelet.service"},
                        ovs_configuration_unit(network_type),
                    ]
                },
            },
            "extensions": [],
            "fips": False,
            "kernelArguments": [],
            "kernelType": "default",
            "osImageURL": "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:" + "0" * 64,
        },
    }


def machine_config_sources(role: str) -> list[dict[str, str]]:
    return [
        {"apiVersion": MC_API, "kind": "MachineConfig", "name": f"00-{role}"},
        {"apiVersion": MC_API, "kind": "MachineConfig", "name": f"01-{role}-container-runtime"},
        {"apiVersion": MC_API, "kind": "MachineConfig", "name": f"01-{role}-kubelet"},
        {"apiVersion": MC_API, "kind": "MachineConfig", "name": f"99-{role}-ssh"},
    ]


def pool_conditions(
    spec_config: str, status_config: str, *, updating: bool, degraded_message: str = "", when: str | None = None
) -> list[dict[str, Any]]:
    """The conditions the MCO's node controller writes on a pool (types and messages as OpenShift's)."""
    degraded = "True" if degraded_message else "False"
    return [
        _condition("RenderDegraded", "False", when=when),
        _condition(
            "NodeDegraded",
            degraded,
            reason="1 nodes are reporting degraded status on sync" if degraded_message else "",
            message=degraded_message,
            when=when,
        ),
        _condition("Degraded", degraded, when=when),
        _condition(
            "Updated",
            "False" if updating else "True",
            message="" if updating else f"All nodes are updated with MachineConfig {status_config}",
            when=when,
        ),
        _condition(
            "Updating",
            "True" if updating else "False",
            message=f"All nodes are updating to MachineConfig {spec_config}" if updating else "",
            when=when,
        ),
    ]


def make_machine_config_pool(role: str, node_count: int, rendered_name: str) -> dict[str, Any]:
    """A MachineConfigPool (master or worker), Updated with every node on `rendered_name`."""
    node_label = "node-role.kubernetes.io/master" if role == "master" else f"node-role.kubernetes.io/{role}"
    configuration = {"name": rendered_name, "source": machine_config_sources(role)}
    return {
        "apiVersion": MC_API,
        "kind": "MachineConfigPool",
        "metadata": {
            "name": role,
            "generation": 2,
            "labels": {
                "machineconfiguration.openshift.io/mco-built-in": "",
                f"pools.operator.machineconfiguration.openshift.io/{role}": "",
                **({"operator.machineconfiguration.openshift.io/required-for-upgrade": ""} if role == "master" else {}),
            },
        },
        "spec": {
            "configuration": dict(configuration, source=list(configuration["source"])),
            "machineConfigSelector": {"matchLabels": {"machineconfiguration.openshift.io/role": role}},
            "nodeSelector": {"matchLabels": {node_label: ""}},
            "paused": False,
        },
        "status": {
            "certExpirys": [],
            "conditions": pool_conditions(rendered_name, rendered_name, updating=False),
            "configuration": dict(configuration, source=list(configuration["source"])),
            "degradedMachineCount": 0,
            "machineCount": node_count,
            "observedGeneration": 2,
            "readyMachineCount": node_count,
            "unavailableMachineCount": 0,
            "updatedMachineCount": node_count,
        },
    }


def node_ready_conditions(ready: bool, when: str | None = None) -> list[dict[str, Any]]:
    """Kubelet's conditions; a node whose kubelet stopped posting has them all Unknown."""
    when = when or _now()
    if ready:
        pressure = [
            ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ]
        conds = [
            {"type": t, "status": "False", "reason": r, "message": m,
             "lastHeartbeatTime": when, "lastTransitionTime": when}
            for t, r, m in pressure
        ]
        conds.append(
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": when,
                "lastTransitionTime": when,
            }
        )
        return conds
    return [
        {
            "type": t,
            "status": "Unknown",
            "reason": "NodeStatusUnknown",
            "message": "Kubelet stopped posting node status.",
            "lastHeartbeatTime": when,
            "lastTransitionTime": when,
        }
        for t in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")
    ]


def make_node(
    name: str, server_id: str, ip: str, role: str, rendered_config: str | None = None, network_type: str = "Kuryr"
) -> dict[str, Any]:
    """A Ready node of `role` backed by the Nova server `server_id`, on the pool's current config."""
    rendered = rendered_config or rendered_config_name(role, network_type)
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": "m1.xlarge",
        "beta.kubernetes.io/os": "linux",
        "failure-domain.beta.kubernetes.io/region": "regionOne",
        "failure-domain.beta.kubernetes.io/zone": "nova",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "m1.xlarge",
        "node.openshift.io/os_id": "rhcos",
        "topology.cinder.csi.openstack.org/zone": "nova",
        "topology.kubernetes.io/region": "regionOne",
        "topology.kubernetes.io/zone": "nova",
        f"node-role.kubernetes.io/{role}": "",
    }
    if role == "master":
        labels["node-role.kubernetes.io/control-plane"] = ""
    spec: dict[str, Any] = {"providerID": f"openstack:///{server_id}"}
    if role == "master":
        spec["taints"] = [{"effect": "NoSchedule", "key": "node-role.kubernetes.io/master"}]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                "machine.openshift.io/machine": f"openshift-machine-api/{name}",
                "machineconfiguration.openshift.io/controlPlaneTopology": "HighlyAvailable",
                ANN_CURRENT: rendered,
                ANN_DESIRED: rendered,
                "machineconfiguration.openshift.io/desiredDrain": f"uncordon-{rendered}",
                "machineconfiguration.openshift.io/lastAppliedDrain": f"uncordon-{rendered}",
                ANN_REASON: "",
                ANN_STATE: "Done",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": spec,
        "status": {
            "addresses": [{"address": ip, "type": "InternalIP"}, {"address": name, "type": "Hostname"}],
            "allocatable": {"cpu": "3500m", "ephemeral-storage": "115470533646", "memory": "15225364Ki", "pods": "250"},
            "capacity": {"cpu": "4", "ephemeral-storage": "125293548Ki", "memory": "16376340Ki", "pods": "250"},
            "conditions": node_ready_conditions(True),
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": new_boot_id(),
                "containerRuntimeVersion": "cri-o://1.27.3-6.rhaos4.14.git7eb2281.el9",
                "kernelVersion": "5.14.0-284.52.1.el9_2.x86_64",
                "kubeProxyVersion": KUBELET_VERSION,
                "kubeletVersion": KUBELET_VERSION,
                "machineID": uuid.uuid4().hex,
                "operatingSystem": "linux",
                "osImage": "Red Hat Enterprise Linux CoreOS 414.92.202402130420-0 (Plow)",
                "systemUUID": server_id,
            },
        },
    }


def make_machine_config_daemon_pod(node_name: str, suffix: str | None = None) -> dict[str, Any]:
    """The machine-config-daemon pod running on `node_name` (A4 shows its log for stuck nodes)."""
    suffix = suffix or hashlib.md5(node_name.encode(), usedforsecurity=False).hexdigest()[:5]
    now = _now()
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"machine-config-daemon-{suffix}",
            "namespace": MCO_NAMESPACE,
            "labels": {"k8s-app": "machine-config-daemon", "pod-template-generation": "1"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "blockOwnerDeletion": True,
                    "controller": True,
                    "kind": "DaemonSet",
                    "name": "machine-config-daemon",
                    "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, "machine-config-daemon")),
                }
            ],
        },
        "spec": {
            "containers": [
                {"name": "machine-config-daemon", "image": "quay.io/openshift-release-dev/ocp-v4.0-art-dev"},
                {"name": "kube-rbac-proxy", "image": "quay.io/openshift-release-dev/ocp-v4.0-art-dev"},
            ],
            "hostNetwork": True,
            "nodeName": node_name,
            "priorityClassName": "system-node-critical",
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "Ready", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            ],
            "containerStatuses": [
                {"name": "machine-config-daemon", "ready": True, "restartCount": 0, "started": True,
                 "state": {"running": {"startedAt": now}}},
                {"name": "kube-rbac-proxy", "ready": True, "restartCount": 0, "started": True,
                 "state": {"running": {"startedAt": now}}},
            ],
            "startTime": now,
        },
    }


def make_cluster_operator(name: str, version: str = OPENSHIFT_VERSION) -> dict[str, Any]:
    """A healthy ClusterOperator: Available=True, Progressing=False, Degraded=False, Upgradeable=True."""
    now = _now()
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
                _condition("Available", "True", "AsExpected", "", now),
                _condition("Progressing", "False", "AsExpected", "", now),
                _condition("Degraded", "False", "AsExpected", "", now),
                _condition("Upgradeable", "True", "AsExpected", "", now),
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
    now = _now()
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
                _condition("ManagementStateDegraded", "False", when=now),
                _condition("Degraded", "False", when=now),
                _condition("Upgradeable", "True", when=now),
                _condition("Progressing", "False", when=now),
                _condition("Available", "True", when=now),
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


def _names(value: Any) -> set[str]:
    if value is None or value is False:
        return set()
    if isinstance(value, str):
        return {value}
    if isinstance(value, Iterable):
        return {str(v) for v in value}
    return set()


def node_role(node: dict[str, Any]) -> str:
    labels = node.get("metadata", {}).get("labels") or {}
    return "master" if "node-role.kubernetes.io/master" in labels else "worker"


def node_ip(node: dict[str, Any]) -> str | None:
    for addr in node.get("status", {}).get("addresses") or []:
        if addr.get("type") == "InternalIP":
            return str(addr.get("address"))
    return None


def node_is_ready(node: dict[str, Any]) -> bool:
    for cond in node.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


# -- behaviours --------------------------------------------------------------------------------
_BEHAVIOURS: weakref.WeakKeyDictionary[Store, OpenShiftBehaviours] = weakref.WeakKeyDictionary()


def behaviours_for(store: Store) -> OpenShiftBehaviours:
    """The one behaviour engine of `store` (subscribed to its events once)."""
    engine = _BEHAVIOURS.get(store)
    if engine is None:
        engine = OpenShiftBehaviours(store)
        _BEHAVIOURS[store] = engine
    return engine


class OpenShiftBehaviours:
    """Placeholder: the operators' behaviours (filled in below once the API write path exists)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pod_logs: dict[tuple[str, str], list[str]] = {}

    def object_changed(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        del old, new

    def save(self, obj: dict[str, Any]) -> None:
        kube_resources.save_object(self.store, obj)
