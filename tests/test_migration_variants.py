"""The migration on real deployments' variants, through the CLI against the simulator: nodes in several
availability zones, old finished pods, paused pools and upgrades, large pools, a multus update that
keeps its generation, a KUBECONFIG of several files, nodes rebooted again by name.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_migration import FAST, SMALL, assert_migrated, kube_object, kuryr, text, writes_except_reads


def flat(output: str) -> str:
    """The output with its lines joined: plan notes are wrapped to the terminal's width."""
    return " ".join(output.split())


# -- KUBECONFIG with several files ------------------------------------------------------------------
def test_a_kubeconfig_list_is_merged_as_kubectl_merges_it(make_sim: Any, tmp_path: Path) -> None:
    # The admin's cluster and credentials live in one file, the context they use in another
    # (`KUBECONFIG=~/.kube/clusters:~/.kube/contexts`); a third file in the list does not exist.
    sim = make_sim(generate=SMALL, delays=FAST)
    whole = yaml.safe_load(Path(sim.env["KUBECONFIG"]).read_text())
    credentials = tmp_path / "clusters"
    credentials.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "clusters": whole["clusters"],
                                           "users": whole["users"], "contexts": []}))
    contexts = tmp_path / "contexts"
    # A context of the same name in a later file never replaces the first file's (kubectl: first wins),
    # nor does a later file's current-context replace the first one that is set.
    contexts.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [],
                                        "contexts": whole["contexts"], "current-context": "sim"}))
    decoy = tmp_path / "decoy"
    decoy.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config",
                                     "clusters": [{"name": "sim", "cluster": {"server": "http://127.0.0.1:9"}},
                                                  {"name": "decoy", "cluster": {"server": "http://127.0.0.1:9"}}],
                                     "users": [], "contexts": [{"name": "elsewhere", "context": {
                                         "cluster": "decoy", "user": "sim-admin"}}],
                                     "current-context": "elsewhere"}))
    listed = os.pathsep.join([str(credentials), str(contexts), str(tmp_path / "missing"), str(decoy)])
    result = kuryr(sim, tmp_path / "run", "status", "--kubeconfig", listed)
    assert result.exit_code == 0, text(result)
    assert sim.store.infra_id in result.output
    # Through the environment, as an admin exports it.
    args = ["--os-cloud", "sim", "--run-dir", str(tmp_path / "run"), "--poll-interval", "0.02"]
    from click.testing import CliRunner

    from kuryr_cleanup.cli import cli

    env = {"OS_CLIENT_CONFIG_FILE": sim.env["OS_CLIENT_CONFIG_FILE"], "KUBECONFIG": listed}
    by_env = CliRunner().invoke(cli, ["status", *args], env=env, catch_exceptions=False)
    assert by_env.exit_code == 0, by_env.output
    none = CliRunner().invoke(cli, ["status", *args], env={**env, "KUBECONFIG": str(tmp_path / "missing")})
    assert none.exit_code == 2 and "cannot read kubeconfig" in none.output + (none.stderr or "")


# -- nodes in several availability zones ----------------------------------------------------------------
def test_nodes_in_several_availability_zones_are_found_with_their_networks(make_sim: Any, tmp_path: Path) -> None:
    # Nodes round robin in three zones: their servers' zone, their ports compute:az1, compute:az2, ...
    sim = make_sim(generate=SMALL + ",azs=az1,az2,az3", delays=FAST)
    # A Kuryr pod port (compute:kuryr) that names a node's server, on a network with a small MTU: not a
    # node port, so neither its MTU nor its subnet counts.
    conn = sim.openstack_sdk()
    with sim.store.lock:
        server_id = sorted(sim.store.all("servers"), key=lambda s: s["name"])[0]["id"]
    pods = conn.network.create_network(name="kuryr-like", mtu=1000)
    subnet = conn.network.create_subnet(network_id=pods.id, cidr="10.250.0.0/24", ip_version=4)
    conn.network.create_port(network_id=pods.id, fixed_ips=[{"subnet_id": subnet.id}], device_owner="compute:kuryr",
                             device_id=server_id)
    sim.clear_requests()

    plan = kuryr(sim, tmp_path / "run", "migrate", "--plan")
    assert plan.exit_code == 0, text(plan)
    assert "give --mtu" not in text(plan)
    assert "OVN-Kubernetes is expected to use MTU 1350 (the smallest node network MTU 1450 minus 100)" in flat(
        plan.output)
    # The overlap check knows the machine network again.
    overlap = kuryr(sim, tmp_path / "run", "migrate", "--plan", "--cluster-network", "10.196.0.0/14",
                    "--host-prefix", "23")
    assert overlap.exit_code == 2  # the admin's value: bad input, before any plan
    assert "overlaps the machine network 10.196.0.0/16" in text(overlap)
    assert "10.250.0.0/24" not in text(overlap)
    assert [w for w in sim.writes()] == []

    result = kuryr(sim, tmp_path / "run", "run", "--yes", "--etcd-backup-confirmed")
    assert result.exit_code == 0, text(result)
    assert "is on OVN-Kubernetes" in result.output


