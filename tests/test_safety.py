"""Safety under adversity (SPEC S2, S5, S7): hand-built clouds where other people's objects lean on
the cluster's, and CRs that point at what is not Kuryr's. Driven through the CLI against the
simulator; judged by what the cloud still holds afterwards and what the admin is told."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_cleanup import FAST, kuryr_migrate, migrated_sim
from tests.test_migration import FAST as MIGRATION_DELAYS
from tests.test_migration import SMALL, kuryr, text

SPEC = "namespaces=3,pods=2,services=1,policies=1"
OTHER_TAG = "openshiftClusterID=other-cluster-x1"


def _os(sim: Any) -> dict[str, Any]:
    return dict(sim.state()["openstack"])


def _by_id(state: dict[str, Any], collection: str) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in state[collection]}


def _tag(sim: Any) -> str:
    return f"openshiftClusterID={sim.store.infra_id}"


def _namespace_network(sim: Any, namespace: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The KuryrNetwork of `namespace` and the Neutron network it names."""
    with sim.store.lock:
        kn = json.loads(json.dumps(sim.store.kube_get("openstack.org/v1", "KuryrNetwork", namespace, namespace)))
    nets = _by_id(_os(sim), "networks")
    return kn, nets[kn["status"]["netId"]]


def _namespaces(sim: Any) -> list[str]:
    with sim.store.lock:
        kns = sim.store.kube_objects("openstack.org/v1", "KuryrNetwork")
        return sorted(ns for ns, _name in kns if ns.startswith("ns-") or ns.startswith("project"))


def _app_namespace(sim: Any, index: int = 0) -> str:
    with sim.store.lock:
        kns = sorted(ns for ns, _ in sim.store.kube_objects("openstack.org/v1", "KuryrNetwork")
                     if not ns.startswith(("openshift", "kube", "default")))
    return kns[index]


def _items(result: Any) -> list[dict[str, Any]]:
    return list(json.loads(result.stdout)["items"])


def test_a_kuryrnetwork_naming_the_installer_node_network_keeps_it_whole(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate=SPEC)
    before = _os(sim)
    node_net = next(n for n in before["networks"] if n["name"] == f"{sim.store.infra_id}-openshift")
    node_ports = {p["id"] for p in before["ports"] if p["network_id"] == node_net["id"]}
    namespace = _app_namespace(sim)
    with sim.store.lock:
        kn = sim.store.kube_get("openstack.org/v1", "KuryrNetwork", namespace, namespace)
        kn["status"]["netId"] = node_net["id"]
        kn["status"]["subnetId"] = next(s["id"] for s in before["subnets"] if s["network_id"] == node_net["id"])
    plan = kuryr_migrate(sim, "cleanup", "--plan", "-o", "json", *FAST)
    kept = [i for i in _items(plan) if i["id"] == node_net["id"]]
    assert kept and kept[0]["state"] == "kept", kept
    assert "own port of server" in kept[0]["reason"] and "installer port" in kept[0]["reason"]
    assert not [i for i in _items(plan) if i["kind"] == "port" and i["id"] in node_ports]

    result = kuryr_migrate(sim, "cleanup", "--yes", "-o", "json", *FAST)
    after = _os(sim)
    # The installer's network, its API and ingress ports and the nodes' ports are all still there.
    assert node_net["id"] in _by_id(after, "networks")
    assert node_ports <= set(_by_id(after, "ports"))
    assert result.exit_code == 0, result.output


def test_another_clusters_router_on_our_subnet_keeps_that_network_and_its_interface(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate=SPEC)
    conn = sim.openstack_sdk()
    namespace = _app_namespace(sim)
    kn, net = _namespace_network(sim, namespace)
    router = conn.network.create_router(name="other-cluster-router")
    conn.network.set_tags(router, [OTHER_TAG])
    # The gateway address is the Kuryr router's: the other router plugs in through a port of its own.
    port = conn.network.create_port(network_id=net["id"], name="other-router-leg",
                                    fixed_ips=[{"subnet_id": kn["status"]["subnetId"]}])
    conn.network.add_interface_to_router(router, port_id=port.id)
    sim.clear_requests()
    other_namespace = _app_namespace(sim, 1)
    _, other_net = _namespace_network(sim, other_namespace)

    result = kuryr_migrate(sim, "cleanup", "--yes", "-o", "json", *FAST)
    assert result.exit_code == 0, result.output
    after = _os(sim)
    assert net["id"] in _by_id(after, "networks")
    interfaces = [p for p in after["ports"] if p["device_id"] == router.id]
    assert [ip["subnet_id"] for p in interfaces for ip in p["fixed_ips"]] == [kn["status"]["subnetId"]]
    item = next(i for i in _items(result) if i["id"] == net["id"])
    assert item["state"] == "kept" and router.id in item["reason"] and OTHER_TAG in item["reason"]
    # Independent namespaces were cleaned up all the same.
    assert other_net["id"] not in _by_id(after, "networks")
    # No write was ever aimed at the foreign router.
    assert not [r for r in sim.writes() if router.id in r["path"]]


