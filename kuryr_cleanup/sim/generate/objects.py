"""What the generator plans and keeps per node, namespace, pod and Service, and the Kubernetes objects
(Pod, KuryrPort, Service, EndpointSlice, NetworkPolicy spec) it builds from them, in the shape the API
and Kuryr write them."""

from __future__ import annotations

import datetime as _dt
import hashlib
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from kuryr_cleanup.sim.generate.names import KURYR_API, KURYRPORT_FINALIZER, POLICY_NAMES, SERVICE_NAMES


class Addresses:
    """Hands out consecutive addresses of a network from an offset, past those already `taken` (by the
    router's ports): O(1), no scans of used IPs."""

    def __init__(self, cidr: str, first_offset: int, taken: frozenset[str] = frozenset()) -> None:
        self.network = ipaddress.ip_network(cidr)
        self._next = int(self.network.network_address) + first_offset
        self._last = int(self.network.broadcast_address) - 1
        self._taken = taken

    def take(self) -> str:
        while True:
            if self._next > self._last:
                raise ValueError(f"no addresses left in {self.network}: generate fewer pods or a larger host-prefix")
            address = str(ipaddress.ip_address(self._next))
            self._next += 1
            if address not in self._taken:
                return address


@dataclass
class Node:
    name: str
    role: str
    ip: str
    mac: str
    server: dict[str, Any] = field(default_factory=dict)
    parent_port: dict[str, Any] = field(default_factory=dict)
    sub_ports: list[dict[str, Any]] = field(default_factory=list)
    pods: int = 0
    zone: str = "nova"  # the server's availability zone


@dataclass
class PodNetwork:
    """Kuryr's network and subnet of a namespace, and the pod addresses left in the subnet."""

    network: dict[str, Any]
    subnet: dict[str, Any]
    addresses: Addresses


@dataclass
class Namespace:
    name: str
    uid: str
    labels: dict[str, str]
    # Only a namespace with pods on the pod network has one (Kuryr's namespace handler).
    pod_network: PodNetwork | None = None
    pod_security_groups: list[str] = field(default_factory=list)
    # pod name -> (ip, node name, labels)
    pods: dict[str, tuple[str, str, dict[str, str]]] = field(default_factory=dict)

    @property
    def net(self) -> PodNetwork:
        if self.pod_network is None:
            raise ValueError(f"namespace {self.name} has no Kuryr network: plan it with pods on the pod network")
        return self.pod_network


@dataclass(frozen=True)
class PodPlan:
    name: str
    node: str
    labels: dict[str, str]
    host_network: bool = False
    containers: tuple[str, ...] = ("app",)


@dataclass(frozen=True)
class ServicePlan:
    name: str
    ports: tuple[tuple[str, int, str, int], ...]  # (name, port, protocol, target port)
    selector: dict[str, str] | None
    cluster_ip: str
    lb_type: str = "ClusterIP"
    host_endpoints: tuple[str, ...] = ()  # endpoint IPs on the node network (hostNetwork backends)


def service_name(j: int) -> str:
    return SERVICE_NAMES[j] if j < len(SERVICE_NAMES) else f"svc-{j}"


def policy_name(k: int) -> str:
    return POLICY_NAMES[k] if k < len(POLICY_NAMES) else f"allow-port-8080-{k}"


