"""The cleanup, told as the admin's story: driven through the CLI against the simulator, judged by
the end state of the simulated cloud and cluster."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from kuryr_cleanup.cli import cli
from tests.cleanup_oracle import check_end_state, expected_gone, mark_migrated
from tests.conftest import FIXTURES, Sim

FAST = ["--poll-interval", "0.02", "--retry-scale", "0.01"]
FAST_DELAYS = {"lb_create": 0.0, "lb_update": 0.05, "lb_delete": 0.05}


def kuryr_migrate(sim: Sim, *args: str, input: str | None = None, run_dir: Path | None = None) -> Result:
    env = {k: sim.env[k] for k in ("OS_CLIENT_CONFIG_FILE", "OS_CLOUD", "KUBECONFIG")}
    argv = list(args)
    if args and args[0] in ("cleanup",):
        argv += ["--run-dir", str(run_dir or sim.workdir / "run")]
    return CliRunner().invoke(cli, argv, env=env, input=input, catch_exceptions=False)


def migrated_sim(make_sim: Any, **kwargs: Any) -> Sim:
    sim: Sim = make_sim(delays=FAST_DELAYS, **kwargs)
    mark_migrated(sim.store)
    return sim


FIXTURE_FILES = sorted(p.name for p in FIXTURES.glob("*.json"))
SCENARIOS = ["namespaces=4,pods=2,services=2,policies=1",
             "namespaces=3,second-cluster,untagged=1,fips,error-lbs=1",
             "namespaces=3,legacy-names,octavia=2.4,untagged=1,fips,installer-router=no"]


@pytest.fixture(params=[f"fixture:{f}" for f in FIXTURE_FILES] + [f"generate:{s}" for s in SCENARIOS])
def cluster(request: pytest.FixtureRequest, make_sim: Any) -> Sim:
    source, _, value = request.param.partition(":")
    if source == "fixture":
        return migrated_sim(make_sim, snapshot=FIXTURES / value)
    return migrated_sim(make_sim, generate=value)


def test_plan_sends_no_write_and_lists_what_the_run_deletes(cluster: Sim) -> None:
    before = cluster.state()
    cluster.clear_requests()
    result = kuryr_migrate(cluster, "cleanup", "--plan", "-o", "json", *FAST)
    assert result.exit_code == 0, result.output
    assert cluster.writes() == []
    plan = json.loads(result.stdout)
    assert plan["apiVersion"] == "kuryr-migrate/v1" and plan["kind"] == "CleanupPlan"
    planned = {(i["kind"], i["id"]) for i in plan["items"] if i["state"] == "planned"}
    gone = expected_gone(before)
    # Every LB, network, subnet pool and security group the oracle expects to go is in the plan.
    for collection, kind in (("loadbalancers", "load balancer"), ("networks", "network"),
                             ("subnetpools", "subnet pool"), ("security_groups", "security group")):
        missing = {i for i in gone[collection] if (kind, i) not in planned}
        assert not missing, f"{collection} not planned: {missing}"
    # ... and nothing it plans to delete is outside what the oracle says is Kuryr's.
    for item in plan["items"]:
        if item["state"] != "planned" or item["action"] != "delete":
            continue
        collection = {"network": "networks", "port": "ports", "security group": "security_groups",
                      "subnet pool": "subnetpools", "router": "routers"}.get(item["kind"])
        if collection:
            assert item["id"] in gone[collection], f"plans to delete {item}"
    assert cluster.state()["openstack"] == before["openstack"]


def test_cleanup_removes_this_clusters_kuryr_resources_and_nothing_else(cluster: Sim) -> None:
    before = cluster.state()
    result = kuryr_migrate(cluster, "cleanup", "--yes", *FAST)
    assert result.exit_code == 0, result.output
    check_end_state(before, cluster.state())
    # A second run finds nothing to do and changes nothing.
    cluster.clear_requests()
    again = kuryr_migrate(cluster, "cleanup", "--yes", *FAST)
    assert again.exit_code == 0, again.output
    assert "Nothing to do" in again.stdout
    assert cluster.writes() == []


def _names(rid: str, path: str) -> bool:
    """Whether a journal id (uuid, router:subnet, namespace/name, name) is what `path` writes to."""
    if ":" in rid:
        rid = rid.split(":")[0]
    if "/" in rid:
        ns, name = rid.split("/", 1)
        return f"/namespaces/{ns}/" in path and path.endswith(f"/{name}")
    return rid in path.split("/")


def test_journal_holds_every_object_before_it_is_changed(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=2,pods=1,services=1,fips")
    run_dir = sim.workdir / "run"
    sim.control("PUT", "faults", [{"service": "network", "method": "DELETE", "path": "/v2.0/subnetpools/*",
                                   "status": 403}])
    sim.clear_requests()
    result = kuryr_migrate(sim, "cleanup", "--yes", *FAST, run_dir=run_dir)
    assert result.exit_code == 1
    text = (run_dir / "journal.jsonl").read_text()
    assert "sim-password" not in text and "sim-token" not in text
    records = [json.loads(line) for line in text.splitlines()]
    before = {r["id"]: r for r in records if r["event"] in ("delete", "change")}
    # Every write the cloud and the cluster saw names a resource whose full body was journaled first
    # (but the run's own lock, which the run creates and releases: that is journaled as lock/unlock).
    assert [r["event"] for r in records if r.get("kind") == "Lease"] == ["lock", "unlock"]
    for request in [w for w in sim.writes() if "/namespaces/kube-system/leases" not in w["path"]]:
        ids = [rid for rid in before if _names(rid, request["path"])]
        assert ids, f"no journal record before {request['method']} {request['path']}"
        assert all(before[rid].get("object") for rid in ids)
    networks = [r for r in records if r["event"] == "delete" and r["kind"] == "network"]
    assert networks and all(r["related"]["subnets"] for r in networks)
    lbs = [r for r in records if r["event"] == "delete" and r["kind"] == "load balancer"]
    assert lbs and all(r["related"].get("listeners") and r["related"].get("pools") for r in lbs)
    failed = [r for r in records if r["event"] == "result" and r.get("result") == "failed"]
    assert [r["kind"] for r in failed] == ["subnet pool"] and "403" in failed[0]["reason"]


def test_refuses_while_the_cluster_is_still_on_kuryr(make_sim: Any) -> None:
    sim = make_sim(generate="namespaces=2")
    sim.clear_requests()
    result = kuryr_migrate(sim, "cleanup", "--yes", *FAST)
    assert result.exit_code != 0
    assert "not OVNKubernetes" in result.stderr
    assert sim.writes() == []


def test_without_yes_the_admin_must_type_the_infra_id(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=2")
    sim.clear_requests()
    wrong = kuryr_migrate(sim, "cleanup", *FAST, input="not-the-id\n")
    assert wrong.exit_code == 2 and "not confirmed" in wrong.stderr
    assert sim.writes() == []
    before = sim.state()
    right = kuryr_migrate(sim, "cleanup", *FAST, input=f"{sim.store.infra_id}\n")
    assert right.exit_code == 0, right.output
    check_end_state(before, sim.state())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--infra-id", "someone-else"], "wrong infraID"),
        (["--os-cloud", "no-such-cloud"], "unknown cloud"),
        (["--kubeconfig", "/nonexistent/kubeconfig"], "cannot read kubeconfig"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(make_sim: Any, args: list[str], message: str) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=1")
    sim.clear_requests()
    result = kuryr_migrate(sim, "cleanup", "--yes", *FAST, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sim.writes() == []


def test_unreachable_cloud_is_one_line(make_sim: Any, tmp_path: Path) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=1")
    clouds = Path(sim.env["OS_CLIENT_CONFIG_FILE"]).read_text().replace(sim.server.os_url, "http://127.0.0.1:9")
    bad = tmp_path / "clouds.yaml"
    bad.write_text(clouds)
    env = {"OS_CLIENT_CONFIG_FILE": str(bad), "OS_CLOUD": "sim", "KUBECONFIG": sim.env["KUBECONFIG"]}
    result = CliRunner().invoke(cli, ["cleanup", "--yes", *FAST, "--run-dir", str(tmp_path / "run")], env=env)
    assert result.exit_code == 2, result.output
    assert "cannot reach OpenStack" in result.stderr or "cannot use OpenStack" in result.stderr
    assert sim.writes() == []


def test_transient_faults_still_end_in_the_same_state(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=3,fips")
    before = sim.state()
    sim.control("PUT", "faults", [
        {"service": "network", "method": "DELETE", "path": "/v2.0/ports/*", "status": 503, "count": 5},
        {"service": "network", "method": "*", "path": "*", "status": 429, "retry_after": 0, "count": 3},
        {"service": "load-balancer", "method": "DELETE", "path": "*", "status": 0, "count": 2},
        {"service": "kube", "method": "PATCH", "path": "*", "status": 500, "count": 3},
    ])
    result = kuryr_migrate(sim, "cleanup", "--yes", *FAST)
    assert result.exit_code == 0, result.output
    assert all(rule["fired"] == rule["count"] for rule in sim.control("GET", "faults")["faults"])
    check_end_state(before, sim.state())


def test_a_permanent_failure_is_reported_and_independent_work_goes_on(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=3")
    sim.control("PUT", "faults", [{"service": "network", "method": "DELETE", "path": "/v2.0/subnetpools/*",
                                   "status": 403}])
    result = kuryr_migrate(sim, "cleanup", "--yes", *FAST)
    assert result.exit_code == 1
    assert "subnet pool" in result.stdout and "HTTP 403" in result.stdout
    state = sim.state()
    # The LBs and namespace networks went anyway.
    assert not [lb for lb in state["openstack"]["loadbalancers"] if "openshiftClusterID=" + sim.store.infra_id
                in (lb.get("tags") or [])]
    # Once the fault is gone, a re-run finishes the job.
    sim.control("PUT", "faults", [])
    again = kuryr_migrate(sim, "cleanup", "--yes", *FAST)
    assert again.exit_code == 0, again.output
    assert not [p for p in sim.state()["openstack"]["subnetpools"]
                if "openshiftClusterID=" + sim.store.infra_id in (p.get("tags") or [])]


def _run_in_subprocess(sim: Sim, run_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **{k: sim.env[k] for k in ("OS_CLIENT_CONFIG_FILE", "OS_CLOUD", "KUBECONFIG")}}
    return subprocess.Popen(
        [sys.executable, "-m", "kuryr_cleanup", "cleanup", "--yes", "--run-dir", str(run_dir), *FAST, *args],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )


def _wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)  # polling the simulator with a deadline, not waiting for time to pass


INTERRUPT_SCENARIO = "namespaces=3,pods=2,services=1,policies=1,fips"


def _total_writes(make_sim: Any) -> int:
    sim = migrated_sim(make_sim, generate=INTERRUPT_SCENARIO)
    sim.clear_requests()
    assert kuryr_migrate(sim, "cleanup", "--yes", *FAST).exit_code == 0
    return len(sim.writes())


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.4, 0.7, 0.95])
def test_a_run_killed_at_any_write_is_finished_by_the_next_run(make_sim: Any, fraction: float) -> None:
    total = _total_writes(make_sim)
    k = min(total - 1, int(total * fraction))
    sim = migrated_sim(make_sim, generate=INTERRUPT_SCENARIO)
    before = sim.state()
    run_dir = sim.workdir / "run"
    # The (k+1)-th write (Keystone token requests aside) hangs; the tool is killed while it waits.
    sim.control("PUT", "faults", [{"service": "[!i]*", "method": "[PD]*", "path": "*", "status": -1,
                                   "after": k, "count": 1}])
    proc = _run_in_subprocess(sim, run_dir)
    try:
        _wait_for(lambda: sim.control("GET", "faults")["faults"][0]["fired"] == 1)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    sim.control("PUT", "faults", [])
    sim.control("POST", "faults/release")
    result = kuryr_migrate(sim, "cleanup", "--yes", *FAST, run_dir=run_dir)
    assert result.exit_code == 0, result.output
    check_end_state(before, sim.state())


def test_a_rerun_finishes_after_the_kuryrnetworks_are_gone(make_sim: Any) -> None:
    """The router and network ids live in the KuryrNetworks the run itself frees: the run state keeps
    them, so a re-run after those CRs are gone still finishes the job (S3)."""
    sim = migrated_sim(make_sim, generate="namespaces=3,policies=2,untagged=1,installer-router=no")
    before = sim.state()
    run_dir = sim.workdir / "run"
    sim.control("PUT", "faults", [
        {"service": "network", "method": "DELETE", "path": "/v2.0/routers/*", "status": 403},
        {"service": "network", "method": "DELETE", "path": "/v2.0/security-groups/*", "status": 403},
    ])
    first = kuryr_migrate(sim, "cleanup", "--yes", *FAST, run_dir=run_dir)
    assert first.exit_code == 1
    with sim.store.lock:  # what the cluster does once their finalizers are gone
        for kind in ("KuryrNetwork", "KuryrNetworkPolicy"):
            sim.store.kube_objects("openstack.org/v1", kind).clear()
    sim.control("PUT", "faults", [])
    second = kuryr_migrate(sim, "cleanup", "--yes", *FAST, run_dir=run_dir)
    assert second.exit_code == 0, second.output
    check_end_state(before, sim.state())


def test_load_balancers_busy_or_broken_are_waited_for_or_deleted(make_sim: Any) -> None:
    from kuryr_cleanup.sim import octavia

    sim = migrated_sim(make_sim, generate="namespaces=2,services=2,error-lbs=1")
    before = sim.state()
    tag = f"openshiftClusterID={sim.store.infra_id}"
    with sim.store.lock:
        busy = next(lb for lb in sim.store.all("loadbalancers")
                    if tag in (lb.get("tags") or []) and lb["provisioning_status"] == "ACTIVE")
        octavia.hold_pending(sim.store, busy["id"], "PENDING_UPDATE", 0.3)
    result = kuryr_migrate(sim, "cleanup", "--yes", *FAST)
    assert result.exit_code == 0, result.output
    check_end_state(before, sim.state())
    deletes = [r for r in sim.requests() if r["method"] == "DELETE" and busy["id"] in r["path"]]
    assert deletes and all(r["status"] == 204 for r in deletes)  # never sent while it was PENDING_UPDATE


def test_a_stale_resource_version_is_read_again_and_retried(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=2")
    before = sim.state()
    sim.control("PUT", "faults", [{"service": "kube", "method": "PATCH", "path": "*", "status": 409, "count": 4}])
    result = kuryr_migrate(sim, "cleanup", "--yes", *FAST)
    assert result.exit_code == 0, result.output
    check_end_state(before, sim.state())


def test_writes_equal_actions_and_reads_grow_with_pages_not_resources(make_sim: Any) -> None:
    counts = {}
    for namespaces in (50, 200):
        sim = migrated_sim(make_sim, generate=f"namespaces={namespaces},pods=2,services=1,policies=1")
        sim.clear_requests()
        result = kuryr_migrate(sim, "cleanup", "--yes", "-o", "json", *FAST)
        assert result.exit_code == 0, result.output
        items = json.loads(result.stdout)["items"]
        actions = sum(1 for i in items if i["state"] in ("done",) and i["kind"] != "check")  # B15 only reads
        requests = sim.requests()
        writes = [r for r in requests if r["method"] not in ("GET", "HEAD") and r["service"] != "identity"]
        reads = [r for r in requests if r["method"] == "GET"]
        # The run lock is the run's own: taken, then released (renewals need a longer run).
        lock = [r for r in writes if "/namespaces/kube-system/leases" in r["path"]]
        assert len(lock) == 2, lock
        writes = [r for r in writes if r not in lock]
        assert len(writes) == actions, (len(writes), actions)
        counts[namespaces] = len(reads), actions
    (reads50, actions50), (reads200, actions200) = counts[50], counts[200]
    # 4x the resources: the reads may grow with pages and batches, far less than the actions do.
    assert actions200 > 3.5 * actions50
    assert reads200 < 2 * reads50 + 20, counts


def test_json_output_is_a_versioned_envelope(make_sim: Any) -> None:
    """The contract scripts rely on: these keys, these item fields, this version."""
    sim = migrated_sim(make_sim, generate="namespaces=1,second-cluster")
    plan = json.loads(kuryr_migrate(sim, "cleanup", "--plan", "-o", "json", *FAST).stdout)
    assert set(plan) == {"apiVersion", "kind", "infraID", "notes", "steps", "items", "summary"}
    assert (plan["apiVersion"], plan["kind"], plan["infraID"]) == ("kuryr-migrate/v1", "CleanupPlan",
                                                                   sim.store.infra_id)
    assert [s["id"] for s in plan["steps"]] == [f"B{n}" for n in range(1, 19)]
    for item in plan["items"]:
        assert set(item) == {"step", "kind", "id", "name", "action", "evidence", "state", "reason"}
    skipped = [i for i in plan["items"] if i["state"] == "skipped"]
    assert skipped and all("another cluster" in i["reason"] for i in skipped)
    result = json.loads(kuryr_migrate(sim, "cleanup", "--yes", "-o", "json", *FAST).stdout)
    assert result["kind"] == "CleanupResult" and result["ok"] is True
    assert {i["state"] for i in result["items"]} <= {"done", "gone", "kept", "skipped"}


def test_unreachable_cluster_api_is_one_line(make_sim: Any, tmp_path: Path) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=1")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(Path(sim.env["KUBECONFIG"]).read_text().replace(sim.server.kube_url, "http://127.0.0.1:9"))
    env = {k: sim.env[k] for k in ("OS_CLIENT_CONFIG_FILE", "OS_CLOUD")} | {"KUBECONFIG": str(kubeconfig)}
    result = CliRunner().invoke(cli, ["cleanup", "--yes", *FAST, "--run-dir", str(tmp_path / "run")], env=env)
    assert result.exit_code == 2, result.output
    assert "cannot reach the cluster API at http://127.0.0.1:9" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sim.writes() == []


@pytest.mark.parametrize("service", ["kube", "network"])
def test_missing_permission_is_one_line_and_changes_nothing(make_sim: Any, service: str) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=1")
    sim.control("PUT", "faults", [{"service": service, "method": "GET", "path": "*", "status": 403}])
    result = kuryr_migrate(sim, "cleanup", "--yes", *FAST)
    assert result.exit_code == 2, result.output
    assert "refused" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sim.writes() == []


def test_changes_made_while_the_run_waits_are_kept(make_sim: Any) -> None:
    """A finalizer removal carries the resourceVersion it was planned from: if the object changed since,
    the API answers 409, and the tool reads it again instead of overwriting the change."""
    import threading

    from kubernetes import client, config

    sim = migrated_sim(make_sim, generate="namespaces=2,pods=2")
    # Every finalizer removal is held until the pods have changed under the run.
    sim.control("PUT", "faults", [{"service": "kube", "method": "PATCH", "path": "*", "status": -1}])
    outcome: dict[str, Result] = {}
    runner = threading.Thread(target=lambda: outcome.update(run=kuryr_migrate(sim, "cleanup", "--yes", *FAST)))
    runner.start()
    _wait_for(lambda: sim.control("GET", "faults")["faults"][0]["fired"] >= 1)
    # Someone else changes the pods meanwhile (a PUT: the held requests are the tool's PATCHes).
    api = client.CoreV1Api(config.new_client_from_config(sim.env["KUBECONFIG"]))
    pods = [p for p in api.list_pod_for_all_namespaces().items
            if "kuryr.openstack.org/pod-finalizer" in (p.metadata.finalizers or [])]
    for pod in pods:
        pod.metadata.labels = {**(pod.metadata.labels or {}), "touched": "yes"}
        api.replace_namespaced_pod(pod.metadata.name, pod.metadata.namespace, pod)
    sim.control("PUT", "faults", [])
    sim.control("POST", "faults/release")  # the held requests are dropped: the tool sends them again
    runner.join(timeout=600)
    assert not runner.is_alive(), "the cleanup did not finish"
    assert outcome["run"].exit_code == 0, outcome["run"].output
    for pod in pods:
        now = api.read_namespaced_pod(pod.metadata.name, pod.metadata.namespace)
        assert now.metadata.labels.get("touched") == "yes"
        assert "kuryr.openstack.org/pod-finalizer" not in (now.metadata.finalizers or [])
    conflicts = [r for r in sim.requests() if r["service"] == "kube" and r["method"] == "PATCH" and r["status"] == 409]
    assert conflicts


def test_plan_writes_nothing_locally_either(make_sim: Any, tmp_path: Path) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=1")
    run_dir = tmp_path / "run"
    assert kuryr_migrate(sim, "cleanup", "--plan", *FAST, run_dir=run_dir).exit_code == 0
    assert not run_dir.exists()
    # Nor in the temporary directory, in a process of its own (the kubernetes client's discovery cache
    # was a world-readable /tmp/osrcp-<hash>.json; the listings' spill file is never a named file).
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, **{k: sim.env[k] for k in ("OS_CLIENT_CONFIG_FILE", "OS_CLOUD", "KUBECONFIG")},
           "TMPDIR": str(tmp), "HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, "-m", "kuryr_cleanup", "cleanup", "--plan", *FAST, "--run-dir",
                           str(run_dir)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert list(tmp.iterdir()) == [] and not run_dir.exists()


def test_names_the_terminal_cannot_show_do_not_stop_the_run(make_sim: Any, tmp_path: Path) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=1")
    with sim.store.lock:
        port = next(p for p in sim.store.os["ports"].values() if p["device_owner"] == "trunk:subport")
        port["name"] = "kuryr-pool-p\u00f6rt-\u7aef\u53e3"
    env = {**os.environ, **{k: sim.env[k] for k in ("OS_CLIENT_CONFIG_FILE", "OS_CLOUD", "KUBECONFIG")},
           "PYTHONIOENCODING": "ascii", "HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, "-m", "kuryr_cleanup", "cleanup", "--yes", *FAST, "--run-dir",
                           str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert port["id"] not in {p["id"] for p in sim.state()["openstack"]["ports"]}


def test_a_full_temporary_directory_keeps_the_listings_in_memory(monkeypatch: Any) -> None:
    import errno

    from kuryr_cleanup import compact

    def full(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(compact.tempfile, "TemporaryFile", full)
    spill = compact._Spill()
    handles = [(spill.put(data), len(data)) for data in (b'{"a": 1}', b'{"b": [2, 3]}')]
    assert [spill.get(at, size) for at, size in handles] == [b'{"a": 1}', b'{"b": [2, 3]}']


def test_refuses_while_the_migration_is_still_under_way(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=1")
    with sim.store.lock:
        sim.store.kube_get("operator.openshift.io/v1", "Network", "cluster")["spec"]["migration"] = {
            "networkType": "OVNKubernetes"}
    sim.clear_requests()
    result = kuryr_migrate(sim, "cleanup", "--yes", *FAST)
    assert result.exit_code == 3
    assert "still under way" in result.stderr
    assert sim.writes() == []


def test_transient_faults_on_listings_are_retried(make_sim: Any) -> None:
    """Discovery's listings (raw GETs through the SDK's proxies) classify 5xx/429 like every other call."""
    sim = migrated_sim(make_sim, generate="namespaces=2")
    before = sim.state()
    sim.control("PUT", "faults", [
        {"service": "network", "method": "GET", "path": "/v2.0/ports", "status": 503, "count": 2},
        {"service": "load-balancer", "method": "GET", "path": "*/loadbalancers", "status": 429, "retry_after": 0,
         "count": 2},
    ])
    result = kuryr_migrate(sim, "cleanup", "--yes", *FAST)
    assert result.exit_code == 0, result.output
    assert all(rule["fired"] == rule["count"] for rule in sim.control("GET", "faults")["faults"])
    check_end_state(before, sim.state())


def test_a_run_directory_of_another_cluster_is_refused(make_sim: Any, tmp_path: Path) -> None:
    """A run directory's facts (routers, networks, LBs of KuryrNetworks already gone) are one
    cluster's: mixing them into another cluster's cleanup would delete that cluster's resources."""
    first = migrated_sim(make_sim, generate="namespaces=1,infra-id=alpha-aaaaa")
    run_dir = tmp_path / "shared"
    assert kuryr_migrate(first, "cleanup", "--yes", *FAST, run_dir=run_dir).exit_code == 0
    second = migrated_sim(make_sim, generate="namespaces=1,infra-id=beta-bbbbb")
    second.clear_requests()
    result = kuryr_migrate(second, "cleanup", "--yes", *FAST, run_dir=run_dir)
    assert result.exit_code == 2
    assert "belongs to cluster 'alpha-aaaaa'" in result.stderr
    assert second.writes() == []