# -- preflight: what would make the migration wait forever, and what the vendor asks about -------------
def test_a_paused_pool_and_an_upgrade_in_progress_are_refused_before_any_write(make_sim: Any,
                                                                               tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL + ",paused-pool=worker,upgrading", delays=FAST)
    sim.clear_requests()
    # (--mco-timeout bounds the wait of a tool that would start anyway.)
    result = kuryr(sim, tmp_path / "run", "run", "--yes", "--etcd-backup-confirmed", "--mco-timeout", "0.2")
    assert result.exit_code == 3, text(result)
    assert "preflight failed, nothing was changed" in text(result)
    assert "  - MachineConfigPool worker is paused (spec.paused: true): the MCO would roll the new machine configs " \
           "out to none of its 2 node(s) and A4 would wait forever" in text(result)
    assert "  - a cluster upgrade is in progress (ClusterVersion version Progressing=True: Working towards " \
           "4.14.13" in text(result)
    assert writes_except_reads(sim) == []


def test_more_than_150_nodes_is_noted_not_refused(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate="namespaces=1,pods=1,services=0,policies=0,masters=3,workers=148", delays=FAST)
    result = kuryr(sim, tmp_path / "run", "migrate", "--plan")
    assert result.exit_code == 0, text(result)
    assert "A0: the cluster has 151 nodes: for more than 150 the vendor asks for a support case" in flat(
        result.output)


@pytest.mark.parametrize(("args", "message"), [
    (["--v4-internal-subnet", "169.254.169.0/24"],
     "--v4-internal-subnet 169.254.169.0/24 overlaps OVN's reserved masquerade subnet 169.254.169.0/29"),
    (["--v6-internal-subnet", "fd97::/48"],
     "--v6-internal-subnet fd97::/48 overlaps OVN's reserved transit switch subnet fd97::/64"),
    (["--v6-internal-subnet", "fd69::/112"],
     "--v6-internal-subnet fd69::/112 overlaps OVN's reserved masquerade subnet fd69::/125"),
    (["--v6-internal-subnet", "fd99::/64", "--cluster-network", "fd98::/48", "--host-prefix", "64"],
     "--cluster-network fd98::/48 overlaps OVN's internal (join) subnet fd98::/64"),
])
def test_every_range_ovn_kubernetes_keeps_for_itself_is_checked(make_sim: Any, tmp_path: Path, args: list[str],
                                                                 message: str) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    sim.clear_requests()
    result = kuryr(sim, tmp_path / "run", "migrate", "--yes", "--etcd-backup-confirmed", *args)
    assert result.exit_code == 2, text(result)
    assert message in text(result)
    assert writes_except_reads(sim) == []


