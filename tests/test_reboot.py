"""Node reboot (SPEC R) through the CLI: Nova and SSH, rolling and all at once, resumable, never twice."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.test_migration import (
    FAST,
    SMALL,
    assert_migrated,
    assert_rebooted_once_each,
    connection_args,
    kuryr,
    nova_reboots,
    text,
)
from tests.test_run import KURYR_MIGRATE, NOVA_ACTION, run_all

STAND_IN_SSH = REPO / "tests" / "bin" / "ssh"


def _switch_without_rebooting(sim: Any, run_dir: Path) -> None:
    """Migrate up to the reboots (Nova refuses them in this first run)."""
    sim.control("PUT", "faults", [NOVA_ACTION])
    first = kuryr(sim, run_dir, "migrate", "--yes", "--etcd-backup-confirmed")
    assert first.exit_code == 4, text(first)
    sim.control("PUT", "faults", [])
    sim.clear_requests()


def _journal(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]


def _logging_ssh(tmp_path: Path, exit_code: int | None = None) -> Path:
    """An `ssh` on PATH that records its argv, then behaves like the stand-in (or fails with `exit_code`)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "ssh.log"
    then = f"exit {exit_code}" if exit_code is not None else f'exec "{STAND_IN_SSH}" "$@"'
    script = bin_dir / "ssh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {shlex.quote(str(log))}\n'
                      + ("echo 'ssh: connect to host: Connection refused' >&2\n" if exit_code else "") + then + "\n")
    script.chmod(0o755)
    return bin_dir


def test_the_ssh_path_reboots_every_node_over_ssh_and_none_through_nova(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    bin_dir = _logging_ssh(tmp_path)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "KURYR_SIM_URL": sim.server.os_url}
    result = kuryr(sim, tmp_path / "run", "run", "--yes", "--etcd-backup-confirmed", "--method", "ssh",
                   "--ssh-option", "-o StrictHostKeyChecking=no", "--ssh-option", "-i /keys/id_ed25519", env=env)
    assert result.exit_code == 0, text(result)
    assert_migrated(sim)
    assert nova_reboots(sim) == {}
    calls = (tmp_path / "ssh.log").read_text().splitlines()
    with sim.store.lock:
        ips = sorted(next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP")
                     for n in sim.store.kube_objects("v1", "Node").values())
    assert sorted(c.split(" core@")[1].split()[0] for c in calls) == ips  # each node once
    for call in calls:
        assert call.startswith("-o BatchMode=yes -o ConnectTimeout=15 -o StrictHostKeyChecking=no -i /keys/id_ed25519 ")
        assert call.endswith("sudo shutdown -r -t 3")