@pytest.mark.parametrize(("state", "message"), [
    ('{"router_ids": [', "cannot read the run state"),
    ('{"identity": "x"}', "is damaged: identity is a str, not a dict"),
    ('{"kuryr_networks": ["a"]}', "is damaged: kuryr_networks is a list, not a dict"),
    ('{"identity": {"infraID": "INFRA", "clusterID": null}}', "a cluster identity without its clusterID"),
])
def test_an_unreadable_run_state_stops_the_run(make_sim: Any, tmp_path: Path, state: str, message: str) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=1")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "state.json").write_text(state.replace("INFRA", sim.store.infra_id))
    sim.clear_requests()
    result = kuryr_migrate(sim, "cleanup", "--yes", *FAST, run_dir=run_dir)
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert sim.writes() == []


def test_a_user_floating_ip_moved_onto_a_kuryr_vip_is_only_disassociated(make_sim: Any) -> None:
    from kuryr_cleanup.sim import neutron

    sim = migrated_sim(make_sim, generate="namespaces=2,fips")
    with sim.store.lock:
        klbs = sim.store.kube_objects("openstack.org/v1", "KuryrLoadBalancer").values()
        pooled = next(k for k in klbs if ((k.get("status") or {}).get("service_pub_ip_info") or {}).get(
            "alloc_method") == "pool")
        kuryr_fip = pooled["status"]["service_pub_ip_info"]["ip_id"]
        fip = sim.store.get("floatingips", kuryr_fip)
        port_id = fip["port_id"]
        # The admin swapped Kuryr's address for one of theirs on the same VIP.
        neutron.associate_floatingip(sim.store, kuryr_fip, None)
        external = fip["floating_network_id"]
        mine = neutron.create_floatingip(sim.store, floating_network_id=external, port_id=port_id,
                                         description="reserved for www")
    result = kuryr_migrate(sim, "cleanup", "--yes", *FAST)
    assert result.exit_code == 0, result.output
    kept = sim.store.get("floatingips", mine["id"])
    assert kept is not None and kept["port_id"] is None


