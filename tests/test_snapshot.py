"""`kuryr-migrate snapshot`: read-only, only this cluster's resources unless asked for the whole project,
no node secrets, a file only its owner can read, and a snapshot rehearses the same plans in the simulator."""

from __future__ import annotations

import json
import os
import re
import stat
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kuryr_cleanup.cli import cli
from kuryr_cleanup.snapshot import OVS_EXEC_START
from tests.cleanup_oracle import check_end_state, expected_gone
from tests.test_cleanup import FAST, kuryr_migrate, migrated_sim
from tests.test_migration import FAST as FAST_DELAYS
from tests.test_migration import SMALL, kuryr, text
from tests.test_variants import BASE as VARIANT_BASE
from tests.test_variants import VARIANTS

MC_API = "machineconfiguration.openshift.io/v1"
MCO_STEP = 3600.0  # simulated seconds per node of an MCO rollout
TAG_KEY = "openshiftClusterID="
PLAN_FIELDS = ("step", "kind", "id", "name", "action", "state", "evidence")


def _plan_items(sim: Any) -> list[dict[str, Any]]:
    result = kuryr_migrate(sim, "cleanup", "--plan", "-o", "json", *FAST)
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout)["items"])


def _plan(sim: Any) -> list[tuple[str, ...]]:
    return [tuple(i[k] for k in PLAN_FIELDS) for i in _plan_items(sim)]


def _snapshot(sim: Any, path: Path, *args: str) -> dict[str, Any]:
    result = kuryr_migrate(sim, "snapshot", "-o", str(path), *args)
    assert result.exit_code == 0, result.output
    return dict(json.loads(path.read_text()))


def _ids(snap: dict[str, Any]) -> set[str]:
    return {r["id"] for records in snap["openstack"].values() if isinstance(records, list) for r in records}


def _cluster_tags(record: dict[str, Any]) -> set[str]:
    words = list(record.get("tags") or []) + str(record.get("description") or "").replace(",", " ").split()
    return {w for w in words if w.startswith(TAG_KEY)}


def _other_clusters(state: dict[str, Any]) -> dict[str, set[str]]:
    """Collection -> ids of the resources of the project's other clusters: tagged for them, and what hangs
    off those (ports and subnets of their networks, rules of their groups, their LBs' children, servers)."""
    ours = TAG_KEY + state["infra_id"]
    os_ = state["openstack"]
    foreign = {c: {r["id"] for r in records if _cluster_tags(r) and ours not in _cluster_tags(r)}
               for c, records in os_.items() if isinstance(records, list)}
    others = {t.partition("=")[2] for records in os_.values() if isinstance(records, list) for r in records
              for t in _cluster_tags(r)} - {state["infra_id"]}
    assert others, "the scenario has no second cluster"
    foreign["subnets"] |= {s["id"] for s in os_["subnets"] if s["network_id"] in foreign["networks"]}
    foreign["ports"] |= {p["id"] for p in os_["ports"] if p["network_id"] in foreign["networks"]}
    foreign["security_group_rules"] |= {r["id"] for r in os_["security_group_rules"]
                                        if r["security_group_id"] in foreign["security_groups"]}
    for child in ("listeners", "pools"):
        foreign[child] |= {c["id"] for c in os_[child]
                           if any(lb["id"] in foreign["loadbalancers"] for lb in c.get("loadbalancers") or [])}
    foreign["members"] |= {m["id"] for m in os_["members"] if m.get("pool_id") in foreign["pools"]}
    foreign["servers"] |= {s["id"] for s in os_["servers"]
                           if any(str(s.get("name") or "").startswith(f"{o}-") for o in others)}
    return foreign


