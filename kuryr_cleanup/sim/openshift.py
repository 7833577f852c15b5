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
- CNO: `Network.config spec.networkType` switched -> as soon as the CNO has processed it (the next
  tick) `status.networkType` says the new type, as a real CNO may report it long before any node has
  rebooted; the multus DaemonSet rolls out, ClusterOperators go Progressing then settle, and the
  `network` operator settles once every node has rebooted since the switch (boot IDs recorded at the
  switch, kept in `store.settings` so a snapshot keeps them).
- Reboot: Nova's `server_reboot` event or `/_sim/reboot-by-ip` -> the node goes NotReady, then Ready
  with a new bootID after the "server_reboot" + "node_boot" delays; each transition is recorded in
  `reboot_transitions` (what tests judge the reboot strategies by).

Faults (`store.behaviour_faults`, set with PUT /_sim/behaviours; each value a name or a list):
- `degraded_pool`: pool name(s) whose rollout stops with the first node Degraded.
- `lost_node`: node name(s) that never come back from a reboot (NotReady for good).
- `degraded_operator`: ClusterOperator name(s) that report Degraded=True and never settle.
- `crashloop_pod`: "<namespace>/<name>" of pod(s) kept in CrashLoopBackOff.
"""

from __future__ import annotations

import functools
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
            "containerStatuses": [_running_container_status(c, now) for c in ("machine-config-daemon",
                                                                                "kube-rbac-proxy")],
            "startTime": now,
        },
    }


def _running_container_status(name: str, now: str) -> dict[str, Any]:
    image = "quay.io/openshift-release-dev/ocp-v4.0-art-dev"
    digest = hashlib.sha256(name.encode()).hexdigest()
    return {
        "containerID": f"cri-o://{hashlib.sha256((name + now).encode()).hexdigest()}",
        "image": image,
        "imageID": f"{image}@sha256:{digest}",
        "lastState": {},
        "name": name,
        "ready": True,
        "restartCount": 0,
        "started": True,
        "state": {"running": {"startedAt": now}},
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
    """The MCO, the CNO and the kubelet's reboots, as far as a migration can observe them.

    Callbacks run under `store.lock` (API writes, `store.tick()` timers, Nova's events). Every change
    goes through `kube_resources.save_object`, so watches (kubectl rollout status) see it.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        # (namespace, pod name) -> log lines (the machine-config-daemon pods' logs).
        self.pod_logs: dict[tuple[str, str], list[str]] = {}
        # Rollout generations: a newer rollout of a pool (or reboot of a node) supersedes older timers.
        self._pool_rollout: dict[str, int] = {}
        self._node_reboot: dict[str, int] = {}
        # Every reboot's transitions in order: {"t": simulated time, "node": name, "event": "down"|"up"},
        # "down" when the reboot was requested (Nova or SSH), "up" when the node is Ready on a new boot ID.
        # Tests judge the reboot strategies by it (how many nodes were down at once, and which).
        self.reboot_transitions: list[dict[str, Any]] = []
        store.on("server_reboot", self.on_server_reboot)

    # -- small accessors ---------------------------------------------------------------------------
    def _get(self, api_version: str, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        return self.store.kube_get(api_version, kind, name, namespace)

    def _nodes(self) -> list[dict[str, Any]]:
        return [self.store.kube_objects("v1", "Node")[k] for k in sorted(self.store.kube_objects("v1", "Node"))]

    def _save(self, obj: dict[str, Any]) -> None:
        kube_resources.save_object(self.store, obj)

    def _faulty(self, fault: str, name: str) -> bool:
        return name in _names(self.store.behaviour_faults.get(fault))

    def _timestamp(self) -> str:
        return iso_now(self.store.clock.now())

    def mcd_log(self, node_name: str, message: str, source: str = "daemon.go:1000") -> None:
        """Append a line, formatted like klog, to the machine-config-daemon pod log of `node_name`."""
        pods = self.store.kube_objects("v1", "Pod")
        for (namespace, pod_name), pod in pods.items():
            if namespace == MCO_NAMESPACE and pod.get("spec", {}).get("nodeName") == node_name \
                    and pod_name.startswith("machine-config-daemon"):
                import datetime as _dt

                when = _dt.datetime.fromtimestamp(self.store.clock.now(), tz=_dt.timezone.utc)
                stamp = when.strftime("I%m%d %H:%M:%S.%f")
                self.pod_logs.setdefault((namespace, pod_name), []).append(f"{stamp}    2736 {source}] {message}")
                return

    # -- reacting to API writes ------------------------------------------------------------------
    def object_changed(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        """Called by the API after every write (old None: created; new None: gone)."""
        obj = new or old
        if obj is None or obj["metadata"].get("name") != "cluster" or obj.get("kind") != "Network" or new is None:
            return
        old_spec = (old or {}).get("spec") or {}
        new_spec = new.get("spec") or {}
        if obj["apiVersion"] == OPERATOR_API and old_spec.get("migration") != new_spec.get("migration"):
            self.roll_machine_configs()
        elif obj["apiVersion"] == CONFIG_API and old_spec.get("networkType") != new_spec.get("networkType"):
            self.switch_network_type(str(new_spec.get("networkType")))

    # -- MCO ------------------------------------------------------------------------------------------
    def mco_network_type(self) -> str:
        """The network type the MCO renders for: the migration's target while one is set."""
        operator = self._get(OPERATOR_API, "Network", "cluster") or {}
        migration = (operator.get("spec") or {}).get("migration") or {}
        if migration.get("networkType"):
            return str(migration["networkType"])
        config = self._get(CONFIG_API, "Network", "cluster") or {}
        return str((config.get("spec") or {}).get("networkType") or "Kuryr")

    def pool_nodes(self, role: str) -> list[dict[str, Any]]:
        return [n for n in self._nodes() if node_role(n) == role]

    def roll_machine_configs(self) -> None:
        """Render each pool's config for the current target and start rolling it to the nodes."""
        network_type = self.mco_network_type()
        for pool in list(self.store.kube_objects(MC_API, "MachineConfigPool").values()):
            role = pool["metadata"]["name"]
            target = rendered_config_name(role, network_type)
            if self._get(MC_API, "MachineConfig", target) is None:
                mc = make_rendered_machine_config(role, network_type, pool["metadata"].get("uid"))
                mc["metadata"]["uid"] = str(uuid.uuid4())
                mc["metadata"]["creationTimestamp"] = self._timestamp()
                mc["metadata"]["generation"] = 1
                kube_resources.save_object(self.store, mc, "ADDED")
            if pool["spec"]["configuration"]["name"] == target:
                continue
            pool = _copy(pool)
            pool["spec"]["configuration"]["name"] = target
            pool["metadata"]["generation"] = int(pool["metadata"].get("generation") or 1) + 1
            self._refresh_pool(pool, updating=True)
            self._save(pool)
            self._pool_rollout[role] = self._pool_rollout.get(role, 0) + 1
            token = self._pool_rollout[role]
            self.store.schedule("mco_node", functools.partial(self._mco_step, role, token))

    def _refresh_pool(self, pool: dict[str, Any], updating: bool, degraded_message: str = "") -> None:
        role = pool["metadata"]["name"]
        target = pool["spec"]["configuration"]["name"]
        nodes = self.pool_nodes(role)
        updated = sum(1 for n in nodes if n["metadata"].get("annotations", {}).get(ANN_CURRENT) == target)
        ready = sum(1 for n in nodes if node_is_ready(n))
        degraded = sum(1 for n in nodes if n["metadata"].get("annotations", {}).get(ANN_STATE) == "Degraded")
        status = pool.setdefault("status", {})
        if not updating and not degraded_message:
            status["configuration"] = _copy(pool["spec"]["configuration"])
        status_config = (status.get("configuration") or {}).get("name", target)
        status.update(
            {
                "conditions": pool_conditions(
                    target, status_config, updating=updating, degraded_message=degraded_message,
                    when=self._timestamp(),
                ),
                "degradedMachineCount": degraded,
                "machineCount": len(nodes),
                "observedGeneration": pool["metadata"].get("generation", 1),
                "readyMachineCount": min(ready, updated),
                "unavailableMachineCount": len(nodes) - ready,
                "updatedMachineCount": updated,
            }
        )

    def _mco_step(self, role: str, token: int) -> None:
        """Move the next node of the pool to the pool's config (one at a time, maxUnavailable 1)."""
        if self._pool_rollout.get(role) != token:
            return
        pool = self._get(MC_API, "MachineConfigPool", role)
        if pool is None:
            return
        target = pool["spec"]["configuration"]["name"]
        pending = [n for n in self.pool_nodes(role) if n["metadata"].get("annotations", {}).get(ANN_CURRENT) != target]
        pool = _copy(pool)
        if not pending:
            self._refresh_pool(pool, updating=False)
            self._save(pool)
            return
        node = _copy(pending[0])
        name = node["metadata"]["name"]
        annotations = node["metadata"].setdefault("annotations", {})
        annotations[ANN_DESIRED] = target
        if self._faulty("degraded_pool", role):
            reason = f'failed to drain node: {name} after 1 hour: error when evicting pods/"router-default" -n ' \
                     '"openshift-ingress": global timeout reached: 1m30s'
            annotations[ANN_STATE] = "Degraded"
            annotations[ANN_REASON] = reason
            self._save(node)
            self.mcd_log(name, f"Marking Degraded due to: {reason}", "daemon.go:640")
            self._refresh_pool(pool, updating=True, degraded_message=f'Node {name} is reporting: "{reason}"')
            self._save(pool)
            return
        annotations[ANN_STATE] = "Working"
        annotations["machineconfiguration.openshift.io/desiredDrain"] = f"drain-{target}"
        node["spec"]["unschedulable"] = True
        node["spec"]["taints"] = [t for t in node["spec"].get("taints") or []
                                  if t.get("key") != "node.kubernetes.io/unschedulable"]
        node["spec"]["taints"].append({"effect": "NoSchedule", "key": "node.kubernetes.io/unschedulable",
                                       "timeAdded": self._timestamp()})
        self._save(node)
        current = annotations.get(ANN_CURRENT)
        self.mcd_log(name, f"Starting update from {current} to {target}", "update.go:2118")
        self.mcd_log(name, "Update prepared; requesting cordon and drain via annotation to controller",
                     "update.go:2118")
        self._refresh_pool(pool, updating=True)
        self._save(pool)
        self.store.schedule("mco_node", lambda: self._mco_node_done(role, token, name, target))

    def _mco_node_done(self, role: str, token: int, name: str, target: str) -> None:
        """The daemon wrote the config and rebooted; the node comes back on the new config."""
        if self._pool_rollout.get(role) != token:
            return
        node = self._get("v1", "Node", name)
        if node is None:
            return
        node = _copy(node)
        self.mcd_log(name, "Rebooting node", "update.go:2118")
        if self._faulty("lost_node", name):
            self._set_not_ready(node)
            self._save(node)
            pool = self._get(MC_API, "MachineConfigPool", role)
            if pool is not None:
                pool = _copy(pool)
                self._refresh_pool(pool, updating=True)
                self._save(pool)
            return
        annotations = node["metadata"]["annotations"]
        annotations[ANN_CURRENT] = target
        annotations[ANN_STATE] = "Done"
        annotations[ANN_REASON] = ""
        annotations["machineconfiguration.openshift.io/desiredDrain"] = f"uncordon-{target}"
        annotations["machineconfiguration.openshift.io/lastAppliedDrain"] = f"uncordon-{target}"
        node["spec"].pop("unschedulable", None)
        node["spec"]["taints"] = [t for t in node["spec"].get("taints") or []
                                  if t.get("key") != "node.kubernetes.io/unschedulable"]
        if not node["spec"]["taints"]:
            del node["spec"]["taints"]
        node["status"]["nodeInfo"]["bootID"] = new_boot_id()
        node["status"]["conditions"] = node_ready_conditions(True, self._timestamp())
        self._save(node)
        self.mcd_log(name, f"Update completed for config {target} and node has been successfully uncordoned",
                     "update.go:2118")
        self._mco_step(role, token)

    # -- CNO -------------------------------------------------------------------------------------------
    def switch_network_type(self, network_type: str) -> None:
        """Network.config spec.networkType changed: the status follows once the CNO processed it (not
        after the reboots), multus rolls, operators progress; the network operator settles once every
        node has rebooted (boot IDs recorded now)."""
        self.store.settings["cno_switch"] = {
            "networkType": network_type,
            "bootIDs": {n["metadata"]["name"]: n["status"]["nodeInfo"].get("bootID") for n in self._nodes()},
            "done": False,
        }
        multus = self._get("apps/v1", "DaemonSet", "multus", MULTUS_NAMESPACE)
        if multus is not None:
            multus = _copy(multus)
            generation = int(multus["metadata"].get("generation") or 1) + 1
            multus["metadata"]["generation"] = generation
            multus["metadata"].setdefault("annotations", {})["deprecated.daemonset.template.generation"] = str(
                generation
            )
            status = multus.setdefault("status", {})
            desired = int(status.get("desiredNumberScheduled") or 0)
            status.update(
                {
                    "observedGeneration": generation,
                    "updatedNumberScheduled": 0,
                    "numberAvailable": max(desired - 1, 0),
                    "numberUnavailable": min(desired, 1),
                    "numberReady": max(desired - 1, 0),
                }
            )
            self._save(multus)
            self.store.schedule("multus_rollout", lambda: self._multus_rolled_out(generation))
        self.store.schedule(0.0, lambda: self._report_network_type(network_type))
        for name in OPERATORS_PROGRESSING_ON_SWITCH:
            self._set_operator_progressing(name, f"Deployment of the {network_type} network is in progress")
            if name != "network":
                self.store.schedule("operator_settle", functools.partial(self._settle_operator, name))
        self._check_network_switch_complete()

    def _multus_rolled_out(self, generation: int) -> None:
        multus = self._get("apps/v1", "DaemonSet", "multus", MULTUS_NAMESPACE)
        if multus is None or multus["metadata"].get("generation") != generation:
            return
        multus = _copy(multus)
        status = multus["status"]
        desired = int(status.get("desiredNumberScheduled") or 0)
        status.update({"updatedNumberScheduled": desired, "numberAvailable": desired, "numberReady": desired,
                       "currentNumberScheduled": desired})
        status.pop("numberUnavailable", None)
        self._save(multus)

    def _set_operator_progressing(self, name: str, message: str) -> None:
        operator = self._get(CONFIG_API, "ClusterOperator", name)
        if operator is None:
            return
        operator = _copy(operator)
        _set_condition(operator, "Progressing", "True", "Deploying", message, self._timestamp())
        self._save(operator)

    def _settle_operator(self, name: str) -> None:
        operator = self._get(CONFIG_API, "ClusterOperator", name)
        if operator is None:
            return
        operator = _copy(operator)
        _set_condition(operator, "Progressing", "False", "AsExpected", "", self._timestamp())
        self._save(operator)
        self.apply_faults()

    def _check_network_switch_complete(self) -> None:
        switch = self.store.settings.get("cno_switch")
        if not switch or switch.get("done"):
            return
        boot_ids = switch.get("bootIDs") or {}
        for node in self._nodes():
            name = node["metadata"]["name"]
            if node["status"]["nodeInfo"].get("bootID") == boot_ids.get(name) or not node_is_ready(node):
                return
        switch["done"] = True
        self.store.schedule("operator_settle", lambda: self._settle_operator("network"))

    def _report_network_type(self, network_type: str) -> None:
        """The CNO has processed the switch: Network.config's status says the new type (and cluster
        network) right away, while nodes are still running the old plugin until they reboot."""
        config = self._get(CONFIG_API, "Network", "cluster")
        if config is None or (config.get("spec") or {}).get("networkType") != network_type:
            return
        config = _copy(config)
        config.setdefault("status", {})["networkType"] = network_type
        config["status"]["clusterNetwork"] = _copy(config["spec"].get("clusterNetwork") or [])
        self._save(config)

    # -- reboots -------------------------------------------------------------------------------------
    def on_server_reboot(self, server_id: str, hard: bool = False, **_: Any) -> None:
        """Nova accepted a reboot of `server_id`: the node backed by it goes down and comes back."""
        provider_id = f"openstack:///{server_id}"
        for node in self._nodes():
            if node.get("spec", {}).get("providerID") == provider_id:
                self.reboot_node(node["metadata"]["name"])
                return
        # A node without a providerID still runs on its server: the installer names both alike.
        server = self.store.get("servers", server_id) or {}
        if server.get("name") and self._get("v1", "Node", str(server["name"])) is not None:
            self.reboot_node(str(server["name"]))

    def reboot_node_by_ip(self, ip: str) -> str | None:
        """The SSH path (`sudo shutdown -r`): reboot the node whose InternalIP is `ip`."""
        for node in self._nodes():
            if node_ip(node) == ip:
                self.reboot_node(node["metadata"]["name"])
                return str(node["metadata"]["name"])
        return None

    def reboot_node(self, name: str) -> None:
        node = self._get("v1", "Node", name)
        if node is None:
            return
        node = _copy(node)
        self._set_not_ready(node)
        self._save(node)
        self.reboot_transitions.append({"t": self.store.clock.now(), "node": name, "event": "down"})
        self.mcd_log(name, "Shutting down for reboot", "daemon.go:1523")
        self._node_reboot[name] = self._node_reboot.get(name, 0) + 1
        token = self._node_reboot[name]
        if self._faulty("lost_node", name):
            return
        delay = self.store.delays.get("server_reboot", 0.0) + self.store.delays.get("node_boot", 0.0)
        self.store.schedule(delay, lambda: self._node_booted(name, token))

    def _set_not_ready(self, node: dict[str, Any]) -> None:
        node["status"]["conditions"] = node_ready_conditions(False, self._timestamp())
        taints = [t for t in node["spec"].get("taints") or [] if t.get("key") != "node.kubernetes.io/unreachable"]
        taints.append({"effect": "NoSchedule", "key": "node.kubernetes.io/unreachable", "timeAdded": self._timestamp()})
        taints.append({"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "timeAdded": self._timestamp()})
        node["spec"]["taints"] = taints

    def _node_booted(self, name: str, token: int) -> None:
        if self._node_reboot.get(name) != token or self._faulty("lost_node", name):
            return
        node = self._get("v1", "Node", name)
        if node is None:
            return
        node = _copy(node)
        node["status"]["conditions"] = node_ready_conditions(True, self._timestamp())
        node["status"]["nodeInfo"]["bootID"] = new_boot_id()
        taints = [t for t in node["spec"].get("taints") or [] if t.get("key") != "node.kubernetes.io/unreachable"]
        if taints:
            node["spec"]["taints"] = taints
        else:
            node["spec"].pop("taints", None)
        self._save(node)
        self.reboot_transitions.append({"t": self.store.clock.now(), "node": name, "event": "up"})
        self.mcd_log(name, "Starting MachineConfigDaemon", "start.go:112")
        self._heal_pods_on(name)
        self._check_network_switch_complete()

    # -- faults ---------------------------------------------------------------------------------------
    def apply_faults(self) -> None:
        """Hold the faulty objects in their broken state (cheap when no fault is set)."""
        faults = self.store.behaviour_faults
        if not faults:
            return
        for ref in _names(faults.get("crashloop_pod")):
            namespace, _, name = ref.partition("/")
            pod = self._get("v1", "Pod", name, namespace)
            if pod is not None and not _is_crashlooping(pod):
                pod = _copy(pod)
                _crashloop(pod, self._timestamp())
                self._save(pod)
        for name in _names(faults.get("degraded_operator")):
            operator = self._get(CONFIG_API, "ClusterOperator", name)
            if operator is not None and _condition_status(operator, "Degraded") != "True":
                operator = _copy(operator)
                _set_condition(operator, "Degraded", "True", "RolloutHung",
                               f"{name} operator is degraded: DaemonSet rollout is not making progress",
                               self._timestamp())
                self._save(operator)

    def _heal_pods_on(self, node_name: str) -> None:
        """Pods crash-looping on a rebooted node recover unless a fault still holds them."""
        crashloop = _names(self.store.behaviour_faults.get("crashloop_pod"))
        for (namespace, name), pod in list(self.store.kube_objects("v1", "Pod").items()):
            if pod.get("spec", {}).get("nodeName") != node_name or f"{namespace}/{name}" in crashloop:
                continue
            if _is_crashlooping(pod):
                pod = _copy(pod)
                now = self._timestamp()
                for cs in pod["status"].get("containerStatuses") or []:
                    cs["state"] = {"running": {"startedAt": now}}
                    cs["ready"] = True
                _set_condition(pod, "Ready", "True", "", "", now)
                self._save(pod)


def _copy(obj: Any) -> Any:
    import copy

    return copy.deepcopy(obj)


def _condition_status(obj: dict[str, Any], ctype: str) -> str | None:
    for cond in obj.get("status", {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return str(cond.get("status"))
    return None


def _set_condition(obj: dict[str, Any], ctype: str, status: str, reason: str, message: str, when: str) -> None:
    conditions = obj.setdefault("status", {}).setdefault("conditions", [])
    for cond in conditions:
        if cond.get("type") == ctype:
            if cond.get("status") != status:
                cond["lastTransitionTime"] = when
            cond["status"] = status
            if reason:
                cond["reason"] = reason
            if message:
                cond["message"] = message
            else:
                cond.pop("message", None)
            return
    conditions.append(_condition(ctype, status, reason, message, when))


def _is_crashlooping(pod: dict[str, Any]) -> bool:
    for cs in pod.get("status", {}).get("containerStatuses") or []:
        if (cs.get("state") or {}).get("waiting", {}).get("reason") == "CrashLoopBackOff":
            return True
    return False


def _crashloop(pod: dict[str, Any], when: str) -> None:
    status = pod.setdefault("status", {})
    status["phase"] = "Running"
    statuses = status.get("containerStatuses") or [
        {"name": c.get("name", "main"), "image": c.get("image", ""), "imageID": "", "restartCount": 0}
        for c in pod.get("spec", {}).get("containers") or [{"name": "main"}]
    ]
    for cs in statuses:
        cs.setdefault("image", "")
        cs.setdefault("imageID", "")
        cs["containerID"] = f"cri-o://{uuid.uuid4().hex}{uuid.uuid4().hex}"
        cs["ready"] = False
        cs["started"] = False
        cs["restartCount"] = int(cs.get("restartCount") or 0) + 5
        cs["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": when}}
        cs["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                   "message": f"back-off 5m0s restarting failed container={cs['name']} "
                                              f"pod={pod['metadata']['name']}_{pod['metadata'].get('namespace', '')}"}}
    status["containerStatuses"] = statuses
    _set_condition(pod, "Ready", "False", "ContainersNotReady",
                   "containers with unready status: [" + " ".join(c["name"] for c in statuses) + "]", when)
