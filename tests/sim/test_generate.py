"""The scenario generator: Kuryr-shaped clouds and clusters, the options, and the recorded fixtures."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from kuryr_cleanup.sim.generate import (
    FIXTURES,
    INSTALLER_ROUTER_DESCRIPTION,
    KURYR_FIP_DESCRIPTION,
    KURYR_POOL_PORT_NAME,
    ScenarioSpec,
    cluster_tag,
    fixture_snapshot,
    generate_scenario,
)
from kuryr_cleanup.sim.store import Store
from tests.conftest import FIXTURES as FIXTURES_DIR

KURYR = "openstack.org/v1"


def generated(text: str = "") -> Store:
    store = Store()
    generate_scenario(store, ScenarioSpec.parse(text))
    return store


def kube(store: Store, api_version: str, kind: str) -> list[dict[str, Any]]:
    return list(store.kube_objects(api_version, kind).values())


def named(store: Store, collection: str, name: str) -> list[dict[str, Any]]:
    return [r for r in store.os[collection].values() if r.get("name") == name]


# -- the spec ----------------------------------------------------------------------------------------
def test_spec_defaults_are_a_small_cluster() -> None:
    spec = ScenarioSpec.parse("")
    assert (spec.namespaces, spec.masters) == (5, 3)
    assert ScenarioSpec.parse("namespaces=50,pods=4,fips,installer-router=no,octavia=2.4,infra-id=abc-x1y2z") == \
        ScenarioSpec(namespaces=50, pods=4, fips=True, installer_router=False, octavia="2.4", infra_id="abc-x1y2z")


@pytest.mark.parametrize("text, message", [
    ("nodes=3", "unknown scenario key 'nodes'"),
    ("pods=many", "not a whole number"),
    ("fips=maybe", "expected yes or no"),
    ("octavia=3", "Octavia API version"),
    ("masters=0", "at least 1"),
    ("infra-id=Bad_Name", "infraID"),
    ("lb-provider=ovn,octavia=2.4", "needs Octavia >= 2.6"),
])
def test_bad_spec_is_a_clear_value_error(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ScenarioSpec.parse(text)


def test_same_seed_same_cloud_other_seed_other_ids() -> None:
    text = "namespaces=3,second-cluster,fips,untagged=1,error-lbs=1"
    first, second = fixture_snapshot(text), fixture_snapshot(text)
    assert first == second
    other = fixture_snapshot(text + ",seed=8")
    assert other["infra_id"] != first["infra_id"]


# -- the default scenario's invariants -------------------------------------------------------------
def test_every_kuryrnetwork_names_an_existing_tagged_network_subnet_and_the_router() -> None:
    store = generated()
    tag = cluster_tag(store.infra_id or "")
    networks = kube(store, KURYR, "KuryrNetwork")
    namespaces = {o["metadata"]["name"]: o for o in kube(store, "v1", "Namespace")}
    assert len(namespaces) == 5 + 7
    # Kuryr makes a network only for a namespace with pods on the pod network: not `default` (no pods),
    # `openshift-kuryr` (Kuryr's own pods) or `openshift-ingress` (routers on the host network).
    assert sorted(kn["metadata"]["name"] for kn in networks) == [
        "ns-1", "ns-2", "ns-3", "ns-4", "ns-5", "openshift-dns", "openshift-machine-config-operator",
        "openshift-monitoring", "openshift-multus"]
    router_ids = {kn["status"]["routerId"] for kn in networks}
    assert len(router_ids) == 1
    router = store.os["routers"][router_ids.pop()]
    assert router["name"] == f"{store.infra_id}-external-router"
    assert router["description"] == INSTALLER_ROUTER_DESCRIPTION
    interface_subnets = {f["subnet_id"] for p in store.os["ports"].values()
                         if p["device_id"] == router["id"] and p["device_owner"] == "network:router_interface"
                         for f in p["fixed_ips"]}
    for kn in networks:
        assert kn["metadata"]["finalizers"] == ["kuryrnetwork.finalizers.kuryr.openstack.org"]
        status = kn["status"]
        network = store.os["networks"][status["netId"]]
        subnet = store.os["subnets"][status["subnetId"]]
        ns = namespaces[kn["metadata"]["name"]]
        assert network["name"] == f"{ns['metadata']['uid']}/{ns['metadata']['name']}"
        assert subnet["network_id"] == network["id"] and subnet["cidr"] == status["subnetCIDR"]
        assert tag in network["tags"] and tag in subnet["tags"]
        assert subnet["subnetpool_id"] == named(store, "subnetpools", f"{store.infra_id}-kuryr-pod-subnetpool")[0]["id"]
        assert subnet["id"] in interface_subnets


def test_every_pod_port_is_a_tagged_subport_of_its_nodes_trunk() -> None:
    store = generated("pool-ports=2")
    tag = cluster_tag(store.infra_id or "")
    servers = {s["id"]: s for s in store.os["servers"].values()}
    node_of_trunk = {}
    for trunk in store.os["trunks"].values():
        parent = store.os["ports"][trunk["port_id"]]
        node_of_trunk[trunk["id"]] = servers[parent["device_id"]]["name"]
        assert trunk["name"] == f"{node_of_trunk[trunk['id']]}-trunk" and tag in trunk["tags"]
    kuryr_ports = kube(store, KURYR, "KuryrPort")
    pods = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in kube(store, "v1", "Pod")}
    assert kuryr_ports
    for kp in kuryr_ports:
        assert kp["metadata"]["finalizers"] == ["kuryr.openstack.org/kuryrport-finalizer"]
        vif = kp["status"]["vifs"]["eth0"]["vif"]["versioned_object.data"]
        port = store.os["ports"][vif["id"]]
        pod = pods[(kp["metadata"]["namespace"], kp["metadata"]["name"])]
        assert pod["metadata"]["finalizers"] == ["kuryr.openstack.org/pod-finalizer"]
        assert kp["spec"] == {"podUid": pod["metadata"]["uid"], "podNodeName": pod["spec"]["nodeName"]}
        assert port["device_owner"] == "trunk:subport" and tag in port["tags"]
        assert node_of_trunk[port["device_id"]] == pod["spec"]["nodeName"]
        assert port["fixed_ips"][0]["ip_address"] == pod["status"]["podIP"]
    pool_ports = named(store, "ports", KURYR_POOL_PORT_NAME)
    assert pool_ports and all(p["device_owner"] == "trunk:subport" and tag in p["tags"] for p in pool_ports)
    # Host-network pods (kuryr-cni, multus, machine-config-daemon) have no port and no Kuryr finalizer.
    cni = [p for key, p in pods.items() if key[0] == "openshift-kuryr"]
    assert cni and all(not p["metadata"].get("finalizers") and p["spec"]["hostNetwork"] for p in cni)
    assert store.kube_get(KURYR, "KuryrNetwork", "openshift-kuryr", "openshift-kuryr") is None
    assert not [n for n in store.os["networks"].values() if n["name"].endswith("/openshift-kuryr")]


def test_services_have_lbs_with_members_and_kuryrloadbalancers() -> None:
    store = generated("services=2,pods=4")
    tag = cluster_tag(store.infra_id or "")
    pods_ip = {p["status"].get("podIP") for p in kube(store, "v1", "Pod")}
    service_subnet = named(store, "subnets", f"{store.infra_id}-kuryr-service-subnet")[0]
    for klb in kube(store, KURYR, "KuryrLoadBalancer"):
        assert klb["metadata"]["finalizers"] == ["kuryr.openstack.org/kuryrloadbalancer-finalizers"]
        lb = store.os["loadbalancers"][klb["status"]["loadbalancer"]["id"]]
        assert lb["name"] == f"{klb['metadata']['namespace']}/{klb['metadata']['name']}"
        assert tag in lb["tags"] and lb["provisioning_status"] == "ACTIVE"
        assert lb["vip_subnet_id"] == service_subnet["id"] and lb["vip_address"] == klb["spec"]["ip"]
        assert [listener["id"] for listener in klb["status"]["listeners"]] == [x["id"] for x in lb["listeners"]]
        for member in klb["status"]["members"]:
            assert store.os["members"][member["id"]]["address"] == member["ip"]
        if klb["metadata"]["namespace"].startswith("ns-"):
            assert klb["status"]["members"] and {m["ip"] for m in klb["status"]["members"]} <= pods_ip
    services = kube(store, "v1", "Service")
    guard = [s for s in services if s["metadata"]["name"] == "service-subnet-gateway-ip"]
    assert guard and guard[0]["metadata"]["namespace"] == "openshift-kuryr" and not guard[0]["metadata"].get(
        "finalizers")
    assert guard[0]["spec"]["clusterIP"] == service_subnet["gateway_ip"]
    others = [s for s in services if s is not guard[0]]
    assert all(s["metadata"]["finalizers"] == ["kuryr.openstack.org/service-finalizer"] for s in others)


def test_network_policies_have_tagged_security_groups_on_the_pods() -> None:
    store = generated("policies=2")
    tag = cluster_tag(store.infra_id or "")
    knps = kube(store, KURYR, "KuryrNetworkPolicy")
    assert len(knps) == 10 and len(kube(store, "networking.k8s.io/v1", "NetworkPolicy")) == 10
    for knp in knps:
        ns, name = knp["metadata"]["namespace"], knp["metadata"]["name"]
        assert knp["metadata"]["finalizers"] == ["kuryr.openstack.org/networkpolicy-finalizer"]
        group = store.os["security_groups"][knp["status"]["securityGroupId"]]
        assert group["name"] == f"sg/{ns}-{name}"
        assert group["description"] == f"Kuryr-Kubernetes Network Policy {ns}/{name} SG"
        assert tag in group["tags"]
        for port in store.os["ports"].values():
            if port["name"].startswith(f"{ns}/"):
                assert group["id"] in port["security_groups"]


def test_installer_and_cno_resources_and_cluster_objects() -> None:
    store = generated("masters=3,workers=2")
    infra = store.infra_id
    tag = cluster_tag(infra or "")
    for collection, name in [("networks", f"{infra}-openshift"), ("subnets", f"{infra}-nodes"),
                             ("security_groups", f"{infra}-master"), ("security_groups", f"{infra}-worker"),
                             ("networks", f"{infra}-kuryr-service-network"),
                             ("subnets", f"{infra}-kuryr-service-subnet"),
                             ("security_groups", f"{infra}-kuryr-pods-security-group"),
                             ("subnetpools", f"{infra}-kuryr-pod-subnetpool")]:
        records = named(store, collection, name)
        assert len(records) == 1 and tag in records[0]["tags"], name
    assert named(store, "networks", f"{infra}-openshift")[0]["mtu"] == 1450
    masters = sorted(s["name"] for s in store.os["servers"].values() if "-master-" in s["name"])
    assert masters == [f"{infra}-master-{i}" for i in range(3)]
    # Geneve (UDP 6081) is not open by default: the migration's preflight has to add it.
    rules = [r for r in store.os["security_group_rules"].values() if r["port_range_min"] == 6081]
    assert rules == []
    nodes = kube(store, "v1", "Node")
    assert len(nodes) == 5
    for node in nodes:
        server = store.os["servers"][node["spec"]["providerID"].removeprefix("openstack:///")]
        assert server["name"] == node["metadata"]["name"]
    infrastructure = kube(store, "config.openshift.io/v1", "Infrastructure")[0]
    assert infrastructure["status"]["infrastructureName"] == infra
    network = store.kube_get("config.openshift.io/v1", "Network", "cluster")
    assert network is not None and network["status"]["networkType"] == "Kuryr"
    operator = store.kube_get("operator.openshift.io/v1", "Network", "cluster")
    assert operator is not None and operator["spec"]["defaultNetwork"]["type"] == "Kuryr"
    assert store.kube_get("apps/v1", "DaemonSet", "multus", "openshift-multus") is not None
    assert {p["metadata"]["name"] for p in kube(store, "machineconfiguration.openshift.io/v1", "MachineConfigPool")} \
        == {"master", "worker"}


# -- options -------------------------------------------------------------------------------------
def test_second_cluster_shares_the_project_with_its_own_tag_and_no_kubernetes_objects() -> None:
    store = generated("second-cluster")
    ours = cluster_tag(store.infra_id or "")
    infra_ids = {s["metadata"]["openshiftClusterID"] for s in store.os["servers"].values()
                 if "openshiftClusterID" in s["metadata"]}
    assert len(infra_ids) == 2
    other = cluster_tag((infra_ids - {store.infra_id}).pop())
    for collection in ("networks", "subnets", "ports", "trunks", "security_groups", "subnetpools", "routers"):
        records = store.os[collection].values()
        assert any(other in r["tags"] for r in records), collection
        assert not any(other in r["tags"] and ours in r["tags"] for r in records)
    theirs_np = [g for g in store.os["security_groups"].values() if other in g["tags"]
                 and g["description"].startswith("Kuryr-Kubernetes Network Policy")]
    assert theirs_np
    assert any(other in lb["tags"] for lb in store.os["loadbalancers"].values())
    # Same LB names in both clusters: only the tag tells them apart.
    names = [lb["name"] for lb in store.os["loadbalancers"].values() if lb["name"] == "ns-1/web"]
    assert len(names) == 2
    assert len(kube(store, "config.openshift.io/v1", "Infrastructure")) == 1
    assert len(kube(store, KURYR, "KuryrNetwork")) == 5 + 4


def test_untagged_leftovers_are_still_named_by_our_crs() -> None:
    store = generated("untagged=1")
    tag = cluster_tag(store.infra_id or "")
    kn = store.kube_get(KURYR, "KuryrNetwork", "ns-1", "ns-1")
    assert kn is not None
    assert store.os["networks"][kn["status"]["netId"]]["tags"] == []
    assert store.os["subnets"][kn["status"]["subnetId"]]["tags"] == []
    klb = store.kube_get(KURYR, "KuryrLoadBalancer", "web", "ns-1")
    assert klb is not None and store.os["loadbalancers"][klb["status"]["loadbalancer"]["id"]]["tags"] == []
    knp = store.kube_get(KURYR, "KuryrNetworkPolicy", "allow-from-same-namespace", "ns-1")
    assert knp is not None and store.os["security_groups"][knp["status"]["securityGroupId"]]["tags"] == []
    untagged_ports = [p for p in store.os["ports"].values()
                      if p["network_id"] == kn["status"]["netId"] and p["device_owner"] == "trunk:subport"
                      and tag not in p["tags"]]
    assert len(untagged_ports) == 1
    kn2 = store.kube_get(KURYR, "KuryrNetwork", "ns-2", "ns-2")
    assert kn2 is not None and tag in store.os["networks"][kn2["status"]["netId"]]["tags"]


def test_old_octavia_puts_the_tag_in_descriptions_and_uses_amphora() -> None:
    store = generated("octavia=2.4")
    tag = cluster_tag(store.infra_id or "")
    assert store.settings["octavia_version"] == "2.4"
    kuryr_lbs = [lb for lb in store.os["loadbalancers"].values() if "/" in lb["name"]]
    assert kuryr_lbs and all(lb["description"] == tag and lb["tags"] == [] for lb in kuryr_lbs)
    assert all(lb["provider"] == "amphora" for lb in kuryr_lbs)
    for collection in ("listeners", "pools"):
        kuryr = [r for r in store.os[collection].values() if "/" in r["name"]]
        assert kuryr and all(r["description"] == tag for r in kuryr)
    subnet = named(store, "subnets", f"{store.infra_id}-kuryr-service-subnet")[0]
    assert subnet["cidr"] == "172.30.0.0/15" and subnet["gateway_ip"] == "172.31.255.254"
    assert store.kube_get("v1", "Service", "service-subnet-gateway-ip", "openshift-kuryr") is None


def test_after_an_octavia_upgrade_older_lbs_keep_the_tag_in_their_description(make_sim: Any) -> None:
    sim = make_sim(generate="namespaces=3,octavia-upgraded")
    store = sim.store
    tag = cluster_tag(store.infra_id or "")
    assert store.settings["octavia_version"] == "2.27"
    kuryr_lbs = [lb for lb in store.os["loadbalancers"].values() if "/" in lb["name"]]
    old = [lb for lb in kuryr_lbs if not lb["name"].startswith("ns-2/")]
    new = [lb for lb in kuryr_lbs if lb["name"].startswith("ns-2/")]
    assert old and new and all(lb["provider"] == "amphora" for lb in kuryr_lbs)
    assert all(lb["tags"] == [] and lb["description"] == tag for lb in old)
    assert all(lb["tags"] == [tag] and lb["description"] == "" for lb in new)
    for collection in ("listeners", "pools"):
        for record in store.os[collection].values():
            if "/" in record["name"]:
                old_one = not record["name"].startswith("ns-2/")
                assert (record["tags"], record["description"]) == (([], tag) if old_one else ([tag], ""))
    # Through the API: a tag filter finds only what was made after the upgrade.
    conn = sim.openstack_sdk()
    assert sorted(lb.name for lb in conn.load_balancer.load_balancers(tags=tag)) == sorted(lb["name"] for lb in new)
    with pytest.raises(ValueError, match="octavia-upgraded"):
        ScenarioSpec.parse("octavia=2.4,octavia-upgraded")


def test_legacy_names_lack_the_infra_id_prefix_but_carry_the_tag() -> None:
    store = generated("legacy-names")
    tag = cluster_tag(store.infra_id or "")
    for collection, name in [("networks", "kuryr-service-network"), ("subnets", "kuryr-service-subnet"),
                             ("security_groups", "kuryr-pods-security-group"),
                             ("subnetpools", "kuryr-pod-subnetpool")]:
        records = named(store, collection, name)
        assert len(records) == 1 and tag in records[0]["tags"]
    assert named(store, "security_groups", "sg-ns-1-allow-from-same-namespace")


def test_fips_from_kuryrs_pool_and_from_the_user() -> None:
    store = generated("fips")
    klbs = [k for k in kube(store, KURYR, "KuryrLoadBalancer") if "service_pub_ip_info" in k["status"]]
    methods = sorted(k["status"]["service_pub_ip_info"]["alloc_method"] for k in klbs)
    assert methods == ["pool", "pool", "pool", "user"]
    for klb in klbs:
        info = klb["status"]["service_pub_ip_info"]
        fip = store.os["floatingips"][info["ip_id"]]
        assert fip["port_id"] == klb["status"]["loadbalancer"]["port_id"]
        assert fip["floating_ip_address"] == info["ip_addr"]
        if info["alloc_method"] == "pool":
            assert fip["description"] == KURYR_FIP_DESCRIPTION
        else:
            assert fip["description"] != KURYR_FIP_DESCRIPTION and fip["tags"] == []
            assert klb["spec"]["lb_ip"] == info["ip_addr"]


def test_error_lbs_and_a_router_without_the_installer_description() -> None:
    store = generated("error-lbs=2,installer-router=no,geneve-rule")
    errors = [lb for lb in store.os["loadbalancers"].values() if lb["provisioning_status"] == "ERROR"]
    assert len(errors) == 2 and all(lb["listeners"] == [] for lb in errors)
    router = named(store, "routers", f"{store.infra_id}-external-router")[0]
    assert router["description"] == ""
    assert [r for r in store.os["security_group_rules"].values() if r["port_range_min"] == 6081]


def test_user_resources_carry_no_cluster_tag() -> None:
    store = generated()
    for collection, name in [("networks", "user-net"), ("security_groups", "user-sg"),
                             ("loadbalancers", "user-lb"), ("servers", "user-vm"),
                             ("security_groups", "sg/legacy-app-allow-all")]:
        records = named(store, collection, name)
        assert len(records) == 1 and not records[0].get("tags")
    assert named(store, "security_groups", "sg/legacy-app-allow-all")[0]["description"].startswith(
        "Kuryr-Kubernetes Network Policy")
    assert not generated("user-resources=no").os["loadbalancers"].keys() & {"user-lb"}


def test_nodes_spread_over_availability_zones_round_robin() -> None:
    store = generated("masters=3,workers=3,azs=az1,az2")
    assert ScenarioSpec.parse("azs=az1:az2") == ScenarioSpec.parse("azs=az1,az2")
    servers = {s["id"]: s for s in store.os["servers"].values()}
    nodes = kube(store, "v1", "Node")
    zones = []
    for node in nodes:
        server = servers[node["spec"]["providerID"].removeprefix("openstack:///")]
        zone = server["OS-EXT-AZ:availability_zone"]
        assert node["metadata"]["labels"]["topology.kubernetes.io/zone"] == zone
        port = next(p for p in store.os["ports"].values() if p["device_id"] == server["id"])
        assert port["device_owner"] == f"compute:{zone}"  # Nova binds the port as compute:<its zone>
        zones.append((server["name"], zone))
    by_name = dict(zones)
    masters = [by_name[f"{store.infra_id}-master-{i}"] for i in range(3)]
    assert masters == ["az1", "az2", "az1"] and sorted(by_name.values()) == ["az1", "az1", "az1", "az2", "az2", "az2"]
    # Without the option every node is in Nova's default zone.
    assert {s["OS-EXT-AZ:availability_zone"] for s in generated().os["servers"].values()} == {"nova"}


def test_finished_pods_are_left_as_the_kubelet_and_kuryr_leave_them() -> None:
    store = generated("namespaces=2,finished-pods=3")
    tag = cluster_tag(store.infra_id or "")
    finished = {(p["metadata"]["namespace"], p["metadata"]["name"].rsplit("-", 1)[0]): p
                for p in kube(store, "v1", "Pod") if p["status"]["phase"] in ("Succeeded", "Failed")}
    assert sorted((ns, job, p["status"]["phase"]) for (ns, job), p in finished.items()) == [
        ("ns-1", "batch-2", "Failed"), ("ns-2", "batch-3", "Succeeded"),
        ("openshift-image-registry", "image-pruner-28478880", "Succeeded")]
    kuryr_ports = {(k["metadata"]["namespace"], k["metadata"]["name"]) for k in kube(store, KURYR, "KuryrPort")}
    ports_by_ip = {(f["ip_address"]): p for p in store.os["ports"].values() for f in p["fixed_ips"]
                   if p["device_owner"] == "trunk:subport"}
    for (namespace, _), pod in finished.items():
        meta, status = pod["metadata"], pod["status"]
        assert not meta.get("finalizers") and (namespace, meta["name"]) not in kuryr_ports
        assert meta["ownerReferences"][0]["kind"] == "Job"
        (container,) = status["containerStatuses"]
        terminated = container["state"]["terminated"]
        assert terminated["exitCode"] == (0 if status["phase"] == "Succeeded" else 1)
        assert terminated["finishedAt"] < cluster_version(store)["metadata"]["creationTimestamp"]  # days before
        # Kuryr put the port back in its pool: a tagged subport, with the address the pod had.
        port = ports_by_ip[status["podIP"]]
        assert port["name"] == KURYR_POOL_PORT_NAME and tag in port["tags"]
    assert store.kube_get(KURYR, "KuryrNetwork", "openshift-image-registry", "openshift-image-registry")
    # A namespace whose only pod has finished still has the network Kuryr made for it.
    store = generated("namespaces=1,pods=0,finished-pods=2")
    assert store.kube_get(KURYR, "KuryrNetwork", "ns-1", "ns-1") is not None


def cluster_version(store: Store) -> dict[str, Any]:
    version = store.kube_get("config.openshift.io/v1", "ClusterVersion", "version")
    assert version is not None
    return version


def test_every_cluster_has_a_cluster_version_whose_id_follows_the_seed() -> None:
    version = cluster_version(generated())
    assert version["spec"]["clusterID"] == cluster_version(generated())["spec"]["clusterID"]
    assert str(uuid.UUID(version["spec"]["clusterID"])) == version["spec"]["clusterID"]
    assert cluster_version(generated("seed=8"))["spec"]["clusterID"] != version["spec"]["clusterID"]
    status = version["status"]
    states = {c["type"]: c["status"] for c in status["conditions"]}
    assert (states["Available"], states["Progressing"], states["Failing"]) == ("True", "False", "False")
    assert [(h["state"], h["version"]) for h in status["history"]] == [("Completed", status["desired"]["version"])]


def test_an_upgrading_cluster_and_a_paused_pool() -> None:
    store = generated("upgrading,paused-pool=worker")
    status = cluster_version(store)["status"]
    progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert progressing["status"] == "True" and progressing["message"].startswith("Working towards 4.14.13")
    assert [h["state"] for h in status["history"]] == ["Partial", "Completed"]
    pools = {p["metadata"]["name"]: p for p in kube(store, "machineconfiguration.openshift.io/v1",
                                                    "MachineConfigPool")}
    assert pools["worker"]["spec"]["paused"] is True and pools["master"]["spec"]["paused"] is False
    with pytest.raises(ValueError, match="master or worker"):
        ScenarioSpec.parse("paused-pool=infra")


def test_a_recorded_snapshot_without_a_cluster_version_gets_one_from_its_infra_id() -> None:
    snapshot = fixture_snapshot("namespaces=1")
    snapshot["kubernetes"]["objects"] = [o for o in snapshot["kubernetes"]["objects"]
                                         if o["kind"] != "ClusterVersion"]
    first, second = Store(), Store()
    first.load_snapshot(snapshot)
    second.load_snapshot(snapshot)
    assert cluster_version(first)["spec"]["clusterID"] == cluster_version(second)["spec"]["clusterID"]
    other = Store()
    other.load_snapshot({**snapshot, "infra_id": "other-abc12"})
    assert cluster_version(other)["spec"]["clusterID"] != cluster_version(first)["spec"]["clusterID"]


# -- fixtures ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_recorded_fixture_is_what_the_generator_makes(name: str) -> None:
    recorded = json.loads((FIXTURES_DIR / name).read_text())
    fresh = json.loads(json.dumps(fixture_snapshot(FIXTURES[name])))
    assert recorded == fresh, (
        f"fixtures/{name} is stale: regenerate with `python -m kuryr_cleanup.sim.generate --fixtures fixtures`"
    )
    assert (FIXTURES_DIR / name).stat().st_size < 1_000_000


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_serves_through_the_simulator(make_sim: Any, name: str) -> None:
    snapshot = json.loads((FIXTURES_DIR / name).read_text())
    sim = make_sim(snapshot=FIXTURES_DIR / name)
    tag = cluster_tag(snapshot["infra_id"])
    conn = sim.openstack_sdk()
    tagged = list(conn.network.ports(tags=tag))
    expected = [p["id"] for p in snapshot["openstack"]["ports"] if tag in p["tags"]]
    assert sorted(p.id for p in tagged) == sorted(expected) and expected
    trunks = list(conn.network.trunks(tags=tag))
    assert trunks and all(t.sub_ports for t in trunks)


# -- scale ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_two_thousand_namespaces_generate_in_seconds() -> None:
    started = time.perf_counter()
    store = generated("namespaces=2000,pods=5")
    elapsed = time.perf_counter() - started
    assert len(store.kube_objects(KURYR, "KuryrNetwork")) == 2004
    assert len(store.kube_objects(KURYR, "KuryrPort")) >= 10000
    # Seconds on an idle machine; the bound leaves room for a loaded CI runner.
    assert elapsed < 60, f"generation took {elapsed:.1f}s"