@pytest.mark.parametrize("spec", [
    "namespaces=3,second-cluster,fips,untagged=1",
    # Octavia 2.4: the tag is in descriptions; both clusters with the CNO's unprefixed names of before 2019.
    "namespaces=2,second-cluster,legacy-names,octavia=2.4,untagged=1,fips,installer-router=no",
])
def test_the_default_snapshot_holds_this_cluster_only_and_all_the_whole_project(make_sim: Any, tmp_path: Path,
                                                                                   spec: str) -> None:
    original = migrated_sim(make_sim, generate=spec)
    infra_id = original.store.infra_id
    # A cluster named after ours: its names start with `<our infraID>-` too, but its tag says whose they are.
    conn = original.openstack_sdk()
    namesake = conn.network.create_network(name=f"{infra_id}-q2x7z-openshift")
    conn.network.set_tags(namesake, [f"{TAG_KEY}{infra_id}-q2x7z"])
    state = original.state()
    original.clear_requests()
    mine = _snapshot(original, tmp_path / "mine.json")
    # The collections that grow with every cluster of the project are read filtered by the server.
    big = ("/ports", "/subnets", "/security-group-rules", "/floatingips", "/servers/detail", "/servers")
    unfiltered = [f"{r['method']} {r['path']}?{r['query']}" for r in original.requests()
                  if r["method"] == "GET" and r["path"].rstrip("/").endswith(big)
                  and not set(urllib.parse.parse_qs(r["query"])) & {"tags", "network_id", "device_id", "id",
                                                                     "security_group_id", "security_groups", "port_id",
                                                                     "name"}]
    assert not unfiltered
    everything = _snapshot(original, tmp_path / "all.json", "--all")
    assert original.writes() == []
    assert not [f for f in ("mine.json", "all.json") if "sim-password" in (tmp_path / f).read_text()]
    assert mine["scope"] == "cluster" and everything["scope"] == "project"
    assert mine["infra_id"] == everything["infra_id"] == original.store.infra_id
    assert mine["settings"]["octavia_version"] == original.store.settings["octavia_version"]
    # Not one of the other cluster's resources (nor what hangs off them) in the default snapshot; all of
    # them with --all.
    for collection, ids in _other_clusters(state).items():
        held = {r["id"] for r in mine["openstack"][collection]}
        assert not held & ids, f"{collection} of another cluster in the snapshot: {sorted(held & ids)}"
        assert ids <= {r["id"] for r in everything["openstack"][collection]}, collection
    # Nor the project's users' resources; but everything the cleanup must delete is there.
    names = {str(r.get("name")) for records in mine["openstack"].values() if isinstance(records, list)
             for r in records}
    assert not {n for n in names if n.startswith("user-") or n == "sg/legacy-app-allow-all"}
    for collection, ids in expected_gone(state).items():
        assert ids <= {r["id"] for r in mine["openstack"][collection]}, collection
    assert {c: len(v) for c, v in everything["openstack"].items() if isinstance(v, list)} == \
        {c: len(v) for c, v in state["openstack"].items() if isinstance(v, list)}

    # Replayed in the simulator, the whole-project snapshot gives the original's plan, item for item; this
    # cluster's gives it too, less the items about resources that are not this cluster's (kept or skipped
    # look-alikes: another cluster's network-policy groups, a user's group with Kuryr's description).
    original_plan = _plan_items(original)
    assert _plan(make_sim(snapshot=tmp_path / "all.json")) == _plan(original)
    held = _ids(mine)
    about_others = [i for i in original_plan
                    if all(len(p) == 36 for p in i["id"].split(":")) and not set(i["id"].split(":")) <= held]
    assert about_others and all(i["state"] in ("kept", "skipped") for i in about_others)
    assert {i["id"] for i in about_others} <= set().union(*_other_clusters(state).values()) | {
        r["id"] for r in state["openstack"]["security_groups"] if r["name"] == "sg/legacy-app-allow-all"}
    replica = make_sim(snapshot=tmp_path / "mine.json", delays={"lb_create": 0.0, "lb_update": 0.05,
                                                                "lb_delete": 0.05})
    expected = [tuple(i[k] for k in PLAN_FIELDS) for i in original_plan if i not in about_others]
    assert _plan(replica) == expected

    # And the rehearsal runs to the end: the cleanup of the replica leaves what the oracle expects.
    before = replica.state()
    result = kuryr_migrate(replica, "cleanup", "--yes", *FAST)
    assert result.exit_code == 0, result.output
    check_end_state(before, replica.state())


