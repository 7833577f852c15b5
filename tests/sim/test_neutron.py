"""The simulated Neutron v2.0, driven through openstacksdk and raw HTTP.

What the cleanup depends on: the order real Neutron forces on deletions (each refusal with its real
error type and status), what it allows (a trunk with subports, a router with its gateway, a network
with only subnets, a port with a floating IP), tag filters (and the 500 on `tags` + `tags-any`),
attribute filters, paging with `<collection>_links`, and fast filtered listings at 20,000 ports.
"""

from __future__ import annotations

import time
from typing import Any

import openstack.exceptions
import pytest
import requests

from kuryr_cleanup.sim import neutron
from kuryr_cleanup.sim.store import Store


class Cloud:
    """A small Kuryr-shaped project: an external network, a router, a namespace network with a trunk."""

    def __init__(self, store: Store) -> None:
        with store.lock:
            self.external = neutron.create_network(store, name="public", **{"router:external": True})
            self.external_subnet = neutron.create_subnet(store, network_id=self.external["id"], cidr="172.24.4.0/24")
            self.pool = neutron.create_subnetpool(store, name="kuryr-pool", prefixes=["10.128.0.0/14"],
                                                  default_prefixlen=26)
            self.router = neutron.create_router(store, name="kuryr-router",
                                                external_gateway_info={"network_id": self.external["id"]})
            self.network = neutron.create_network(store, name="ns/default-net", tags=["openshiftClusterID=abc"])
            self.subnet = neutron.create_subnet(store, network_id=self.network["id"], subnetpool_id=self.pool["id"],
                                                name="ns/default-subnet", tags=["openshiftClusterID=abc"])
            self.interface = neutron.add_router_interface(store, self.router["id"], subnet_id=self.subnet["id"])
            self.group = neutron.create_security_group(store, name="ns/default-sg")
            self.parent = neutron.create_port(store, network_id=self.network["id"], name="parent",
                                              device_owner="compute:nova", device_id="server-1")
            self.subport = neutron.create_port(store, network_id=self.network["id"], name="pod-a",
                                               security_groups=[self.group["id"]], tags=["openshiftClusterID=abc"])
            self.trunk = neutron.create_trunk(store, port_id=self.parent["id"], name="trunk", sub_ports=[
                {"port_id": self.subport["id"], "segmentation_type": "vlan", "segmentation_id": 101}])
            self.fip = neutron.create_floatingip(store, floating_network_id=self.external["id"],
                                                 port_id=self.parent["id"])


@pytest.fixture
def cloud(sim: Any) -> Cloud:
    return Cloud(sim.store)


def _api(sim: Any) -> requests.Session:
    """A raw HTTP session with a token, for what the SDK hides (error bodies, links)."""
    session = requests.Session()
    session.headers["X-Auth-Token"] = sim.openstack_sdk().session.get_token()
    return session


def _url(sim: Any, path: str) -> str:
    return f"{sim.server.os_url}/networking/v2.0/{path}"


def _error(answer: requests.Response) -> tuple[int, str, str]:
    body = answer.json()["NeutronError"]
    assert body["detail"] == ""
    return answer.status_code, body["type"], body["message"]


# -- the model functions ------------------------------------------------------------------------------


def test_records_have_the_fields_the_real_api_returns(sim: Any, cloud: Cloud) -> None:
    port = sim.openstack_sdk().network.get_port(cloud.subport["id"])
    assert port.project_id == sim.store.project_id and port.status == "DOWN"
    assert port.mac_address.startswith("fa:16:3e:")
    assert port.device_owner == "trunk:subport" and port.device_id == cloud.trunk["id"]
    (fixed,) = port.fixed_ips
    assert fixed["subnet_id"] == cloud.subnet["id"]
    assert cloud.subnet["cidr"] == "10.128.0.0/26" and cloud.subnet["gateway_ip"] == "10.128.0.1"
    assert cloud.interface["fixed_ips"][0]["ip_address"] == "10.128.0.1"
    assert cloud.interface["device_owner"] == "network:router_interface"
    assert cloud.parent["trunk_details"]["trunk_id"] == cloud.trunk["id"]
    assert cloud.fip["router_id"] == cloud.router["id"] and cloud.fip["fixed_ip_address"]
    rules = cloud.group["security_group_rules"]
    assert {(r["direction"], r["ethertype"]) for r in rules} == {("egress", "IPv4"), ("egress", "IPv6")}
    assert {r["id"] for r in rules} <= set(sim.store.os["security_group_rules"])


