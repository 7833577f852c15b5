"""The same wrong-order and edge operations against the real Neutron/Octavia and against the simulator.

Each sequence is written once as a function of a `Target` and returns a transcript: one line per call
with its status, the error type (Neutron) and the message with ids replaced by the names the sequence
gave them. Both targets must produce the same transcript. The rows cover TESTBED.md's error table,
Octavia's state machine (PENDING_* 409, cascade, ERROR), tag filters (including Neutron's 500 on
tags + tags-any) and paging with limit/marker.
"""

from __future__ import annotations

import difflib
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import openstack
import pytest

from tests.real import services

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
WAIT_SECONDS = 60.0


@dataclass
class Target:
    """One side of the comparison: openstacksdk proxies plus how to wait and how to force an LB state."""

    name: str
    conn: Any  # .network and .load_balancer proxies
    project_id: str
    settle: Callable[[], None]  # let asynchronous transitions happen (real: a short pause; sim: clock)
    force_lb_status: Callable[[str, str], None]
    names: dict[str, str] = field(default_factory=dict)  # real id -> name in the transcript
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])  # tag value that keeps filters to this run
    transcript: list[str] = field(default_factory=list)

    # -- recording ------------------------------------------------------------------------------
    def name_ids(self, text: str) -> str:
        return UUID.sub(lambda m: self.names.get(m.group(0), "<other-id>"), text).replace(self.run, "RUN")

    def record(self, label: str, resp: Any) -> Any:
        body: Any = None
        if resp.content:
            try:
                body = resp.json()
            except ValueError:
                body = resp.text
        line = f"{label}: {resp.status_code}"
        if resp.status_code >= 400 and isinstance(body, dict):
            if "NeutronError" in body:
                error = body["NeutronError"]
                message = self.name_ids(error["message"])
                if error["type"] == "NetworkInUse" and "is: " in message:
                    # The port ids come in the database's order, which no SQL query here fixes.
                    head, _, ids = message.rpartition("is: ")
                    message = head + "is: " + ",".join(sorted(ids.rstrip(".").split(","))) + "."
                line += f" {error['type']}: {message}"
            elif "faultstring" in body:
                line += f" {self.name_ids(body['faultstring'])}"
            else:
                line += f" {self.name_ids(str(body))}"
        self.transcript.append(line)
        return body

    def note(self, label: str, value: object) -> None:
        self.transcript.append(f"{label}: {self.name_ids(str(value))}")

    # -- Neutron ----------------------------------------------------------------------------------
    def create(self, path: str, key: str, name: str, **body: Any) -> dict[str, Any]:
        body = {"project_id": self.project_id, **body}
        if key != "floatingip":  # floating IPs have no name: Neutron refuses the attribute
            body["name"] = name
        resp = self.conn.network.post(path, json={key: body})
        created = self.record(f"create {key} {name}", resp)
        assert resp.status_code == 201, (self.name, resp.text)
        self.names[created[key]["id"]] = name
        return dict(created[key])

    def call(self, label: str, method: str, path: str, **kwargs: Any) -> Any:
        resp = getattr(self.conn.network, method)(path, **kwargs)
        return self.record(label, resp)

    # -- Octavia ----------------------------------------------------------------------------------
    def lb_call(self, label: str, method: str, path: str, **kwargs: Any) -> Any:
        resp = getattr(self.conn.load_balancer, method)(path, **kwargs)
        return self.record(label, resp)

    def lb_status(self, lb_id: str) -> str:
        resp = self.conn.load_balancer.get(f"/lbaas/loadbalancers/{lb_id}")
        return "GONE" if resp.status_code == 404 else str(resp.json()["loadbalancer"]["provisioning_status"])

    def wait_lb(self, lb_id: str, status: str) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while (current := self.lb_status(lb_id)) != status:
            assert time.monotonic() < deadline, f"{self.name}: LB {lb_id} {current}, not {status}"
            self.settle()