def test_a_look_alike_cluster_tag_in_a_description_is_not_ours(make_sim: Any) -> None:
    """On Octavia < 2.5 the tag is in the description: `...=<id>-other` is another cluster's."""
    sim = migrated_sim(make_sim, generate="namespaces=1,octavia=2.4")
    from kuryr_cleanup.sim import octavia

    with sim.store.lock:
        subnet = next(s for s in sim.store.all("subnets") if s["name"].endswith("kuryr-service-subnet"))
        other = octavia.create_loadbalancer(
            sim.store, name="ns/other", vip_subnet_id=subnet["id"], provisioning_status="ACTIVE",
            description=f"openshiftClusterID={sim.store.infra_id}-other")
    result = kuryr_migrate(sim, "cleanup", "--plan", "-o", "json", *FAST)
    planned = {i["id"] for i in json.loads(result.stdout)["items"] if i["state"] == "planned"}
    assert other["id"] not in planned


@pytest.mark.parametrize("spec", ["namespaces=5,services=4", "namespaces=5,services=4,octavia=2.4"])
def test_a_second_run_reads_little(make_sim: Any, spec: str) -> None:
    """A re-run finds the resources it remembers gone with a few batched listings, not a GET each."""
    sim = migrated_sim(make_sim, generate=spec)
    sim.clear_requests()
    assert kuryr_migrate(sim, "cleanup", "--yes", *FAST).exit_code == 0
    # Not the listings that watch the LBs go: one per poll interval, they grow with time (a loaded
    # machine's), not with resources.
    first_reads = sum(1 for r in sim.requests() if r["method"] == "GET"
                      and not r["path"].rstrip("/").endswith("/lbaas/loadbalancers"))
    sim.clear_requests()
    assert kuryr_migrate(sim, "cleanup", "--yes", *FAST).exit_code == 0
    second = [r["path"] for r in sim.requests() if r["method"] == "GET"]
    second_reads = len(second)
    # Fixed costs included: the cluster API's discovery (about 12 reads: the tool keeps no discovery cache
    # on disk), the project and identity checks.
    assert second_reads <= 50, (first_reads, second_reads, collections.Counter(second).most_common())
    assert first_reads <= 90, (first_reads, second_reads)