def test_a_users_vm_port_in_our_policy_group_fails_that_group_at_once_naming_the_port(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate=SPEC)
    conn = sim.openstack_sdk()
    before = _os(sim)
    tag = _tag(sim)
    groups = [g for g in before["security_groups"]
              if (g.get("description") or "").startswith("Kuryr-Kubernetes Network Policy") and tag in g["tags"]]
    assert len(groups) >= 2
    held = groups[0]
    user_net = conn.network.create_network(name="user-app-net")
    conn.network.create_subnet(network_id=user_net.id, cidr="192.168.77.0/24", ip_version=4)
    vm_port = conn.network.create_port(network_id=user_net.id, name="user-vm-eth0", device_owner="compute:nova",
                                       device_id="7f7cdbb0-0000-4000-8000-000000000001",
                                       security_group_ids=[held["id"]])

    result = kuryr_migrate(sim, "cleanup", "--yes", "-o", "json", *FAST)
    assert result.exit_code == 1, result.output
    after = _os(sim)
    assert held["id"] in _by_id(after, "security_groups")
    assert vm_port.id in _by_id(after, "ports")
    item = next(i for i in _items(result) if i["id"] == held["id"])
    assert item["state"] == "failed"
    assert "SecurityGroupInUse" in item["reason"] and vm_port.id in item["reason"], item["reason"]
    # Tried once: the holder was named at once, not after a long retry.
    deletes = [r for r in sim.requests() if r["method"] == "DELETE" and held["id"] in r["path"]]
    assert len(deletes) == 1, deletes
    # Everything else went: the other policy groups, the networks, the KuryrNetwork finalizers.
    assert not {g["id"] for g in groups[1:]} & set(_by_id(after, "security_groups"))
    failed = [i for i in _items(result) if i["state"] in ("failed", "blocked")]
    assert [i["id"] for i in failed] == [held["id"]], failed
    # The journal records the failure with the cloud's reason.
    journal = [json.loads(line) for line in (sim.workdir / "run" / "journal.jsonl").read_text().splitlines()]
    results = [r for r in journal if r["event"] == "result" and r.get("id") == held["id"]]
    assert results and "SecurityGroupInUse" in results[-1]["reason"]


def test_our_port_on_another_clusters_trunk_keeps_its_network_without_a_retry_loop(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate=SPEC)
    conn = sim.openstack_sdk()
    namespace = _app_namespace(sim)
    _, net = _namespace_network(sim, namespace)
    state = _os(sim)
    ours = next(p for p in state["ports"] if p["network_id"] == net["id"] and p["device_owner"] == "trunk:subport")
    our_trunk = ours["device_id"]
    conn.network.delete_trunk_subports(our_trunk, [{"port_id": ours["id"]}])
    user_net = conn.network.create_network(name="other-nodes")
    conn.network.create_subnet(network_id=user_net.id, cidr="192.168.78.0/24", ip_version=4)
    parent = conn.network.create_port(network_id=user_net.id, name="other-node-0")
    trunk = conn.network.create_trunk(port_id=parent.id, name="other-node-0-trunk")
    conn.network.set_tags(trunk, [OTHER_TAG])
    conn.network.add_trunk_subports(trunk, [{"port_id": ours["id"], "segmentation_type": "vlan",
                                            "segmentation_id": 3001}])
    sim.clear_requests()

    result = kuryr_migrate(sim, "cleanup", "--yes", "-o", "json", *FAST)
    assert result.exit_code == 0, result.output
    after = _os(sim)
    assert net["id"] in _by_id(after, "networks") and ours["id"] in _by_id(after, "ports")
    item = next(i for i in _items(result) if i["id"] == net["id"])
    assert item["state"] == "kept" and trunk.id in item["reason"] and OTHER_TAG in item["reason"]
    assert not [r for r in sim.writes() if ours["id"] in r["path"] or trunk.id in r["path"]]