def test_subnets_from_a_pool_get_the_next_free_prefix(sim: Any, cloud: Cloud) -> None:
    with sim.store.lock:
        second = neutron.create_network(sim.store, name="second")
        allocated = [neutron.create_subnet(sim.store, network_id=second["id"], subnetpool_id=cloud.pool["id"])
                     for _ in range(2)]
    assert [s["cidr"] for s in allocated] == ["10.128.0.64/26", "10.128.0.128/26"]


# -- deletions real Neutron refuses ---------------------------------------------------------------------


def test_every_refusal_has_the_real_type_status_and_message(sim: Any, cloud: Cloud) -> None:
    api = _api(sim)
    gateway_port = next(p for p in sim.store.os["ports"].values() if p["device_owner"] == "network:router_gateway")
    fip_port = next(p for p in sim.store.os["ports"].values() if p["device_owner"] == "network:floatingip")
    cases = [
        ("ports/" + cloud.subport["id"], 409, "PortInUseAsSubPort",
         f"Port {cloud.subport['id']} is currently a subport for trunk {cloud.trunk['id']}."),
        ("ports/" + cloud.parent["id"], 409, "PortInUseAsTrunkParent",
         f"Port {cloud.parent['id']} is currently a parent port for trunk {cloud.trunk['id']}."),
        ("networks/" + cloud.network["id"], 409, "NetworkInUse",
         f"Unable to complete operation on network {cloud.network['id']}. There are one or more ports still in "
         "use on the network, id for these ports is: "
         + ",".join(p["id"] for p in sim.store.os["ports"].values() if p["network_id"] == cloud.network["id"])
         + "."),
        ("subnets/" + cloud.subnet["id"], 409, "SubnetInUse",
         f"Unable to complete operation on subnet {cloud.subnet['id']}: One or more ports have an IP allocation "
         "from this subnet."),
        ("routers/" + cloud.router["id"], 409, "RouterInUse",
         f"Router {cloud.router['id']} has ports still attached: {cloud.interface['id']}"),
        ("ports/" + cloud.interface["id"], 409, "ServicePortInUse",
         f"Port {cloud.interface['id']} cannot be deleted directly via the port API: has device owner "
         "network:router_interface."),
        ("ports/" + gateway_port["id"], 409, "ServicePortInUse",
         f"Port {gateway_port['id']} cannot be deleted directly via the port API: has device owner "
         "network:router_gateway."),
        ("ports/" + fip_port["id"], 409, "ServicePortInUse",
         f"Port {fip_port['id']} cannot be deleted directly via the port API: has device owner "
         "network:floatingip."),
        ("subnetpools/" + cloud.pool["id"], 400, "SubnetPoolDeleteError",
         "Unable to delete subnet pool: Subnet pool has existing allocations."),
        ("security-groups/" + cloud.group["id"], 409, "SecurityGroupInUse",
         f"Security Group {cloud.group['id']} in use."),
    ]
    for path, status, error_type, message in cases:
        assert _error(api.delete(_url(sim, path))) == (status, error_type, message), path
    assert sim.writes()[-1]["status"] == 409  # refused, and logged as refused


def test_not_found_types_per_collection(sim: Any) -> None:
    api = _api(sim)
    missing = "00000000-0000-0000-0000-000000000000"
    expected = {
        "networks": ("NetworkNotFound", f"Network {missing} could not be found."),
        "subnets": ("SubnetNotFound", f"Subnet {missing} could not be found."),
        "ports": ("PortNotFound", f"Port {missing} could not be found."),
        "routers": ("RouterNotFound", f"Router {missing} could not be found"),
        "trunks": ("TrunkNotFound", f"Trunk {missing} could not be found."),
        "security-groups": ("SecurityGroupNotFound", f"Security group {missing} does not exist"),
        "subnetpools": ("SubnetPoolNotFound", f"Subnet pool {missing} could not be found."),
        "floatingips": ("FloatingIPNotFound", f"Floating IP {missing} could not be found"),
    }
    for kind, (error_type, message) in expected.items():
        assert _error(api.get(_url(sim, f"{kind}/{missing}"))) == (404, error_type, message)
        assert _error(api.delete(_url(sim, f"{kind}/{missing}")))[:2] == (404, error_type)