def test_an_lb_that_octavia_fails_to_delete_is_deleted_again(make_sim: Any) -> None:
    """Octavia can put an LB in ERROR while deleting it; waiting for it to go would wait forever."""
    import threading

    from kuryr_cleanup.sim import octavia

    sim = migrated_sim(make_sim, generate="namespaces=1,services=1")
    sim.store.delays["lb_delete"] = 1.0
    before = sim.state()
    target = next(lb["id"] for lb in before["openstack"]["loadbalancers"]
                  if f"openshiftClusterID={sim.store.infra_id}" in (lb.get("tags") or []))
    outcome: dict[str, Result] = {}
    runner = threading.Thread(target=lambda: outcome.update(run=kuryr_migrate(sim, "cleanup", "--yes", *FAST)))
    runner.start()

    def pending_delete() -> bool:
        with sim.store.lock:
            lb = sim.store.get("loadbalancers", target)
            return lb is not None and lb["provisioning_status"] == "PENDING_DELETE"

    _wait_for(pending_delete)
    with sim.store.lock:
        octavia.hold_pending(sim.store, target, "ERROR")
        sim.store.delays["lb_delete"] = 0.05
    runner.join(timeout=600)
    assert not runner.is_alive(), "the cleanup did not finish"
    assert outcome["run"].exit_code == 0, outcome["run"].output
    deletes = [r for r in sim.requests() if r["method"] == "DELETE" and target in r["path"]]
    assert len(deletes) == 2
    check_end_state(before, sim.state())


