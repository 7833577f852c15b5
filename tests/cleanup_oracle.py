"""An independent statement of what a correct cleanup leaves behind, computed from a snapshot taken
before it, used to judge the end state of the simulated cloud and cluster.

It is written from the SPEC (B, S2) directly, not from the tool's code, so a bug in the tool's
discovery shows up as a difference here.
"""

from __future__ import annotations

import copy
import re
from typing import Any

KURYR_FINALIZERS = {
    "kuryr.openstack.org/service-finalizer",
    "kuryr.openstack.org/kuryrloadbalancer-finalizers",
    "kuryr.openstack.org/pod-finalizer",
    "kuryr.openstack.org/kuryrport-finalizer",
    "kuryr.openstack.org/networkpolicy-finalizer",
    "kuryrnetwork.finalizers.kuryr.openstack.org",
}
NP_DESCRIPTION = "Kuryr-Kubernetes Network Policy"
INSTALLER = "Created By OpenShift Installer"


def _cluster_tags(record: dict[str, Any]) -> set[str]:
    return {t for t in record.get("tags") or [] if t.startswith("openshiftClusterID=")}


_PROJECT: list[str | None] = [None]  # the cluster's project, while expected_gone runs


def _foreign(record: dict[str, Any], tag: str) -> bool:
    """Another cluster's (tagged for it), or another project's: never ours, whatever its name says."""
    tags = _cluster_tags(record)
    project = record.get("project_id") or record.get("tenant_id")
    if _PROJECT[0] and project and project != _PROJECT[0]:
        return True
    return bool(tags) and tag not in tags


def expected_gone(snap: dict[str, Any]) -> dict[str, set[str]]:
    """(collection -> ids) of this cluster's Kuryr resources, which must all be gone afterwards."""
    infra = snap["infra_id"]
    tag = f"openshiftClusterID={infra}"
    os_ = snap["openstack"]
    objs = snap["kubernetes"]["objects"]
    # The cluster's project, where the snapshot knows it (a noauth capture of the real services does
    # not: there, the project of the resources carrying our tag is the cluster's).
    owners = {r.get("project_id") for name in ("networks", "security_groups", "subnetpools") for r in os_.get(name, [])
              if tag in (r.get("tags") or [])} - {None, ""}
    _PROJECT[0] = os_.get("project_id") if os_.get("project_id") in owners else (
        next(iter(owners)) if len(owners) == 1 else None)

    def kind(name: str) -> list[dict[str, Any]]:
        return [o for o in objs if o["kind"] == name]

    kn_nets = {kn["status"]["netId"] for kn in kind("KuryrNetwork") if (kn.get("status") or {}).get("netId")}
    router_ids = {kn["status"]["routerId"] for kn in kind("KuryrNetwork") if (kn.get("status") or {}).get("routerId")}
    klb_lbs = {((o.get("status") or {}).get("loadbalancer") or {}).get("id") for o in kind("KuryrLoadBalancer")}
    klb_pub = {((o.get("status") or {}).get("loadbalancer") or {}).get("id"): (o.get("status") or {}).get(
        "service_pub_ip_info") or {} for o in kind("KuryrLoadBalancer")}
    knp_sgs = {(o.get("status") or {}).get("securityGroupId") for o in kind("KuryrNetworkPolicy")}

    nets = {n["id"] for n in os_["networks"] if n["id"] in kn_nets and not _foreign(n, tag)}
    for n in os_["networks"]:
        if n["name"] == f"{infra}-kuryr-service-network" and not _foreign(n, tag):
            nets.add(n["id"])
        if n["name"] == "kuryr-service-network" and tag in (n.get("tags") or []):
            nets.add(n["id"])
    subnets = {s["id"] for s in os_["subnets"] if s["network_id"] in nets}
    ports = {p["id"] for p in os_["ports"] if p["network_id"] in nets}

    def lb_ours(lb: dict[str, Any]) -> bool:
        if _foreign(lb, tag):
            return False
        described = set(re.findall(r"openshiftClusterID=[^\s,;]+", lb.get("description") or ""))
        if described - {tag}:
            return False
        return tag in (lb.get("tags") or []) or tag in described or lb["id"] in klb_lbs

    lbs = {lb["id"] for lb in os_["loadbalancers"] if lb_ours(lb)}
    vip_ports = {lb["vip_port_id"]: lb["id"] for lb in os_["loadbalancers"] if lb["id"] in lbs}
    ports |= set(vip_ports)
    listeners = {x["id"] for x in os_["listeners"] if any(lb["id"] in lbs for lb in x.get("loadbalancers") or [])}
    pools = {x["id"] for x in os_["pools"] if any(lb["id"] in lbs for lb in x.get("loadbalancers") or [])}
    members = {m["id"] for p in os_["pools"] if p["id"] in pools for m in p.get("members") or []}
    members |= {m["id"] for m in os_["members"] if m.get("pool_id") in pools}
    fips = set()
    for fip in os_["floatingips"]:
        lb_id = vip_ports.get(fip.get("port_id") or "")
        if lb_id is None:
            continue
        pub = klb_pub.get(lb_id, {})
        method = pub.get("alloc_method")
        # Kuryr's own: the address its record names, or one it described as its own.
        if (method == "pool" and fip["id"] == pub.get("ip_id")) or (
                method in ("pool", None) and fip.get("description") == "kuryr_lb"):
            fips.add(fip["id"])
    # A released floating IP takes its port on the external network with it.
    ports |= {p["id"] for p in os_["ports"]
              if p.get("device_owner") == "network:floatingip" and p["device_id"] in fips}
    def sg_ours(sg: dict[str, Any]) -> bool:
        tagged = tag in (sg.get("tags") or [])
        if sg["name"] == f"{infra}-kuryr-pods-security-group":
            return True
        if sg["name"] == "kuryr-pods-security-group":
            return tagged
        return ((sg.get("description") or "").startswith(NP_DESCRIPTION) and tagged) or sg["id"] in knp_sgs

    sgs = {sg["id"] for sg in os_["security_groups"] if not _foreign(sg, tag) and sg_ours(sg)}
    rules = {r["id"] for r in os_["security_group_rules"] if r["security_group_id"] in sgs}
    pools_ = {p["id"] for p in os_["subnetpools"] if not _foreign(p, tag) and (
        tag in (p.get("tags") or []) or p["name"] == f"{infra}-kuryr-pod-subnetpool")}
    routers = set()
    for router in os_["routers"]:
        if router["id"] not in router_ids or router.get("description") == INSTALLER:
            continue
        served = {ip["subnet_id"] for p in os_["ports"] if p.get("device_id") == router["id"]
                  and p.get("device_owner") == "network:router_interface" for ip in p["fixed_ips"]}
        if served <= subnets:
            routers.add(router["id"])
    return {
        "networks": nets, "subnets": subnets, "ports": ports, "loadbalancers": lbs, "listeners": listeners,
        "pools": pools, "members": members, "floatingips": fips, "security_groups": sgs,
        "security_group_rules": rules, "subnetpools": pools_, "routers": routers,
    }