def _real_target(neutron_url: str, octavia_url: str) -> Target:
    conn = openstack.connect(auth_type="none", auth={"endpoint": neutron_url},
                             load_balancer_endpoint_override=octavia_url)
    return Target("real", conn, uuid.uuid4().hex, lambda: time.sleep(0.1), services.force_load_balancer_status)


def _sim_target(make_sim: Any) -> Target:
    sim = make_sim(delays={"lb_create": 0.5, "lb_update": 0.2, "lb_delete": 0.5})
    store = sim.store

    def force(lb_id: str, status: str) -> None:
        with store.lock:
            store.os["loadbalancers"][lb_id]["provisioning_status"] = status

    def settle() -> None:
        with store.lock:
            store.advance(0.1)

    return Target("sim", sim.openstack_sdk(), store.project_id, settle, force)


# ------------------------------------------------------------------------------------ sequences
def neutron_refusals(t: Target) -> None:
    """Every row of TESTBED.md's Neutron error table, then the deletions that are allowed."""
    net = t.create("/networks", "network", "net")
    subnet = t.create("/subnets", "subnet", "subnet", network_id=net["id"], cidr="10.128.4.0/23", ip_version=4)
    parent = t.create("/ports", "port", "parent", network_id=net["id"])
    sub = t.create("/ports", "port", "subport", network_id=net["id"])
    other = t.create("/ports", "port", "loose", network_id=net["id"])
    trunk = t.create("/trunks", "trunk", "trunk", port_id=parent["id"], sub_ports=[
        {"port_id": sub["id"], "segmentation_type": "vlan", "segmentation_id": 1001}])
    t.call("delete subport", "delete", f"/ports/{sub['id']}")
    t.call("delete trunk parent", "delete", f"/ports/{parent['id']}")
    t.call("delete network with ports", "delete", f"/networks/{net['id']}")
    t.call("delete subnet with port IPs", "delete", f"/subnets/{subnet['id']}")
    t.call("remove subport not on trunk", "put", f"/trunks/{trunk['id']}/remove_subports",
           json={"sub_ports": [{"port_id": other["id"]}]})

    ext = t.create("/networks", "network", "ext", **{"router:external": True})
    ext_subnet = t.create("/subnets", "subnet", "ext-subnet", network_id=ext["id"], cidr="172.24.4.0/24",
                          ip_version=4)
    router = t.create("/routers", "router", "router", external_gateway_info={"network_id": ext["id"]})
    iface = t.call("add interface", "put", f"/routers/{router['id']}/add_router_interface",
                   json={"subnet_id": subnet["id"]})
    t.names[iface["port_id"]] = "iface-port"
    t.note("interface answer keys", sorted(iface))
    gateway_ports = t.call("list gateway port", "get", "/ports",
                           params={"device_id": router["id"], "device_owner": "network:router_gateway"})["ports"]
    t.names[gateway_ports[0]["id"]] = "gateway-port"
    t.call("delete router with interface", "delete", f"/routers/{router['id']}")
    t.call("delete interface port", "delete", f"/ports/{iface['port_id']}")
    t.call("delete gateway port", "delete", f"/ports/{gateway_ports[0]['id']}")
    t.call("delete subnet with router interface", "delete", f"/subnets/{subnet['id']}")
    t.call("floating IP with a name", "post", "/floatingips", json={"floatingip": {
        "name": "x", "floating_network_id": ext["id"], "project_id": t.project_id}})
    fip = t.create("/floatingips", "floatingip", "fip", floating_network_id=ext["id"], port_id=other["id"])
    fip_port = t.call("list fip port", "get", "/ports", params={"device_id": fip["id"]})["ports"][0]
    t.names[fip_port["id"]] = "fip-port"
    t.note("fip port owner", fip_port["device_owner"])
    t.call("delete fip port", "delete", f"/ports/{fip_port['id']}")
    t.call("remove interface a fip needs", "put", f"/routers/{router['id']}/remove_router_interface",
           json={"subnet_id": subnet["id"]})

    pool = t.create("/subnetpools", "subnetpool", "pool", prefixes=["10.132.0.0/14"], default_prefixlen=23)
    pool_net = t.create("/networks", "network", "pool-net")
    t.create("/subnets", "subnet", "pool-subnet", network_id=pool_net["id"], subnetpool_id=pool["id"], ip_version=4)
    t.call("delete subnet pool in use", "delete", f"/subnetpools/{pool['id']}")
    group = t.create("/security-groups", "security_group", "np-group")
    t.call("use group", "put", f"/ports/{other['id']}", json={"port": {"security_groups": [group["id"]]}})
    t.call("delete group in use", "delete", f"/security-groups/{group['id']}")
    t.call("unknown attribute", "post", "/networks", json={"network": {"name": "x", "bogus": 1,
                                                                        "project_id": t.project_id}})

    # Allowed: a port with a floating IP (disassociated), a trunk with subports, interface removal
    # (twice: 404 the second time), a router with only its gateway, a network with subnets but no ports.
    t.call("delete port with fip", "delete", f"/ports/{other['id']}")
    t.note("fip port_id after", t.call("show fip", "get", f"/floatingips/{fip['id']}")["floatingip"]["port_id"])
    t.call("delete trunk with subports", "delete", f"/trunks/{trunk['id']}")
    t.note("subport after trunk", t.call("show subport", "get", f"/ports/{sub['id']}")["port"]["device_owner"])
    t.call("remove interface", "put", f"/routers/{router['id']}/remove_router_interface",
           json={"subnet_id": subnet["id"]})
    t.call("remove interface again", "put", f"/routers/{router['id']}/remove_router_interface",
           json={"subnet_id": subnet["id"]})
    t.call("delete router with gateway", "delete", f"/routers/{router['id']}")
    t.call("delete fip", "delete", f"/floatingips/{fip['id']}")
    for port in (parent, sub):
        t.call(f"delete {t.names[port['id']]}", "delete", f"/ports/{port['id']}")
    t.call("delete network with subnets only", "delete", f"/networks/{net['id']}")
    t.call("delete group", "delete", f"/security-groups/{group['id']}")
    t.call("delete pool network", "delete", f"/networks/{pool_net['id']}")
    t.call("delete pool", "delete", f"/subnetpools/{pool['id']}")
    t.call("delete ext subnet", "delete", f"/subnets/{ext_subnet['id']}")

    # 404s of every kind the cleanup meets.
    missing = "00000000-0000-4000-8000-000000000000"
    t.names[missing] = "missing"
    for path in ("/ports", "/networks", "/trunks", "/routers", "/security-groups", "/subnetpools", "/floatingips",
                 "/subnets"):
        t.call(f"GET missing {path}", "get", f"{path}/{missing}")
        t.call(f"DELETE missing {path}", "delete", f"{path}/{missing}")


