"""One run, one cluster (SPEC S6): a run directory belongs to one cluster instance, and only one
mutating run at a time holds the cluster. Told through the CLI against the simulator."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

from kuryr_cleanup.lock import LOCK_NAME, LOCK_NAMESPACE
from tests.cleanup_oracle import mark_migrated
from tests.test_cleanup import FAST, kuryr_migrate, migrated_sim
from tests.test_migration import FAST as FAST_DELAYS
from tests.test_migration import SMALL, assert_migrated, kuryr, nova_reboots, server_ids, text
from tests.test_safety import _cloud_scoped_to

LEASE_API = "coordination.k8s.io/v1"


def _lease(sim: Any) -> dict[str, Any] | None:
    with sim.store.lock:
        found = sim.store.kube_get(LEASE_API, "Lease", LOCK_NAME, LOCK_NAMESPACE)
        return json.loads(json.dumps(found)) if found else None


def _hold(sim: Any, holder: str, renewed: dt.datetime, seconds: int = 60) -> None:
    """Someone else's run holds the lock, renewed at `renewed`."""
    stamp = renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with sim.store.lock:
        sim.store.kube_put({"apiVersion": LEASE_API, "kind": "Lease",
                            "metadata": {"name": LOCK_NAME, "namespace": LOCK_NAMESPACE},
                            "spec": {"holderIdentity": holder, "leaseDurationSeconds": seconds, "acquireTime": stamp,
                                     "renewTime": stamp, "leaseTransitions": 0}})


def test_a_reused_run_directory_of_a_fresh_cluster_with_the_same_infra_id_is_refused(make_sim: Any,
                                                                                     tmp_path: Path) -> None:
    """The reproduction: a cluster migrated to the end with run dir D; a fresh, never-migrated cluster
    from the same spec (same infraID) must not inherit D's boot IDs and skip its reboots."""
    run_dir = tmp_path / "D"
    first = make_sim(generate=SMALL, delays=FAST_DELAYS)
    done = kuryr(first, run_dir, "migrate", "--yes", "--etcd-backup-confirmed")
    assert done.exit_code == 0, text(done)
    fresh = make_sim(generate=SMALL, delays=FAST_DELAYS)
    assert fresh.store.infra_id == first.store.infra_id
    fresh.clear_requests()
    refused = kuryr(fresh, run_dir, "migrate", "--yes", "--etcd-backup-confirmed", "--backup-file",
                    str(tmp_path / "x.yaml"))
    assert refused.exit_code == 2
    line = refused.stderr.strip()
    assert "\n" not in line and "belongs to cluster" in line and str(run_dir) in line
    assert line.count("clusterID") == 2  # both clusters named
    assert fresh.writes() == []
    for command in ("status", "reboot"):
        assert kuryr(fresh, run_dir, command, *(["--plan"] if command == "reboot" else [])).exit_code == 2
    # With its own run directory the fresh cluster is migrated in full: every node rebooted.
    own = kuryr(fresh, tmp_path / "fresh", "migrate", "--yes", "--etcd-backup-confirmed")
    assert own.exit_code == 0, text(own)
    assert_migrated(fresh)
    assert set(nova_reboots(fresh)) == server_ids(fresh)


def test_a_run_directory_used_with_another_projects_credentials_says_that_the_project_differs(
        make_sim: Any, tmp_path: Path) -> None:
    """After the cleanup (the Kuryr CRs gone, nothing left to name the cluster's project), the admin
    plans again with credentials scoped to the `admin` project: the refusal says what differs."""
    sim = migrated_sim(make_sim, generate="namespaces=1,other-project")
    run_dir = tmp_path / "run"
    assert kuryr_migrate(sim, "cleanup", "--yes", *FAST, run_dir=run_dir).exit_code == 0
    with sim.store.lock:  # what the cluster does once their finalizers are gone
        for kind in ("KuryrNetwork", "KuryrLoadBalancer"):
            sim.store.kube_objects("openstack.org/v1", kind).clear()
    _cloud_scoped_to(sim, "admin-project", "admin")
    refused = kuryr_migrate(sim, "cleanup", "--plan", "--os-cloud", "admin-project", *FAST, run_dir=run_dir)
    assert refused.exit_code == 2, refused.output
    [line] = refused.stderr.splitlines()
    admin_project = sim.store.settings["other_projects"]["admin"]
    infra_id = str(sim.store.infra_id)
    assert f"belongs to cluster '{infra_id}'" in line and f"in project {sim.store.project_id}" in line
    assert f"scoped to project {admin_project}" in line
    assert line.count(infra_id) == 1 and line.count("clusterID") == 1  # the cluster is named once