# -- A6: the multus rollout as `oc rollout status` judges it --------------------------------------------
def test_a_multus_update_that_keeps_its_generation_is_judged_by_its_rollout(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays={**FAST, "multus_rollout": 3600})
    before = kube_object(sim, "apps/v1", "DaemonSet", "multus", "openshift-multus")["metadata"]["generation"]
    first = kuryr(sim, tmp_path / "run", "migrate", "--yes", "--etcd-backup-confirmed", "--multus-timeout", "0.3")
    assert first.exit_code == 4, text(first)
    assert "A6: the multus rollout did not finish" in text(first)
    # The CNO's update of multus turns out to keep the DaemonSet's generation (the same pod template,
    # as when only a ConfigMap it reads changed); its rollout completes.
    with sim.store.lock:
        multus = sim.store.kube_get("apps/v1", "DaemonSet", "multus", "openshift-multus")
        multus["metadata"]["generation"] = before
        status = multus["status"]
        desired = status["desiredNumberScheduled"]
        status.update(observedGeneration=before, updatedNumberScheduled=desired, numberAvailable=desired,
                      numberReady=desired)
        status.pop("numberUnavailable", None)
    result = kuryr(sim, tmp_path / "run", "migrate", "--yes", "--multus-timeout", "2")
    assert result.exit_code == 0, text(result)
    assert re.search(rf"^A6 +done: multus {desired}/{desired} updated, {desired}/{desired} available", result.output,
                     re.M)
    assert_migrated(sim)


# -- A4: a wait that scales with the pools, and a stall named with its node ------------------------------
def test_the_rollout_wait_scales_with_the_largest_pool(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate="namespaces=1,pods=1,services=1,policies=0,masters=3,workers=10",
                   delays={**FAST, "mco_node": 0.3})
    with sim.store.lock:  # the admin lets the MCO update two workers at a time
        sim.store.kube_get("machineconfiguration.openshift.io/v1", "MachineConfigPool", "worker")["spec"][
            "maxUnavailable"] = 2
    plan = kuryr(sim, tmp_path / "run", "migrate", "--plan", "--details", "--mco-timeout", "600")
    assert "at most 50 min 00 s: 10 min 00 s per node update x 5 in a row in pool worker (10 node(s), 2 at a " \
           "time)" in flat(plan.output)
    # Each worker takes 0.3 s here (the simulated MCO updates one at a time), the pool 3 s at least: two
    # seconds per node update is plenty (a ceiling of 5 x 2 s), where 2 s for the whole rollout was not.
    result = kuryr(sim, tmp_path / "run", "migrate", "--yes", "--etcd-backup-confirmed", "--mco-timeout", "2")
    assert result.exit_code == 0, text(result)
    assert re.search(r"^A4 +worker \d+/10 updated, master \d/3 \(\d+ s\)$", result.output, re.M)
    assert_migrated(sim)


def test_a_rollout_that_stalls_is_stopped_naming_the_pool_and_the_node(make_sim: Any, tmp_path: Path) -> None:
    # A node update takes a second: the first run, which gives up at once (a tiny ceiling), can't see a
    # pool finish however slow the machine is.
    sim = make_sim(generate=SMALL, delays={**FAST, "mco_node": 1.0})
    first = kuryr(sim, tmp_path / "run", "migrate", "--yes", "--etcd-backup-confirmed", "--mco-timeout", "0.001")
    assert first.exit_code == 4 and "A4: the machine config rollout did not finish" in text(first)
    # From now on a node's update never finishes (its drain hangs), and the node stays Ready: nothing moves.
    # The simulated clock is moved on past the MCO's first step: a node of each pool is being updated.
    sim.store.delays["mco_node"] = 3600
    sim.store.advance(1.0)
    result = kuryr(sim, tmp_path / "run", "migrate", "--yes", "--node-timeout", "0.5", "--mco-timeout", "3")
    assert result.exit_code == 4, text(result)
    out = text(result)
    assert "A4: no MachineConfigPool progressed for 0.5 s (--node-timeout)" in out
    with sim.store.lock:
        working = sorted(n["metadata"]["name"] for n in sim.store.kube_objects("v1", "Node").values()
                         if n["metadata"]["annotations"]["machineconfiguration.openshift.io/state"] == "Working")
    assert working
    for name in working:
        assert re.search(rf"pool (master|worker) \d/\d updated; node\(s\) being updated: {name} \(state Working, "
                         rf"rendered-\w+-\w+ -> rendered-\w+-\w+\)", out)
    assert "Starting update from" in out  # the daemon's log tail
    assert kube_object(sim, "config.openshift.io/v1", "Network", "cluster")["spec"]["networkType"] == "Kuryr"


