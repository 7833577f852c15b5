"""The admin's `openstack` CLI against the simulated Neutron: lists, tag filters, shows, deletions.

Each `openstack` start costs seconds, so independent commands of a test run side by side.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from kuryr_cleanup.sim import neutron
from tests.sim.test_neutron import Cloud

OPENSTACK = str(Path(sys.executable).with_name("openstack"))


def _run(sim: Any, *commands: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """Run `openstack` commands concurrently; results in the order given."""
    running = [
        (command, subprocess.Popen([OPENSTACK, *command], env=sim.env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True))
        for command in commands
    ]
    results = []
    for command, process in running:
        out, err = process.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(command, process.returncode, out, err))
    return results


def _ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, f"{result.args}: {result.stderr}"
    return json.loads(result.stdout) if result.stdout.strip() else None


def test_lists_with_tag_filters_and_the_500_on_combining_them(sim: Any) -> None:
    Cloud(sim.store)
    with sim.store.lock:
        neutron.create_network(sim.store, name="other-cluster", tags=["openshiftClusterID=xyz"])
    tagged, combined = _run(
        sim,
        ["network", "list", "--tags", "openshiftClusterID=abc", "--long", "-f", "json"],
        ["network", "list", "--tags", "openshiftClusterID=abc", "--any-tags", "openshiftClusterID=xyz"],
    )
    (listed,) = _ok(tagged)
    assert listed["Name"] == "ns/default-net" and listed["Tags"] == ["openshiftClusterID=abc"]
    # The combination real Neutron 29 fails on fails here too.
    assert combined.returncode != 0 and "500" in combined.stderr


def test_refused_deletions_show_neutron_s_messages(sim: Any) -> None:
    cloud = Cloud(sim.store)
    subport, pool = _run(
        sim,
        ["port", "delete", cloud.subport["id"]],
        ["subnet", "pool", "delete", cloud.pool["id"]],
    )
    assert subport.returncode != 0
    assert f"Port {cloud.subport['id']} is currently a subport for trunk {cloud.trunk['id']}" in subport.stderr
    assert pool.returncode != 0 and "Subnet pool has existing allocations" in pool.stderr
    assert {r["status"] for r in sim.writes()} == {400, 409}


def test_unset_a_subport_and_remove_a_router_interface_twice(sim: Any) -> None:
    cloud = Cloud(sim.store)
    with sim.store.lock:
        neutron.delete_floatingip(sim.store, cloud.fip["id"])
    unset, removed = _run(
        sim,
        ["network", "trunk", "unset", "--subport", cloud.subport["id"], cloud.trunk["id"]],
        ["router", "remove", "subnet", cloud.router["id"], cloud.subnet["id"]],
    )
    _ok(unset)
    _ok(removed)
    assert sim.store.os["trunks"][cloud.trunk["id"]]["sub_ports"] == []
    assert sim.store.os["ports"][cloud.subport["id"]]["device_owner"] == ""
    assert cloud.interface["id"] not in sim.store.os["ports"]
    (again,) = _run(sim, ["router", "remove", "subnet", cloud.router["id"], cloud.subnet["id"]])
    assert again.returncode != 0
    assert f"Router {cloud.router['id']} has no interface on subnet {cloud.subnet['id']}" in again.stderr