def test_a_failing_ssh_names_the_node_and_stops_before_the_cleanup(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    bin_dir = _logging_ssh(tmp_path, exit_code=255)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    result = kuryr(sim, tmp_path / "run", "run", "--yes", "--etcd-backup-confirmed", "--method", "ssh", env=env)
    assert result.exit_code == 4
    assert "ssh to node " in text(result) and "failed with exit 255: ssh: connect to host: Connection refused" in \
        text(result)
    assert not [w for w in sim.writes() if w["method"] == "DELETE"]


def test_reboot_refuses_before_the_switch(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    result = kuryr(sim, tmp_path / "run", "reboot", "--yes")
    assert result.exit_code == 2
    assert "not switched yet" in text(result)
    assert nova_reboots(sim) == {}


def _transitions(sim: Any) -> list[dict[str, Any]]:
    """The simulator's record of every node going down (reboot requested) and coming back (Ready, new boot)."""
    from kuryr_cleanup.sim.openshift import behaviours_for

    with sim.store.lock:
        return [dict(t) for t in behaviours_for(sim.store).reboot_transitions]


def _time_by_calls(sim: Any) -> None:
    """Simulated time passes with the tool's calls, not with the machine's speed: a node is back from its
    reboot 10 API calls after it was asked, so which nodes are down at once is decided by the order of
    the tool's calls alone (a loaded machine once let a node come back between two requests of a batch)."""
    sim.control("PUT", "delays", {"server_reboot": 500, "node_boot": 500})
    sim.control("POST", "clock", {"per_request": 100})


def _most_down_at_once(transitions: list[dict[str, Any]], names: set[str]) -> int:
    down: set[str] = set()
    most = 0
    for t in transitions:
        if t["node"] not in names:
            continue
        if t["event"] == "down":
            down.add(t["node"])
        else:
            down.discard(t["node"])
        most = max(most, len(down))
    return most


def _roles(sim: Any) -> tuple[list[str], list[str]]:
    with sim.store.lock:
        nodes = sorted(sim.store.kube_objects("v1", "Node").values(), key=lambda n: n["metadata"]["name"])
    masters = [n["metadata"]["name"] for n in nodes if "node-role.kubernetes.io/master" in n["metadata"]["labels"]]
    workers = [n["metadata"]["name"] for n in nodes if n["metadata"]["name"] not in masters]
    return masters, workers


def test_reboot_plan_then_all_at_once(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    run_dir = tmp_path / "run"
    _switch_without_rebooting(sim, run_dir)
    # A node coming back before the last request is then a real ordering fault, not a slow machine.
    _time_by_calls(sim)
    planned = kuryr(sim, run_dir, "reboot", "--plan", "--strategy", "all", "--reboot-estimate", "240")
    assert planned.exit_code == 0, text(planned)
    assert "5 nodes to reboot" in planned.output
    assert "strategy all in 1 batch(es); expected outage about 4 min" in planned.output
    assert sim.writes() == []

    result = kuryr(sim, run_dir, "reboot", "--yes", "--strategy", "all", "--hard", "-o", "json")
    assert result.exit_code == 0, text(result)
    doc = json.loads(result.stdout)
    assert doc["kind"] == "RebootResult" and len(doc["rebooted"]) == 5 and doc["actualSeconds"] is not None
    assert_rebooted_once_each(sim)
    # All at once: every node was asked to reboot before the first one came back.
    transitions = _transitions(sim)
    downs = [t for t in transitions if t["event"] == "down"]
    first_up = transitions.index(next(t for t in transitions if t["event"] == "up"))
    assert len(downs) == 5 and all(transitions.index(d) < first_up for d in downs)
    assert _most_down_at_once(transitions, {t["node"] for t in transitions}) == 5
    assert all(e["hard"] for e in [e for e in _journal(run_dir) if e["event"] == "reboot-request"][-5:])

    again = kuryr(sim, run_dir, "reboot", "--yes")
    assert again.exit_code == 0 and "Nothing to do" in text(again)
    assert_rebooted_once_each(sim)
    finished = kuryr(sim, run_dir, "migrate", "--yes")
    assert finished.exit_code == 0, text(finished)
    assert_migrated(sim)
    assert_rebooted_once_each(sim)


def test_rolling_reboots_control_plane_one_at_a_time_then_workers_in_batches(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate="namespaces=1,masters=3,workers=5", delays=FAST)
    run_dir = tmp_path / "run"
    _switch_without_rebooting(sim, run_dir)
    _time_by_calls(sim)
    result = kuryr(sim, run_dir, "reboot", "--yes", "--max-unavailable", "2")
    assert result.exit_code == 0, text(result)
    assert_rebooted_once_each(sim)
    masters, workers = _roles(sim)
    transitions = _transitions(sim)
    assert {t["node"] for t in transitions} == set(masters + workers)
    # Control plane: one at a time, each asked only after the previous one was Ready again, all before workers.
    assert _most_down_at_once(transitions, set(masters)) == 1
    master_events = [(t["node"], t["event"]) for t in transitions if t["node"] in masters]
    assert master_events == [(name, event) for name in masters for event in ("down", "up")]
    last_master_up = max(i for i, t in enumerate(transitions) if t["node"] in masters)
    first_worker_down = min(i for i, t in enumerate(transitions) if t["node"] in workers)
    assert last_master_up < first_worker_down
    # Workers: never more than --max-unavailable down at once (and the batches were used).
    assert _most_down_at_once(transitions, set(workers)) == 2
    assert _most_down_at_once(transitions, set(masters + workers)) == 2
    plan_notes = kuryr(sim, run_dir, "reboot", "--plan").output
    assert "already" in plan_notes or "to reboot" not in plan_notes
    assert len([e for e in _journal(run_dir) if e["event"] == "reboot-sent"]) == 8


def test_nodes_are_matched_to_servers_by_name_when_the_provider_id_is_missing(make_sim: Any,
                                                                               tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    with sim.store.lock:
        node = sorted(sim.store.kube_objects("v1", "Node").values(), key=lambda n: n["metadata"]["name"])[0]
        del node["spec"]["providerID"]
    result = run_all(sim, tmp_path / "run")
    assert result.exit_code == 0, text(result)
    counts = nova_reboots(sim)
    assert len(counts) == 5 and set(counts.values()) == {1}


def _rename_first_node_off_nova(sim: Any) -> None:
    """The first node gets a name and a providerID no Nova server has (a node that is no Nova server)."""
    with sim.store.lock:
        nodes = sim.store.kube_objects("v1", "Node")
        key = sorted(nodes)[0]
        node = nodes[key]
        node["spec"]["providerID"] = "openstack:///00000000-0000-0000-0000-000000000000"
        node["metadata"]["name"] = "renamed-node"
        del nodes[key]
        nodes[("", "renamed-node")] = node


def _assert_use_ssh(sim: Any, result: Any) -> None:
    # The admin's --method is what Nova can't do: bad input, one line, before any plan, nothing sent.
    assert result.exit_code == 2, text(result)
    assert result.stderr.splitlines() == [
        f"kuryr-migrate: error: node renamed-node has no Nova server (providerID or name {sim.store.infra_id}-...) "
        f"to reboot through: use --method ssh (nothing was changed)"]
    assert result.stdout == ""
    assert nova_reboots(sim) == {}


@pytest.mark.parametrize("command", [["run", "--yes", "--etcd-backup-confirmed"], ["run", "--plan"],
                                     ["migrate", "--plan"]])
def test_a_node_without_a_server_is_a_usage_error_for_nova(make_sim: Any, tmp_path: Path,
                                                         command: list[str]) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    _rename_first_node_off_nova(sim)
    sim.clear_requests()
    _assert_use_ssh(sim, kuryr(sim, tmp_path / "run", *command))
    assert sim.writes() == []


def test_reboot_refuses_nova_for_a_node_without_a_server_before_its_plan(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    _switch_without_rebooting(sim, tmp_path / "run")
    _rename_first_node_off_nova(sim)
    for args in (["--plan"], ["--yes"]):
        _assert_use_ssh(sim, kuryr(sim, tmp_path / "run", "reboot", *args))
    assert sim.writes() == []


def test_an_interrupted_reboot_resumes_with_the_nodes_not_yet_rebooted(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays={**FAST, "server_reboot": 0.3, "node_boot": 0.3})
    run_dir = tmp_path / "run"
    _switch_without_rebooting(sim, run_dir)
    argv = [KURYR_MIGRATE, "reboot", *connection_args(sim, run_dir), "--yes"]
    proc = subprocess.Popen(argv, env=sim.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while sum(nova_reboots(sim).values()) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert sum(nova_reboots(sim).values()) == 3
    result = kuryr(sim, run_dir, "reboot", "--yes")
    assert result.exit_code == 0, text(result)
    assert_rebooted_once_each(sim)
    assert result.output.count("R    rebooting ") == 2


def _set_ready(sim: Any, name: str, ready: bool) -> None:
    from kuryr_cleanup.sim.openshift import node_ready_conditions

    with sim.store.lock:
        node = sim.store.kube_get("v1", "Node", name)
        node["status"]["conditions"] = node_ready_conditions(ready)


def test_a_control_plane_node_is_rebooted_only_while_every_other_one_is_ready(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    run_dir = tmp_path / "run"
    _switch_without_rebooting(sim, run_dir)
    with sim.store.lock:
        masters = sorted(n["metadata"]["name"] for n in sim.store.kube_objects("v1", "Node").values()
                         if "node-role.kubernetes.io/master" in n["metadata"]["labels"])
    _set_ready(sim, masters[-1], False)  # down for a reason of its own
    result = kuryr(sim, run_dir, "reboot", "--yes", "--reboot-timeout", "0.5")
    assert result.exit_code == 4, text(result)
    assert f"control-plane node(s) {masters[-1]} not Ready within" in text(result)
    assert "could lose etcd quorum" in text(result)
    assert nova_reboots(sim) == {}  # no second member taken down
    _set_ready(sim, masters[-1], True)
    again = kuryr(sim, run_dir, "reboot", "--yes")
    assert again.exit_code == 0, text(again)
    assert_rebooted_once_each(sim)


def test_all_at_once_survives_the_cluster_api_being_down_while_the_masters_reboot(make_sim: Any,
                                                                                  tmp_path: Path) -> None:
    from kuryr_cleanup.sim.faults import FaultRule

    sim = make_sim(generate=SMALL, delays=FAST)
    run_dir = tmp_path / "run"
    _switch_without_rebooting(sim, run_dir)
    outage: list[FaultRule] = []

    def api_goes_down(**_: Any) -> None:
        # With every control-plane node rebooting, the API drops connections and answers 503 for a while.
        if not outage:
            outage.extend([FaultRule(service="kube", status=0, count=30),
                           FaultRule(service="kube", status=503, count=30)])
            sim.server.faults.add_rules(outage)

    sim.store.on("server_reboot", api_goes_down)
    result = kuryr(sim, run_dir, "migrate", "--yes", "--strategy", "all")
    assert result.exit_code == 0, text(result)
    assert "API unreachable" in result.output
    assert [rule.fired for rule in outage] == [30, 30]  # the outage really happened and ended
    assert_rebooted_once_each(sim)
    assert_migrated(sim)


def test_reboot_after_a_finished_migration_refuses_without_force(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    run_dir = tmp_path / "run"
    assert kuryr(sim, run_dir, "migrate", "--yes", "--etcd-backup-confirmed").exit_code == 0
    before = nova_reboots(sim)
    refused = kuryr(sim, tmp_path / "elsewhere", "reboot", "--yes")
    assert refused.exit_code == 2, text(refused)
    assert "the migration is finished (spec.migration is null)" in text(refused) and "--force" in text(refused)
    assert nova_reboots(sim) == before
    forced = kuryr(sim, run_dir, "reboot", "--yes", "--force")  # the recorded boot IDs: nothing left to do
    assert forced.exit_code == 0 and "Nothing to do" in text(forced)
    assert nova_reboots(sim) == before


def test_reboot_warns_loudly_when_no_boot_ids_are_recorded(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    _switch_without_rebooting(sim, tmp_path / "run")
    elsewhere = kuryr(sim, tmp_path / "elsewhere", "reboot", "--plan")
    assert elsewhere.exit_code == 0, text(elsewhere)
    assert "WARNING: no boot IDs are recorded in the run directory" in text(elsewhere)
    assert "WARNING" not in text(kuryr(sim, tmp_path / "run", "reboot", "--plan"))
    assert sim.writes() == []


def test_two_servers_with_a_nodes_name_are_refused_not_guessed(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    with sim.store.lock:
        node = sorted(sim.store.kube_objects("v1", "Node").values(), key=lambda n: n["metadata"]["name"])[-1]
        server_id = node["spec"].pop("providerID").rsplit("/", 1)[1]
        twin = json.loads(json.dumps(sim.store.os["servers"][server_id]))
        twin["id"] = "0b7c7f4e-1d3e-4a55-9a51-6b0c2f0d7a11"
        sim.store.os["servers"][twin["id"]] = twin
    sim.clear_requests()
    result = run_all(sim, tmp_path / "run")
    assert result.exit_code == 3, text(result)
    assert f"node {node['metadata']['name']}: 2 Nova servers are named {node['metadata']['name']}" in text(result)
    assert "ambiguous" in text(result)
    assert nova_reboots(sim) == {} and sim.writes() == []