def test_the_tagged_legacy_service_network_goes_with_the_prefixed_one_in_the_first_run(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate=SPEC)
    conn = sim.openstack_sdk()
    legacy = conn.network.create_network(name="kuryr-service-network")
    conn.network.set_tags(legacy, [_tag(sim)])
    plan = kuryr_migrate(sim, "cleanup", "--plan", "-o", "json", *FAST)
    planned = [i for i in _items(plan) if i["kind"] == "network" and i["step"] == "B6"]
    assert sorted(i["state"] for i in planned) == ["planned", "planned"], planned
    result = kuryr_migrate(sim, "cleanup", "--yes", *FAST)
    assert result.exit_code == 0, result.output
    assert not [n for n in _os(sim)["networks"] if n["name"].endswith("kuryr-service-network")]
    sim.clear_requests()
    again = kuryr_migrate(sim, "cleanup", "--yes", *FAST)
    assert again.exit_code == 0 and sim.writes() == []


def test_one_port_that_cannot_go_blocks_only_what_depends_on_it(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate=SPEC)
    namespace = _app_namespace(sim)
    kn, net = _namespace_network(sim, namespace)
    others = [_namespace_network(sim, ns)[1]["id"] for ns in _namespaces_with_networks(sim) if ns != namespace]
    state = _os(sim)
    stuck = next(p for p in state["ports"]
                 if p["network_id"] == net["id"] and p["device_owner"] != "network:router_interface")
    sim.control("PUT", "faults", [{"service": "network", "method": "DELETE", "path": f"/v2.0/ports/{stuck['id']}",
                                   "status": 403}])
    result = kuryr_migrate(sim, "cleanup", "--yes", "-o", "json", *FAST)
    assert result.exit_code == 1
    items = {(i["kind"], i["id"]): i for i in _items(result)}
    assert items[("port", stuck["id"])]["state"] == "failed"
    assert "HTTP 403" in items[("port", stuck["id"])]["reason"]
    assert items[("network", net["id"])]["state"] == "blocked"
    assert items[("KuryrNetwork", f"{namespace}/{namespace}")]["state"] == "blocked"
    # Every other namespace's network and KuryrNetwork finalizer went, and the policy groups of the
    # other namespaces.
    after = _os(sim)
    assert others and not set(others) & set(_by_id(after, "networks"))
    done_finalizers = [i for i in items.values() if i["kind"] == "KuryrNetwork" and i["state"] == "done"]
    assert len(done_finalizers) >= len(others)
    blocked = [i for i in items.values() if i["state"] == "blocked"]
    # Only what waits on that port: its network (with its interface), its KuryrNetwork, the B15
    # check, the groups its port is in, the subnet pool its subnet came from, and the router.
    assert {i["kind"] for i in blocked} <= {"network", "router interface", "KuryrNetwork", "check", "security group",
                                            "subnet pool", "router"}, blocked


def _namespaces_with_networks(sim: Any) -> list[str]:
    with sim.store.lock:
        return sorted(ns for ns, _ in sim.store.kube_objects("openstack.org/v1", "KuryrNetwork"))