def _as(sim: Any, cloud: str, *args: str) -> Any:
    env = {"OS_CLIENT_CONFIG_FILE": sim.env["OS_CLIENT_CONFIG_FILE"], "OS_CLOUD": cloud,
           "KUBECONFIG": sim.env["KUBECONFIG"]}
    argv = [*args, "--run-dir", str(sim.workdir / "run")] if args[0] == "cleanup" else list(args)
    result = CliRunner().invoke(cli, argv, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("variant", VARIANTS, ids=list(VARIANTS))
def test_each_deployment_variant_replays_from_a_snapshot(make_sim: Any, tmp_path: Path, variant: str) -> None:
    spec = f"{VARIANT_BASE},{VARIANTS[variant]}"
    original = migrated_sim(make_sim, generate=spec)
    # An admin token sees every project: the snapshot, like the cleanup, keeps to the cluster's.
    cloud = "sim-admin" if "other-project" in spec else "sim"
    for name, args in (("mine.json", ()), ("all.json", ("--all",))):
        _as(original, cloud, "snapshot", "-o", str(tmp_path / name), *args)
    state = original.state()
    others = set((state.get("settings") or {}).get("other_projects", {}).values())
    assert bool(others) == ("other-project" in spec)
    for name in ("mine.json", "all.json"):
        snap = json.loads((tmp_path / name).read_text())
        elsewhere = [(c, r.get("name")) for c, records in snap["openstack"].items() if isinstance(records, list)
                     for r in records if r.get("project_id") in others]
        assert not elsewhere, f"{name}: another project's {elsewhere}"
    original_plan = json.loads(_as(original, cloud, "cleanup", "--plan", "-o", "json", *FAST).stdout)["items"]
    held = _ids(json.loads((tmp_path / "mine.json").read_text()))
    about_others = [i for i in original_plan
                    if all(len(p) == 36 for p in i["id"].split(":")) and not set(i["id"].split(":")) <= held]
    assert all(i["state"] in ("kept", "skipped") for i in about_others), about_others
    replica = make_sim(snapshot=tmp_path / "mine.json", delays={"lb_update": 0.05, "lb_delete": 0.05})
    assert _plan_items(replica) == [i for i in original_plan if i not in about_others]
    before = replica.state()
    _as(replica, "sim", "cleanup", "--yes", *FAST)
    check_end_state(before, replica.state())


def test_what_blocks_the_cleanup_is_in_the_snapshot_too(make_sim: Any, tmp_path: Path) -> None:
    """Resources that are not this cluster's but that the cleanup runs into: a team's router with an
    interface on a Kuryr subnet (through its own port there), a team's port on its own network in the
    Kuryr pods security group. The rehearsal must run into them too."""
    original = migrated_sim(make_sim, generate="namespaces=2,pods=1,services=1,user-resources=no")
    infra_id = original.store.infra_id
    conn = original.openstack_sdk()
    network = next(n for n in conn.network.networks() if n.name.endswith("/ns-1"))
    leg = conn.network.create_port(network_id=network.id, name="team-router-leg",
                                   fixed_ips=[{"subnet_id": network.subnet_ids[0]}])
    router = conn.network.create_router(name="team-router")
    conn.network.add_interface_to_router(router, port_id=leg.id)
    pods_group = next(conn.network.security_groups(name=f"{infra_id}-kuryr-pods-security-group"))
    team_net = conn.network.create_network(name="team-net")
    conn.network.create_subnet(network_id=team_net.id, cidr="192.168.50.0/24", ip_version=4)
    vm_port = conn.network.create_port(network_id=team_net.id, name="team-vm-port",
                                       security_group_ids=[pods_group.id])
    snap = _snapshot(original, tmp_path / "mine.json")
    assert router.id in {r["id"] for r in snap["openstack"]["routers"]}
    assert {leg.id, vm_port.id} <= {p["id"] for p in snap["openstack"]["ports"]}
    assert team_net.id not in {n["id"] for n in snap["openstack"]["networks"]}
    replica = make_sim(snapshot=tmp_path / "mine.json", delays={"lb_update": 0.05, "lb_delete": 0.05})
    plan = _plan_items(original)
    assert [i for i in plan if "team-router" in i["reason"]]  # the cloud's plan names the blocker
    assert _plan_items(replica) == plan
    outcomes = []
    for sim in (original, replica):
        result = kuryr_migrate(sim, "cleanup", "--yes", *FAST)
        lines = text(result).splitlines()
        summary = re.sub(r"\(.*?\)", "", [line for line in lines if line.startswith("Summary")][-1])
        left = sim.state()["openstack"]
        outcomes.append((result.exit_code, summary, sorted(line for line in lines if vm_port.id in line),
                         network.id in {n["id"] for n in left["networks"]},
                         pods_group.id in {g["id"] for g in left["security_groups"]}))
    assert outcomes[0][2], "the cleanup does not name the port holding the pods group"
    assert outcomes[0] == outcomes[1]


def test_a_load_balancer_tagged_only_in_its_description_is_in_the_snapshot(make_sim: Any, tmp_path: Path) -> None:
    """Made before Octavia was upgraded across 2.5, an LB carries the cluster tag only in its description;
    with its KuryrLoadBalancer gone (an interrupted cleanup), that is all that says it is ours."""
    original = migrated_sim(make_sim, generate="namespaces=2,pods=1,services=1,octavia-upgraded,user-resources=no")
    tag = TAG_KEY + original.store.infra_id
    with original.store.lock:
        lb = next(lb for lb in original.store.os["loadbalancers"].values()
                  if not lb.get("tags") and tag in str(lb.get("description")))
        klbs = original.store.kube_objects("openstack.org/v1", "KuryrLoadBalancer")
        key = next(k for k, o in klbs.items() if o["status"]["loadbalancer"]["id"] == lb["id"])
        del klbs[key]
    snap = _snapshot(original, tmp_path / "mine.json")
    assert lb["id"] in {r["id"] for r in snap["openstack"]["loadbalancers"]}
    replica = make_sim(snapshot=tmp_path / "mine.json")
    plan = _plan_items(original)
    assert [i for i in plan if i["id"] == lb["id"] and i["state"] == "planned"]
    assert _plan_items(replica) == plan


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
    for args in (["snapshot", "-o", str(tmp_path / "snap.json")], ["snapshot", "-o", str(tmp_path / "all.json"),
                                                                     "--all"]):
        result = kuryr_migrate(sim, *args)
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
    assert {p.name for p in files} >= {"snap.json", "all.json", "journal.jsonl", "state.json"}
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
        _snapshot(sim, older)
        _snapshot(sim, tmp_path / "new.json", "--all")
    finally:
        os.umask(saved)
    for path in (older, tmp_path / "new.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, oct(path.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["new.json", "snap.json"]
