"""Replay a generated Kuryr-shaped scenario onto the real Neutron and Octavia, and pair it with a simulated cluster.

The simulator's generator (kuryr_cleanup.sim.generate) knows what Kuryr, the CNO and the installer leave
in a project: names, tags, descriptions, subnet pool allocations, trunks and subports, router
interfaces, NP security groups, LBs with listeners/pools/members, floating IPs. `seed_real_cloud`
generates a scenario into a Store, creates its OpenStack side on the real services through their APIs in
dependency order (keeping addresses and MACs), maps every simulated id to the real one, and rewrites
the Kubernetes objects' references (KuryrNetwork netId/subnetId/routerId, KuryrLoadBalancer ids,
KuryrNetworkPolicy securityGroupId, KuryrPort vifs ...) by replacing the ids wherever they appear.

What the test bed cannot reproduce, and what stands in for it:
- Octavia's noop network driver invents VIP ports that Neutron does not have. A real driver creates
  `octavia-lb-<lb>` (device_owner `Octavia`) and removes it with the LB. Here the VIP port is created in
  Neutron after the LB and written into Octavia's database as the LB's VIP (services.set_load_balancer_vip);
  `VipPortReaper` removes it once the LB is gone, as the real driver would.
- ERROR load balancers are written into Octavia's database (services.force_load_balancer_status).
- Nova servers are not replayed (no compute service); ports keep the simulated device ids.
- Only the amphora provider exists here, so scenarios are generated with `lb-provider=amphora`.
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from kuryr_cleanup.sim.generate import ScenarioSpec, generate_scenario
from kuryr_cleanup.sim.store import Store
from kuryr_cleanup.snapshot_format import OPENSTACK_COLLECTIONS
from tests.real import services

# Neutron makes these ports itself (router_add_interface by subnet, gateways, floating IPs, a
# distributed router's SNAT port with each interface) or, for VIPs, Octavia's network driver would.
# An L3 agent's floating-IP gateway port needs an agent in dvr mode, and there is none here: the
# cleanup never meets one (they are on the external network), so it is not replayed.
_SNAT_OWNER = "network:router_centralized_snat"
_SERVICE_OWNERS = ("network:router_gateway", "network:floatingip", "Octavia", _SNAT_OWNER,
                   "network:floatingip_agent_gateway")
# add_router_interface gives an interface its owner (distributed on a distributed router).
_INTERFACE_OWNERS = ("network:router_interface", "network:router_interface_distributed")
# Tags are set per resource afterwards: Neutron 29 refuses `tags` in a POST body ("Attribute 'tags'
# not allowed in POST") even with the tag-creation extension listed.
_TAGGED_COLLECTIONS = {
    "networks": "networks", "subnets": "subnets", "subnetpools": "subnetpools", "ports": "ports",
    "routers": "routers", "trunks": "trunks", "security_groups": "security-groups", "floatingips": "floatingips",
}
LB_WAIT_SECONDS = 120.0
VXLAN_MTU = 1450
# Polling Octavia costs CPU that Neutron (CPU-bound, one thread) needs on a 2-CPU machine.
POLL_SECONDS = 0.3


class SeedError(RuntimeError):
    pass


@dataclass
class SeededCloud:
    """The real cloud a scenario became, and the simulated cluster that goes with it."""

    project_id: str
    infra_id: str
    kube_store: Store  # only Kubernetes objects, ids rewritten to the real ones
    ids: dict[str, str]  # simulated id -> real id
    vip_ports: dict[str, str] = field(default_factory=dict)  # real LB id -> real VIP port id
    timings: dict[str, float] = field(default_factory=dict)


def _check(resp: Any, what: str) -> Any:
    if resp.status_code >= 400:
        raise SeedError(f"{what}: {resp.status_code} {resp.text[:500]}")
    return resp.json() if resp.content else None


class _Replay:
    def __init__(self, conn: Any, octavia_conn: Any, store: Store, project_id: str) -> None:
        self.conn = conn
        self.octavia = octavia_conn
        self.os = store.os
        self.project_id = project_id
        self.ids: dict[str, str] = {store.project_id: project_id}
        self.vip_ports: dict[str, str] = {}

    # -- helpers ------------------------------------------------------------------------------------
    def real(self, sim_id: str | None) -> str | None:
        return None if sim_id is None else self.ids.get(sim_id, sim_id)

    def post(self, path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in body.items() if v is not None}
        body.setdefault("project_id", self.project_id)
        return dict(_check(self.conn.network.post(path, json={key: body}), f"POST {path} {body.get('name')}")[key])

    def tag(self, collection: str, real_id: str, tags: list[str]) -> None:
        if tags:
            path = f"/{_TAGGED_COLLECTIONS[collection]}/{real_id}/tags"
            _check(self.conn.network.put(path, json={"tags": tags}), f"PUT {path}")

    def create(self, collection: str, path: str, key: str, record: dict[str, Any], body: dict[str, Any]) -> str:
        created = self.post(path, key, {"name": record.get("name"), "description": record.get("description"),
                                        **body})
        self.ids[record["id"]] = created["id"]
        self.tag(collection, created["id"], record.get("tags") or [])
        return str(created["id"])

    # -- Neutron, in dependency order ---------------------------------------------------------------
    def neutron_networks(self) -> None:
        """Subnet pools, networks, subnets: all Octavia needs (VIP and member subnets)."""
        os_ = self.os
        for pool in os_["subnetpools"].values():
            self.create("subnetpools", "/subnetpools", "subnetpool", pool, {
                "prefixes": pool["prefixes"], "default_prefixlen": pool.get("default_prefixlen"),
                "min_prefixlen": pool.get("min_prefixlen"), "max_prefixlen": pool.get("max_prefixlen")})
        for net in os_["networks"].values():
            self.create("networks", "/networks", "network", net, {
                "router:external": net.get("router:external") or None,
                # Tenant networks here are VXLAN (at most 1450); the simulated external network says 1500.
                "mtu": net["mtu"] if (net.get("mtu") or 0) <= VXLAN_MTU else None,
                "admin_state_up": net.get("admin_state_up")})
        for subnet in os_["subnets"].values():
            self.create("subnets", "/subnets", "subnet", subnet, {
                "network_id": self.real(subnet["network_id"]), "cidr": subnet["cidr"],
                "ip_version": subnet["ip_version"], "gateway_ip": subnet.get("gateway_ip"),
                "allocation_pools": subnet.get("allocation_pools") or None,
                "subnetpool_id": self.real(subnet.get("subnetpool_id")), "enable_dhcp": subnet.get("enable_dhcp")})

    def neutron_rest(self) -> None:
        """Security groups, routers and interfaces, ports, trunks."""
        os_ = self.os
        self.security_groups()
        self.routers()
        ports = [p for p in os_["ports"].values()
                 if p.get("device_owner") not in _SERVICE_OWNERS and p["id"] not in self.ids]
        for port in ports:
            self.port(port)
        for trunk in os_["trunks"].values():
            self.create("trunks", "/trunks", "trunk", trunk, {
                "port_id": self.real(trunk["port_id"]),
                "sub_ports": [{**s, "port_id": self.real(s["port_id"])} for s in trunk.get("sub_ports") or []]})

    def port(self, port: dict[str, Any], name: str | None = None, device_id: str | None = None) -> str:
        owner = port.get("device_owner") or ""
        body: dict[str, Any] = {
            "network_id": self.real(port["network_id"]), "mac_address": port.get("mac_address"),
            "fixed_ips": [{"subnet_id": self.real(ip["subnet_id"]), "ip_address": ip["ip_address"]}
                          for ip in port.get("fixed_ips") or []],
            # The trunk sets trunk:subport itself; router interfaces get their owner from add_router_interface.
            "device_owner": None if owner in ("trunk:subport", *_INTERFACE_OWNERS) else owner,
            "device_id": device_id if device_id is not None else (
                None if owner in ("trunk:subport", *_INTERFACE_OWNERS) else self.real(port.get("device_id"))),
            "port_security_enabled": port.get("port_security_enabled"),
            "admin_state_up": port.get("admin_state_up"),
            "allowed_address_pairs": port.get("allowed_address_pairs") or None,
        }
        if port.get("port_security_enabled", True):
            body["security_groups"] = [self.real(sg) for sg in port.get("security_groups") or []]
        record = {**port, "name": name if name is not None else port.get("name")}
        return self.create("ports", "/ports", "port", record, body)

    def security_groups(self) -> None:
        os_ = self.os
        auto: dict[str, list[str]] = {}  # real SG id -> ids of the rules Neutron made itself
        for sg in os_["security_groups"].values():
            if sg["name"] == "default":
                # The project's default group comes into being on the first look at the project's groups.
                listed = _check(self.conn.network.get("/security-groups", params={
                    "project_id": self.project_id, "name": "default"}), "list default SG")["security_groups"]
                real = listed[0]
                self.ids[sg["id"]] = real["id"]
                self.tag("security_groups", real["id"], sg.get("tags") or [])
            else:
                real = self.post("/security-groups", "security_group", {
                    "name": sg["name"], "description": sg.get("description")})
                self.ids[sg["id"]] = real["id"]
                self.tag("security_groups", real["id"], sg.get("tags") or [])
            auto[real["id"]] = [r["id"] for r in real.get("security_group_rules") or []]
            # Map the rules Neutron made (egress per ethertype, and the default group's ingress) to the
            # simulated ones of the same shape.
            for rule in real.get("security_group_rules") or []:
                for sim_rule in os_["security_group_rules"].values():
                    if (sim_rule["security_group_id"] == sg["id"] and sim_rule["id"] not in self.ids
                            and _same_rule(sim_rule, rule, self)):
                        self.ids[sim_rule["id"]] = rule["id"]
                        break
        for rule in os_["security_group_rules"].values():
            if rule["id"] in self.ids:
                continue
            body = {k: rule.get(k) for k in ("direction", "ethertype", "protocol", "port_range_min",
                                              "port_range_max", "remote_ip_prefix", "description")}
            body["security_group_id"] = self.real(rule["security_group_id"])
            body["remote_group_id"] = self.real(rule.get("remote_group_id"))
            created = self.post("/security-group-rules", "security_group_rule", body)
            self.ids[rule["id"]] = created["id"]

    def routers(self) -> None:
        os_ = self.os
        for router in os_["routers"].values():
            gateway = router.get("external_gateway_info")
            body: dict[str, Any] = {}
            if gateway:
                body["external_gateway_info"] = {
                    "network_id": self.real(gateway["network_id"]),
                    "external_fixed_ips": [{"subnet_id": self.real(ip["subnet_id"]), "ip_address": ip["ip_address"]}
                                           for ip in gateway.get("external_fixed_ips") or []]}
            if router.get("distributed"):
                body["distributed"] = True  # admin only: noauth is admin
            self.create("routers", "/routers", "router", router, body)
        for port in os_["ports"].values():
            if port.get("device_owner") not in _INTERFACE_OWNERS:
                continue
            router_id = self.real(port["device_id"])
            ip = port["fixed_ips"][0]
            subnet = os_["subnets"][ip["subnet_id"]]
            if ip["ip_address"] == subnet.get("gateway_ip") and not port.get("tags") and not port.get("name"):
                answer = _check(self.conn.network.put(f"/routers/{router_id}/add_router_interface",
                                                      json={"subnet_id": self.real(subnet["id"])}), "add interface")
            else:
                real_port = self.port(port)
                answer = _check(self.conn.network.put(f"/routers/{router_id}/add_router_interface",
                                                      json={"port_id": real_port}), "add interface by port")
            self.ids[port["id"]] = answer["port_id"]
        self.snat_ports()

    def snat_ports(self) -> None:
        """Map each simulated SNAT port to the one Neutron made with the interface (router and subnet)."""
        for port in self.os["ports"].values():
            if port.get("device_owner") != _SNAT_OWNER or not port.get("fixed_ips"):
                continue
            router_id, subnet_id = self.real(port["device_id"]), self.real(port["fixed_ips"][0]["subnet_id"])
            listed = _check(self.conn.network.get("/ports", params={
                "device_id": router_id, "device_owner": _SNAT_OWNER}), "list SNAT ports")["ports"]
            real = [p for p in listed if p["fixed_ips"] and p["fixed_ips"][0]["subnet_id"] == subnet_id]
            if len(real) != 1:
                raise SeedError(f"router {router_id}: {len(real)} SNAT port(s) on subnet {subnet_id}, not 1 "
                                f"(is the router distributed?)")
            self.ids[port["id"]] = real[0]["id"]

    # -- Octavia --------------------------------------------------------------------------------------
    def octavia_lb(self, lb: dict[str, Any]) -> str:
        api = self.octavia.load_balancer

        def post(path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
            body = {k: v for k, v in body.items() if v is not None}
            deadline = time.monotonic() + LB_WAIT_SECONDS
            while True:
                resp = api.post(path, json={key: body})
                if resp.status_code != 409 or time.monotonic() > deadline:
                    return dict(_check(resp, f"POST {path} {body.get('name')}")[key])
                time.sleep(POLL_SECONDS)  # the LB is still PENDING_UPDATE from the previous child

        created = post("/lbaas/loadbalancers", "loadbalancer", {
            "name": lb["name"], "description": lb.get("description"), "tags": lb.get("tags") or None,
            "vip_subnet_id": self.real(lb["vip_subnet_id"]), "vip_address": lb.get("vip_address"),
            "project_id": self.project_id, "admin_state_up": lb.get("admin_state_up")})
        lb_id = str(created["id"])
        self.ids[lb["id"]] = lb_id
        wait_load_balancer(self.octavia, lb_id, "ACTIVE")
        for listener in self.os["listeners"].values():
            if not any(x["id"] == lb["id"] for x in listener.get("loadbalancers") or []):
                continue
            real = post("/lbaas/listeners", "listener", {
                "name": listener.get("name"), "description": listener.get("description"),
                "tags": listener.get("tags") or None, "protocol": listener["protocol"],
                "protocol_port": listener["protocol_port"], "loadbalancer_id": lb_id})
            self.ids[listener["id"]] = real["id"]
        for pool in self.os["pools"].values():
            if not any(x["id"] == lb["id"] for x in pool.get("loadbalancers") or []):
                continue
            listeners = [self.real(x["id"]) for x in pool.get("listeners") or []]
            real = post("/lbaas/pools", "pool", {
                "name": pool.get("name"), "description": pool.get("description"), "tags": pool.get("tags") or None,
                "protocol": pool["protocol"], "lb_algorithm": pool["lb_algorithm"],
                "listener_id": listeners[0] if listeners else None,
                "loadbalancer_id": None if listeners else lb_id})
            self.ids[pool["id"]] = real["id"]
            for member in self.os["members"].values():
                if member.get("pool_id") != pool["id"] and not any(
                        m["id"] == member["id"] for m in pool.get("members") or []):
                    continue
                real_member = post(f"/lbaas/pools/{real['id']}/members", "member", {
                    "name": member.get("name"), "tags": member.get("tags") or None, "address": member["address"],
                    "protocol_port": member["protocol_port"], "subnet_id": self.real(member.get("subnet_id")),
                    "weight": member.get("weight")})
                self.ids[member["id"]] = real_member["id"]
        wait_load_balancer(self.octavia, lb_id, "ACTIVE")
        return lb_id

    def vip_port(self, lb: dict[str, Any]) -> None:
        """What Octavia's network driver would have made: `octavia-lb-<lb>` owned by Octavia, on the VIP subnet."""
        lb_id = self.ids[lb["id"]]
        sim_port = self.os["ports"].get(lb.get("vip_port_id") or "")
        if sim_port is None:
            return
        real_port = self.port(sim_port, name=f"octavia-lb-{lb_id}", device_id=f"lb-{lb_id}")
        self.vip_ports[lb_id] = real_port
        services.set_load_balancer_vip(lb_id, real_port, sim_port["fixed_ips"][0]["ip_address"],
                                       self.real(sim_port["network_id"]))

    def floating_ips(self) -> None:
        for fip in self.os["floatingips"].values():
            self.create("floatingips", "/floatingips", "floatingip", fip, {
                "floating_network_id": self.real(fip["floating_network_id"]),
                "floating_ip_address": fip["floating_ip_address"], "port_id": self.real(fip.get("port_id")),
                "fixed_ip_address": fip.get("fixed_ip_address") if fip.get("port_id") else None})


