"""kuryr-migrate cleanup against the real Neutron 29 and Octavia 19, with the cluster simulated.

One story per seeded cloud (seeding costs a minute or more, and the cleanup destroys it):
the plan writes nothing; a snapshot of the real cloud loaded into the simulator gives the same plan;
`cleanup --yes` leaves exactly what the oracle says (this cluster's Kuryr resources gone, the other
cluster's and the users' unchanged), judged by listing the real services.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openstack
import pytest

from kuryr_cleanup.sim.generate import normalize_timestamps
from kuryr_cleanup.sim.server import SimServer
from kuryr_cleanup.sim.store import Store
from tests.cleanup_oracle import check_end_state, expected_gone, mark_migrated
from tests.conftest import FIXTURES, Sim
from tests.real.harness import FAST, EmptyCompute, RealTarget, all_ids, plan_items, project_view
from tests.real.seed import SeededCloud, VipPortReaper, seed_real_cloud

# Small on purpose: real Neutron does ~5-10 writes a second. Still every shape the cleanup meets:
# two clusters in one project, trunks with subports, NP groups (one untagged), the subnet pool,
# the installer router with the node and namespace subnets, LBs with listeners/pools/members, Kuryr
# and user floating IPs, the users' own resources.
SPEC = "namespaces=2,pods=1,services=1,policies=1,masters=1,workers=1,pool-ports=0,second-cluster,fips,untagged=1"
RECORD_VARIABLE = "KURYR_MIGRATE_RECORD_REAL_FIXTURE"  # set to 1 to rewrite fixtures/real-small.json
FIXTURE = FIXTURES / "real-small.json"


@dataclass
class RealCluster:
    seeded: SeededCloud
    target: RealTarget
    sim: Sim  # the simulated cluster (its OpenStack side is empty and unused)
    neutron: Any
    octavia: Any


@pytest.fixture
def real_cluster(real_neutron_url: str, real_octavia_url: str, tmp_path: Path) -> Iterator[RealCluster]:
    with seeded_cluster(real_neutron_url, real_octavia_url, tmp_path, SPEC) as cluster:
        yield cluster


@contextlib.contextmanager
def seeded_cluster(real_neutron_url: str, real_octavia_url: str, tmp_path: Path, spec: str) -> Iterator[RealCluster]:
    """`spec` generated and created in a fresh project of the real services, its cluster simulated."""
    neutron = openstack.connect(auth_type="none", auth={"endpoint": real_neutron_url})
    octavia = openstack.connect(auth_type="none", auth={"endpoint": real_neutron_url},
                                load_balancer_endpoint_override=real_octavia_url)
    seeded = seed_real_cloud(neutron, octavia, spec)
    print(f"seeded {seeded.infra_id} in project {seeded.project_id}: "
          + ", ".join(f"{k} {v:.1f}s" for k, v in seeded.timings.items()))
    mark_migrated(seeded.kube_store)
    server = SimServer(seeded.kube_store).start()
    compute = EmptyCompute()
    try:
        sim = Sim(server, tmp_path / "sim")
        target = RealTarget(tmp_path / "real", real_neutron_url, real_octavia_url, compute.url,
                            sim.env["KUBECONFIG"])
        yield RealCluster(seeded, target, sim, neutron, octavia)
    finally:
        compute.stop()
        server.stop()


def _timed(label: str, started: float) -> float:
    now = time.monotonic()
    print(f"{label}: {now - started:.1f}s")
    return now


def test_plan_snapshot_and_cleanup_against_real_services(real_cluster: RealCluster, make_sim: Any) -> None:
    rc = real_cluster
    pid = rc.seeded.project_id
    started = time.monotonic()
    before = project_view(rc.target.snapshot("before"), pid)
    started = _timed("snapshot", started)
    assert before["infra_id"] == rc.seeded.infra_id
    gone = expected_gone(before)
    assert gone["loadbalancers"] and gone["floatingips"] and gone["security_groups"] and gone["subnetpools"]

    # --plan: no write anywhere (the real services by listing, the cluster by the simulator's log).
    rc.sim.clear_requests()
    planned = rc.target.run("cleanup", "--plan", "-o", "json", *FAST)
    assert planned.exit_code == 0, planned.output
    started = _timed("cleanup --plan", started)
    assert rc.sim.writes() == []
    assert project_view(rc.target.snapshot("after-plan"), pid)["openstack"] == before["openstack"]
    real_plan = json.loads(planned.stdout)

    # The same plan from the simulator holding the snapshot of the real cloud.
    sim_of_real = make_sim(snapshot=before)
    mark_migrated(sim_of_real.store)
    sim_env = {k: sim_of_real.env[k] for k in ("OS_CLIENT_CONFIG_FILE", "OS_CLOUD", "KUBECONFIG")}
    from click.testing import CliRunner

    from kuryr_cleanup.cli import cli
    sim_planned = CliRunner().invoke(cli, ["cleanup", "--plan", "-o", "json", *FAST, "--run-dir",
                                           str(sim_of_real.workdir / "run")], env=sim_env, catch_exceptions=False)
    assert sim_planned.exit_code == 0, sim_planned.output
    known = all_ids(before)
    assert plan_items(json.loads(sim_planned.stdout), known) == plan_items(real_plan, known)
    started = _timed("plan in the simulator from the real snapshot", started)
    if os.environ.get(RECORD_VARIABLE) == "1":
        recorded = normalize_timestamps({**before, "source": f"real Neutron 29 + Octavia 19, seeded: {SPEC}"})
        FIXTURE.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")

    # --yes: Octavia's network driver would release each VIP port with its LB; the reaper does it here.
    with VipPortReaper(rc.neutron, rc.octavia, rc.seeded.vip_ports):
        result = rc.target.run("cleanup", "--yes", *FAST)
    assert result.exit_code == 0, result.output
    started = _timed("cleanup --yes", started)
    after = project_view(rc.target.snapshot("after"), pid)
    check_end_state(before, after)
    # A second run finds nothing to do and writes nothing.
    rc.sim.clear_requests()
    again = rc.target.run("cleanup", "--yes", *FAST, run_dir="run2")
    assert again.exit_code == 0, again.output
    assert "Nothing to do" in again.stdout
    assert rc.sim.writes() == []
    assert project_view(rc.target.snapshot("after-again"), pid)["openstack"] == after["openstack"]
    _timed("second cleanup", started)


SNAT = "network:router_centralized_snat"


def test_on_a_real_distributed_router_b12_leaves_the_snat_ports_to_the_interface_removal(
        real_neutron_url: str, real_octavia_url: str, tmp_path: Path) -> None:
    """ML2/OVS with DVR: Neutron 29 makes a distributed router without any L3 agent (admin: noauth), and
    a `network:router_centralized_snat` port with each interface while the router has a gateway
    (neutron/db/l3_dvr_db.py `_retry_add_csnat_on_interface_create`); it refuses to delete one directly
    (409) and removes it with the interface (`_retry_cleanup_after_interface_removal`)."""
    spec = "namespaces=1,pods=1,services=0,policies=0,masters=1,workers=1,pool-ports=0,dvr"
    with seeded_cluster(real_neutron_url, real_octavia_url, tmp_path, spec) as rc:
        before = project_view(rc.target.snapshot("before"), rc.seeded.project_id)
        gone = expected_gone(before)
        snat = {p["id"] for p in before["openstack"]["ports"] if p["device_owner"] == SNAT}
        kuryr_snat = snat & gone["ports"]
        assert kuryr_snat, "no SNAT port on a Kuryr network: the router is not distributed"
        with pytest.raises(openstack.exceptions.ConflictException):  # the real service's own refusal
            rc.neutron.network.delete_port(sorted(kuryr_snat)[0])
        with VipPortReaper(rc.neutron, rc.octavia, rc.seeded.vip_ports):
            result = rc.target.run("cleanup", "--yes", *FAST)
        assert result.exit_code == 0, result.output
        journal = [json.loads(line) for line in (rc.target.workdir / "run" / "journal.jsonl").read_text().splitlines()]
        deleted = {e["id"] for e in journal if e["event"] == "delete" and e.get("kind") == "port"}
        assert deleted and not deleted & snat  # pod ports deleted one by one, SNAT ports never
        after = project_view(rc.target.snapshot("after"), rc.seeded.project_id)
        assert not kuryr_snat & {p["id"] for p in after["openstack"]["ports"]}  # gone with the interfaces
        assert not gone["networks"] & {n["id"] for n in after["openstack"]["networks"]}


def test_recorded_real_fixture_is_a_loadable_snapshot() -> None:
    """fixtures/real-small.json came from the real services; tests/test_cleanup.py runs the cleanup on it."""
    data = json.loads(FIXTURE.read_text())
    store = Store()
    store.load_snapshot(data)
    assert store.os["loadbalancers"] and all(lb["provider"] == "amphora" for lb in store.os["loadbalancers"].values())
    assert FIXTURE.stat().st_size < 1_000_000


def test_octavia_api_version_is_read_from_the_load_balancer_endpoint(
        real_neutron_url: str, real_octavia_url: str, make_sim: Any, tmp_path: Path) -> None:
    cluster = make_sim(generate="namespaces=1,pods=0,services=0,policies=0,masters=1,workers=1")
    mark_migrated(cluster.store)
    compute = EmptyCompute()
    try:
        target = RealTarget(tmp_path / "real", real_neutron_url, real_octavia_url, compute.url,
                            cluster.env["KUBECONFIG"])
        planned = target.run("cleanup", "--plan", *FAST)
    finally:
        compute.stop()
    assert planned.exit_code == 0, planned.output
    assert "has no tags" not in planned.output
