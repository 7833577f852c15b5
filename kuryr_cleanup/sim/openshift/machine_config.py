"""Builders of the Machine Config Operator's objects: rendered MachineConfigs, pools, daemon pods."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from kuryr_cleanup.sim.cluster_version import OPENSHIFT_VERSION
from kuryr_cleanup.sim.openshift.objects import condition, timestamp

MCO_NAMESPACE = "openshift-machine-config-operator"

# Node annotations the machine-config-daemon maintains.
ANN_CURRENT = "machineconfiguration.openshift.io/currentConfig"
ANN_DESIRED = "machineconfiguration.openshift.io/desiredConfig"
ANN_STATE = "machineconfiguration.openshift.io/state"
ANN_REASON = "machineconfiguration.openshift.io/reason"

MC_API = "machineconfiguration.openshift.io/v1"


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
    spec_config: str, status_config: str, *, updating: bool, degraded_message: str = "", when: str | None = None,
    paused: bool = False,
) -> list[dict[str, Any]]:
    """The conditions the MCO's node controller writes on a pool (types and messages as OpenShift's).

    `updating`: not every node is on `spec_config` yet. A `paused` pool in that state is not Updating
    either: it says it will not update (pkg/controller/node/status.go)."""
    degraded = "True" if degraded_message else "False"
    if updating and paused:
        updating_condition = condition("Updating", "False", message=f"Pool is paused; will not update to "
                                       f"MachineConfig {spec_config}", when=when)
    else:
        updating_condition = condition(
            "Updating",
            "True" if updating else "False",
            message=f"All nodes are updating to MachineConfig {spec_config}" if updating else "",
            when=when,
        )
    return [
        condition("RenderDegraded", "False", when=when),
        condition(
            "NodeDegraded",
            degraded,
            reason="1 nodes are reporting degraded status on sync" if degraded_message else "",
            message=degraded_message,
            when=when,
        ),
        condition("Degraded", degraded, when=when),
        condition(
            "Updated",
            "False" if updating else "True",
            message="" if updating else f"All nodes are updated with MachineConfig {status_config}",
            when=when,
        ),
        updating_condition,
    ]


def make_machine_config_pool(role: str, node_count: int, rendered_name: str, paused: bool = False) -> dict[str, Any]:
    """A MachineConfigPool (master or worker), Updated with every node on `rendered_name`; a `paused` one
    renders new configs but the MCO rolls none of them out until it is unpaused."""
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
            "paused": paused,
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


def make_machine_config_daemon_pod(node_name: str, suffix: str | None = None) -> dict[str, Any]:
    """The machine-config-daemon pod running on `node_name` (A4 shows its log for stuck nodes)."""
    suffix = suffix or hashlib.md5(node_name.encode(), usedforsecurity=False).hexdigest()[:5]
    now = timestamp()
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