# -- A8: what the migration can have caused ------------------------------------------------------------
def _ended_pod(namespace: str, name: str, node: str, phase: str, finished: str) -> dict[str, Any]:
    """A Job's pod as the kubelet leaves it once it ended: containers terminated, restartPolicy Never."""
    code, reason = (0, "Completed") if phase == "Succeeded" else (1, "Error")
    job = name.rsplit("-", 1)[0]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"job-name": job},
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job, "controller": True,
                                          "blockOwnerDeletion": True, "uid": f"uid-{job}"}]},
        "spec": {"nodeName": node, "restartPolicy": "Never",
                 "containers": [{"name": "main", "image": "registry.example/job:1"}]},
        "status": {"phase": phase, "startTime": finished, "podIP": "10.128.2.14",
                   "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted",
                                   "lastTransitionTime": finished}],
                   "containerStatuses": [{"name": "main", "ready": False, "restartCount": 0, "started": False,
                                          "image": "registry.example/job:1", "imageID": "",
                                          "state": {"terminated": {"exitCode": code, "reason": reason,
                                                                   "startedAt": finished,
                                                                   "finishedAt": finished}}}]},
    }


def _workers(sim: Any) -> list[str]:
    with sim.store.lock:
        return sorted(n["metadata"]["name"] for n in sim.store.kube_objects("v1", "Node").values()
                      if "node-role.kubernetes.io/worker" in n["metadata"]["labels"])


def test_pods_that_ended_before_the_switch_are_notes_not_errors(make_sim: Any, tmp_path: Path) -> None:
    # The image pruner's last run and Job pods that ended days ago, some of them Failed.
    sim = make_sim(generate=SMALL + ",finished-pods=4", delays=FAST)
    with sim.store.lock:
        ended = {f"{ns}/{name}": (pod["spec"]["nodeName"], pod["status"]["phase"])
                 for (ns, name), pod in sim.store.kube_objects("v1", "Pod").items()
                 if pod["status"].get("phase") in ("Succeeded", "Failed")}
    assert len(ended) == 4 and "Failed" in {phase for _, phase in ended.values()}
    result = kuryr(sim, tmp_path / "run", "run", "--yes", "--etcd-backup-confirmed", "--verify-timeout", "10")
    assert result.exit_code == 0, text(result)
    # (A8 passes at once, or once the operators have settled after the reboots.)
    assert re.search(r"^A8 +(done: .*all good \(4 ended before the switch \(notes\)\)|all checks pass)$",
                     text(result).replace("\n    ", " "), re.M)  # lines over 120 characters are wrapped
    verified = kuryr(sim, tmp_path / "run", "verify")
    assert verified.exit_code == 0, text(verified)
    for ref, (node, phase) in ended.items():
        assert re.search(rf"^ +~ {re.escape(ref)} on node {node} {phase} \((Completed|Error), exit code [01]\) at "
                         rf"\S+Z, before the switch: not the migration's doing$", verified.output, re.M), ref
    worker = _workers(sim)[0]
    # A pod that fails after the switch is the migration's business: an error naming its node.
    from kuryr_cleanup.sim.store import iso_now

    with sim.store.lock:
        sim.store.kube_put(_ended_pod("ns-1", "report-28471000-a1b2c", worker, "Failed", iso_now(
            sim.store.clock.now())))
    after = kuryr(sim, tmp_path / "run", "verify")
    assert after.exit_code == 1
    assert f"- pod ns-1/report-28471000-a1b2c on node {worker}: phase Failed" in after.output