def test_router_interface_removal_checks_floating_ips_and_is_404_the_second_time(sim: Any, cloud: Cloud) -> None:
    api = _api(sim)
    remove = _url(sim, f"routers/{cloud.router['id']}/remove_router_interface")
    assert _error(api.put(remove, json={"subnet_id": cloud.subnet["id"]})) == (
        409, "RouterInterfaceInUseByFloatingIP",
        f"Router interface for subnet {cloud.subnet['id']} on router {cloud.router['id']} cannot be deleted, as it "
        "is required by one or more floating IPs.",
    )
    conn = sim.openstack_sdk()
    conn.network.delete_ip(cloud.fip["id"])
    removed = api.put(remove, json={"subnet_id": cloud.subnet["id"]})
    assert removed.status_code == 200
    assert removed.json()["port_id"] == cloud.interface["id"] and removed.json()["subnet_ids"] == [cloud.subnet["id"]]
    assert _error(api.put(remove, json={"subnet_id": cloud.subnet["id"]})) == (
        404, "RouterInterfaceNotFoundForSubnet",
        f"Router {cloud.router['id']} has no interface on subnet {cloud.subnet['id']}",
    )
    # With no interface left the router goes, gateway and all.
    conn.network.delete_router(cloud.router["id"])
    assert not [p for p in sim.store.os["ports"].values() if p["device_id"] == cloud.router["id"]]


def test_trunk_subports_unset_and_a_subport_not_on_the_trunk_is_404(sim: Any, cloud: Cloud) -> None:
    conn = sim.openstack_sdk()
    trunk = conn.network.get_trunk(cloud.trunk["id"])
    conn.network.delete_trunk_subports(trunk, [{"port_id": cloud.subport["id"]}])
    port = conn.network.get_port(cloud.subport["id"])
    assert (port.device_owner, port.device_id) == ("", "")
    assert conn.network.get_trunk_subports(trunk) == {"sub_ports": []}
    answer = _api(sim).put(_url(sim, f"trunks/{trunk.id}/remove_subports"),
                           json={"sub_ports": [{"port_id": cloud.subport["id"]}]})
    assert _error(answer) == (404, "SubPortNotFound",
                              f"SubPort {cloud.subport['id']} on trunk {trunk.id} could not be found.")
    conn.network.add_trunk_subports(trunk, [{"port_id": cloud.subport["id"], "segmentation_type": "vlan",
                                             "segmentation_id": 7}])
    assert conn.network.get_port(cloud.subport["id"]).device_owner == "trunk:subport"


# -- deletions real Neutron allows ----------------------------------------------------------------------


def test_a_trunk_with_subports_can_be_deleted_and_its_subports_become_plain_ports(sim: Any, cloud: Cloud) -> None:
    conn = sim.openstack_sdk()
    conn.network.delete_trunk(cloud.trunk["id"])
    port = conn.network.get_port(cloud.subport["id"])
    assert (port.device_owner, port.device_id) == ("", "")
    conn.network.delete_port(cloud.subport["id"])
    assert "trunk_details" not in sim.store.os["ports"][cloud.parent["id"]]


def test_a_port_with_a_floating_ip_can_be_deleted_and_the_ip_is_disassociated(sim: Any, cloud: Cloud) -> None:
    conn = sim.openstack_sdk()
    conn.network.delete_trunk(cloud.trunk["id"])
    conn.network.delete_port(cloud.parent["id"])
    fip = conn.network.get_ip(cloud.fip["id"])
    assert fip.port_id is None and fip.fixed_ip_address is None and fip.router_id is None


def test_a_network_with_subnets_but_no_ports_goes_with_its_subnets(sim: Any) -> None:
    conn = sim.openstack_sdk()
    network = conn.network.create_network(name="empty")
    subnet = conn.network.create_subnet(network_id=network.id, cidr="10.0.0.0/24", ip_version=4)
    conn.network.delete_network(network)
    assert conn.network.find_subnet(subnet.id) is None
    assert subnet.id not in sim.store.os["subnets"]


