"""The simulated Nova v2.1 API, driven through openstacksdk and the `openstack` CLI.

What the node reboot (spec R) depends on: finding the cluster's servers by name (Nova's `name`
filter is a regular expression), the reboot action (202, REBOOT/HARD_REBOOT, then ACTIVE after the
delay; 409 when Nova's state checks refuse it) and the store event the OpenShift behaviours react to.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import openstack.exceptions
import pytest

from kuryr_cleanup.sim import nova
from kuryr_cleanup.sim.store import Store

NODE_NAMES = ("sim-abc12-master-0", "sim-abc12-master-1", "sim-abc12-worker-0-x7k2p", "other-xyz89-master-0")


def _servers(store: Store, names: tuple[str, ...] = NODE_NAMES, **attrs: Any) -> dict[str, dict[str, Any]]:
    with store.lock:
        return {name: nova.create_server(store, name=name, **attrs) for name in names}

@pytest.fixture
def sim(make_sim: Any) -> Any:
    """A simulator whose transitions take long enough that none happens in real time while a test looks;
    tests move the clock past them with `sim.store.advance(SETTLE)`."""
    return make_sim(store=Store(), delays={"server_reboot": 5.0, "node_boot": 5.0})


SETTLE = 10.0


# The admin's CLI from the same environment as the tests (python-openstackclient + python-octaviaclient).
OPENSTACK = str(Path(sys.executable).with_name("openstack"))


def _openstack(sim: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OPENSTACK, *args], env=sim.env, capture_output=True, text=True, timeout=120)


def test_the_name_filter_is_a_regular_expression_as_in_nova(sim: Any) -> None:
    _servers(sim.store)
    conn = sim.openstack_sdk()

    def names(**query: Any) -> set[str]:
        return {s.name for s in conn.compute.servers(**query)}

    assert names(name="sim-abc12-") == {"sim-abc12-master-0", "sim-abc12-master-1", "sim-abc12-worker-0-x7k2p"}
    assert names(name="master") == {"sim-abc12-master-0", "sim-abc12-master-1", "other-xyz89-master-0"}
    assert names(name="^sim-abc12-master-[01]$") == {"sim-abc12-master-0", "sim-abc12-master-1"}
    assert names() == set(NODE_NAMES)


def test_a_soft_reboot_is_accepted_shows_reboot_and_is_active_after_the_delay(sim: Any) -> None:
    servers = _servers(sim.store)
    server_id = servers["sim-abc12-master-0"]["id"]
    events: list[dict[str, Any]] = []
    sim.store.on("server_reboot", lambda **event: events.append(event))
    conn = sim.openstack_sdk()

    conn.compute.reboot_server(server_id, "SOFT")

    assert events == [{"server_id": server_id, "hard": False}]
    rebooting = conn.compute.get_server(server_id)
    assert rebooting.status == "REBOOT"
    assert rebooting.task_state == "reboot_started"
    sim.store.advance(SETTLE)
    assert conn.compute.get_server(server_id).status == "ACTIVE"
    assert conn.compute.get_server(server_id).task_state is None


def test_a_clock_paced_by_requests_moves_with_the_calls_not_with_the_machine(sim: Any) -> None:
    server_id = _servers(sim.store)["sim-abc12-master-0"]["id"]
    conn = sim.openstack_sdk()
    conn.compute.get_server(server_id)  # authenticated, the compute endpoint found
    sim.control("POST", "clock", {"per_request": 2.0})  # the reboot takes 5 simulated seconds
    conn.compute.reboot_server(server_id, "SOFT")
    assert [conn.compute.get_server(server_id).status for _ in range(4)] == ["REBOOT", "REBOOT", "ACTIVE", "ACTIVE"]
    assert sim.control("POST", "clock", {"per_request": 0})["per_request"] == 0


def test_a_second_soft_reboot_is_409_but_a_hard_one_escalates(sim: Any) -> None:
    server_id = _servers(sim.store)["sim-abc12-master-0"]["id"]
    conn = sim.openstack_sdk()
    conn.compute.reboot_server(server_id, "SOFT")

    with pytest.raises(openstack.exceptions.ConflictException) as conflict:
        conn.compute.reboot_server(server_id, "SOFT")
    assert f"Cannot 'reboot' instance {server_id} while it is in task_state reboot_started" in str(conflict.value)

    conn.compute.reboot_server(server_id, "HARD")
    assert conn.compute.get_server(server_id).status == "HARD_REBOOT"
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.compute.reboot_server(server_id, "HARD")
    sim.store.advance(SETTLE)
    assert conn.compute.get_server(server_id).status == "ACTIVE"


def test_a_stopped_server_only_takes_a_hard_reboot(sim: Any) -> None:
    server_id = _servers(sim.store, ("sim-abc12-worker-1",), status="SHUTOFF")["sim-abc12-worker-1"]["id"]
    conn = sim.openstack_sdk()

    with pytest.raises(openstack.exceptions.ConflictException) as conflict:
        conn.compute.reboot_server(server_id, "SOFT")
    assert "while it is in vm_state stopped" in str(conflict.value)
    body = conn.compute.post(f"/servers/{server_id}/action", json={"reboot": {"type": "SOFT"}}).json()
    assert body["conflictingRequest"]["code"] == 409

    conn.compute.reboot_server(server_id, "HARD")
    sim.store.advance(SETTLE)
    assert conn.compute.get_server(server_id).status == "ACTIVE"


def test_unknown_servers_are_404_itemnotfound(sim: Any) -> None:
    conn = sim.openstack_sdk()

    response = conn.compute.post("/servers/no-such-server/action", json={"reboot": {"type": "HARD"}})

    assert response.status_code == 404
    assert response.json() == {"itemNotFound": {"code": 404, "message": "Instance no-such-server could not be found."}}


def test_microversions_are_negotiated_and_echoed(sim: Any) -> None:
    server_id = _servers(sim.store, ("sim-abc12-master-0",))["sim-abc12-master-0"]["id"]
    conn = sim.openstack_sdk()

    old = conn.compute.get(f"/servers/{server_id}", microversion="2.1")
    new = conn.compute.get(f"/servers/{server_id}", microversion="2.96")
    too_new = conn.compute.get(f"/servers/{server_id}", microversion="2.999")

    assert old.headers["OpenStack-API-Version"] == "compute 2.1"
    assert set(old.json()["server"]["flavor"]) == {"id", "links"}
    assert "tags" not in old.json()["server"]
    assert new.headers["OpenStack-API-Version"] == "compute 2.96"
    assert new.json()["server"]["flavor"]["original_name"] == "m1.xlarge"
    assert too_new.status_code == 406
    versions = conn.session.get(f"{sim.server.os_url}/compute/v2.1/").json()["version"]
    assert (versions["min_version"], versions["version"]) == ("2.1", "2.96")


def test_server_pages_follow_servers_links(sim: Any) -> None:
    names = tuple(f"sim-abc12-worker-{i}" for i in range(5))
    _servers(sim.store, names)
    conn = sim.openstack_sdk()

    first = conn.compute.get("/servers/detail?limit=2").json()
    assert len(first["servers"]) == 2
    assert first["servers_links"][0]["rel"] == "next"
    assert {s.name for s in conn.compute.servers(limit=2)} == set(names)


def test_openstack_cli_lists_by_name_prefix_and_reboots(sim: Any) -> None:
    servers = _servers(sim.store)

    listed = _openstack(sim, "server", "list", "--name", "sim-abc12-", "-f", "json")
    assert listed.returncode == 0, listed.stderr
    assert {s["Name"] for s in json.loads(listed.stdout)} == {
        "sim-abc12-master-0", "sim-abc12-master-1", "sim-abc12-worker-0-x7k2p"}

    rebooted = _openstack(sim, "server", "reboot", "--hard", "sim-abc12-master-1")
    assert rebooted.returncode == 0, rebooted.stderr
    assert sim.store.os["servers"][servers["sim-abc12-master-1"]["id"]]["status"] == "HARD_REBOOT"
    sim.store.advance(SETTLE)
    assert sim.store.os["servers"][servers["sim-abc12-master-1"]["id"]]["status"] == "ACTIVE"