def policy_spec(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": {}, "policyTypes": ["Ingress"]}
    if name == "allow-from-same-namespace":
        spec["ingress"] = [{"from": [{"podSelector": {}}]}]
    elif name == "allow-from-openshift-ingress":
        spec["ingress"] = [{"from": [{"namespaceSelector": {"matchLabels": {
            "policy-group.network.openshift.io/ingress": ""}}}]}]
    elif name != "deny-by-default":
        spec["ingress"] = [{"ports": [{"port": 8080, "protocol": "TCP"}]}]
    return spec


def pod_object(namespace: str, plan: PodPlan, uid: str, node: Node, ip: str,
               finalizers: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": plan.name, "namespace": namespace, "uid": uid, "labels": dict(plan.labels)}
    if finalizers:
        meta["finalizers"] = list(finalizers)
    spec: dict[str, Any] = {
        "containers": [{"name": c, "image": f"registry.example.com/{c}:latest"} for c in plan.containers],
        "nodeName": node.name,
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "serviceAccountName": "default",
    }
    if plan.host_network:
        spec["hostNetwork"] = True
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": spec,
        "status": {
            "phase": "Running",
            "hostIP": node.ip,
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "qosClass": "BestEffort",
            "conditions": [{"type": t, "status": "True"} for t in ("Initialized", "Ready", "ContainersReady",
                                                                   "PodScheduled")],
            # Complete as the kubelet writes them: the typed kubernetes client refuses a status without
            # image, imageID or containerID.
            "containerStatuses": [
                {"name": c, "ready": True, "restartCount": 0, "started": True,
                 "image": f"registry.example.com/{c}:latest",
                 "imageID": f"registry.example.com/{c}@sha256:{hashlib.sha256(c.encode()).hexdigest()}",
                 "containerID": "cri-o://" + hashlib.sha256(f"{namespace}/{plan.name}/{c}".encode()).hexdigest(),
                 "state": {"running": {}}}
                for c in plan.containers
            ],
        },
    }


def days_before(timestamp: str, days: float, minutes: float = 0) -> str:
    """The RFC 3339 time `days` (and `minutes`) before `timestamp` (negative: after)."""
    when = _dt.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ") - _dt.timedelta(days=days, minutes=minutes)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class FinishedPodPlan:
    """A pod of a Job that ran to completion (or failed) long before the migration."""

    name: str
    node: str
    job: str
    container: str
    succeeded: bool
    started_at: str
    finished_at: str


def finished_pod_object(namespace: str, plan: FinishedPodPlan, uid: str, job_uid: str, node: Node,
                        ip: str) -> dict[str, Any]:
    """The Pod as the kubelet leaves it (phase Succeeded or Failed, containers terminated, the pod IP
    kept) and as Kuryr leaves it: no finalizer, since Kuryr released its port when the pod completed."""
    reason, exit_code = ("Completed", 0) if plan.succeeded else ("Error", 1)
    container_id = "cri-o://" + hashlib.sha256(f"{namespace}/{plan.name}".encode()).hexdigest()
    labels = {"job-name": plan.job, "batch.kubernetes.io/job-name": plan.job, "controller-uid": job_uid,
              "batch.kubernetes.io/controller-uid": job_uid}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": plan.name, "namespace": namespace, "uid": uid, "labels": labels,
            "creationTimestamp": plan.started_at,
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": plan.job, "uid": job_uid,
                                 "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "containers": [{"name": plan.container, "image": f"registry.example.com/{plan.container}:latest"}],
            "nodeName": node.name,
            "restartPolicy": "Never",
            "schedulerName": "default-scheduler",
            "serviceAccountName": "default",
        },
        "status": {
            "phase": "Succeeded" if plan.succeeded else "Failed",
            "hostIP": node.ip,
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "qosClass": "BestEffort",
            "startTime": plan.started_at,
            "conditions": [
                {"type": t, "status": status, **({"reason": "PodCompleted"} if t != "PodScheduled" else {}),
                 "lastTransitionTime": plan.started_at if status == "True" else plan.finished_at}
                for t, status in (("Initialized", "True"), ("Ready", "False"), ("ContainersReady", "False"),
                                  ("PodScheduled", "True"))
            ],
            "containerStatuses": [{
                "name": plan.container, "ready": False, "restartCount": 0, "started": False,
                "image": f"registry.example.com/{plan.container}:latest",
                "imageID": f"registry.example.com/{plan.container}@sha256:"
                           f"{hashlib.sha256(plan.container.encode()).hexdigest()}",
                "containerID": container_id,
                "state": {"terminated": {"exitCode": exit_code, "reason": reason, "startedAt": plan.started_at,
                                         "finishedAt": plan.finished_at, "containerID": container_id}},
                "lastState": {},
            }],
        },
    }