def test_security_groups_and_pools_go_once_unused(sim: Any, cloud: Cloud) -> None:
    conn = sim.openstack_sdk()
    conn.network.delete_trunk(cloud.trunk["id"])
    conn.network.delete_port(cloud.subport["id"])
    conn.network.delete_security_group(cloud.group["id"])
    assert not [r for r in sim.store.os["security_group_rules"].values()
                if r["security_group_id"] == cloud.group["id"]]
    with pytest.raises(openstack.exceptions.BadRequestException):
        conn.network.delete_subnet_pool(cloud.pool["id"])


def test_deleting_a_group_removes_the_rules_of_other_groups_that_name_it_as_remote(sim: Any) -> None:
    conn = sim.openstack_sdk()
    pods = conn.network.create_security_group(name="kuryr-pods")
    nodes = conn.network.create_security_group(name="nodes")
    from_pods = conn.network.create_security_group_rule(security_group_id=nodes.id, direction="ingress",
                                                        protocol="tcp", remote_group_id=pods.id)
    kept = conn.network.create_security_group_rule(security_group_id=nodes.id, direction="ingress",
                                                   protocol="udp", remote_ip_prefix="10.0.0.0/8")
    revision = conn.network.get_security_group(nodes.id).revision_number
    conn.network.delete_security_group(pods)
    # As Neutron's foreign key (remote_group_id ... ON DELETE CASCADE) does it.
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.network.get_security_group_rule(from_pods.id)
    assert conn.network.get_security_group_rule(kept.id).remote_ip_prefix == "10.0.0.0/8"
    after = conn.network.get_security_group(nodes.id)
    assert from_pods.id not in {r["id"] for r in after.security_group_rules}
    assert kept.id in {r["id"] for r in after.security_group_rules}
    assert after.revision_number > revision


# -- filters, tags, fields, sorting, paging ---------------------------------------------------------------


def _tagged_networks(sim: Any) -> dict[str, str]:
    conn = sim.openstack_sdk()
    ids = {}
    for name, tags in {"ab": ["a", "b"], "a": ["a"], "b": ["b"], "c": ["c"], "none": []}.items():
        network = conn.network.create_network(name=name)
        conn.network.set_tags(network, tags)
        ids[name] = network.id
    return ids


def test_tag_filters_all_any_and_their_negations(sim: Any) -> None:
    _tagged_networks(sim)
    conn = sim.openstack_sdk()

    def names(**query: Any) -> set[str]:
        return {n.name for n in conn.network.networks(**query)}

    assert names(tags="a,b") == {"ab"}
    assert names(tags=["a", "b"]) == {"ab"}  # repeated parameters add up
    assert names(any_tags="a,c") == {"ab", "a", "c"}
    assert names(not_tags="a,b") == {"a", "b", "c", "none"}
    assert names(not_any_tags=["a", "c"]) == {"b", "none"}
    assert names(any_tags="b", not_tags="a") == {"b"}


def test_tags_and_tags_any_in_one_query_fail_with_500_as_on_real_neutron(sim: Any) -> None:
    _tagged_networks(sim)
    answer = _api(sim).get(_url(sim, "networks"), params={"tags": "a", "tags-any": "b"})
    assert _error(answer) == (500, "HTTPInternalServerError",
                              "Request Failed: internal server error while processing your request.")
    with pytest.raises(openstack.exceptions.HttpException):
        list(sim.openstack_sdk().network.networks(tags="a", any_tags="b"))


def test_single_tag_calls(sim: Any) -> None:
    ids = _tagged_networks(sim)
    api = _api(sim)
    tags = _url(sim, f"networks/{ids['a']}/tags")
    assert api.put(f"{tags}/x").status_code == 201
    assert api.get(f"{tags}/x").status_code == 204
    assert api.get(tags).json() == {"tags": ["a", "x"]}
    assert api.delete(f"{tags}/a").status_code == 204
    assert _error(api.delete(f"{tags}/a"))[:2] == (404, "TagNotFound")
    assert api.put(tags, json={"tags": ["k", "l"]}).json() == {"tags": ["k", "l"]}
    assert api.delete(tags).status_code == 204 and api.get(tags).json() == {"tags": []}