def test_the_default_run_directory_is_a_per_user_state_directory_keyed_by_the_cluster(
        make_sim: Any, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    sim = migrated_sim(make_sim, generate="namespaces=1")
    env = {k: sim.env[k] for k in ("OS_CLIENT_CONFIG_FILE", "OS_CLOUD", "KUBECONFIG")}
    from click.testing import CliRunner

    from kuryr_cleanup.cli import cli

    result = CliRunner().invoke(cli, ["cleanup", "--yes", *FAST], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    dirs = list((tmp_path / "state" / "kuryr-migrate").iterdir())
    assert [d.name.rsplit("-", 1)[0] for d in dirs] == [sim.store.infra_id]
    assert (dirs[0] / "journal.jsonl").exists()
    assert not (tmp_path / "kuryr-migrate-runs").exists()
    identity = json.loads((dirs[0] / "state.json").read_text())["identity"]
    assert identity["infraID"] == sim.store.infra_id and identity["clusterID"] and identity["projectID"]
    assert str(dirs[0]) in result.output  # printed at the end


def test_a_second_mutating_run_refuses_in_one_line_naming_the_holder(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=1")
    _hold(sim, "alice@bastion-2 pid 4242 (cleanup, 1a2b3c4d)", dt.datetime.now(dt.timezone.utc))
    sim.clear_requests()
    result = kuryr_migrate(sim, "cleanup", "--yes", *FAST)
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line and "alice@bastion-2 pid 4242" in line and "--take-over-lock" in line
    assert sim.writes() == []
    # The plan, status and verify need no lock.
    assert kuryr_migrate(sim, "cleanup", "--plan", *FAST).exit_code == 0
    # The holder is known dead: the admin takes the lock over, and the run goes through.
    taken = kuryr_migrate(sim, "cleanup", "--yes", "--take-over-lock", *FAST)
    assert taken.exit_code == 0, taken.output
    lease = _lease(sim)
    assert lease is not None and lease["spec"]["leaseTransitions"] == 1 and not lease["spec"]["holderIdentity"]


def test_an_expired_lock_of_a_killed_run_is_taken_over(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=1")
    _hold(sim, "bob@bastion-9 pid 77 (run, deadbeef)", dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5))
    result = kuryr_migrate(sim, "cleanup", "--yes", *FAST)
    assert result.exit_code == 0, result.output


def test_two_concurrent_cleanups_one_refuses(make_sim: Any) -> None:
    # Octavia takes a while to delete the LBs: the first run is still holding the lock meanwhile.
    sim = make_sim(generate="namespaces=3,pods=2", delays={"lb_create": 0.0, "lb_update": 0.05, "lb_delete": 1.0})
    mark_migrated(sim.store)
    first: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: first.update(result=kuryr_migrate(sim, "cleanup", "--yes", *FAST)))
    runner.start()
    try:
        for _ in range(500):  # until the first run holds the lock (no sleeping: the store says)
            lease = _lease(sim)
            if lease and lease["spec"].get("holderIdentity"):
                break
            threading.Event().wait(0.01)
        second = kuryr_migrate(sim, "cleanup", "--yes", *FAST, run_dir=sim.workdir / "other")
    finally:
        runner.join(timeout=120)
    assert second.exit_code == 2 and "holds the lock" in second.stderr
    assert first["result"].exit_code == 0, first["result"].output


def test_an_unreachable_cluster_api_is_one_line_and_exit_2_in_every_command(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate="namespaces=1")
    kubeconfig = tmp_path / "kubeconfig"
    # A loopback port nothing listens on.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kubeconfig.write_text(Path(sim.env["KUBECONFIG"]).read_text().replace(
        sim.server.kube_url.rstrip("/"), f"http://127.0.0.1:{port}"))
    from click.testing import CliRunner

    from kuryr_cleanup.cli import cli

    env = {"OS_CLIENT_CONFIG_FILE": sim.env["OS_CLIENT_CONFIG_FILE"], "OS_CLOUD": "sim", "KUBECONFIG": str(kubeconfig)}
    for argv in (["status"], ["verify"], ["migrate", "--plan"], ["run", "--plan"], ["cleanup", "--plan"],
                 ["snapshot", "-o", str(tmp_path / "snap.json")], ["reboot", "--plan"]):
        result = CliRunner().invoke(cli, [*argv, "--run-dir", str(tmp_path / "run"), "--retry-scale", "0.01"],
                                    env=env, catch_exceptions=False)
        assert result.exit_code == 2, (argv, result.output)
        lines = [line for line in (result.stderr or result.output).splitlines() if line.strip()]
        assert len(lines) == 1 and "cannot reach the cluster API" in lines[0], (argv, lines)