def kuryr_port_object(ns: Namespace, plan: PodPlan, pod_uid: str, port: dict[str, Any],
                      vlan: int) -> dict[str, Any]:
    """A KuryrPort: `status.vifs` holds the pod's os-vif VIFVlanNested, as kuryr-controller writes it."""

    def versioned(name: str, data: dict[str, Any], version: str = "1.0",
                  namespace: str = "os_vif") -> dict[str, Any]:
        return {"versioned_object.data": data, "versioned_object.name": name,
                "versioned_object.namespace": namespace, "versioned_object.version": version}

    ip = port["fixed_ips"][0]["ip_address"]
    subnet = versioned("Subnet", {
        "cidr": ns.net.subnet["cidr"], "dns": [], "gateway": ns.net.subnet["gateway_ip"],
        "ips": versioned("FixedIPList", {"objects": [versioned("FixedIP", {"address": ip})]}),
        "routes": versioned("RouteList", {"objects": []}),
    })
    network = versioned("Network", {
        "id": ns.net.network["id"], "label": ns.net.network["name"], "mtu": ns.net.network["mtu"], "multi_host": False,
        "should_provide_bridge": False, "should_provide_vlan": False,
        "subnets": versioned("SubnetList", {"objects": [subnet]}),
    }, version="1.1")
    vif = versioned("VIFVlanNested", {
        "active": True, "address": port["mac_address"], "has_traffic_filtering": False, "id": port["id"],
        "network": network, "plugin": "noop", "preserve_on_delete": False,
        "vif_name": f"tap{port['id'][:11]}", "vlan_id": vlan,
    }, namespace="os_vif")
    return {
        "apiVersion": KURYR_API,
        "kind": "KuryrPort",
        "metadata": {"name": plan.name, "namespace": ns.name, "finalizers": [KURYRPORT_FINALIZER],
                     "labels": {"kuryr.openstack.org/nodeName": plan.node}},
        "spec": {"podUid": pod_uid, "podNodeName": plan.node},
        "status": {"vifs": {"eth0": {"default": True, "vif": vif}}},
    }


def service_object(namespace: str, plan: ServicePlan, uid: str, finalizers: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": plan.name, "namespace": namespace, "uid": uid}
    if finalizers:
        meta["finalizers"] = list(finalizers)
    spec: dict[str, Any] = {
        "clusterIP": plan.cluster_ip,
        "clusterIPs": [plan.cluster_ip],
        "internalTrafficPolicy": "Cluster",
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "ports": [{**({"name": n} if n else {}), "port": p, "protocol": proto, "targetPort": t}
                  for n, p, proto, t in plan.ports],
        "sessionAffinity": "None",
        "type": plan.lb_type,
    }
    if plan.selector:
        spec["selector"] = dict(plan.selector)
    if plan.lb_type == "LoadBalancer":
        spec["externalTrafficPolicy"] = "Cluster"
        spec["allocateLoadBalancerNodePorts"] = True
        spec["ports"] = [dict(p, nodePort=30000 + (i * 7 + p["port"]) % 2767) for i, p in enumerate(spec["ports"])]
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec,
            "status": {"loadBalancer": {}}}


def endpoint_slice(namespace: str, plan: ServicePlan, endpoints: list[tuple[str, str, str]]) -> dict[str, Any]:
    return {
        "endpoints": [
            {"addresses": [address], "conditions": {"ready": True},
             **({} if plan.host_endpoints else {"targetRef": {"kind": "Pod", "name": name, "namespace": namespace}})}
            for name, address, _ in endpoints
        ],
        "ports": [{**({"name": n} if n else {}), "port": t, "protocol": proto} for n, _, proto, t in plan.ports],
    }
