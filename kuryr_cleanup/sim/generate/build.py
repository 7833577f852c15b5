"""`generate_scenario(store, spec)`: fill a store with the scenario a spec describes."""

from __future__ import annotations

import dataclasses
import random
import uuid

from kuryr_cleanup.sim import neutron
from kuryr_cleanup.sim.generate.cluster import Cluster
from kuryr_cleanup.sim.generate.other_project import build_other_project
from kuryr_cleanup.sim.generate.scenario import Scenario, build_user_resources, seeded_uuid4
from kuryr_cleanup.sim.generate.spec import ScenarioSpec
from kuryr_cleanup.sim.store import Store


def generate_scenario(store: Store, spec: ScenarioSpec) -> None:
    """Fill `store` with the scenario `spec` describes (this cluster, and whatever the options add)."""
    ids = random.Random(f"ids-{spec.seed}")
    with store.lock, seeded_uuid4(ids):
        store.project_id = uuid.UUID(int=ids.getrandbits(128), version=4).hex
        sc = Scenario(store, spec)
        infra_id = spec.infra_id or f"ostest-{sc.suffix()}"
        store.infra_id = infra_id
        if spec.octavia:
            store.settings["octavia_version"] = spec.octavia
        if spec.dvr:
            store.settings["neutron_dvr"] = True  # ML2/OVS with router_distributed: every router is distributed
        # Every delayed transition of the creates (none are expected) happens now, not after serving starts.
        saved_delays = dict(store.delays)
        store.delays.update({name: 0.0 for name in store.delays})
        try:
            sc.build_external()
            Cluster(sc, spec, infra_id, ours=True).build()
            if spec.second_cluster:
                other_spec = dataclasses.replace(
                    spec, namespaces=min(spec.namespaces, 3) or 1, pods=min(spec.pods, 2) or 1,
                    services=min(spec.services, 1), policies=min(spec.policies, 1), masters=3, workers=1,
                    pool_ports=min(spec.pool_ports, 1), untagged=0, fips=False, error_lbs=0, host_prefix=None,
                )
                other_id = f"ostest-{sc.suffix()}" if not infra_id.startswith("ostest-") else f"other-{sc.suffix()}"
                Cluster(sc, other_spec, other_id, ours=False).build()
            if spec.user_resources:
                build_user_resources(sc)
            if spec.other_project:
                build_other_project(sc, infra_id)
            if spec.dvr:
                # The L3 agent on each compute host has a floating IP gateway port on the external network.
                for host in sorted({s["OS-EXT-SRV-ATTR:host"] for s in store.os["servers"].values()}):
                    neutron.ensure_agent_gateway_port(store, sc.external_network["id"], host)
            store.tick()
        finally:
            store.delays.update(saved_delays)
        _seed_generated_macs(store, sc)


def _seed_generated_macs(store: Store, sc: Scenario) -> None:
    """Ports the models made on their own (router interfaces, gateways, VIPs) get MACs from the seed too."""
    for port in store.os["ports"].values():
        if port["mac_address"] not in sc.macs:
            port["mac_address"] = sc.mac()
    for fip in store.os["floatingips"].values():
        fip_port = store.os["ports"].get(fip.get("port_id") or "")
        if fip_port is not None and fip.get("port_details"):
            fip["port_details"]["mac_address"] = fip_port["mac_address"]
    for trunk in store.os["trunks"].values():
        parent = store.os["ports"].get(trunk["port_id"])
        details = (parent or {}).get("trunk_details") or {}
        for sub in details.get("sub_ports", []):
            sub_port = store.os["ports"].get(sub["port_id"])
            if sub_port is not None:
                sub["mac_address"] = sub_port["mac_address"]
