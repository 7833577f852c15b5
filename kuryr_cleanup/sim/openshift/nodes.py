"""Builders and readers of Nodes: kubelet conditions, the MCO annotations, boot IDs."""

from __future__ import annotations

import uuid
from typing import Any

from kuryr_cleanup.sim.openshift.machine_config import (
    ANN_CURRENT,
    ANN_DESIRED,
    ANN_REASON,
    ANN_STATE,
    rendered_config_name,
)
from kuryr_cleanup.sim.openshift.objects import KUBELET_VERSION, timestamp


def new_boot_id() -> str:
    return str(uuid.uuid4())


def node_ready_conditions(ready: bool, when: str | None = None) -> list[dict[str, Any]]:
    """Kubelet's conditions; a node whose kubelet stopped posting has them all Unknown."""
    when = when or timestamp()
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
    name: str, server_id: str, ip: str, role: str, rendered_config: str | None = None, network_type: str = "Kuryr",
    zone: str = "nova",
) -> dict[str, Any]:
    """A Ready node of `role` backed by the Nova server `server_id` (in availability zone `zone`), on the
    pool's current config."""
    rendered = rendered_config or rendered_config_name(role, network_type)
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": "m1.xlarge",
        "beta.kubernetes.io/os": "linux",
        "failure-domain.beta.kubernetes.io/region": "regionOne",
        "failure-domain.beta.kubernetes.io/zone": zone,
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "m1.xlarge",
        "node.openshift.io/os_id": "rhcos",
        "topology.cinder.csi.openstack.org/zone": zone,
        "topology.kubernetes.io/region": "regionOne",
        "topology.kubernetes.io/zone": zone,
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
