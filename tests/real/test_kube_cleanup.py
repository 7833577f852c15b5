"""kuryr-migrate's cluster side against a real kube-apiserver 1.20.2, the OpenStack side from the simulator.

The scenario is generated once per test (the same generator the simulator's tests use); the simulator
serves its OpenStack APIs, and its Kubernetes objects are seeded into a fresh real apiserver through the
API (tests/real/kube_seed.py). The tool gets a clouds.yaml for the simulator and a kubeconfig for the
real apiserver, and is judged like in tests/test_cleanup.py: by `tests/cleanup_oracle.check_end_state` on
snapshots taken before and after, plus what only a real server shows (its audit log, its namespace
controller, its resourceVersions and continue tokens, its authentication and RBAC).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from kuryr_cleanup.cli import cli
from kuryr_cleanup.sim.generate import ScenarioSpec, generate_scenario
from kuryr_cleanup.sim.server import SimServer
from kuryr_cleanup.sim.store import Store
from tests.cleanup_oracle import KURYR_FINALIZERS, check_end_state, mark_migrated
from tests.conftest import Sim
from tests.real.kube_apiserver import KubeCluster, writes
from tests.real.kube_seed import KubeletStandIn, SeededKube, create_many, kube_objects, resource_for, seed_kube

SCENARIO = "namespaces=3,pods=2,services=2,policies=1,fips,second-cluster,untagged=1"
FAST = ["--poll-interval", "0.05", "--retry-scale", "0.05"]
FAST_DELAYS = {"lb_create": 0.0, "lb_update": 0.05, "lb_delete": 0.05}
EXTRA_FINALIZER = "example.com/keep-me"
EXTRA_LABEL = ("test-bed.example.com/extra", "kept")
EXTRA_ANNOTATION = ("test-bed.example.com/note", "kept too")
NAMESPACE_GONE_SECONDS = 120.0
PAGE_SIZE = 500  # kuryr_cleanup.cluster.LIST_PAGE_SIZE
PAGING_PODS = 1200


@dataclass
class RealKube:
    """A generated cluster: OpenStack in the simulator, Kubernetes in a real apiserver."""

    cluster: KubeCluster
    sim: Sim
    seeded: SeededKube
    workdir: Path
    kubeconfig: Path
    extras: list[tuple[str, str, str]]  # (kind, namespace, name) given another finalizer, label, annotation
    deleting: list[tuple[str, str, str]]  # seeded as being deleted

    @property
    def env(self) -> dict[str, str]:
        return {"OS_CLIENT_CONFIG_FILE": self.sim.env["OS_CLIENT_CONFIG_FILE"], "OS_CLOUD": self.sim.env["OS_CLOUD"],
                "KUBECONFIG": str(self.kubeconfig)}


def kuryr_migrate(target: RealKube, *args: str, kubeconfig: Path | None = None, run_dir: str = "run") -> Result:
    """Every invocation of the tool goes through here (a renamed command or flag is a one-line change)."""
    env = dict(target.env)
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    argv = list(args)
    if args and args[0] in ("cleanup", "status"):
        argv += ["--run-dir", str(target.workdir / run_dir)]
    return CliRunner().invoke(cli, argv, env=env, catch_exceptions=False)


def snapshot(target: RealKube, name: str) -> dict[str, Any]:
    path = target.workdir / f"{name}.json"
    result = kuryr_migrate(target, "snapshot", "--all", "-o", str(path))
    assert result.exit_code == 0, result.output
    return dict(json.loads(path.read_text()))


def add_extras(store: Store) -> list[tuple[str, str, str]]:
    """Give one object of each Kuryr-finalized kind outside openshift-kuryr another finalizer (before and
    after Kuryr's), a label and an annotation: the cleanup must remove exactly Kuryr's entry."""
    touched: list[tuple[str, str, str]] = []
    with store.lock:
        for objects in store.kube.values():
            for obj in objects.values():
                meta = obj["metadata"]
                fins = meta.get("finalizers") or []
                if not set(fins) & KURYR_FINALIZERS or meta.get("namespace") in (None, "", "openshift-kuryr"):
                    continue
                if any(t[0] == obj["kind"] for t in touched):
                    continue
                first = len(touched) % 2 == 0
                meta["finalizers"] = [EXTRA_FINALIZER, *fins] if first else [*fins, EXTRA_FINALIZER]
                meta.setdefault("labels", {})[EXTRA_LABEL[0]] = EXTRA_LABEL[1]
                meta.setdefault("annotations", {})[EXTRA_ANNOTATION[0]] = EXTRA_ANNOTATION[1]
                touched.append((obj["kind"], meta["namespace"], meta["name"]))
    return touched


def mark_deleting(store: Store) -> list[tuple[str, str, str]]:
    """A pod and a KuryrPort the cluster is already deleting, stuck on Kuryr's finalizer (seen after a
    migration): the seeding deletes them after creating them."""
    marked = []
    with store.lock:
        for key in ("v1/Pod", "openstack.org/v1/KuryrPort"):
            for obj in store.kube.get(key, {}).values():
                meta = obj["metadata"]
                if meta.get("namespace", "").startswith("ns-") and set(meta.get("finalizers") or []) & KURYR_FINALIZERS:
                    meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
                    marked.append((obj["kind"], meta["namespace"], meta["name"]))
                    break
    return marked


@pytest.fixture
def real_kube(kube_cluster: KubeCluster, tmp_path: Path) -> Iterator[RealKube]:
    store = Store()
    generate_scenario(store, ScenarioSpec.parse(SCENARIO))
    store.delays.update(FAST_DELAYS)
    mark_migrated(store)
    extras = add_extras(store)
    deleting = mark_deleting(store)
    started = time.monotonic()
    seeded = seed_kube(kube_cluster, kube_objects(store))
    print(f"seeded {len(seeded.objects)} objects in {time.monotonic() - started:.1f}s")
    # Kuryr names a namespace's network and subnet `<namespace uid>/<namespace>`; the apiserver gave
    # every namespace a uid of its own, so the cloud's names follow, as they would on a real cluster.
    with store.lock:
        for collection in ("networks", "subnets"):
            for record in store.os[collection].values():
                old, _, namespace = (record.get("name") or "").partition("/")
                if namespace and old in seeded.uids:
                    record["name"] = f"{seeded.uids[old]}/{namespace}"
    server = SimServer(store).start()
    try:
        sim = Sim(server, tmp_path / "sim")
        yield RealKube(kube_cluster, sim, seeded, tmp_path, kube_cluster.kubeconfig("admin"), extras, deleting)
    finally:
        server.stop()


def _live(cluster: KubeCluster, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    api_version = {"KuryrPort": "openstack.org/v1", "KuryrLoadBalancer": "openstack.org/v1",
                   "KuryrNetwork": "openstack.org/v1", "KuryrNetworkPolicy": "openstack.org/v1",
                   "NetworkPolicy": "networking.k8s.io/v1"}.get(kind, "v1")
    res = resource_for({"apiVersion": api_version, "kind": kind})
    resp = cluster.request("GET", res.path(namespace, name))
    return resp.json() if resp.status == 200 else None


def _wait_gone(cluster: KubeCluster, path: str, seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if cluster.request("GET", path).status == 404:
            return time.monotonic() - started
        time.sleep(0.25)
    raise AssertionError(f"{path} still there after {seconds:.0f}s: {cluster.request('GET', path).body[:800]!r}")


def _admin_writes(cluster: KubeCluster, mark: int) -> list[str]:
    return writes(cluster.audit_since(mark, user="admin"))


def test_cleanup_on_a_real_apiserver(real_kube: RealKube, make_sim: Any) -> None:
    rk = real_kube
    cluster = rk.cluster
    timings: dict[str, float] = {}
    started = time.monotonic()

    before = snapshot(rk, "before")
    timings["snapshot"] = time.monotonic() - started
    seeded_uids = {o["metadata"]["uid"] for o in rk.seeded.objects}
    captured = {o["metadata"]["uid"] for o in before["kubernetes"]["objects"]}
    kuryr_kinds = {o["kind"] for o in rk.seeded.objects
                   if set(o["metadata"].get("finalizers") or []) & KURYR_FINALIZERS}
    assert kuryr_kinds == {"Service", "Pod", "NetworkPolicy", "KuryrNetwork", "KuryrPort", "KuryrLoadBalancer",
                           "KuryrNetworkPolicy"}
    missing = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in rk.seeded.objects
               if o["kind"] in kuryr_kinds and o["metadata"]["uid"] not in captured}
    assert not missing, f"the snapshot lacks seeded objects: {sorted(missing)[:5]}"
    assert seeded_uids & captured

    # status: reads only.
    mark = cluster.audit_mark()
    status = kuryr_migrate(rk, "status", "-o", "json", *FAST)
    assert status.exit_code == 0, status.output
    assert _admin_writes(cluster, mark) == []

    # --plan: the same items as the simulator gives from the snapshot, and not one write on the real server.
    mark = cluster.audit_mark()
    rk.sim.clear_requests()
    started = time.monotonic()
    planned = kuryr_migrate(rk, "cleanup", "--plan", "-o", "json", *FAST)
    timings["cleanup --plan"] = time.monotonic() - started
    assert planned.exit_code == 0, planned.output
    assert _admin_writes(cluster, mark) == []
    assert rk.sim.writes() == []
    assert cluster.audit_since(mark, user="admin"), "the audit log saw none of the plan's reads"
    real_plan = json.loads(planned.stdout)
    sim_of_real = make_sim(snapshot=before)
    sim_plan = CliRunner().invoke(cli, ["cleanup", "--plan", "-o", "json", *FAST, "--run-dir",
                                        str(sim_of_real.workdir / "run")],
                                  env={k: sim_of_real.env[k] for k in ("OS_CLIENT_CONFIG_FILE", "OS_CLOUD",
                                                                       "KUBECONFIG")}, catch_exceptions=False)
    assert sim_plan.exit_code == 0, sim_plan.output

    def items(plan: dict[str, Any]) -> list[tuple[str, ...]]:
        return sorted((i["step"], i["kind"], str(i["id"]), str(i["name"]), i["action"], i["state"])
                      for i in plan["items"])

    assert items(json.loads(sim_plan.stdout)) == items(real_plan)

    # --yes, with a kubelet stand-in confirming pod deletions as the nodes' kubelets would.
    mark = cluster.audit_mark()
    started = time.monotonic()
    with KubeletStandIn(cluster):
        result = kuryr_migrate(rk, "cleanup", "--yes", *FAST)
        timings["cleanup --yes"] = time.monotonic() - started
        assert result.exit_code == 0, result.output
        # B5: the real namespace controller empties openshift-kuryr and removes it once its contents go.
        timings["openshift-kuryr gone after the run"] = _wait_gone(cluster, "/api/v1/namespaces/openshift-kuryr",
                                                                   NAMESPACE_GONE_SECONDS)
    admin_writes = _admin_writes(cluster, mark)
    assert "delete /api/v1/namespaces/openshift-kuryr" in admin_writes
    assert "delete /api/v1/namespaces/openshift-kuryr/services/service-subnet-gateway-ip" in admin_writes
    controller = [e for e in cluster.audit_since(mark)
                  if (e.get("user") or {}).get("username") == "system:kube-controller-manager"
                  and e.get("verb") in ("delete", "deletecollection", "update")
                  and "/namespaces/openshift-kuryr" in e.get("requestURI", "")]
    assert controller, "the namespace controller did not act on openshift-kuryr"
    # Every write of the tool is a finalizer patch, one of the two named deletes, or its run lock.
    lock = [line for line in admin_writes if "/namespaces/kube-system/leases" in line]
    assert [line.split(" ", 1)[0] for line in lock] == ["create", "update"], lock  # taken, released
    for line in admin_writes:
        verb, uri = line.split(" ", 1)
        assert verb == "patch" or line in lock or line in ("delete /api/v1/namespaces/openshift-kuryr",
                                            "delete /api/v1/namespaces/openshift-kuryr/services/"
                                            "service-subnet-gateway-ip"), line

    after = snapshot(rk, "after")
    check_end_state(before, after)
    # The extras: exactly Kuryr's finalizer went; the other finalizer (in its place), label and annotation stay.
    assert len(rk.extras) == 7
    for kind, namespace, name in rk.extras:
        live = _live(cluster, kind, namespace, name)
        assert live is not None, (kind, namespace, name)
        meta = live["metadata"]
        assert meta["finalizers"] == [EXTRA_FINALIZER], (kind, name, meta.get("finalizers"))
        assert meta["labels"][EXTRA_LABEL[0]] == EXTRA_LABEL[1]
        assert meta["annotations"][EXTRA_ANNOTATION[0]] == EXTRA_ANNOTATION[1]
    # What was already being deleted goes once Kuryr's finalizer is gone.
    assert len(rk.deleting) == 2
    for kind, namespace, name in rk.deleting:
        assert _live(cluster, kind, namespace, name) is None, (kind, namespace, name)

    # A second run finds nothing and writes nothing.
    mark = cluster.audit_mark()
    again = kuryr_migrate(rk, "cleanup", "--yes", *FAST, run_dir="run2")
    assert again.exit_code == 0, again.output
    assert "Nothing to do" in again.stdout
    assert _admin_writes(cluster, mark) == []
    print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))


def test_a_concurrent_writer_changing_labels_loses_nothing(real_kube: RealKube) -> None:
    """Another client keeps relabelling the objects while the cleanup runs: the patches conflict (409 on
    the stale resourceVersion), the tool re-reads and retries, and both changes survive."""
    rk = real_kube
    cluster = rk.cluster
    targets = [(resource_for(o), o["metadata"].get("namespace"), o["metadata"]["name"])
               for o in rk.seeded.objects
               if set(o["metadata"].get("finalizers") or []) & KURYR_FINALIZERS
               and o["metadata"].get("namespace") != "openshift-kuryr"]
    last: dict[str, int] = {}
    stop = threading.Event()
    writer_errors: list[str] = []

    cycled = threading.Event()

    def writer() -> None:
        for n in itertools.count(1):
            if n == 2:
                cycled.set()
            for res, namespace, name in targets:
                if stop.is_set():
                    return
                path = res.path(namespace, name)
                resp = cluster.request("PATCH", path, {"metadata": {"labels": {"writer": str(n)}}},
                                       content_type="application/merge-patch+json")
                if resp.status == 200:
                    last[path] = n
                elif resp.status != 404:
                    writer_errors.append(f"{resp.status} {path}")

    thread = threading.Thread(target=writer, daemon=True)
    mark = cluster.audit_mark()
    thread.start()
    try:
        assert cycled.wait(60), "the writer did not get round every object once"  # before the tool lists any
        with KubeletStandIn(cluster):
            result = kuryr_migrate(rk, "cleanup", "--yes", *FAST)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert not writer_errors, writer_errors[:5]
    conflicts = [e for e in cluster.audit_since(mark, user="admin")
                 if e["verb"] == "patch" and (e.get("responseStatus") or {}).get("code") == 409]
    assert conflicts, "the writer never made the tool's patch conflict: the test proves nothing"
    for res, namespace, name in targets:
        path = res.path(namespace, name)
        live = cluster.request("GET", path)
        if live.status == 404:
            continue  # freed of Kuryr's finalizer while being deleted
        meta = live.json()["metadata"]
        assert not set(meta.get("finalizers") or []) & KURYR_FINALIZERS, (path, meta.get("finalizers"))
        assert meta["labels"]["writer"] == str(last[path]), path  # the writer's last write, not an older one
    print(f"{len(conflicts)} conflicting patches retried; {len(targets)} objects relabelled under the run")


def test_paging_through_more_pods_than_one_page(real_kube: RealKube) -> None:
    """1,200 pods with Kuryr's finalizer in one namespace: the tool pages with the server's own continue
    tokens (500 a page), plans every pod and frees every pod."""
    rk = real_kube
    cluster = rk.cluster
    cluster.call("POST", "/api/v1/namespaces", {"metadata": {"name": "paging"}})
    started = time.monotonic()
    create_many(cluster, "/api/v1/namespaces/paging/pods", [
        {"metadata": {"name": f"pod-{i:04d}", "finalizers": ["kuryr.openstack.org/pod-finalizer"],
                      "labels": {"app": "paging"}},
         "spec": {"containers": [{"name": "c", "image": "registry.example.com/c:latest"}]}}
        for i in range(PAGING_PODS)
    ])
    print(f"{PAGING_PODS} pods created in {time.monotonic() - started:.1f}s")
    mark = cluster.audit_mark()
    planned = kuryr_migrate(rk, "cleanup", "--plan", "-o", "json", *FAST)
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.stdout)
    paging_items = [i for i in plan["items"] if i["step"] == "B7" and str(i["id"]).startswith("paging/")]
    assert len(paging_items) == PAGING_PODS, f"{len(paging_items)} paging pods planned"
    lists = [e["requestURI"] for e in cluster.audit_since(mark, user="admin")
             if e["verb"] == "list" and e["objectRef"].get("resource") == "pods"]
    continued = [uri for uri in lists if "continue=" in uri]
    assert any(f"limit={PAGE_SIZE}" in uri for uri in lists), lists
    assert len(continued) >= 2, lists  # 1,200 + the scenario's pods: at least three pages

    result = kuryr_migrate(rk, "cleanup", "--yes", *FAST)
    assert result.exit_code == 0, result.output
    token: str | None = None
    freed = 0
    while True:
        page = cluster.call("GET", "/api/v1/namespaces/paging/pods?limit=400"
                            + (f"&continue={token}" if token else ""))
        for pod in page["items"]:
            assert pod["metadata"].get("finalizers") is None, pod["metadata"]["name"]
            assert pod["metadata"]["labels"] == {"app": "paging"}
            freed += 1
        token = page["metadata"].get("continue")
        if not token:
            break
    assert freed == PAGING_PODS


@pytest.fixture
def refusing_target(shared_kube_cluster: KubeCluster, tmp_path: Path) -> Iterator[RealKube]:
    """The worker's shared apiserver (nothing seeded: the token is refused before anything is read) and a
    simulated cloud."""
    store = Store()
    generate_scenario(store, ScenarioSpec.parse("namespaces=1"))
    mark_migrated(store)
    server = SimServer(store).start()
    try:
        sim = Sim(server, tmp_path / "sim")
        yield RealKube(shared_kube_cluster, sim, SeededKube(), tmp_path, shared_kube_cluster.kubeconfig("admin"),
                       [], [])
    finally:
        server.stop()


COMMANDS = {"cleanup --plan": ("cleanup", "--plan"), "cleanup --yes": ("cleanup", "--yes"), "status": ("status",),
            "snapshot": ("snapshot", "-o", "snapshot.json")}
REFUSALS = {"401 bad token": 401, "403 RBAC": 403}

def _refused(target: RealKube, command: str, refusal: str) -> tuple[Result, str | None]:
    cluster = target.cluster
    token = "not-a-valid-token-0123456789" if REFUSALS[refusal] == 401 else None
    kubeconfig = cluster.kubeconfig("limited", token=token)
    args = [str(target.workdir / a) if a.endswith(".json") else a for a in COMMANDS[command]]
    mark = cluster.audit_mark()
    result = kuryr_migrate(target, *args, *FAST, kubeconfig=kubeconfig)
    assert writes(cluster.audit_since(mark)) == []
    return result, token


def _refusal_params(xfail: dict[str, str]) -> list[Any]:
    return [pytest.param(command, refusal, id=f"{command}-{refusal}",
                         marks=[pytest.mark.xfail(strict=True, reason=xfail[command])] if command in xfail else [])
            for command in COMMANDS for refusal in REFUSALS]


@pytest.mark.parametrize(("command", "refusal"), _refusal_params({}))
def test_refused_access_is_one_line_and_exit_2(refusing_target: RealKube, command: str, refusal: str) -> None:
    result, token = _refused(refusing_target, command, refusal)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "refused access" in lines[0], lines[0]
    assert token is None or token not in result.output  # the credential is never echoed


@pytest.mark.parametrize(("command", "refusal"), _refusal_params({}))
def test_refused_access_line_gives_the_apiservers_reason(refusing_target: RealKube, command: str,
                                                          refusal: str) -> None:
    """The admin reads why: `Unauthorized`, or RBAC's `User "limited-user" cannot get resource ...`."""
    result, _ = _refused(refusing_target, command, refusal)
    line = result.stderr.strip()
    assert "HTTP response headers" not in line, line
    expected = "Unauthorized" if REFUSALS[refusal] == 401 else 'User "limited-user" cannot get resource'
    assert expected in line, line


LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"


def _lease_body(holder: str, renewed: dt.datetime) -> dict[str, Any]:
    stamp = renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "kuryr-migrate", "namespace": "kube-system"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 60, "acquireTime": stamp, "renewTime": stamp,
                     "leaseTransitions": 0}}


def test_the_run_lock_on_a_real_apiserver(real_kube: RealKube) -> None:
    """A live holder refuses a second run in one line (nothing written but the read); an expired one is
    taken over with its resourceVersion; --take-over-lock takes a live one; the run releases it."""
    rk = real_kube
    cluster = rk.cluster
    cluster.request("DELETE", f"{LEASES}/kuryr-migrate")
    now = dt.datetime.now(dt.timezone.utc)
    cluster.call("POST", LEASES, _lease_body("alice@bastion-2 pid 4242 (cleanup, 1a2b3c4d)", now))
    mark = cluster.audit_mark()
    refused = kuryr_migrate(rk, "cleanup", "--yes", *FAST)
    assert refused.exit_code == 2 and "alice@bastion-2 pid 4242" in refused.stderr.strip()
    assert len(refused.stderr.strip().splitlines()) == 1
    assert _admin_writes(cluster, mark) == []

    # Expired five minutes ago: the next run takes it (an update guarded by its resourceVersion).
    lease = cluster.call("GET", f"{LEASES}/kuryr-migrate")
    lease["spec"] = _lease_body("bob@gone pid 1 (run, deadbeef)", now - dt.timedelta(minutes=5))["spec"]
    cluster.call("PUT", f"{LEASES}/kuryr-migrate", lease)
    mark = cluster.audit_mark()
    taken = kuryr_migrate(rk, "cleanup", "--yes", *FAST)
    assert taken.exit_code == 0, taken.output
    lock_writes = [w for w in _admin_writes(cluster, mark) if "/leases" in w]
    assert [w.split(" ", 1)[0] for w in lock_writes] == ["update", "update"], lock_writes  # taken, released
    released = cluster.call("GET", f"{LEASES}/kuryr-migrate")
    assert not released["spec"].get("holderIdentity") and released["spec"]["leaseTransitions"] == 1

    # A live holder again, taken over on purpose.
    released["spec"] = _lease_body("carol@bastion-3 pid 9 (run, cafebabe)", dt.datetime.now(dt.timezone.utc))["spec"]
    cluster.call("PUT", f"{LEASES}/kuryr-migrate", released)
    forced = kuryr_migrate(rk, "cleanup", "--yes", "--take-over-lock", *FAST)
    assert forced.exit_code == 0, forced.output