def test_sigterm_stops_promptly_even_while_workers_wait_to_retry(make_sim: Any) -> None:
    """A network that stays in use (409) is retried for up to ten minutes; stopping must not wait for it."""
    sim = migrated_sim(make_sim, generate="namespaces=2")
    sim.control("PUT", "faults", [{"service": "network", "method": "DELETE", "path": "/v2.0/networks/*",
                                   "status": 409}])
    env = {**os.environ, **{k: sim.env[k] for k in ("OS_CLIENT_CONFIG_FILE", "OS_CLOUD", "KUBECONFIG")}}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kuryr_cleanup", "cleanup", "--yes", "--run-dir", str(sim.workdir / "run"),
         "--poll-interval", "0.02"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: any(r["status"] == 409 for r in sim.requests()))
        stopped_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - stopped_at
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()
    assert took < 15, f"took {took:.1f} s to stop"


def test_kuryr_floating_ips_of_lbs_already_gone_are_released(make_sim: Any) -> None:
    """An earlier partial cleanup (the vendor's loop, say) deleted the LBs and leaked Kuryr's FIPs."""
    from kuryr_cleanup.sim import octavia

    sim = migrated_sim(make_sim, generate="namespaces=2,fips")
    with sim.store.lock:
        pubs = [(k["status"]["loadbalancer"]["id"], k["status"]["service_pub_ip_info"])
                for k in sim.store.kube_objects("openstack.org/v1", "KuryrLoadBalancer").values()
                if (k.get("status") or {}).get("service_pub_ip_info")]
        for lb_id, _ in pubs:
            octavia.delete_loadbalancer_now(sim.store, lb_id)
    kuryrs = [p["ip_id"] for _, p in pubs if p["alloc_method"] == "pool"]
    users = [p["ip_id"] for _, p in pubs if p["alloc_method"] == "user"]
    assert kuryrs and users
    plan = json.loads(kuryr_migrate(sim, "cleanup", "--plan", "-o", "json", *FAST).stdout)
    released = {i["id"] for i in plan["items"] if i["kind"] == "floating IP" and i["state"] == "planned"}
    assert released == set(kuryrs)
    result = kuryr_migrate(sim, "cleanup", "--yes", *FAST)
    assert result.exit_code == 0, result.output
    assert all(sim.store.get("floatingips", f) is None for f in kuryrs)
    assert all(sim.store.get("floatingips", f) is not None for f in users)