def test_attribute_filters_repeated_values_or_and_unknown_attributes_are_400(sim: Any, cloud: Cloud) -> None:
    conn = sim.openstack_sdk()
    on_network = {p.id for p in conn.network.ports(network_id=cloud.network["id"])}
    assert on_network == {cloud.parent["id"], cloud.subport["id"], cloud.interface["id"]}
    assert [p.id for p in conn.network.ports(device_owner="trunk:subport")] == [cloud.subport["id"]]
    api = _api(sim)
    either = api.get(_url(sim, "ports"), params=[("name", "parent"), ("name", "pod-a")]).json()["ports"]
    assert {p["name"] for p in either} == {"parent", "pod-a"}
    by_ip = api.get(_url(sim, "ports"), params={"fixed_ips": f"subnet_id={cloud.subnet['id']}"}).json()["ports"]
    assert len(by_ip) == 3
    trimmed = api.get(_url(sim, "ports"), params=[("fields", "id"), ("fields", "name"), ("name", "parent")])
    assert trimmed.json() == {"ports": [{"id": cloud.parent["id"], "name": "parent"}]}
    assert _error(api.get(_url(sim, "ports"), params={"colour": "blue"})) == (
        400, "HTTPBadRequest", "[colour] is invalid attribute for filtering")


def test_paging_follows_neutron_links_and_the_sdk_reads_every_page(sim: Any) -> None:
    with sim.store.lock:
        network = neutron.create_network(sim.store, name="paged")
        neutron.create_subnet(sim.store, network_id=network["id"], cidr="10.1.0.0/24")
        ids = sorted(neutron.create_port(sim.store, network_id=network["id"], name=f"p{i}")["id"] for i in range(5))
    api = _api(sim)
    first = api.get(_url(sim, "ports"), params={"limit": 2, "network_id": network["id"]}).json()
    assert [p["id"] for p in first["ports"]] == ids[:2]
    links = {link["rel"]: link["href"] for link in first["ports_links"]}
    assert links["next"].startswith(_url(sim, "ports?"))
    assert f"marker={ids[1]}" in links["next"] and "page_reverse=True" in links["previous"]
    second = api.get(links["next"]).json()
    assert [p["id"] for p in second["ports"]] == ids[2:4]
    last = api.get({link["rel"]: link["href"] for link in second["ports_links"]}["next"]).json()
    assert [p["id"] for p in last["ports"]] == ids[4:]
    assert [link["rel"] for link in last["ports_links"]] == ["previous"]
    sim.clear_requests()
    listed = [p.id for p in sim.openstack_sdk().network.ports(network_id=network["id"], limit=2)]
    assert listed == ids
    # Three pages by the links, then openstacksdk asks once more past the last marker when a limit was
    # given (it does so against a real Neutron too) and gets an empty page.
    assert len([r for r in sim.requests() if r["path"] == "/v2.0/ports"]) == 4


def test_sorting(sim: Any) -> None:
    _tagged_networks(sim)
    api = _api(sim)
    answer = api.get(_url(sim, "networks"), params={"sort_key": "name", "sort_dir": "desc"}).json()
    assert [n["name"] for n in answer["networks"]] == ["none", "c", "b", "ab", "a"]
    assert _error(api.get(_url(sim, "networks"), params={"sort_key": "colour", "sort_dir": "asc"}))[0] == 400


# -- the API around the resources ---------------------------------------------------------------------


def test_version_discovery_and_extensions(sim: Any) -> None:
    api = _api(sim)
    versions = requests.get(f"{sim.server.os_url}/networking/", timeout=10).json()["versions"]
    assert versions[0]["id"] == "v2.0" and versions[0]["status"] == "CURRENT"
    aliases = {e["alias"] for e in api.get(_url(sim, "extensions")).json()["extensions"]}
    assert {"tag", "standard-attr-tag", "trunk", "router", "security-group", "subnet_allocation",
            "tag-ports-during-bulk-creation"} - aliases <= {"tag"}
    assert "standard-attr-tag" in aliases
    assert sim.openstack_sdk().network.find_extension("trunk") is not None