GENEVE_PORT = 6081
# What the MCO writes on the nodes it moves to a new config, and what a DaemonSet's rollout bumps.
MCO_ANNOTATION = "machineconfiguration.openshift.io/"
ROLLOUT_ANNOTATION = "deprecated.daemonset.template.generation"


def _migration_changes(before: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(this cluster's node security groups, its nodes' servers): what the migration itself changes in
    the cloud (SPEC A0: Geneve between the node groups; R: every node rebooted through Nova)."""
    infra = before["infra_id"]
    node_groups = {sg["id"] for sg in before["openstack"]["security_groups"]
                   if sg["name"] in (f"{infra}-master", f"{infra}-worker")}
    servers = {o["spec"]["providerID"].rsplit("/", 1)[-1] for o in before["kubernetes"]["objects"]
               if o["kind"] == "Node" and (o.get("spec") or {}).get("providerID")}
    return node_groups, servers


def _geneve_between(rule: dict[str, Any], node_groups: set[str]) -> bool:
    return (rule.get("direction") == "ingress" and rule.get("protocol") == "udp"
            and rule.get("port_range_min") == GENEVE_PORT and rule.get("port_range_max") == GENEVE_PORT
            and rule.get("remote_group_id") in node_groups)


def _migration_annotation(kind: str, key: str) -> bool:
    return (kind == "Node" and key.startswith(MCO_ANNOTATION)) or (kind == "DaemonSet" and key == ROLLOUT_ANNOTATION)


def check_end_state(before: dict[str, Any], after: dict[str, Any], migrated: bool = False) -> None:
    """Assert the cleanup's end state: ours gone, everything else as it was (S2).

    `migrated`: `before` was taken before the whole job (`run`), so the migration's own changes are
    allowed too, each exactly: Geneve rules between this cluster's node groups, its nodes' servers
    rebooted, the MCO's annotations on its nodes, the multus rollout."""
    gone = expected_gone(before)
    infra = before["infra_id"]
    tag = f"openshiftClusterID={infra}"
    problems: list[str] = []
    node_groups, node_servers = _migration_changes(before) if migrated else (set(), set())
    after_os = after["openstack"]
    before_os = before["openstack"]
    router_ids = {kn["status"]["routerId"] for kn in before["kubernetes"]["objects"]
                  if kn["kind"] == "KuryrNetwork" and (kn.get("status") or {}).get("routerId")}
    gone_ports = gone["ports"]
    for collection, ids in gone.items():
        left = ids & {r["id"] for r in after_os[collection]}
        if left:
            problems.append(f"{collection} still present: {sorted(left)[:5]} ({len(left)})")
    for collection, records in before_os.items():
        if not isinstance(records, list):
            continue
        after_by_id = {r["id"]: r for r in after_os.get(collection, [])}
        for record in records:
            rid = record["id"]
            if rid in gone.get(collection, set()):
                continue
            now = after_by_id.get(rid)
            if now is None:
                problems.append(f"{collection} {rid} ({record.get('name')}) was deleted but is not Kuryr's")
                continue
            # Resources the cleanup legitimately changes, each checked for exactly that change.
            if collection == "trunks":
                kept = [s for s in record.get("sub_ports") or [] if s["port_id"] not in gone_ports]
                if sorted(map(str, now.get("sub_ports") or [])) != sorted(map(str, kept)):
                    problems.append(f"trunk {record['name']} subports: {now.get('sub_ports')} != {kept}")
                continue
            if collection == "ports" and record.get("trunk_details"):
                # A trunk parent's view of its subports changes with the trunk's.
                record = copy.deepcopy(record)
                now = copy.deepcopy(now)
                kept = [s for s in record["trunk_details"].get("sub_ports") or [] if s["port_id"] not in gone_ports]
                record["trunk_details"]["sub_ports"] = kept
            if collection == "routers" and rid in router_ids:
                continue  # the Kuryr router kept: its Kuryr interfaces were removed
            if collection == "floatingips" and record.get("port_id") in gone_ports:
                if now.get("port_id") is not None:
                    problems.append(f"user floating IP {record['floating_ip_address']} still associated")
                continue
            if collection == "security_groups":
                record = copy.deepcopy(record)
                now = copy.deepcopy(now)
                for sg in (record, now):
                    sg["security_group_rules"] = [r for r in sg.get("security_group_rules") or []
                                                  if r.get("remote_group_id") not in gone["security_groups"]]
                    sg.pop("revision_number", None)
                    sg.pop("updated_at", None)
                if rid in node_groups:
                    had = {r["id"] for r in record["security_group_rules"]}
                    now["security_group_rules"] = [r for r in now["security_group_rules"] if r["id"] in had
                                                   or not _geneve_between(r, node_groups)]
            if collection == "servers" and rid in node_servers:
                record = {k: v for k, v in record.items() if k != "updated"}
                now = {k: v for k, v in now.items() if k != "updated"}
            if collection == "security_group_rules" and record.get("remote_group_id") in gone["security_groups"]:
                continue
            if now != record:
                diff = {k for k in set(record) | set(now) if record.get(k) != now.get(k)}
                problems.append(f"{collection} {rid} ({record.get('name')}) changed: {sorted(diff)}")
    # The cluster: no Kuryr finalizer anywhere, openshift-kuryr gone, everything else as it was.
    after_objs = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
                  for o in after["kubernetes"]["objects"]}
    for obj in before["kubernetes"]["objects"]:
        key = (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        now = after_objs.get(key)
        in_kuryr_ns = key[1] == "openshift-kuryr" or (obj["kind"] == "Namespace" and key[2] == "openshift-kuryr")
        if now is None:
            freed = set(obj["metadata"].get("finalizers") or []) & KURYR_FINALIZERS
            if in_kuryr_ns or obj["metadata"].get("deletionTimestamp") or freed:
                continue  # freed of Kuryr's finalizer, the cluster may let it go
            problems.append(f"{key} was deleted")
            continue
        if in_kuryr_ns:
            problems.append(f"{key} should be gone with the openshift-kuryr namespace")
            continue
        fins = set(now["metadata"].get("finalizers") or [])
        if fins & KURYR_FINALIZERS:
            problems.append(f"{key} still has Kuryr finalizers {sorted(fins & KURYR_FINALIZERS)}")
        had = set(obj["metadata"].get("finalizers") or []) & KURYR_FINALIZERS
        # Exactly Kuryr's finalizers went; the other finalizers, labels and annotations stayed.
        expected_fins = [f for f in obj["metadata"].get("finalizers") or [] if f not in KURYR_FINALIZERS]
        if (now["metadata"].get("finalizers") or []) != expected_fins:
            problems.append(f"{key} finalizers {now['metadata'].get('finalizers')} != {expected_fins}")
        for field in ("labels", "annotations", "ownerReferences"):
            was, is_ = obj["metadata"].get(field), now["metadata"].get(field)
            if field == "annotations" and migrated:
                was, is_ = ({k: v for k, v in (a or {}).items() if not _migration_annotation(obj["kind"], k)}
                            for a in (was, is_))
            if is_ != was:
                problems.append(f"{key} metadata.{field} changed")
        if not had and obj["kind"] not in ("Network", "Node", "MachineConfigPool", "ClusterOperator", "DaemonSet"):
            a = {k: v for k, v in obj.items() if k != "metadata"}
            b = {k: v for k, v in now.items() if k != "metadata"}
            if a != b:
                problems.append(f"{key} changed")
    assert not problems, "\n".join(problems[:40]) + (f"\n... {len(problems)} problems" if len(problems) > 40 else "")
    assert tag  # keeps the tag computed for messages


def mark_migrated(store: Any) -> None:
    """Make the simulated cluster look migrated (status.networkType OVNKubernetes), as after `migrate`."""
    with store.lock:
        net = store.kube_get("config.openshift.io/v1", "Network", "cluster")
        net.setdefault("status", {})["networkType"] = "OVNKubernetes"
        net["spec"]["networkType"] = "OVNKubernetes"