def neutron_tags_and_paging(t: Target) -> None:
    """Tag calls and filters (tags + tags-any is a 500 on Neutron 29), then limit/marker paging."""
    nets = [t.create("/networks", "network", f"tagged-{i}") for i in range(5)]
    run = t.run
    tags = [[f"c={run}", "a"], [f"c={run}", "b"], [f"c={run}", "a", "b"], [f"c={run}"], []]
    for net, net_tags in zip(nets, tags, strict=True):
        body = t.call(f"set tags {t.names[net['id']]}", "put", f"/networks/{net['id']}/tags", json={"tags": net_tags})
        t.note("tags answer", body)
    t.call("add one tag", "put", f"/networks/{nets[4]['id']}/tags/extra")
    t.call("has tag", "get", f"/networks/{nets[4]['id']}/tags/extra")
    t.call("has no tag", "get", f"/networks/{nets[4]['id']}/tags/nope")
    t.call("delete tag", "delete", f"/networks/{nets[4]['id']}/tags/extra")
    t.call("delete tag again", "delete", f"/networks/{nets[4]['id']}/tags/extra")
    t.note("listed tags", t.call("get tags", "get", f"/networks/{nets[2]['id']}/tags"))

    def names(query: str) -> list[str]:
        resp = t.conn.network.get(f"/networks?project_id={t.project_id}&{query}")
        body = t.record(f"filter {query.replace(run, 'RUN')}", resp)
        return sorted(n["name"] for n in body["networks"]) if resp.status_code == 200 else []

    for query in (f"tags=c={run},a", f"tags-any=a,b&tags=c={run}", f"not-tags=a&tags=c={run}",
                  f"not-tags-any=a,b&tags-any=c={run}", "tags-any=a&tags-any=b"):
        t.note(f"names {query.replace(run, 'RUN')}", names(query))
    names(f"tags=c={run}&tags-any=a")  # Neutron 29: 500

    # Paging: limit, the next link carrying the marker, the last page without a next link.
    url = f"/networks?project_id={t.project_id}&limit=2&sort_key=name&sort_dir=asc"
    pages = []
    while url:
        body = t.call("page", "get", url)
        pages.append([n["name"] for n in body["networks"]])
        links = body.get("networks_links") or []
        t.note("link rels", sorted(link["rel"] for link in links))
        nxt = next((link["href"] for link in links if link["rel"] == "next"), None)
        if nxt:
            query = parse_qs(urlparse(nxt).query)
            t.note("next link query", sorted((k, v) for k, v in query.items() if k not in ("project_id", "marker")))
            t.names[query["marker"][0]] = t.names.get(query["marker"][0], "<marker>")
            t.note("next marker", query["marker"][0])
            url = "/networks?" + urlparse(nxt).query
        else:
            url = ""
    t.note("pages", pages)
    for net in nets:
        t.call("delete", "delete", f"/networks/{net['id']}")