def test_a_load_balancer_that_never_settles_fails_after_lb_timeout_and_blocks_only_its_dependents(
        make_sim: Any) -> None:
    from kuryr_cleanup.sim import octavia

    sim = migrated_sim(make_sim, generate="namespaces=2,services=2")
    tag = f"openshiftClusterID={sim.store.infra_id}"
    with sim.store.lock:
        stuck = next(lb for lb in sim.store.all("loadbalancers") if tag in (lb.get("tags") or []))
        octavia.hold_pending(sim.store, stuck["id"], "PENDING_UPDATE", 3600.0)
    result = kuryr_migrate(sim, "cleanup", "--yes", "-o", "json", "--lb-timeout", "1", *FAST)
    assert result.exit_code == 1, result.output
    items = {i["id"]: i for i in json.loads(result.stdout)["items"]}
    assert items[stuck["id"]]["state"] == "failed" and "PENDING_UPDATE" in items[stuck["id"]]["reason"]
    assert not [r for r in sim.requests() if r["method"] == "DELETE" and stuck["id"] in r["path"]]
    # The other load balancers went; the steps after B3 wait for it, as the docs say, and are blocked.
    others = [i for i in items.values() if i["kind"] == "load balancer" and i["id"] != stuck["id"]]
    assert others and all(i["state"] == "done" for i in others)


def test_journaled_cluster_objects_can_be_applied_again_as_they_are(make_sim: Any) -> None:
    """A list's items come without apiVersion and kind; the journal's copies must have them."""
    sim = migrated_sim(make_sim, generate="namespaces=1,pods=1,services=1,policies=1")
    assert kuryr_migrate(sim, "cleanup", "--yes", *FAST).exit_code == 0
    journal = [json.loads(line) for line in (sim.workdir / "run" / "journal.jsonl").read_text().splitlines()]
    kinds = {(r["object"].get("apiVersion"), r["object"].get("kind")) for r in journal
             if r.get("event") in ("change", "delete") and r.get("kind") in ("Pod", "Service", "NetworkPolicy")}
    assert kinds == {("v1", "Pod"), ("v1", "Service"), ("networking.k8s.io/v1", "NetworkPolicy")}, kinds
