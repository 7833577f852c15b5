"""`kuryr-migrate run`: the whole job, its plan, its resumption and where it stops, against the simulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES
from tests.test_migration import (
    FAST,
    SMALL,
    assert_migrated,
    assert_no_kuryr_left,
    assert_rebooted_once_each,
    connection_args,
    kube_object,
    kuryr,
    nova_reboots,
    text,
    writes_except_reads,
)

KURYR_MIGRATE = str(Path(sys.executable).with_name("kuryr-migrate"))
FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))
NOVA_ACTION = {"service": "compute", "method": "POST", "path": "/v2.1/servers/*/action", "status": 500}


def run_all(sim: Any, run_dir: Path, *args: str) -> Any:
    return kuryr(sim, run_dir, "run", "--yes", "--etcd-backup-confirmed", *args)


def assert_whole_job_done(sim: Any, run_dir: Path) -> None:
    assert_migrated(sim)
    assert_rebooted_once_each(sim)
    assert_no_kuryr_left(sim)
    verified = kuryr(sim, run_dir, "verify")
    assert verified.exit_code == 0, text(verified)
    assert "All checks pass." in verified.output


# -- the whole job ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fixture", FIXTURE_FILES, ids=[f.stem for f in FIXTURE_FILES])
def test_run_on_each_recorded_fixture_does_the_whole_job(make_sim: Any, tmp_path: Path, fixture: Path) -> None:
    sim = make_sim(snapshot=fixture, delays=FAST)
    on_kuryr = kube_object(sim, "config.openshift.io/v1", "Network", "cluster")["status"]["networkType"] == "Kuryr"
    result = run_all(sim, tmp_path / "run")
    assert result.exit_code == 0, text(result)
    assert "is on OVN-Kubernetes and Kuryr's resources are gone" in result.output
    if on_kuryr:
        assert_whole_job_done(sim, tmp_path / "run")
    else:
        # Recorded after a migration (real services, no Nova): only the cleanup is left to do.
        assert "A7   done: " in result.output and nova_reboots(sim) == {}
        assert_migrated(sim)
        assert_no_kuryr_left(sim)


@pytest.mark.parametrize("spec", [SMALL, "namespaces=3,second-cluster,fips,untagged=1,masters=1,workers=3",
                                  "namespaces=2,octavia=2.4,legacy-names,geneve-rule,installer-router=no"])
def test_run_on_generated_clusters_does_the_whole_job(make_sim: Any, tmp_path: Path, spec: str) -> None:
    sim = make_sim(generate=spec, delays=FAST)
    result = run_all(sim, tmp_path / "run", "--strategy", "rolling", "--max-unavailable", "2")
    assert result.exit_code == 0, text(result)
    assert_whole_job_done(sim, tmp_path / "run")
    status = json.loads(kuryr(sim, tmp_path / "run", "status", "-o", "json").output)
    assert status["phase"] == "migrated"
    assert status["kuryrLeftovers"]["actionable"] == 0
    assert status["nodes"]["rebootedSinceSwitch"] == status["nodes"]["total"]


def test_a_second_run_after_the_whole_job_changes_nothing(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    assert run_all(sim, tmp_path / "run").exit_code == 0
    sim.clear_requests()
    again = run_all(sim, tmp_path / "run")
    assert again.exit_code == 0, text(again)
    assert "nothing to clean up" in again.output
    assert writes_except_reads(sim) == []


# -- the plan --------------------------------------------------------------------------------------------
def test_run_plan_sends_no_write_and_lists_migration_reboots_and_cleanup(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    sim.clear_requests()
    result = kuryr(sim, tmp_path / "run", "run", "--plan", "--details")
    assert result.exit_code == 0, text(result)
    assert writes_except_reads(sim) == []
    out = result.output
    assert "cluster  spec.migration={\"networkType\":\"OVNKubernetes\"}" in out
    assert "1 Network.config.openshift.io to merge-patch; evidence: spec.networkType is Kuryr" in out
    assert "cluster  {\"networkType\":\"OVNKubernetes\"}" in out
    assert "A7   Reboot every node (R): 5 nodes to reboot" in out
    assert "expected outage about 25 min" in out
    assert "ingress UDP 6081 from" in out
    assert "load balancers to delete (cascade" in out and "KuryrNetwork finalizers: finalizer to remove from " in out
    assert "the cleanup part (B) is the inventory as it stands now" in out

    as_json = kuryr(sim, tmp_path / "run", "run", "--plan", "-o", "json")
    doc = json.loads(as_json.output)
    assert doc["apiVersion"] == "kuryr-migrate/v1" and doc["kind"] == "RunPlan"
    steps = {i["step"] for i in doc["items"]}
    assert {"A0", "A2", "A5", "A7", "A9", "B3", "B12", "B17"} <= steps and "A3" not in steps  # nothing given
    assert [s["id"] for s in doc["steps"]][:10] == [f"A{n}" for n in range(10)]
    assert doc["preflightProblems"] == []
    assert writes_except_reads(sim) == []


def test_run_plan_of_a_cluster_that_would_be_refused_says_why(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL + ",paused-pool=worker", delays=FAST)
    result = kuryr(sim, tmp_path / "run", "run", "--plan")
    assert result.exit_code == 3
    assert "Preflight would refuse to start:" in result.output
    assert "MachineConfigPool worker is paused" in result.output


# -- interrupted anywhere: the next run resumes and reboots no node twice ----------------------------------
def _kill_when(sim: Any, run_dir: Path, seen: Callable[[list[dict[str, Any]]], bool], timeout: float = 90) -> None:
    """Run the whole job in a subprocess and kill it (SIGKILL: a crash) once `seen(request log)` holds.

    With --mtu, so A3 has a patch to interrupt after (A2, A3 and A9 each patch Network.operator once)."""
    argv = [KURYR_MIGRATE, "run", *connection_args(sim, run_dir), "--yes", "--etcd-backup-confirmed", "--mtu", "1300"]
    proc = subprocess.Popen(argv, env=sim.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if seen(sim.requests()):
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                return
            if proc.poll() is not None:
                pytest.fail(f"the run ended (exit {proc.returncode}) before the moment to interrupt it: "
                            f"{proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.01)
        pytest.fail("the moment to interrupt the run never came")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _writes(log: list[dict[str, Any]], service: str, method: str, path_part: str) -> int:
    return sum(1 for r in log if r["service"] == service and r["method"] == method and path_part in r["path"]
               and r["status"] < 400)


MOMENTS = {
    "after the Geneve rules": lambda log: _writes(log, "network", "POST", "/security-group-rules") >= 4,
    "after A2": lambda log: _writes(log, "kube", "PATCH", "/operator.openshift.io/v1/networks/cluster") >= 1,
    "after A3": lambda log: _writes(log, "kube", "PATCH", "/operator.openshift.io/v1/networks/cluster") >= 2,
    "after A5": lambda log: _writes(log, "kube", "PATCH", "/config.openshift.io/v1/networks/cluster") >= 1,
    "in the middle of the reboots": lambda log: _writes(log, "compute", "POST", "/action") >= 2,
    "after the last reboot": lambda log: _writes(log, "compute", "POST", "/action") >= 5,
    "after A9": lambda log: _writes(log, "kube", "PATCH", "/operator.openshift.io/v1/networks/cluster") >= 3,
    "in the middle of the cleanup": lambda log: _writes(log, "network", "DELETE", "/v2.0/ports/") >= 3,
}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_a_run_killed_anywhere_is_finished_by_the_next_without_rebooting_a_node_twice(
        make_sim: Any, tmp_path: Path, moment: str) -> None:
    # Reboots slow enough that a kill lands while a node is down.
    sim = make_sim(generate=SMALL, delays={**FAST, "server_reboot": 0.2, "node_boot": 0.2})
    _kill_when(sim, tmp_path / "run", MOMENTS[moment])
    result = run_all(sim, tmp_path / "run")
    assert result.exit_code == 0, text(result)
    assert_whole_job_done(sim, tmp_path / "run")


def test_sigterm_during_the_reboots_stops_cleanly_and_the_next_run_resumes(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays={**FAST, "server_reboot": 0.2, "node_boot": 0.2})
    argv = [KURYR_MIGRATE, "run", *connection_args(sim, tmp_path / "run"), "--yes", "--etcd-backup-confirmed"]
    proc = subprocess.Popen(argv, env=sim.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    try:
        while _writes(sim.requests(), "compute", "POST", "/action") < 1:
            assert proc.poll() is None and time.monotonic() < deadline, "the reboots never started"
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()
    assert "interrupted: run the same command again" in err.decode()
    result = run_all(sim, tmp_path / "run")
    assert result.exit_code == 0, text(result)
    assert_whole_job_done(sim, tmp_path / "run")


def test_a_failing_cleanup_is_finished_by_the_next_run(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    sim.control("PUT", "faults", [{"service": "network", "method": "DELETE", "path": "/v2.0/networks/*",
                                   "status": 403}])
    first = run_all(sim, tmp_path / "run")
    assert first.exit_code == 1, text(first)
    assert "Left to do" in first.output
    assert_migrated(sim)
    sim.control("PUT", "faults", [])
    second = run_all(sim, tmp_path / "run")
    assert second.exit_code == 0, text(second)
    assert_whole_job_done(sim, tmp_path / "run")


# -- failures stop before any cleanup ---------------------------------------------------------------------
def _stop_at_the_reboots(sim: Any, run_dir: Path) -> None:
    """A first run that gets as far as the reboots: Nova refuses them."""
    sim.control("PUT", "faults", [NOVA_ACTION])
    first = run_all(sim, run_dir)
    assert first.exit_code == 4, text(first)
    assert "Nova refused to reboot node" in text(first)
    assert not [w for w in sim.writes() if w["method"] == "DELETE"]
    sim.control("PUT", "faults", [])


def test_a_degraded_cluster_operator_after_the_switch_stops_before_the_cleanup(make_sim: Any,
                                                                               tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    _stop_at_the_reboots(sim, tmp_path / "run")
    sim.control("PUT", "behaviours", {"degraded_operator": "dns"})
    result = run_all(sim, tmp_path / "run", "--verify-timeout", "0.5")
    assert result.exit_code == 4, text(result)
    assert "A8: verification failed" in text(result) and "the cleanup was not started" in text(result)
    assert "ClusterOperator dns: " in text(result) and "Degraded=True" in text(result)
    assert not [w for w in sim.writes() if w["method"] == "DELETE"]
    assert_rebooted_once_each(sim)
    assert kuryr(sim, tmp_path / "run", "verify").exit_code == 1


def test_a_node_that_never_returns_from_its_reboot_is_named(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    _stop_at_the_reboots(sim, tmp_path / "run")
    with sim.store.lock:
        names = sorted(n["metadata"]["name"] for n in sim.store.kube_objects("v1", "Node").values())
    lost = names[1]  # the second control-plane node
    sim.control("PUT", "behaviours", {"lost_node": lost})
    result = run_all(sim, tmp_path / "run", "--reboot-timeout", "0.5")
    assert result.exit_code == 4, text(result)
    assert f"node {lost} did not come back from its reboot within" in text(result)
    assert "(NotReady)" in text(result)
    assert not [w for w in sim.writes() if w["method"] == "DELETE"]
    # The admin brings it back by hand (console); the next run goes on without rebooting anything twice.
    sim.control("PUT", "behaviours", {"lost_node": []})
    with sim.store.lock:
        node = sim.store.kube_get("v1", "Node", lost)
        ip = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    sim.control("POST", "reboot-by-ip", {"ip": ip})
    result = run_all(sim, tmp_path / "run")
    assert result.exit_code == 0, text(result)
    assert_whole_job_done(sim, tmp_path / "run")


# -- status and verify ---------------------------------------------------------------------------------
def test_status_says_where_the_cluster_is(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    before = kuryr(sim, tmp_path / "run", "status")
    assert before.exit_code == 0, text(before)
    assert "on Kuryr (not started)" in before.output
    assert "pools: master 3/3 updated, worker 2/2 updated" in before.output
    assert "Kuryr leftovers: " in before.output and " 0 change" not in before.output
    _stop_at_the_reboots(sim, tmp_path / "run")
    during = json.loads(kuryr(sim, tmp_path / "run", "status", "-o", "json").output)
    assert during["phase"].startswith("switched")
    assert during["nodes"]["rebootedSinceSwitch"] == 0
    assert during["lastStep"] == "A6"


def test_verify_reports_a_cluster_still_on_kuryr_as_failed(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    sim.control("PUT", "behaviours", {"crashloop_pod": "ns-1/" + _first_pod(sim, "ns-1")})
    result = kuryr(sim, tmp_path / "run", "verify", "-o", "json")
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["kind"] == "VerifyReport" and doc["ok"] is False
    checks = {c["name"]: c for c in doc["checks"]}
    assert not checks["network type"]["ok"] and "status.networkType is Kuryr" in checks["network type"]["detail"]
    assert not checks["pods"]["ok"] and "CrashLoopBackOff" in checks["pods"]["problems"][0]
    assert checks["nodes"]["ok"]
    table = kuryr(sim, tmp_path / "run", "verify")
    assert table.exit_code == 1 and "Verification FAILED" in table.output
    assert "hint: pods in error on a node are usually cured by rebooting that node again" in table.output


def test_pods_terminating_on_a_kuryr_finalizer_are_expected(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    assert kuryr(sim, tmp_path / "run", "migrate", "--yes", "--etcd-backup-confirmed").exit_code == 0
    pod = _first_pod(sim, "ns-1")
    with sim.store.lock:
        obj = sim.store.kube_get("v1", "Pod", pod, "ns-1")
        obj["metadata"]["deletionTimestamp"] = "2024-03-01T09:00:00Z"
        assert "kuryr.openstack.org/pod-finalizer" in obj["metadata"]["finalizers"]
    result = kuryr(sim, tmp_path / "run", "verify")
    assert result.exit_code == 0, text(result)
    assert f"ns-1/{pod} Terminating (Kuryr finalizer" in result.output


def _first_pod(sim: Any, namespace: str) -> str:
    with sim.store.lock:
        return sorted(name for (ns, name) in sim.store.kube_objects("v1", "Pod") if ns == namespace)[0]


# -- run --simulate ----------------------------------------------------------------------------------------
def test_run_simulate_shows_plan_progress_and_summary(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from kuryr_cleanup.cli import cli

    result = CliRunner().invoke(cli, ["run", "--simulate", "--generate", "namespaces=2,masters=1,workers=1",
                                      "--yes", "--run-dir", str(tmp_path / "rehearsal")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "# simulated cloud and cluster" in out
    assert "Run plan for cluster" in out and "A7   Reboot every node (R): 2 nodes to reboot" in out
    assert "nodes rebooted 2/2" in out and "Summary (" in out
    assert "is on OVN-Kubernetes and Kuryr's resources are gone" in out
    assert (tmp_path / "rehearsal" / "journal.jsonl").exists() and (tmp_path / "rehearsal" / "kubeconfig").exists()
    assert "OS_CLIENT_CONFIG_FILE" not in os.environ or "rehearsal" not in os.environ["OS_CLIENT_CONFIG_FILE"]


def test_the_readme_command_works_as_a_program(tmp_path: Path) -> None:
    done = subprocess.run([KURYR_MIGRATE, "run", "--simulate", "--generate", "namespaces=3", "--yes"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "is on OVN-Kubernetes and Kuryr's resources are gone" in done.stdout
    assert list((tmp_path / "kuryr-migrate-runs").glob("*-simulated-*/cluster-kuryr.yaml"))


@pytest.mark.skipif(not FIXTURE_FILES, reason="no recorded fixtures")
def test_run_simulate_from_a_fixture_plans_without_writing(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from kuryr_cleanup.cli import cli

    result = CliRunner().invoke(cli, ["run", "--simulate", str(FIXTURE_FILES[0]), "--plan", "-o", "json",
                                      "--run-dir", str(tmp_path / "r")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output[result.output.index("{"):])
    assert doc["kind"] == "RunPlan" and any(i["step"] == "A7" for i in doc["items"])



def test_verify_reports_pods_stuck_creating_their_sandbox(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    assert kuryr(sim, tmp_path / "run", "migrate", "--yes", "--etcd-backup-confirmed").exit_code == 0
    with sim.store.lock:
        node = sorted(sim.store.kube_objects("v1", "Node"))[-1][1]
        for name, created in (("stuck", "2024-03-01T09:00:00Z"), ("starting", None)):
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": name, "namespace": "ns-1"},
                   "spec": {"nodeName": node, "containers": [{"name": "web", "image": "i"}]},
                   "status": {"phase": "Pending", "containerStatuses": [
                       {"name": "web", "image": "i", "imageID": "", "ready": False, "restartCount": 0,
                        "state": {"waiting": {"reason": "ContainerCreating"}}}]}}
            stored = sim.store.kube_put(pod)
            if created:
                stored["metadata"]["creationTimestamp"] = created
    result = kuryr(sim, tmp_path / "run", "verify", "-o", "json")
    assert result.exit_code == 1, text(result)
    pods = {c["name"]: c for c in json.loads(result.output)["checks"]}["pods"]
    assert len(pods["problems"]) == 1
    assert f"pod ns-1/stuck on node {node}: Pending (ContainerCreating) for " in pods["problems"][0]
