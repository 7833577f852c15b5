"""`kuryr-migrate snapshot`: read-only, no node secrets, a file only its owner can read, and a snapshot
rehearses the same plans in the simulator."""

from __future__ import annotations

import json
import os
import stat
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import pytest

from kuryr_cleanup.snapshot import OVS_EXEC_START
from tests.test_cleanup import FAST, kuryr_migrate, migrated_sim
from tests.test_migration import FAST as FAST_DELAYS
from tests.test_migration import SMALL, kuryr, text

MC_API = "machineconfiguration.openshift.io/v1"
MCO_STEP = 3600.0  # simulated seconds per node of an MCO rollout


def _plan(sim: Any) -> list[tuple[str, ...]]:
    result = kuryr_migrate(sim, "cleanup", "--plan", "-o", "json", *FAST)
    assert result.exit_code == 0, result.output
    return [tuple(i[k] for k in ("step", "kind", "id", "name", "action", "state", "evidence"))
            for i in json.loads(result.stdout)["items"]]


def _snapshot(sim: Any, path: Path, *args: str) -> dict[str, Any]:
    result = kuryr_migrate(sim, "snapshot", "-o", str(path), *args)
    assert result.exit_code == 0, result.output
    return dict(json.loads(path.read_text()))


def test_a_snapshot_is_read_only_and_replays_the_same_plan(make_sim: Any, tmp_path: Path) -> None:
    original = migrated_sim(make_sim, generate="namespaces=3,second-cluster,fips,untagged=1")
    original.clear_requests()
    out = tmp_path / "snap.json"
    result = kuryr_migrate(original, "snapshot", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert original.writes() == []
    snap = json.loads(out.read_text())
    assert snap["format"] == "kuryr-migrate/snapshot" and snap["infra_id"] == original.store.infra_id
    assert "sim-password" not in out.read_text()
    replica = make_sim(snapshot=out)
    assert _plan(replica) == _plan(original)


# -- MachineConfigs -------------------------------------------------------------------------------------
def _settle_machine_configs(sim: Any) -> None:
    """Move the simulator's clock until every pool has rolled out its target config (no real waiting)."""
    for _ in range(1000):
        sim.store.advance(MCO_STEP)
        with sim.store.lock:
            pools = list(sim.store.kube_objects(MC_API, "MachineConfigPool").values())
            if all(p["status"]["configuration"]["name"] == p["spec"]["configuration"]["name"]
                   and p["status"]["updatedMachineCount"] == p["status"]["machineCount"] for p in pools):
                return
    raise AssertionError("the simulated MCO did not finish")


def _plan_document(sim: Any, run_dir: Path, command: str) -> dict[str, Any]:
    result = kuryr(sim, run_dir, command, "--plan", "-o", "json")
    assert result.exit_code == 0, text(result)
    return dict(json.loads(result.output))


def test_machine_configs_keep_what_the_migration_reads_and_replay_the_same_migration(make_sim: Any,
                                                                                    tmp_path: Path) -> None:
    # Only this cluster in the project: the snapshot holds all of it, so the plans must be equal to the letter.
    # The simulated MCO moves only when the test moves the clock: the run below stops at A4 for sure.
    original = make_sim(generate=f"{SMALL},user-resources=no", delays={**FAST_DELAYS, "mco_node": MCO_STEP})
    before = _snapshot(original, tmp_path / "before.json")
    for mc in [o for o in before["kubernetes"]["objects"] if o["kind"] == "MachineConfig"]:
        assert set(mc["metadata"]) <= {"name", "labels", "annotations", "ownerReferences", "resourceVersion",
                                       "uid", "creationTimestamp"}
        units = mc["spec"]["config"]["systemd"]["units"]
        assert list(mc["spec"]) == ["config"] and list(mc["spec"]["config"]) == ["systemd"]
        assert [u["name"] for u in units] == ["ovs-configuration.service"]
        assert units[0]["contents"] == f"{OVS_EXEC_START} Kuryr\n"
    # Before the migration: the same plan from the snapshot as from the cluster (the plan names the run
    # directory: both use the same one, and a plan writes nothing there).
    replica = make_sim(snapshot=tmp_path / "before.json", delays=FAST_DELAYS)
    run_dir = tmp_path / "plan"
    for command in ("run", "migrate"):
        assert _plan_document(replica, run_dir, command) == _plan_document(original, run_dir, command)

    # Half-way: prepared (A2), the MCO has rendered the OVNKubernetes configs and rolled them out. Whether A4
    # is done now rests on the rendered config's OVS line: the snapshot must have kept it.
    result = kuryr(original, tmp_path / "run", "migrate", "--yes", "--etcd-backup-confirmed", "--mco-timeout", "0")
    assert result.exit_code == 4 and "A4" in text(result), text(result)
    _settle_machine_configs(original)
    _snapshot(original, tmp_path / "prepared.json")
    replica = make_sim(snapshot=tmp_path / "prepared.json", delays=FAST_DELAYS)
    plan = _plan_document(original, run_dir, "migrate")
    assert _plan_document(replica, run_dir, "migrate") == plan
    assert not [i for i in plan["items"] if i["step"] in ("A2", "A4")]
    # ... and the rehearsal finishes the migration from there.
    result = kuryr(replica, tmp_path / "rehearsal", "migrate", "--yes", "--etcd-backup-confirmed")
    assert result.exit_code == 0, text(result)


def _seed_node_secrets(sim: Any, marker: str) -> None:
    """What the rendered MachineConfigs of a real cluster carry: the pull secret as a file the MCO writes,
    the core user's SSH key, other units' contents."""
    config_json = json.dumps({"auths": {"registry.example.com": {"auth": marker, "email": f"{marker}@example.com"}}})
    with sim.store.lock:
        for mc in sim.store.kube_objects(MC_API, "MachineConfig").values():
            config = mc["spec"]["config"]
            config.setdefault("storage", {}).setdefault("files", []).append({
                "path": "/var/lib/kubelet/config.json", "mode": 384, "overwrite": True,
                "contents": {"source": "data:," + urllib.parse.quote(config_json)},
            })
            config["passwd"] = {"users": [{"name": "core", "sshAuthorizedKeys": [f"ssh-ed25519 AAAA {marker}"]}]}
            for unit in config["systemd"]["units"]:
                if unit["name"] == "kubelet.service":
                    unit["contents"] = f"[Service]\nEnvironment=REGISTRY_AUTH={marker}\nExecStart=/usr/bin/kubelet\n"


def test_a_pull_secret_in_a_rendered_machine_config_leaves_no_trace(make_sim: Any, tmp_path: Path) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=2,pods=2,services=1,fips")
    marker = f"pull-secret-{uuid.uuid4().hex}"
    _seed_node_secrets(sim, marker)
    assert marker in json.dumps(sim.state())  # the cluster serves it: the checks below are not empty
    # (The simulated cluster has no Secret objects to seed; the snapshot does not read Secrets either.)
    outputs = []
    result = kuryr_migrate(sim, "snapshot", "-o", str(tmp_path / "snap.json"))
    assert result.exit_code == 0, result.output
    outputs.append(text(result))
    for args in (["cleanup", "--plan", *FAST], ["cleanup", "--plan", "-o", "json", *FAST]):
        result = kuryr_migrate(sim, *args)
        assert result.exit_code == 0, result.output
        outputs.append(text(result))
    result = kuryr(sim, tmp_path / "run", "run", "--plan", "-o", "json")
    assert result.exit_code == 0, text(result)
    outputs.append(text(result))
    result = kuryr_migrate(sim, "cleanup", "--yes", *FAST)
    assert result.exit_code == 0, result.output
    outputs.append(text(result))
    assert not [o for o in outputs if marker in o]
    files = [p for base in (tmp_path, sim.workdir) for p in base.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"snap.json", "journal.jsonl", "state.json"}
    assert not [str(p) for p in files if marker in p.read_text(errors="replace")]


# -- the file ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o000, 0o277])
def test_the_file_is_readable_by_its_owner_only_whatever_the_umask(make_sim: Any, tmp_path: Path,
                                                                    umask: int) -> None:
    sim = make_sim(generate="namespaces=1,pods=1,services=1")
    older = tmp_path / "snap.json"
    older.write_text("{}")
    older.chmod(0o644)  # an older snapshot, readable by all
    stale = tmp_path / "snap.json.tmp"
    stale.write_text("partial")
    stale.chmod(0o666)  # left by an interrupted snapshot
    saved = os.umask(umask)
    try:
        for path in (older, tmp_path / "new.json"):
            result = kuryr_migrate(sim, "snapshot", "-o", str(path))
            assert result.exit_code == 0, result.output
    finally:
        os.umask(saved)
    for path in (older, tmp_path / "new.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, oct(path.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["new.json", "snap.json"]