def test_without_the_tag_extension_tags_are_absent(sim: Any) -> None:
    ids = _tagged_networks(sim)
    sim.store.settings["neutron_tag_extension"] = False
    api = _api(sim)
    aliases = {e["alias"] for e in api.get(_url(sim, "extensions")).json()["extensions"]}
    assert not aliases & {"standard-attr-tag", "tag-ports-during-bulk-creation", "tag-creation"}
    assert "tags" not in api.get(_url(sim, f"networks/{ids['a']}")).json()["network"]
    assert api.put(_url(sim, f"networks/{ids['a']}/tags/x")).status_code == 404
    assert _error(api.get(_url(sim, "networks"), params={"tags": "a"}))[0] == 400


def test_bulk_port_create_with_tags(sim: Any) -> None:
    network = sim.openstack_sdk().network.create_network(name="bulk")
    api = _api(sim)
    api.post(_url(sim, "subnets"), json={"subnet": {"network_id": network.id, "cidr": "10.2.0.0/24",
                                                    "ip_version": 4}}).raise_for_status()
    answer = api.post(_url(sim, "ports"), json={"ports": [
        {"network_id": network.id, "name": f"bulk-{i}", "tags": ["kuryr"]} for i in range(3)]})
    assert answer.status_code == 201
    ports = answer.json()["ports"]
    assert [p["tags"] for p in ports] == [["kuryr"]] * 3
    assert len({p["fixed_ips"][0]["ip_address"] for p in ports}) == 3


def test_injected_faults_answer_in_neutron_error_format(sim: Any) -> None:
    sim.control("PUT", "faults", [{"service": "network", "method": "GET", "path": "/v2.0/ports", "status": 503,
                                   "count": 1}])
    answer = _api(sim).get(_url(sim, "ports"))
    assert _error(answer)[:2] == (503, "HTTPServiceUnavailable")
    assert list(sim.openstack_sdk().network.ports()) == []


def test_a_filtered_listing_among_20000_ports_is_fast(sim: Any) -> None:
    store = sim.store
    with store.lock:
        pool = neutron.create_subnetpool(store, prefixes=["10.128.0.0/14"], default_prefixlen=26)
        networks = []
        for i in range(400):
            network = neutron.create_network(store, name=f"ns-{i}")
            neutron.create_subnet(store, network_id=network["id"], subnetpool_id=pool["id"])
            networks.append(network)
            for j in range(50):
                neutron.create_port(store, network_id=network["id"], name=f"pod-{i}-{j}",
                                    tags=["openshiftClusterID=abc", f"ns-{i}"])
    assert len(store.os["ports"]) == 20000
    conn = sim.openstack_sdk()
    list(conn.network.networks(name="warm-up"))
    started = time.monotonic()
    by_tag = list(conn.network.ports(tags=["openshiftClusterID=abc", "ns-321"]))
    elapsed = time.monotonic() - started
    assert len(by_tag) == 50
    assert elapsed < 1.0, f"a filtered listing through openstacksdk took {elapsed:.2f}s"
    # Most of the SDK's time is its own Port objects; the server's part is a few milliseconds.
    api = _api(sim)
    started = time.monotonic()
    raw = api.get(_url(sim, "ports"), params={"network_id": networks[123]["id"]})
    elapsed = time.monotonic() - started
    assert len(raw.json()["ports"]) == 50
    assert elapsed < 0.5, f"a filtered listing over HTTP took {elapsed:.2f}s"


def test_listings_stay_right_when_records_change_outside_the_model_functions(sim: Any, cloud: Cloud) -> None:
    conn = sim.openstack_sdk()
    assert len(list(conn.network.ports(network_id=cloud.network["id"]))) == 3
    with sim.store.lock:
        sim.store.remove("ports", cloud.interface["id"])  # as another API module might
    assert len(list(conn.network.ports(network_id=cloud.network["id"]))) == 2
    snapshot = sim.store.snapshot()
    with sim.store.lock:
        sim.store.load_snapshot(snapshot)  # replaces every collection
    tagged = list(conn.network.ports(tags="openshiftClusterID=abc"))
    assert [p.id for p in tagged] == [cloud.subport["id"]]