def _same_rule(sim_rule: dict[str, Any], real_rule: dict[str, Any], replay: _Replay) -> bool:
    for key in ("direction", "ethertype", "protocol", "port_range_min", "port_range_max", "remote_ip_prefix"):
        if sim_rule.get(key) != real_rule.get(key):
            return False
    sim_remote = sim_rule.get("remote_group_id")
    return (sim_remote is None) == (real_rule.get("remote_group_id") is None)


def wait_load_balancer(conn: Any, lb_id: str, status: str, timeout: float = LB_WAIT_SECONDS) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = _check(conn.load_balancer.get(f"/lbaas/loadbalancers/{lb_id}"), f"GET LB {lb_id}")["loadbalancer"]
        if body["provisioning_status"] == status:
            return dict(body)
        if time.monotonic() > deadline:
            raise SeedError(f"LB {lb_id} is {body['provisioning_status']}, not {status}, after {timeout:.0f}s")
        time.sleep(POLL_SECONDS)


def seed_real_cloud(conn: Any, octavia_conn: Any, spec_text: str) -> SeededCloud:
    """Generate `spec_text` (plus `lb-provider=amphora` and a fresh infraID) and create its cloud for real.

    conn: openstacksdk connection to Neutron (noauth); octavia_conn: one whose load_balancer proxy reaches
    Octavia. Every resource goes into a fresh project, so concurrent tests never see each other's.
    """
    timings: dict[str, float] = {}
    started = time.monotonic()
    infra_id = f"kmreal-{uuid.uuid4().hex[:5]}"
    store = Store()
    generate_scenario(store, ScenarioSpec.parse(f"{spec_text},lb-provider=amphora,infra-id={infra_id}"))
    project_id = uuid.uuid4().hex
    replay = _Replay(conn, octavia_conn, store, project_id)
    replay.neutron_networks()
    lbs = list(store.os["loadbalancers"].values())
    # Octavia's worker runs one flow at a time (~1.4 s per LB, ~0.4 s per child): its part takes
    # longest, so it runs while the rest of Neutron is created.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(replay.octavia_lb, lb) for lb in lbs]
        replay.neutron_rest()
        timings["neutron"] = time.monotonic() - started
        for future in futures:
            future.result()
    timings["octavia (overlapping neutron)"] = time.monotonic() - started
    vip_started = time.monotonic()
    for lb in lbs:
        replay.vip_port(lb)
    replay.floating_ips()
    for lb in lbs:
        if lb["provisioning_status"] == "ERROR":
            services.force_load_balancer_status(replay.ids[lb["id"]], "ERROR")
    timings["vips_fips"] = time.monotonic() - vip_started

    # The cluster: the same objects with every simulated id replaced by the real one.
    text = json.dumps(store.snapshot(source="tests/real seed")["kubernetes"])
    for sim_id, real_id in sorted(replay.ids.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(sim_id, real_id)
    kube = Store(project_id)
    empty_os: dict[str, Any] = {name: [] for name in OPENSTACK_COLLECTIONS}
    kube.load_snapshot({"format": "kuryr-migrate/snapshot", "version": 1, "infra_id": infra_id,
                        "openstack": {"project_id": project_id, **empty_os}, "kubernetes": json.loads(text)})
    timings["total"] = time.monotonic() - started
    return SeededCloud(project_id, infra_id, kube, replay.ids, replay.vip_ports, timings)


class VipPortReaper:
    """Stands in for Octavia's network driver: deletes a VIP port once its load balancer is gone (404).

    The noop network driver releases nothing; without this, a deleted LB's VIP port would keep the
    service network in use forever, which no real cloud does.
    """

    def __init__(self, conn: Any, octavia_conn: Any, vip_ports: dict[str, str], interval: float = 0.2) -> None:
        self.conn = conn
        self.octavia = octavia_conn
        self.pending = dict(vip_ports)
        self.reaped: list[str] = []
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vip-port-reaper", daemon=True)

    def __enter__(self) -> VipPortReaper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.sweep()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sweep()

    def sweep(self) -> None:
        for lb_id, port_id in list(self.pending.items()):
            if self.octavia.load_balancer.get(f"/lbaas/loadbalancers/{lb_id}").status_code != 404:
                continue
            resp = self.conn.network.delete(f"/ports/{port_id}")
            if resp.status_code in (204, 404):
                self.pending.pop(lb_id, None)
                self.reaped.append(port_id)