def octavia_state_machine(t: Target) -> None:
    """PENDING_* refusals, delete with children, cascade, ERROR, 404s, tag filters, paging."""
    vip_subnet = "22222222-2222-4222-8222-222222222222"
    if t.name == "sim":  # the simulated Octavia checks the subnet in Neutron; the noop driver does not
        net = t.conn.network.post("/networks", json={"network": {"name": "vip-net"}}).json()["network"]
        vip_subnet = t.conn.network.post("/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "172.30.0.0/16", "ip_version": 4}}).json()["subnet"]["id"]
    t.names[vip_subnet] = "vip-subnet"
    run = t.run

    def create_lb(name: str, tags: list[str]) -> str:
        body = t.lb_call(f"create lb {name}", "post", "/lbaas/loadbalancers", json={"loadbalancer": {
            "name": name, "vip_subnet_id": vip_subnet, "project_id": t.project_id, "tags": tags}})
        t.names[body["loadbalancer"]["id"]] = name
        t.note(f"{name} created as", (body["loadbalancer"]["provisioning_status"],
                                      body["loadbalancer"]["operating_status"]))
        return str(body["loadbalancer"]["id"])

    lb = create_lb("lb", [f"c={run}", "a"])
    t.wait_lb(lb, "ACTIVE")
    t.force_lb_status(lb, "PENDING_UPDATE")
    t.lb_call("update PENDING_UPDATE lb", "put", f"/lbaas/loadbalancers/{lb}", json={"loadbalancer": {"name": "x"}})
    t.lb_call("delete PENDING_UPDATE lb", "delete", f"/lbaas/loadbalancers/{lb}")
    t.lb_call("cascade PENDING_UPDATE lb", "delete", f"/lbaas/loadbalancers/{lb}?cascade=true")
    t.lb_call("listener on PENDING_UPDATE lb", "post", "/lbaas/listeners", json={"listener": {
        "loadbalancer_id": lb, "protocol": "TCP", "protocol_port": 80}})
    t.force_lb_status(lb, "ACTIVE")
    listener = t.lb_call("create listener", "post", "/lbaas/listeners", json={"listener": {
        "name": "listener", "loadbalancer_id": lb, "protocol": "TCP", "protocol_port": 80}})["listener"]
    t.names[listener["id"]] = "listener"
    t.wait_lb(lb, "ACTIVE")
    t.lb_call("delete lb with children", "delete", f"/lbaas/loadbalancers/{lb}")
    t.force_lb_status(lb, "ERROR")
    t.lb_call("delete ERROR lb with children", "delete", f"/lbaas/loadbalancers/{lb}")

    empty = create_lb("empty-lb", [f"c={run}", "b"])
    t.wait_lb(empty, "ACTIVE")
    t.force_lb_status(empty, "ERROR")

    def lb_names(query: str) -> list[str]:
        resp = t.conn.load_balancer.get(f"/lbaas/loadbalancers?{query}")
        body = t.record(f"filter {query.replace(run, 'RUN')}", resp)
        return sorted(x["name"] for x in body["loadbalancers"]) if resp.status_code == 200 else []

    for query in (f"tags=c={run}", f"tags=c={run}&tags-any=a", f"not-tags=a&tags=c={run}",
                  f"tags-any=c={run}&not-tags-any=b"):
        t.note(f"lb names {query.replace(run, 'RUN')}", lb_names(query))
    page = t.lb_call("page", "get", f"/lbaas/loadbalancers?tags=c={run}&limit=1")
    links = page.get("loadbalancers_links") or []
    t.note("lb page", (len(page["loadbalancers"]), sorted(link["rel"] for link in links)))
    nxt = next(link["href"] for link in links if link["rel"] == "next")
    query = parse_qs(urlparse(nxt).query)
    t.note("lb next link keys", sorted(query))
    second = t.lb_call("next page", "get", "/lbaas/loadbalancers?" + urlparse(nxt).query)
    t.note("lb second page", (len(second["loadbalancers"]), sorted(link["rel"] for link in
                                                                    second.get("loadbalancers_links") or [])))

    t.lb_call("cascade ERROR lb", "delete", f"/lbaas/loadbalancers/{lb}?cascade=true")
    t.note("after cascade", t.lb_status(lb))
    t.lb_call("delete while PENDING_DELETE", "delete", f"/lbaas/loadbalancers/{lb}?cascade=true")
    t.wait_lb(lb, "GONE")
    t.lb_call("delete ERROR lb without children", "delete", f"/lbaas/loadbalancers/{empty}")
    t.wait_lb(empty, "GONE")
    for path, label in ((f"/lbaas/loadbalancers/{lb}", "lb"), (f"/lbaas/listeners/{listener['id']}", "listener"),
                        ("/lbaas/pools/00000000-0000-4000-8000-000000000000", "pool")):
        t.lb_call(f"GET gone {label}", "get", path)
    t.lb_call("DELETE gone lb", "delete", f"/lbaas/loadbalancers/{lb}")
    t.lb_call("create without project", "post", "/lbaas/loadbalancers", json={"loadbalancer": {
        "name": "no-project", "vip_subnet_id": vip_subnet}}) if t.name == "real" else None


SEQUENCES = {"neutron-refusals": neutron_refusals, "neutron-tags-paging": neutron_tags_and_paging,
             "octavia-state-machine": octavia_state_machine}


@pytest.mark.parametrize("sequence", sorted(SEQUENCES))
def test_real_and_simulated_services_answer_alike(sequence: str, make_sim: Any, request: pytest.FixtureRequest
                                                  ) -> None:
    real = _real_target(request.getfixturevalue("real_neutron_url"), request.getfixturevalue("real_octavia_url"))
    sim = _sim_target(make_sim)
    SEQUENCES[sequence](real)
    SEQUENCES[sequence](sim)
    # "create without project" only makes sense where noauth is in play (the simulator has Keystone).
    real_lines = [line for line in real.transcript if not line.startswith("create without project")]
    diff = list(difflib.unified_diff(real_lines, sim.transcript, "real", "sim", lineterm="", n=0))
    assert not diff, "\n".join(diff)
