"""The simulated Octavia v2 API, driven through openstacksdk and the `openstack` CLI.

What the cleanup depends on: LBs settle asynchronously (PENDING_CREATE -> ACTIVE), are immutable
while PENDING_* (409), refuse a plain delete while they have children (400), go PENDING_DELETE and
then 404 after a cascade delete (taking their VIP port with them), can be deleted in ERROR, filter by
tags, page like Octavia, and have no tags at all below API 2.5.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import openstack.exceptions
import pytest

from kuryr_cleanup.sim import neutron, octavia
from kuryr_cleanup.sim.store import Store

CLUSTER_TAG = "openshiftClusterID=sim-abc12"
OTHER_TAG = "openshiftClusterID=other-xyz89"


def _vip_subnet(store: Store) -> dict[str, Any]:
    with store.lock:
        network = neutron.create_network(store, name="sim-abc12-kuryr-service-network")
        return neutron.create_subnet(store, network_id=network["id"], cidr="172.30.0.0/16", ip_version=4)


def _lb(store: Store, subnet: dict[str, Any], **attrs: Any) -> dict[str, Any]:
    with store.lock:
        return octavia.create_loadbalancer(store, vip_subnet_id=subnet["id"], **attrs)


def _lb_with_listener_and_pool(store: Store, subnet: dict[str, Any], name: str, tags: list[str]) -> dict[str, Any]:
    with store.lock:
        lb = octavia.create_loadbalancer(store, vip_subnet_id=subnet["id"], name=name, tags=tags,
                                         provisioning_status="ACTIVE")
        listener = octavia.create_listener(store, loadbalancer_id=lb["id"], protocol="TCP", protocol_port=443,
                                           name=f"{name}:TCP:443", tags=tags)
        pool = octavia.create_pool(store, listener_id=listener["id"], protocol="TCP", lb_algorithm="ROUND_ROBIN",
                                   name=f"{name}:TCP:443", tags=tags)
        octavia.create_member(store, pool["id"], address="10.128.0.5", protocol_port=8443, name="pod-a")
        return lb

@pytest.fixture
def sim(make_sim: Any) -> Any:
    """A simulator whose transitions take long enough that none happens in real time while a test looks;
    tests move the clock past them with `sim.store.advance(SETTLE)`."""
    return make_sim(store=Store(), delays={"lb_create": 5.0, "lb_update": 5.0, "lb_delete": 5.0})


SETTLE = 10.0


# The admin's CLI from the same environment as the tests (python-openstackclient + python-octaviaclient).
OPENSTACK = str(Path(sys.executable).with_name("openstack"))


def _openstack(sim: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OPENSTACK, *args], env=sim.env, capture_output=True, text=True, timeout=120)


# -- the state machine ------------------------------------------------------------------------------
def test_a_new_load_balancer_is_pending_create_until_the_delay_passes_then_active(sim: Any) -> None:
    subnet = _vip_subnet(sim.store)
    conn = sim.openstack_sdk()

    lb = conn.load_balancer.create_load_balancer(name="svc-a", vip_subnet_id=subnet["id"], tags=[CLUSTER_TAG])

    assert lb.provisioning_status == "PENDING_CREATE"
    assert lb.tags == [CLUSTER_TAG]
    with pytest.raises(openstack.exceptions.ConflictException) as conflict:
        conn.load_balancer.update_load_balancer(lb.id, description="changed")
    assert f"Invalid state PENDING_CREATE of loadbalancer resource {lb.id}" in str(conflict.value)

    sim.store.advance(SETTLE)
    settled = conn.load_balancer.get_load_balancer(lb.id)
    assert settled.provisioning_status == "ACTIVE"
    assert settled.operating_status == "ONLINE"


def test_the_vip_port_is_a_neutron_port_owned_by_octavia(sim: Any) -> None:
    subnet = _vip_subnet(sim.store)
    conn = sim.openstack_sdk()

    lb = conn.load_balancer.create_load_balancer(name="svc-a", vip_subnet_id=subnet["id"])

    port = sim.store.os["ports"][lb.vip_port_id]
    assert (port["name"], port["device_owner"], port["device_id"]) == (f"octavia-lb-{lb.id}", "Octavia", f"lb-{lb.id}")
    assert port["fixed_ips"][0]["subnet_id"] == subnet["id"]
    assert port["fixed_ips"][0]["ip_address"] == lb.vip_address
    assert lb.vip_network_id == subnet["network_id"]


def test_an_ovn_provider_lb_has_an_unowned_ovn_lb_vip_port_that_goes_with_it(sim: Any) -> None:
    subnet = _vip_subnet(sim.store)
    lb = _lb(sim.store, subnet, name="svc-a", provider="ovn", provisioning_status="ACTIVE")
    conn = sim.openstack_sdk()

    port = sim.store.os["ports"][lb["vip_port_id"]]
    assert (port["name"], port["device_owner"], port["device_id"]) == (f"ovn-lb-vip-{lb['id']}", "", "")
    assert conn.load_balancer.get_load_balancer(lb["id"]).provider == "ovn"
    conn.load_balancer.delete_load_balancer(lb["id"], cascade=True)
    sim.store.advance(SETTLE)

    assert lb["vip_port_id"] not in sim.store.os["ports"]


def test_changing_an_lb_puts_it_in_pending_update_where_its_children_are_immutable_too(sim: Any) -> None:
    subnet = _vip_subnet(sim.store)
    lb = _lb_with_listener_and_pool(sim.store, subnet, "svc-a", [CLUSTER_TAG])
    conn = sim.openstack_sdk()

    updated = conn.load_balancer.update_load_balancer(lb["id"], description="changed")
    assert updated.provisioning_status == "PENDING_UPDATE"
    with pytest.raises(openstack.exceptions.ConflictException) as conflict:
        conn.load_balancer.delete_load_balancer(lb["id"], cascade=True)
    assert f"Invalid state PENDING_UPDATE of loadbalancer resource {lb['id']}" in str(conflict.value)
    with pytest.raises(openstack.exceptions.ConflictException) as child_conflict:
        conn.load_balancer.update_listener(lb["listeners"][0]["id"], description="x")
    assert f"Load Balancer {lb['id']} is immutable and cannot be updated." in str(child_conflict.value)

    sim.store.advance(SETTLE)
    assert conn.load_balancer.get_load_balancer(lb["id"]).provisioning_status == "ACTIVE"


def test_the_409_body_is_octavias_error_document(sim: Any) -> None:
    subnet = _vip_subnet(sim.store)
    lb = _lb(sim.store, subnet, name="svc-a")
    conn = sim.openstack_sdk()

    response = conn.load_balancer.put(f"/lbaas/loadbalancers/{lb['id']}", json={"loadbalancer": {"name": "x"}})

    assert response.status_code == 409
    assert response.json() == {
        "faultcode": "Client",
        "faultstring": f"Invalid state PENDING_CREATE of loadbalancer resource {lb['id']}",
        "debuginfo": None,
    }


def test_cascade_delete_goes_pending_delete_then_404_with_children_and_vip_port_gone(sim: Any) -> None:
    subnet = _vip_subnet(sim.store)
    lb = _lb_with_listener_and_pool(sim.store, subnet, "svc-a", [CLUSTER_TAG])
    with sim.store.lock:
        external = neutron.create_network(sim.store, name="public", **{"router:external": True})
        neutron.create_subnet(sim.store, network_id=external["id"], cidr="192.0.2.0/24", ip_version=4)
        router = neutron.create_router(sim.store, name="r", external_gateway_info={"network_id": external["id"]})
        neutron.add_router_interface(sim.store, router["id"], subnet_id=subnet["id"])
        fip = neutron.create_floatingip(sim.store, floating_network_id=external["id"], port_id=lb["vip_port_id"],
                                        description="kuryr_lb")
    conn = sim.openstack_sdk()

    conn.load_balancer.delete_load_balancer(lb["id"], cascade=True)

    assert conn.load_balancer.get_load_balancer(lb["id"]).provisioning_status == "PENDING_DELETE"
    sim.store.advance(SETTLE)
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.load_balancer.get_load_balancer(lb["id"])
    for collection in ("listeners", "pools", "members"):
        assert sim.store.os[collection] == {}, collection
    assert lb["vip_port_id"] not in sim.store.os["ports"]
    # Neutron keeps the floating IP, disassociated (what the cleanup must release itself).
    assert sim.store.os["floatingips"][fip["id"]]["port_id"] is None


def test_plain_delete_of_an_lb_with_children_is_400(sim: Any) -> None:
    subnet = _vip_subnet(sim.store)
    lb = _lb_with_listener_and_pool(sim.store, subnet, "svc-a", [CLUSTER_TAG])
    conn = sim.openstack_sdk()

    with pytest.raises(openstack.exceptions.BadRequestException) as bad:
        conn.load_balancer.delete_load_balancer(lb["id"])

    assert f"Cannot delete Load Balancer {lb['id']} - it has children" in str(bad.value)
    assert conn.load_balancer.get_load_balancer(lb["id"]).provisioning_status == "ACTIVE"


def test_an_lb_in_error_can_be_deleted_but_not_changed(sim: Any) -> None:
    subnet = _vip_subnet(sim.store)
    lb = _lb(sim.store, subnet, name="broken", provisioning_status="ERROR")
    conn = sim.openstack_sdk()

    with pytest.raises(openstack.exceptions.ConflictException):
        conn.load_balancer.update_load_balancer(lb["id"], name="renamed")
    conn.load_balancer.delete_load_balancer(lb["id"])
    sim.store.advance(SETTLE)

    assert conn.load_balancer.find_load_balancer(lb["id"]) is None


def test_an_lb_held_pending_refuses_deletion_until_the_hold_ends(sim: Any) -> None:
    subnet = _vip_subnet(sim.store)
    lb = _lb(sim.store, subnet, name="busy", provisioning_status="ACTIVE")
    with sim.store.lock:
        octavia.hold_pending(sim.store, lb["id"], "PENDING_UPDATE", seconds=30)
    conn = sim.openstack_sdk()

    sim.store.advance(10)
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.load_balancer.delete_load_balancer(lb["id"], cascade=True)
    sim.store.advance(25)
    conn.load_balancer.delete_load_balancer(lb["id"], cascade=True)
    sim.store.advance(SETTLE)

    assert lb["id"] not in sim.store.os["loadbalancers"]


def test_a_listener_created_through_the_api_makes_the_lb_pending_update(sim: Any) -> None:
    subnet = _vip_subnet(sim.store)
    lb = _lb(sim.store, subnet, name="svc-a", provisioning_status="ACTIVE")
    conn = sim.openstack_sdk()

    listener = conn.load_balancer.create_listener(loadbalancer_id=lb["id"], protocol="TCP", protocol_port=80)

    assert listener.provisioning_status == "PENDING_CREATE"
    assert conn.load_balancer.get_load_balancer(lb["id"]).provisioning_status == "PENDING_UPDATE"
    sim.store.advance(SETTLE)
    assert conn.load_balancer.get_listener(listener.id).provisioning_status == "ACTIVE"
    assert conn.load_balancer.get_load_balancer(lb["id"]).listeners == [{"id": listener.id}]


# -- lists: tags, filters, pages --------------------------------------------------------------------
def test_tag_filters_select_this_clusters_load_balancers(sim: Any) -> None:
    subnet = _vip_subnet(sim.store)
    ours = _lb(sim.store, subnet, name="ours", tags=[CLUSTER_TAG, "kuryr"], provisioning_status="ACTIVE")
    theirs = _lb(sim.store, subnet, name="theirs", tags=[OTHER_TAG], provisioning_status="ACTIVE")
    untagged = _lb(sim.store, subnet, name="untagged", provisioning_status="ACTIVE")
    conn = sim.openstack_sdk()

    def names(**query: Any) -> set[str]:
        return {lb.name for lb in conn.load_balancer.load_balancers(**query)}

    assert names(tags=CLUSTER_TAG) == {"ours"}
    assert names(tags=f"{CLUSTER_TAG},kuryr") == {"ours"}
    assert names(any_tags=f"{CLUSTER_TAG},{OTHER_TAG}") == {"ours", "theirs"}
    assert names(not_tags=CLUSTER_TAG) == {"theirs", "untagged"}
    assert names(not_any_tags=f"{CLUSTER_TAG},{OTHER_TAG}") == {"untagged"}
    assert names(name="theirs") == {"theirs"}
    assert names(vip_port_id=untagged["vip_port_id"]) == {"untagged"}
    assert {lb.id for lb in conn.load_balancer.load_balancers(provisioning_status="ACTIVE")} == {
        ours["id"], theirs["id"], untagged["id"]}


def test_an_unknown_filter_is_refused_as_octavia_does(sim: Any) -> None:
    subnet = _vip_subnet(sim.store)
    _lb(sim.store, subnet, name="a")
    conn = sim.openstack_sdk()

    response = conn.load_balancer.get("/lbaas/loadbalancers?colour=blue")

    assert response.status_code == 400
    assert response.json()["faultstring"] == "One or more arguments are either duplicate or invalid"


def test_pages_follow_loadbalancers_links(sim: Any) -> None:
    subnet = _vip_subnet(sim.store)
    created = [_lb(sim.store, subnet, name=f"lb-{i}", tags=[CLUSTER_TAG]) for i in range(5)]
    conn = sim.openstack_sdk()

    first = conn.load_balancer.get("/lbaas/loadbalancers?limit=2").json()
    assert len(first["loadbalancers"]) == 2
    assert [link["rel"] for link in first["loadbalancers_links"]] == ["next"]
    marker = first["loadbalancers"][-1]["id"]
    second = conn.load_balancer.get(f"/lbaas/loadbalancers?limit=2&marker={marker}").json()
    assert [link["rel"] for link in second["loadbalancers_links"]] == ["previous", "next"]
    assert not {lb["id"] for lb in first["loadbalancers"]} & {lb["id"] for lb in second["loadbalancers"]}

    sim.clear_requests()
    listed = list(conn.load_balancer.load_balancers(limit=2, tags=CLUSTER_TAG))
    assert sorted(lb.id for lb in listed) == sorted(lb["id"] for lb in created)
    pages = [r for r in sim.requests() if r["path"].endswith("/lbaas/loadbalancers")]
    assert len(pages) >= 3
    assert all("tags=" in r["query"] for r in pages)

    bad = conn.load_balancer.get("/lbaas/loadbalancers?marker=no-such-lb")
    assert bad.status_code == 400


# -- API versions -------------------------------------------------------------------------------------
def test_the_version_document_lists_v2_0_to_the_current_version(make_sim: Any) -> None:
    store = Store()
    store.settings["octavia_version"] = "2.13"
    sim = make_sim(store=store)
    conn = sim.openstack_sdk()

    versions = conn.session.get(f"{sim.server.os_url}/load-balancer/").json()["versions"]

    assert [v["id"] for v in versions] == [f"v2.{i}" for i in range(14)]
    assert [v["id"] for v in versions if v["status"] == "CURRENT"] == ["v2.13"]
    assert all(v["links"][0]["href"].endswith("/load-balancer/v2") for v in versions)


def test_below_2_5_there_are_no_tags_and_tag_filters_are_ignored(make_sim: Any) -> None:
    store = Store()
    store.settings["octavia_version"] = "2.4"
    sim = make_sim(store=store)
    subnet = _vip_subnet(sim.store)
    # Kuryr on an old Octavia puts the cluster tag in the description.
    _lb(sim.store, subnet, name="ours", description=CLUSTER_TAG, provisioning_status="ACTIVE")
    _lb(sim.store, subnet, name="theirs", description=OTHER_TAG, provisioning_status="ACTIVE")
    conn = sim.openstack_sdk()

    listed = conn.load_balancer.get(f"/lbaas/loadbalancers?tags={CLUSTER_TAG}").json()["loadbalancers"]
    assert {lb["name"] for lb in listed} == {"ours", "theirs"}
    assert all("tags" not in lb for lb in listed)
    assert {lb["description"] for lb in listed} == {CLUSTER_TAG, OTHER_TAG}

    refused = conn.load_balancer.post(
        "/lbaas/loadbalancers", json={"loadbalancer": {"vip_subnet_id": subnet["id"], "tags": [CLUSTER_TAG]}}
    )
    assert refused.status_code == 400
    assert "tags" in refused.json()["faultstring"]


def test_requests_without_a_token_are_unauthorized(sim: Any) -> None:
    import urllib.error
    import urllib.request

    url = f"{sim.server.os_url}/load-balancer/v2/lbaas/loadbalancers"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=10)
    assert err.value.code == 401
    with urllib.request.urlopen(f"{sim.server.os_url}/load-balancer/", timeout=10) as versions:
        assert versions.status == 200


def test_injected_faults_come_back_in_octavias_format(sim: Any) -> None:
    conn = sim.openstack_sdk()
    conn.load_balancer.get("/lbaas/loadbalancers")  # discover the endpoint before the fault
    sim.control("PUT", "faults", [{"service": "load-balancer", "method": "GET", "status": 503, "count": 1}])

    response = conn.load_balancer.get("/lbaas/loadbalancers", retriable_status_codes=[])

    assert response.status_code == 503
    assert set(response.json()) == {"faultcode", "faultstring", "debuginfo"}


# -- the admin's CLI ----------------------------------------------------------------------------------
def test_openstack_cli_lists_by_tag_shows_and_cascade_deletes(sim: Any) -> None:
    subnet = _vip_subnet(sim.store)
    ours = _lb_with_listener_and_pool(sim.store, subnet, "ours", [CLUSTER_TAG])
    _lb(sim.store, subnet, name="theirs", tags=[OTHER_TAG], provisioning_status="ACTIVE")

    listed = _openstack(sim, "loadbalancer", "list", "--tags", CLUSTER_TAG, "-f", "json")
    assert listed.returncode == 0, listed.stderr
    assert [lb["name"] for lb in json.loads(listed.stdout)] == ["ours"]

    shown = _openstack(sim, "loadbalancer", "show", ours["id"], "-f", "json")
    assert shown.returncode == 0, shown.stderr
    details = json.loads(shown.stdout)
    assert details["provisioning_status"] == "ACTIVE"
    assert details["vip_port_id"] == ours["vip_port_id"]
    assert CLUSTER_TAG in details["tags"]

    refused = _openstack(sim, "loadbalancer", "delete", ours["id"])
    assert refused.returncode != 0
    assert "it has children" in refused.stderr

    deleted = _openstack(sim, "loadbalancer", "delete", "--cascade", ours["id"])
    assert deleted.returncode == 0, deleted.stderr
    assert sim.store.os["loadbalancers"][ours["id"]]["provisioning_status"] == "PENDING_DELETE"
    sim.store.advance(SETTLE)
    assert ours["id"] not in sim.store.os["loadbalancers"]


def test_a_repeated_filter_is_a_500_not_an_any_of_filter(sim: Any) -> None:
    """Unlike Neutron, Octavia 19 has no `id=a&id=b` "any of" filter: it answers 500 (seen on the real
    service); a tool that batches Neutron lookups must not batch Octavia's."""
    subnet = _vip_subnet(sim.store)
    first, second = _lb(sim.store, subnet, name="a"), _lb(sim.store, subnet, name="b")
    conn = sim.openstack_sdk()
    one = conn.load_balancer.get("/lbaas/loadbalancers", params={"id": first["id"]})
    assert [lb["id"] for lb in one.json()["loadbalancers"]] == [first["id"]]
    both = conn.load_balancer.get("/lbaas/loadbalancers", params={"id": [first["id"], second["id"]]},
                                  raise_exc=False)
    assert both.status_code == 500