def test_a_read_that_keeps_failing_during_discovery_is_one_line_and_changes_nothing(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=1")
    # The first read (the connection probe) goes through; every later one is a 503.
    sim.control("PUT", "faults", [{"service": "network", "method": "GET", "path": "/v2.0/extensions",
                                   "status": 503, "after": 1}])
    sim.clear_requests()
    result = kuryr_migrate(sim, "cleanup", "--yes", *FAST)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot read the inventory" in lines[0] and "503" in lines[0], lines
    assert sim.writes() == []


# -- other people's objects leaning on ours (a hostile admin's scenarios) -------------------------------------
LEANING = f"{SPEC},user-resources,other-project"


def _cleanup(sim: Any, *args: str, cloud: str = "sim-admin") -> Any:
    """The cleanup with an admin token (it sees every project), as a cloud admin would run it."""
    from click.testing import CliRunner

    from kuryr_cleanup.cli import cli

    env = {"OS_CLIENT_CONFIG_FILE": sim.env["OS_CLIENT_CONFIG_FILE"], "OS_CLOUD": cloud,
           "KUBECONFIG": sim.env["KUBECONFIG"]}
    return CliRunner().invoke(cli, ["cleanup", "--run-dir", str(sim.workdir / "run"), "-o", "json", *args, *FAST],
                              env=env, catch_exceptions=False)


def _named(state: dict[str, Any], collection: str, name: str) -> dict[str, Any]:
    return next(r for r in state[collection] if r.get("name") == name)


def _user_trunk(sim: Any, subport_network: dict[str, Any], project: str | None = None) -> tuple[str, str]:
    """A VM's trunk: its parent port on the user's network, a VLAN subport on `subport_network`."""
    from kuryr_cleanup.sim import neutron

    owned = {"project_id": project} if project else {}
    with sim.store.lock:
        user_net = next(n for n in sim.store.os["networks"].values() if n["name"] in ("user-net", "team-b-net")
                        and (not project or n["project_id"] == project))
        vm = next(s for s in sim.store.os["servers"].values() if s["name"] in ("user-vm", "team-b-vm"))
        parent = neutron.create_port(sim.store, name="vm-trunk-parent", network_id=user_net["id"],
                                     device_owner="compute:nova", device_id=vm["id"], **owned)
        sub = neutron.create_port(sim.store, name="vm-vlan100", network_id=subport_network["id"], **owned)
        trunk = neutron.create_trunk(sim.store, name="vm-trunk", port_id=parent["id"], **owned,
                                     sub_ports=[{"port_id": sub["id"], "segmentation_type": "vlan",
                                                 "segmentation_id": 100}])
    return trunk["id"], sub["id"]


def _cleanup_keeping(sim: Any, trunk_id: str, sub_id: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Run the cleanup; the trunk and its subport port must come out of it unchanged."""
    before = _os(sim)
    result = _cleanup(sim, "--yes")
    assert result.exit_code == 0, result.output
    after = _os(sim)
    _unchanged(before, after, "trunks", trunk_id)
    _unchanged(before, after, "ports", sub_id)
    return result, before, after


def _unchanged(before: dict[str, Any], after: dict[str, Any], collection: str, rid: str) -> None:
    volatile = ("updated_at", "revision_number", "status")
    old, new = _by_id(before, collection)[rid], _by_id(after, collection).get(rid)
    assert new is not None, f"{collection} {rid} was deleted"
    assert {k: v for k, v in old.items() if k not in volatile} == {k: v for k, v in new.items() if k not in volatile}


def test_a_kuryrloadbalancer_pointing_at_a_users_load_balancer_does_not_get_it_deleted(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate=LEANING)
    before = _os(sim)
    user_lb = _named(before, "loadbalancers", "user-lb")
    with sim.store.lock:  # a hand-edited (or stale) CR now names the user's LB
        klb = next(o for o in sim.store.kube_objects("openstack.org/v1", "KuryrLoadBalancer").values()
                   if (o.get("status") or {}).get("loadbalancer"))
        klb["status"]["loadbalancer"]["id"] = user_lb["id"]
    result = _cleanup(sim, "--yes")
    assert result.exit_code == 0, result.output
    after = _os(sim)
    _unchanged(before, after, "loadbalancers", user_lb["id"])
    listeners = {lis["id"] for lis in before["listeners"] if lis["name"] == "user-lb-https"}
    assert listeners and listeners <= set(_by_id(after, "listeners"))
    item = next(i for i in _items(result) if i["id"] == user_lb["id"])
    assert item["state"] == "kept" and "neither tagged for this cluster nor named" in item["reason"], item


@pytest.mark.parametrize("whose", ["a user VM's", "another project's"])
def test_a_foreign_trunk_with_a_subport_on_our_network_is_never_changed_and_keeps_that_network(
        make_sim: Any, whose: str) -> None:
    sim = migrated_sim(make_sim, generate=LEANING)
    _kn, net = _namespace_network(sim, _app_namespace(sim))
    with sim.store.lock:
        team_b = sim.store.settings["other_projects"]["team-b"]
    trunk_id, sub_id = _user_trunk(sim, net, project=team_b if whose == "another project's" else None)
    _kn2, other_net = _namespace_network(sim, _app_namespace(sim, 1))
    before = _os(sim)
    plan = _cleanup(sim, "--plan")
    assert plan.exit_code == 0 and not [i for i in _items(plan) if i["id"] == trunk_id and i["state"] == "planned"]
    result = _cleanup(sim, "--yes")
    assert result.exit_code == 0, result.output
    after = _os(sim)
    _unchanged(before, after, "trunks", trunk_id)
    _unchanged(before, after, "ports", sub_id)
    # The network is kept whole, naming the trunk (and whose it is); nothing on it was touched.
    assert {p["id"] for p in before["ports"] if p["network_id"] == net["id"]} <= set(_by_id(after, "ports"))
    item = next(i for i in _items(result) if i["id"] == net["id"])
    if whose == "another project's":  # the subport itself is another project's port: that is the reason
        assert item["state"] == "kept" and team_b in item["reason"] and sub_id in item["reason"], item
    else:
        assert item["state"] == "kept" and trunk_id in item["reason"] and "vm-trunk" in item["reason"], item
    assert not [r for r in sim.writes() if trunk_id in r["path"]]
    assert other_net["id"] not in _by_id(after, "networks")  # independent namespaces still cleaned up


def test_a_kuryrnetwork_pointing_at_a_users_network_gives_no_evidence_for_the_trunks_on_it(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate=LEANING)
    before = _os(sim)
    user_net = _named(before, "networks", "user-net")
    trunk_id, sub_id = _user_trunk(sim, user_net)
    namespace = _app_namespace(sim)
    with sim.store.lock:
        sim.store.kube_get("openstack.org/v1", "KuryrNetwork", namespace, namespace)["status"]["netId"] = user_net["id"]
    _result, before, after = _cleanup_keeping(sim, trunk_id, sub_id)
    _unchanged(before, after, "networks", user_net["id"])


def test_a_group_another_owners_rule_allows_traffic_from_is_kept_and_the_rule_survives(make_sim: Any) -> None:
    from kuryr_cleanup.sim import neutron

    sim = migrated_sim(make_sim, generate=LEANING)
    state = _os(sim)
    infra = sim.store.infra_id
    pods = next(g for g in state["security_groups"] if g["name"] == f"{infra}-kuryr-pods-security-group"
                and _tag(sim) in g["tags"])
    policy = next(g for g in state["security_groups"] if _tag(sim) in g["tags"]
                  and (g.get("description") or "").startswith("Kuryr-Kubernetes Network Policy"))
    with sim.store.lock:
        team_b = sim.store.settings["other_projects"]["team-b"]
        user_sg = _named(state, "security_groups", "user-sg")
        web = next(g for g in state["security_groups"] if g["name"] == "web" and g["project_id"] == team_b)
        user_rule = neutron.create_security_group_rule(sim.store, security_group_id=user_sg["id"], protocol="tcp",
                                                       port_range_min=5432, port_range_max=5432,
                                                       remote_group_id=pods["id"])
        team_b_rule = neutron.create_security_group_rule(sim.store, security_group_id=web["id"], protocol="tcp",
                                                         port_range_min=8443, port_range_max=8443,
                                                         remote_group_id=policy["id"], project_id=team_b)
    plan = _cleanup(sim, "--plan")
    kept = {i["id"]: i for i in _items(plan) if i["state"] == "kept"}
    assert user_rule["id"] in kept[pods["id"]]["reason"] and "user-sg" in kept[pods["id"]]["reason"]
    assert team_b_rule["id"] in kept[policy["id"]]["reason"] and team_b in kept[policy["id"]]["reason"]
    result = _cleanup(sim, "--yes")
    assert result.exit_code == 0, result.output
    after = _os(sim)
    rules = {r["id"] for r in after["security_group_rules"]}
    assert {user_rule["id"], team_b_rule["id"]} <= rules
    assert {pods["id"], policy["id"]} <= set(_by_id(after, "security_groups"))


def test_this_clusters_own_rules_that_name_a_deleted_group_go_with_it_and_are_journaled(make_sim: Any) -> None:
    from kuryr_cleanup.sim import neutron

    sim = migrated_sim(make_sim, generate=SPEC)
    state = _os(sim)
    infra = sim.store.infra_id
    pods = next(g for g in state["security_groups"] if g["name"] == f"{infra}-kuryr-pods-security-group")
    master = _named(state, "security_groups", f"{infra}-master")
    with sim.store.lock:
        rule = neutron.create_security_group_rule(sim.store, security_group_id=master["id"], protocol="tcp",
                                                  port_range_min=6443, port_range_max=6443, remote_group_id=pods["id"])
    plan = _cleanup(sim, "--plan", cloud="sim")
    item = next(i for i in _items(plan) if i["id"] == pods["id"])
    assert item["state"] == "planned" and "1 rule(s) of this cluster's groups" in item["evidence"], item
    result = _cleanup(sim, "--yes", cloud="sim")
    assert result.exit_code == 0, result.output
    assert pods["id"] not in _by_id(_os(sim), "security_groups")
    journal = [json.loads(line) for line in (sim.workdir / "run" / "journal.jsonl").read_text().splitlines()]
    recorded = [r for r in journal if r.get("id") == pods["id"] and r.get("related")]
    assert recorded and rule["id"] in {x["id"] for x in recorded[0]["related"]["rules_naming_it"]}


def test_a_users_load_balancer_on_our_pod_subnet_keeps_that_network_whole(make_sim: Any) -> None:
    from kuryr_cleanup.sim import octavia

    sim = migrated_sim(make_sim, generate=LEANING)
    kn, net = _namespace_network(sim, _app_namespace(sim))
    with sim.store.lock:
        lb = octavia.create_loadbalancer(sim.store, name="team-lb-on-pod-net", vip_subnet_id=kn["status"]["subnetId"],
                                         provisioning_status="ACTIVE", description="")
    before = _os(sim)
    result = _cleanup(sim, "--yes")
    assert result.exit_code == 0, result.output
    after = _os(sim)
    _unchanged(before, after, "loadbalancers", lb["id"])
    assert {p["id"] for p in before["ports"] if p["network_id"] == net["id"]} <= set(_by_id(after, "ports"))
    item = next(i for i in _items(result) if i["id"] == net["id"])
    assert item["state"] == "kept" and "VIP of a load balancer that is not this cluster's" in item["reason"]


def test_a_tag_copied_into_a_description_or_beside_another_clusters_is_no_evidence(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate=f"{SPEC},octavia-upgraded")
    tag = _tag(sim)
    with sim.store.lock:
        described = [lb for lb in sim.store.os["loadbalancers"].values() if tag in (lb.get("description") or "")
                     and tag not in lb.get("tags", [])]
        assert described
        copied = described[0]
        copied["description"] = f"copied-from-{tag}"
        for klb in sim.store.kube_objects("openstack.org/v1", "KuryrLoadBalancer").values():
            if ((klb.get("status") or {}).get("loadbalancer") or {}).get("id") == copied["id"]:
                klb["status"]["loadbalancer"]["id"] = "00000000-0000-4000-8000-000000000000"
        pool = next(p for p in sim.store.os["subnetpools"].values() if tag in p["tags"])
        pool["tags"] = [tag, OTHER_TAG]
    before = _os(sim)
    result = _cleanup(sim, "--yes", cloud="sim")
    after = _os(sim)
    assert result.exit_code == 0, result.output
    assert copied["id"] in _by_id(after, "loadbalancers")
    _unchanged(before, after, "subnetpools", pool["id"])
    item = next(i for i in _items(result) if i["id"] == pool["id"])
    assert item["state"] == "kept" and OTHER_TAG in item["reason"], item


def _cloud_scoped_to(sim: Any, cloud: str, project_name: str) -> None:
    """A clouds.yaml entry as a cloud admin often has it: the admin's credentials, scoped to another
    project than the cluster's (the cloud's own `admin` project)."""
    path = Path(sim.env["OS_CLIENT_CONFIG_FILE"])
    clouds = yaml.safe_load(path.read_text())
    entry = copy.deepcopy(clouds["clouds"]["sim-admin"])
    entry["auth"]["project_name"] = project_name
    clouds["clouds"][cloud] = entry
    path.write_text(yaml.safe_dump(clouds))


def test_credentials_scoped_to_another_project_are_refused_before_anything(make_sim: Any, tmp_path: Path) -> None:
    """Such a run would find none of the cluster's OpenStack resources, yet strip every Kuryr finalizer
    and delete openshift-kuryr: the leftovers would be orphaned, the CRs that named them gone."""
    sim = make_sim(generate=f"{SMALL},other-project", delays=MIGRATION_DELAYS)
    _cloud_scoped_to(sim, "admin-project", "admin")
    admin_project = sim.store.settings["other_projects"]["admin"]
    before = sim.state()
    sim.clear_requests()
    run_dir = tmp_path / "run"
    backup = "--etcd-backup-confirmed"
    for command, *args in (["cleanup", "--plan", "--force"], ["cleanup", "--yes", "--force"], ["run", "--plan"],
                           ["run", "--yes", backup], ["migrate", "--yes", backup]):
        result = kuryr(sim, run_dir, command, "--os-cloud", "admin-project", *args)
        assert result.exit_code == 2, text(result)
        lines = result.stderr.splitlines()
        assert len(lines) == 1, lines
        assert (f"in project {sim.store.project_id} (KuryrNetwork spec.projectId" in lines[0]
                and f"scoped to project {admin_project}" in lines[0]), lines[0]
    assert sim.writes() == []
    assert {**sim.state(), "captured_at": None} == {**before, "captured_at": None}
    assert not run_dir.exists()
    # The same admin, scoped to the cluster's project, is not refused.
    allowed = kuryr(sim, run_dir, "cleanup", "--plan", "--force", "--os-cloud", "sim-admin")
    assert allowed.exit_code == 0, text(allowed)


def test_crs_naming_several_projects_one_of_them_the_credentials_are_not_refused(make_sim: Any) -> None:
    """Kuryr's annotation project driver puts a namespace's resources in a project of its own."""
    sim = migrated_sim(make_sim, generate=SPEC)
    namespace = _app_namespace(sim)
    with sim.store.lock:
        kn = sim.store.kube_get("openstack.org/v1", "KuryrNetwork", namespace, namespace)
        assert kn is not None
        kn["spec"]["projectId"] = "0123456789abcdef0123456789abcdef"
    planned = kuryr_migrate(sim, "cleanup", "--plan", *FAST)
    assert planned.exit_code == 0, planned.output


def test_a_rule_naming_our_group_made_during_the_run_keeps_the_group(make_sim: Any) -> None:
    """Between the plan and the group's turn (after every network is gone: minutes at scale) a user adds
    a rule allowing traffic from the pods group: Neutron would take it with the group, silently."""
    import threading

    from kuryr_cleanup.sim import neutron
    from tests.test_cleanup import _wait_for

    sim = migrated_sim(make_sim, generate=LEANING)
    state = _os(sim)
    pods = next(g for g in state["security_groups"] if g["name"] == f"{sim.store.infra_id}-kuryr-pods-security-group"
                and _tag(sim) in g["tags"])
    user_sg = _named(state, "security_groups", "user-sg")
    # Every network deletion is held (B13 comes after them) until the user has made the rule.
    sim.control("PUT", "faults", [{"service": "network", "method": "DELETE", "path": "/v2.0/networks/*",
                                   "status": -1}])
    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(run=_cleanup(sim, "--yes")))
    runner.start()
    _wait_for(lambda: sim.control("GET", "faults")["faults"][0]["fired"] >= 1)
    with sim.store.lock:
        rule = neutron.create_security_group_rule(sim.store, security_group_id=user_sg["id"], protocol="tcp",
                                                  port_range_min=5432, port_range_max=5432, remote_group_id=pods["id"])
    sim.control("PUT", "faults", [])
    sim.control("POST", "faults/release")
    runner.join(timeout=600)
    assert not runner.is_alive(), "the cleanup did not finish"
    result = outcome["run"]
    assert result.exit_code == 1, result.output
    after = _os(sim)
    assert rule["id"] in {r["id"] for r in after["security_group_rules"]}
    assert pods["id"] in _by_id(after, "security_groups")
    item = next(i for i in _items(result) if i["id"] == pods["id"])
    assert item["state"] == "failed" and rule["id"] in item["reason"] and "user-sg" in item["reason"], item


@pytest.mark.parametrize("port", [
    {"name": "user-reserved-vip"},  # an address a user reserved: no owner, not Kuryr's name
    {"name": "user-bm", "device_owner": "baremetal:none"},
    {"name": "manila-port", "device_owner": "manila:share"},
    {"name": "teamb-port", "project": "team-b"},  # another project's, made by an admin
])
def test_a_port_kuryr_does_not_make_keeps_its_network_whole(make_sim: Any, port: dict[str, str]) -> None:
    from kuryr_cleanup.sim import neutron

    sim = migrated_sim(make_sim, generate=LEANING)
    kn, net = _namespace_network(sim, _app_namespace(sim))
    with sim.store.lock:
        owned = {"project_id": sim.store.settings["other_projects"]["team-b"]} if port.get("project") else {}
        made = neutron.create_port(sim.store, name=port["name"], network_id=net["id"],
                                   device_owner=port.get("device_owner", ""), **owned)
    before = _os(sim)
    result = _cleanup(sim, "--yes")
    assert result.exit_code == 0, result.output
    after = _os(sim)
    # Kept whole: every port on it (its router interface too), the port itself untouched.
    assert {p["id"] for p in before["ports"] if p["network_id"] == net["id"]} <= set(_by_id(after, "ports"))
    _unchanged(before, after, "ports", made["id"])
    item = next(i for i in _items(result) if i["id"] == net["id"])
    assert item["state"] == "kept" and made["id"] in item["reason"], item


def test_a_pods_port_taken_off_its_trunk_by_an_interrupted_run_is_still_kuryrs(make_sim: Any) -> None:
    """After B11 a port has no owner: a re-run must still take it for the pod's (its name), not keep the
    network for it."""
    sim = migrated_sim(make_sim, generate=SPEC)
    kn, net = _namespace_network(sim, _app_namespace(sim))
    with sim.store.lock:
        for p in sim.store.os["ports"].values():
            if p["network_id"] == net["id"] and p["device_owner"] == "trunk:subport":
                p["device_owner"], p["device_id"], p["tags"] = "", "", []  # untagged too: its tagging failed
    result = _cleanup(sim, "--yes", cloud="sim")
    assert result.exit_code == 0, result.output
    assert net["id"] not in _by_id(_os(sim), "networks")


def test_a_kuryrnetwork_subnet_pointer_to_the_nodes_subnet_keeps_the_router(make_sim: Any) -> None:
    """`status.subnetId` is a pointer too: naming the nodes' subnet must not make B18 take it off the
    router and delete the router the nodes use."""
    sim = migrated_sim(make_sim, generate=f"{SPEC},second-cluster,installer-router=no")
    before = _os(sim)
    nodes_subnet = _named(before, "subnets", f"{sim.store.infra_id}-nodes")
    namespace = _app_namespace(sim)
    with sim.store.lock:
        sim.store.kube_get("openstack.org/v1", "KuryrNetwork", namespace, namespace)["status"]["subnetId"] = \
            nodes_subnet["id"]
    result = _cleanup(sim, "--yes", cloud="sim")
    assert result.exit_code == 0, result.output
    after = _os(sim)
    routers = [p["device_id"] for p in before["ports"] if p["device_owner"].startswith("network:router_interface")
               and any(ip["subnet_id"] == nodes_subnet["id"] for ip in p["fixed_ips"])]
    assert routers and set(routers) <= set(_by_id(after, "routers"))
    assert [p for p in after["ports"] if p["device_id"] in routers
            and any(ip["subnet_id"] == nodes_subnet["id"] for ip in p["fixed_ips"])]


@pytest.mark.parametrize("tags", [[OTHER_TAG], []])
def test_a_group_named_like_ours_but_not_ours_keeps_the_group_its_rule_names(make_sim: Any, tags: list[str]) -> None:
    from kuryr_cleanup.sim import neutron

    sim = migrated_sim(make_sim, generate=SPEC)
    infra = sim.store.infra_id
    pods = next(g for g in _os(sim)["security_groups"] if g["name"] == f"{infra}-kuryr-pods-security-group")
    with sim.store.lock:
        group = neutron.create_security_group(sim.store, name=f"{infra}-userapp", description="my app")
        if tags:
            neutron.set_tags(sim.store, "security_groups", group["id"], tags)
        rule = neutron.create_security_group_rule(sim.store, security_group_id=group["id"], protocol="tcp",
                                                  port_range_min=8080, port_range_max=8080, remote_group_id=pods["id"])
    result = _cleanup(sim, "--yes", cloud="sim")
    assert result.exit_code == 0, result.output
    after = _os(sim)
    assert rule["id"] in {r["id"] for r in after["security_group_rules"]}
    item = next(i for i in _items(result) if i["id"] == pods["id"])
    assert item["state"] == "kept" and rule["id"] in item["reason"], item


def test_a_users_trunk_named_like_a_nodes_is_not_a_nodes(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate=LEANING)
    _kn, net = _namespace_network(sim, _app_namespace(sim))
    trunk_id, sub_id = _user_trunk(sim, net)
    with sim.store.lock:
        sim.store.os["trunks"][trunk_id]["name"] = f"{sim.store.infra_id}-uservm-trunk"
    result, _before, _after = _cleanup_keeping(sim, trunk_id, sub_id)
    item = next(i for i in _items(result) if i["id"] == net["id"])
    assert item["state"] == "kept" and trunk_id in item["reason"], item


def test_a_kept_groups_rule_naming_a_deleted_group_is_in_the_plan_and_the_journal(make_sim: Any) -> None:
    """B's rule names A; a user's rule names B: B is kept, A goes, and Neutron takes B's rule with A."""
    from kuryr_cleanup.sim import neutron

    sim = migrated_sim(make_sim, generate=LEANING)
    state = _os(sim)
    policy = sorted((g for g in state["security_groups"] if _tag(sim) in g["tags"]
                     and (g.get("description") or "").startswith("Kuryr-Kubernetes Network Policy")),
                    key=lambda g: g["name"])
    a, b = policy[0], policy[1]
    user_sg = _named(state, "security_groups", "user-sg")
    with sim.store.lock:
        b_rule = neutron.create_security_group_rule(sim.store, security_group_id=b["id"], protocol="tcp",
                                                    port_range_min=80, port_range_max=80, remote_group_id=a["id"])
        neutron.create_security_group_rule(sim.store, security_group_id=user_sg["id"], protocol="tcp",
                                           port_range_min=81, port_range_max=81, remote_group_id=b["id"])
    result = _cleanup(sim, "--yes")
    assert result.exit_code == 0, result.output
    items = {i["id"]: i for i in _items(result)}
    assert items[b["id"]]["state"] == "kept" and items[a["id"]]["state"] == "done"
    assert "1 rule(s) of this cluster's groups" in items[a["id"]]["evidence"], items[a["id"]]
    journal = [json.loads(line) for line in (sim.workdir / "run" / "journal.jsonl").read_text().splitlines()]
    recorded = [r for r in journal if r.get("id") == a["id"] and r.get("related")]
    assert recorded and b_rule["id"] in {x["id"] for x in recorded[0]["related"]["rules_naming_it"]}
