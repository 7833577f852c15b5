"""The migration on real deployments' variants, through the CLI against the simulator: nodes in several
availability zones, old finished pods, paused pools and upgrades, large pools, a multus update that
keeps its generation, a KUBECONFIG of several files, nodes rebooted again by name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from tests.test_migration import FAST, SMALL, kuryr, text


# -- KUBECONFIG with several files ------------------------------------------------------------------
def test_a_kubeconfig_list_is_merged_as_kubectl_merges_it(make_sim: Any, tmp_path: Path) -> None:
    # The admin's cluster and credentials live in one file, the context they use in another
    # (`KUBECONFIG=~/.kube/clusters:~/.kube/contexts`); a third file in the list does not exist.
    sim = make_sim(generate=SMALL, delays=FAST)
    whole = yaml.safe_load(Path(sim.env["KUBECONFIG"]).read_text())
    credentials = tmp_path / "clusters"
    credentials.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "clusters": whole["clusters"],
                                           "users": whole["users"], "contexts": []}))
    contexts = tmp_path / "contexts"
    # A context of the same name in a later file never replaces the first file's (kubectl: first wins),
    # nor does a later file's current-context replace the first one that is set.
    contexts.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [],
                                        "contexts": whole["contexts"], "current-context": "sim"}))
    decoy = tmp_path / "decoy"
    decoy.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config",
                                     "clusters": [{"name": "sim", "cluster": {"server": "http://127.0.0.1:9"}},
                                                  {"name": "decoy", "cluster": {"server": "http://127.0.0.1:9"}}],
                                     "users": [], "contexts": [{"name": "elsewhere", "context": {
                                         "cluster": "decoy", "user": "sim-admin"}}],
                                     "current-context": "elsewhere"}))
    listed = os.pathsep.join([str(credentials), str(contexts), str(tmp_path / "missing"), str(decoy)])
    result = kuryr(sim, tmp_path / "run", "status", "--kubeconfig", listed)
    assert result.exit_code == 0, text(result)
    assert sim.store.infra_id in result.output
    # Through the environment, as an admin exports it.
    args = ["--os-cloud", "sim", "--run-dir", str(tmp_path / "run"), "--poll-interval", "0.02"]
    from click.testing import CliRunner

    from kuryr_cleanup.cli import cli

    env = {"OS_CLIENT_CONFIG_FILE": sim.env["OS_CLIENT_CONFIG_FILE"], "KUBECONFIG": listed}
    by_env = CliRunner().invoke(cli, ["status", *args], env=env, catch_exceptions=False)
    assert by_env.exit_code == 0, by_env.output
    none = CliRunner().invoke(cli, ["status", *args], env={**env, "KUBECONFIG": str(tmp_path / "missing")})
    assert none.exit_code == 2 and "cannot read kubeconfig" in none.output + (none.stderr or "")


# -- nodes in several availability zones ----------------------------------------------------------------
def _spread_over_zones(sim: Any, zones: list[str]) -> None:
    """Nodes in zones round robin, as Nova binds them: the server's zone, its ports `compute:<zone>`.

    (The `azs=` scenario option does the same once the generator has it; done here by hand so this
    test does not depend on it.)"""
    with sim.store.lock:
        servers = sorted(sim.store.all("servers"), key=lambda s: s["name"])
        zone_of = {s["id"]: zones[i % len(zones)] for i, s in enumerate(servers)}
        for server in servers:
            server["OS-EXT-AZ:availability_zone"] = zone_of[server["id"]]
        for port in sim.store.all("ports"):
            if port.get("device_id") in zone_of and str(port.get("device_owner")).startswith("compute:"):
                port["device_owner"] = f"compute:{zone_of[port['device_id']]}"


def test_nodes_in_several_availability_zones_are_found_with_their_networks(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL + ",azs=az1,az2,az3", delays=FAST)
    _spread_over_zones(sim, ["az1", "az2", "az3"])
    # A Kuryr pod port (compute:kuryr) that names a node's server, on a network with a small MTU: not a
    # node port, so neither its MTU nor its subnet counts.
    conn = sim.openstack_sdk()
    with sim.store.lock:
        server_id = sorted(sim.store.all("servers"), key=lambda s: s["name"])[0]["id"]
    pods = conn.network.create_network(name="kuryr-like", mtu=1000)
    subnet = conn.network.create_subnet(network_id=pods.id, cidr="10.250.0.0/24", ip_version=4)
    conn.network.create_port(network_id=pods.id, fixed_ips=[{"subnet_id": subnet.id}], device_owner="compute:kuryr",
                             device_id=server_id)
    sim.clear_requests()

    plan = kuryr(sim, tmp_path / "run", "migrate", "--plan")
    assert plan.exit_code == 0, text(plan)
    assert "give --mtu" not in text(plan)
    assert "OVN-Kubernetes is expected to use MTU 1350 (the smallest node network MTU 1450 minus 100)" in plan.output
    # The overlap check knows the machine network again.
    overlap = kuryr(sim, tmp_path / "run", "migrate", "--plan", "--cluster-network", "10.196.0.0/14",
                    "--host-prefix", "23")
    assert overlap.exit_code == 3
    assert "overlaps the machine network 10.196.0.0/16" in text(overlap)
    assert "10.250.0.0/24" not in text(overlap)
    assert [w for w in sim.writes()] == []

    result = kuryr(sim, tmp_path / "run", "run", "--yes", "--etcd-backup-confirmed")
    assert result.exit_code == 0, text(result)
    assert "is on OVN-Kubernetes" in result.output