def test_a_node_whose_pods_are_in_error_is_rebooted_again_by_name(make_sim: Any, tmp_path: Path) -> None:
    from tests.test_migration import nova_reboots

    sim = make_sim(generate=SMALL, delays=FAST)
    with sim.store.lock:
        pod = sorted(p for (ns, p) in sim.store.kube_objects("v1", "Pod") if ns == "ns-1")[0]
        node = sim.store.kube_get("v1", "Pod", pod, "ns-1")["spec"]["nodeName"]
        server = sim.store.kube_get("v1", "Node", node)["spec"]["providerID"].rsplit("/", 1)[1]
    # The pod's sandbox keeps failing on that node after the switch; the node's reboot cures it.
    sim.control("PUT", "behaviours", {"crashloop_pod": f"ns-1/{pod}"})
    stopped = kuryr(sim, tmp_path / "run", "run", "--yes", "--etcd-backup-confirmed", "--verify-timeout", "0.3")
    assert stopped.exit_code == 4, text(stopped)
    assert f"pod ns-1/{pod} on node {node}: container" in text(stopped)
    assert f"kuryr-migrate reboot --node {node} (Nova, rolling" in text(stopped)
    sim.control("PUT", "behaviours", {"crashloop_pod": []})

    unknown = kuryr(sim, tmp_path / "run", "reboot", "--yes", "--node", "no-such-node")
    assert unknown.exit_code == 2 and "no node named no-such-node in the cluster" in text(unknown)
    plan = kuryr(sim, tmp_path / "run", "reboot", "--plan", "--node", node, "-o", "json")
    assert plan.exit_code == 0, text(plan)
    planned = json.loads(plan.output)
    assert [(i["id"], i["name"]) for i in planned["items"]] == [(server, node)]
    assert any("1 node(s) to reboot" in n for n in planned["notes"])
    again = kuryr(sim, tmp_path / "run", "reboot", "--yes", "--node", node)
    assert again.exit_code == 0, text(again)
    assert f"Rebooted again: {node}." in again.output
    counts = nova_reboots(sim)
    assert counts[server] == 2 and all(n == 1 for s, n in counts.items() if s != server)

    finished = kuryr(sim, tmp_path / "run", "run", "--yes")
    assert finished.exit_code == 0, text(finished)
    assert "is on OVN-Kubernetes and Kuryr's resources are gone" in finished.output
    # After the migration, a node can still be rebooted again by name (no --force), once per request.
    later = kuryr(sim, tmp_path / "run", "reboot", "--yes", "--node", node)
    assert later.exit_code == 0, text(later)
    assert nova_reboots(sim)[server] == 3
    every = kuryr(sim, tmp_path / "run", "reboot", "--yes")
    assert every.exit_code == 2 and "pass --node NAME to reboot chosen nodes again" in text(every)


# -- a 150-node cluster --------------------------------------------------------------------------------
def test_a_153_node_cluster_migrates_and_its_rolling_reboot_reads_nodes_one_by_one(make_sim: Any,
                                                                                     tmp_path: Path) -> None:
    """The whole job on 3 masters and 150 workers (the test's delays; the rehearsal with the simulator's
    own delays is timed in docs/variants.md). Rebooting 150 workers one at a time once listed every
    node at every poll of every batch: minutes of reading the cluster's largest objects n² times."""
    import datetime as dt

    from tests.test_migration import assert_no_kuryr_left, assert_rebooted_once_each

    sim = make_sim(generate="namespaces=5,masters=3,workers=150", delays=FAST)
    plan = kuryr(sim, tmp_path / "run", "migrate", "--plan")
    assert "A0: the cluster has 153 nodes: for more than 150 the vendor asks for a support case" in flat(plan.output)
    assert "with --max-unavailable 10 the workers would take about 90 min in all" in flat(plan.output)
    sim.clear_requests()
    result = kuryr(sim, tmp_path / "run", "run", "--yes", "--etcd-backup-confirmed")
    assert result.exit_code == 0, text(result)
    assert_migrated(sim)
    assert_rebooted_once_each(sim)
    assert_no_kuryr_left(sim)
    journal = [json.loads(line) for line in (tmp_path / "run" / "journal.jsonl").read_text().splitlines()]
    done_at = {e["step"]: dt.datetime.fromisoformat(e["time"]).timestamp() for e in journal
               if e["event"] == "step-done"}
    node_lists = [r for r in sim.requests() if r["service"] == "kube" and r["method"] == "GET"
                  and r["path"] == "/api/v1/nodes" and done_at["A5"] <= r["t"] <= done_at["A7"]]
    assert len(node_lists) < 30, f"{len(node_lists)} listings of every node while rebooting 153 nodes"
