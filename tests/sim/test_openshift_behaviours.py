"""OpenShift's migration behaviours in the simulator: MCO rollout, CNO switch, node reboots, faults.

Driven through the wire (kubernetes client, kubectl, openstacksdk, the stand-in ssh) with the
simulator's clock advanced instead of sleeping.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from kuryr_cleanup.sim import nova, openshift
from kuryr_cleanup.sim.store import Store

KUBECTL = str(Path(sys.executable).with_name("kubectl"))
STAND_IN_SSH = Path(__file__).resolve().parent.parent / "bin"
STEP = 60.0  # every behaviour delay, in simulated seconds (large: real time must not matter)
OVS_OVN = "ExecStart=/usr/local/bin/configure-ovs.sh OVNKubernetes"


def seed_openshift(store: Store, masters: int = 3, workers: int = 2) -> dict[str, str]:
    """A Kuryr cluster's OpenShift side: nodes backed by Nova servers, pools, operators, multus.
    Returns node name -> server id."""
    servers: dict[str, str] = {}
    with store.lock:
        for name in ("default", openshift.MULTUS_NAMESPACE, openshift.MCO_NAMESPACE, "app"):
            store.kube_put(openshift.make_namespace(name))
        store.kube_put(openshift.make_infrastructure("sim-abc12"))
        store.kube_put(openshift.make_network_config())
        store.kube_put(openshift.make_network_operator())
        for name in openshift.CLUSTER_OPERATORS:
            store.kube_put(openshift.make_cluster_operator(name))
        roles = [("master", i) for i in range(masters)] + [("worker", i) for i in range(workers)]
        for index, (role, i) in enumerate(roles):
            name = f"sim-abc12-{role}-{i}"
            ip = f"10.196.0.{10 + index}"
            server = nova.create_server(store, name=name, addresses={"sim-abc12-openshift": [
                {"addr": ip, "version": 4, "OS-EXT-IPS:type": "fixed"}]})
            servers[name] = server["id"]
            store.kube_put(openshift.make_node(name, server["id"], ip, role))
            store.kube_put(openshift.make_machine_config_daemon_pod(name))
        for role, count in (("master", masters), ("worker", workers)):
            rendered = openshift.make_rendered_machine_config(role, "Kuryr")
            store.kube_put(rendered)
            store.kube_put(openshift.make_machine_config_pool(role, count, rendered["metadata"]["name"]))
        store.kube_put(openshift.make_multus_daemonset(masters + workers))
        store.delays.update({k: STEP for k in ("mco_node", "multus_rollout", "operator_settle", "server_reboot",
                                              "node_boot")})
    return servers


@pytest.fixture
def cluster(make_sim: Any) -> Any:
    store = Store()
    sim = make_sim(store=store)
    sim.servers = seed_openshift(store)
    sim.api = config.new_client_from_config(config_file=sim.env["KUBECONFIG"])
    return sim


def custom(sim: Any) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(sim.api)


def pool(sim: Any, name: str) -> dict[str, Any]:
    return dict(custom(sim).get_cluster_custom_object("machineconfiguration.openshift.io", "v1",
                                                      "machineconfigpools", name))


def conditions(obj: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in obj["status"]["conditions"]}


def nodes(sim: Any) -> list[Any]:
    return list(client.CoreV1Api(sim.api).list_node().items)


def ready(node: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)


def run_clock(sim: Any, steps: int) -> None:
    for _ in range(steps):
        sim.store.advance(STEP)


def set_faults(sim: Any, faults: dict[str, Any]) -> None:
    sim.control("PUT", "behaviours", faults)


def start_migration(sim: Any) -> None:
    custom(sim).patch_cluster_custom_object("operator.openshift.io", "v1", "networks", "cluster",
                                            {"spec": {"migration": {"networkType": "OVNKubernetes"}}})


def switch_network_type(sim: Any) -> None:
    custom(sim).patch_cluster_custom_object("config.openshift.io", "v1", "networks", "cluster",
                                            {"spec": {"networkType": "OVNKubernetes"}})


def test_setting_the_migration_rolls_new_machine_configs_node_by_node(cluster: Any) -> None:
    start_migration(cluster)
    worker = pool(cluster, "worker")
    target = worker["spec"]["configuration"]["name"]
    assert target == openshift.rendered_config_name("worker", "OVNKubernetes")
    assert conditions(worker) == {"RenderDegraded": "False", "NodeDegraded": "False", "Degraded": "False",
                                  "Updated": "False", "Updating": "True"}
    rendered = custom(cluster).get_cluster_custom_object("machineconfiguration.openshift.io", "v1",
                                                         "machineconfigs", target)
    units = rendered["spec"]["config"]["systemd"]["units"]
    assert any(OVS_OVN in (u.get("contents") or "") for u in units)

    run_clock(cluster, 1)  # the first node of each pool starts working
    working = [n for n in nodes(cluster)
               if n.metadata.annotations[openshift.ANN_STATE] == "Working"]
    assert len(working) == 2  # one per pool: masters keep etcd quorum
    run_clock(cluster, 1)
    worker = pool(cluster, "worker")
    assert worker["status"]["updatedMachineCount"] == 1 and conditions(worker)["Updating"] == "True"

    run_clock(cluster, 8)
    for name in ("master", "worker"):
        done = pool(cluster, name)
        assert conditions(done)["Updated"] == "True" and conditions(done)["Updating"] == "False"
        status = done["status"]
        assert status["machineCount"] == status["updatedMachineCount"] == status["readyMachineCount"]
        assert status["degradedMachineCount"] == 0
        assert status["configuration"]["name"] == openshift.rendered_config_name(name, "OVNKubernetes")
    for node in nodes(cluster):
        ann = node.metadata.annotations
        assert ann[openshift.ANN_STATE] == "Done" and ann[openshift.ANN_CURRENT] == ann[openshift.ANN_DESIRED]
        assert "OVNKubernetes" in ann[openshift.ANN_CURRENT] or ann[openshift.ANN_CURRENT].startswith("rendered-")


def test_a_degraded_pool_stops_the_rollout(cluster: Any) -> None:
    set_faults(cluster, {"degraded_pool": "worker"})
    start_migration(cluster)
    run_clock(cluster, 6)
    worker = pool(cluster, "worker")
    assert conditions(worker)["Degraded"] == "True" and conditions(worker)["Updated"] == "False"
    assert worker["status"]["degradedMachineCount"] == 1
    assert conditions(pool(cluster, "master"))["Updated"] == "True"
    degraded = [n for n in nodes(cluster) if n.metadata.annotations[openshift.ANN_STATE] == "Degraded"]
    assert len(degraded) == 1
    assert "failed to drain node" in degraded[0].metadata.annotations[openshift.ANN_REASON]


def test_machine_config_daemon_log_tells_what_a_stuck_node_did(cluster: Any) -> None:
    set_faults(cluster, {"lost_node": "sim-abc12-worker-0"})
    start_migration(cluster)
    run_clock(cluster, 10)
    core = client.CoreV1Api(cluster.api)
    stuck = core.read_node("sim-abc12-worker-0")
    assert not ready(stuck)
    assert conditions(pool(cluster, "worker"))["Updated"] == "False"
    pods = core.list_namespaced_pod(openshift.MCO_NAMESPACE, field_selector="spec.nodeName=sim-abc12-worker-0")
    log = core.read_namespaced_pod_log(pods.items[0].metadata.name, openshift.MCO_NAMESPACE,
                                       container="machine-config-daemon", tail_lines=2)
    assert "Rebooting node" in log
    full = kubectl_out(cluster, "logs", "-n", openshift.MCO_NAMESPACE, pods.items[0].metadata.name,
                       "-c", "machine-config-daemon")
    assert "Update prepared; requesting cordon and drain via annotation to controller" in full


def kubectl_out(sim: Any, *args: str) -> str:
    out = subprocess.run([KUBECTL, *args], env=sim.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_switch_rolls_multus_and_the_network_operator_settles_after_every_node_rebooted(cluster: Any) -> None:
    start_migration(cluster)
    run_clock(cluster, 10)
    switch_network_type(cluster)
    apps = client.AppsV1Api(cluster.api)
    multus = apps.read_namespaced_daemon_set("multus", openshift.MULTUS_NAMESPACE)
    assert multus.metadata.generation == 2 and multus.status.updated_number_scheduled == 0
    network_co = custom(cluster).get_cluster_custom_object("config.openshift.io", "v1", "clusteroperators", "network")
    assert conditions(network_co)["Progressing"] == "True"

    run_clock(cluster, 1)
    rollout = subprocess.run([KUBECTL, "rollout", "status", "daemonset/multus", "-n", openshift.MULTUS_NAMESPACE,
                              "--timeout=30s"], env=cluster.env, capture_output=True, text=True, timeout=60)
    assert rollout.returncode == 0, rollout.stderr
    dns = custom(cluster).get_cluster_custom_object("config.openshift.io", "v1", "clusteroperators", "dns")
    assert conditions(dns)["Progressing"] == "False"

    config_net = custom(cluster).get_cluster_custom_object("config.openshift.io", "v1", "networks", "cluster")
    # The CNO reports the new type once it has processed the switch, long before any node rebooted.
    assert config_net["status"]["networkType"] == "OVNKubernetes"
    network_co = custom(cluster).get_cluster_custom_object("config.openshift.io", "v1", "clusteroperators", "network")
    assert conditions(network_co)["Progressing"] == "True"  # until every node rebooted

    conn = cluster.openstack_sdk()
    boot_ids = {n.metadata.name: n.status.node_info.boot_id for n in nodes(cluster)}
    names = sorted(cluster.servers)
    for name in names[:-1]:
        conn.compute.reboot_server(cluster.servers[name], "HARD")
    assert not ready(client.CoreV1Api(cluster.api).read_node(names[0]))
    run_clock(cluster, 2)
    after = {n.metadata.name: n for n in nodes(cluster)}
    assert all(ready(after[n]) and after[n].status.node_info.boot_id != boot_ids[n] for n in names[:-1])
    network_co = custom(cluster).get_cluster_custom_object("config.openshift.io", "v1", "clusteroperators", "network")
    assert conditions(network_co)["Progressing"] == "True"

    conn.compute.reboot_server(cluster.servers[names[-1]], "SOFT")
    run_clock(cluster, 3)
    network_co = custom(cluster).get_cluster_custom_object("config.openshift.io", "v1", "clusteroperators", "network")
    assert conditions(network_co) == {"Available": "True", "Progressing": "False", "Degraded": "False",
                                      "Upgradeable": "True"}


def test_ssh_reboot_path_reboots_the_node_by_ip(cluster: Any) -> None:
    core = client.CoreV1Api(cluster.api)
    node = core.read_node("sim-abc12-worker-1")
    ip = next(a.address for a in node.status.addresses if a.type == "InternalIP")
    env = {**cluster.env, "PATH": f"{STAND_IN_SSH}{os.pathsep}{cluster.env['PATH']}",
           "KURYR_SIM_URL": cluster.server.os_url}
    out = subprocess.run(["ssh", "-o", "StrictHostKeyChecking=no", f"core@{ip}", "sudo", "shutdown", "-r", "-t", "3"],
                         env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert not ready(core.read_node("sim-abc12-worker-1"))
    run_clock(cluster, 2)
    back = core.read_node("sim-abc12-worker-1")
    assert ready(back) and back.status.node_info.boot_id != node.status.node_info.boot_id
    unknown = subprocess.run(["ssh", "core@192.0.2.1", "sudo", "shutdown", "-r", "-t", "3"],
                             env=env, capture_output=True, text=True, timeout=30)
    assert unknown.returncode == 255


def test_a_lost_node_never_comes_back(cluster: Any) -> None:
    set_faults(cluster, {"lost_node": ["sim-abc12-master-2"]})
    cluster.openstack_sdk().compute.reboot_server(cluster.servers["sim-abc12-master-2"], "SOFT")
    run_clock(cluster, 5)
    node = client.CoreV1Api(cluster.api).read_node("sim-abc12-master-2")
    assert not ready(node)
    assert {t.key for t in node.spec.taints} >= {"node.kubernetes.io/unreachable"}


def test_degraded_operator_and_crashlooping_pod_faults(cluster: Any) -> None:
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_pod("app", client.V1Pod(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1PodSpec(node_name="sim-abc12-worker-0", containers=[client.V1Container(name="web", image="i")])))
    set_faults(cluster, {"degraded_operator": "ingress", "crashloop_pod": "app/web"})
    pod = core.read_namespaced_pod("web", "app")
    assert pod.status.container_statuses[0].state.waiting.reason == "CrashLoopBackOff"
    ingress = custom(cluster).get_cluster_custom_object("config.openshift.io", "v1", "clusteroperators", "ingress")
    assert conditions(ingress)["Degraded"] == "True"
    # Once the fault is gone, rebooting the pod's node heals it (A8 may reboot such nodes again).
    req = urllib.request.Request(f"{cluster.server.os_url}/_sim/behaviours", method="PUT",
                                 data=json.dumps({"crashloop_pod": []}).encode())
    urllib.request.urlopen(req, timeout=10).close()
    cluster.control("POST", "reboot-by-ip", {"ip": "10.196.0.13"})
    run_clock(cluster, 2)
    pod = core.read_namespaced_pod("web", "app")
    assert pod.status.container_statuses[0].state.running is not None


def test_whole_migration_on_a_generated_cluster(make_sim: Any) -> None:
    """The generator's objects and the behaviours fit: A2 -> A4 -> A5 -> A6 -> A7 -> A8 -> A9."""
    sim = make_sim(generate="namespaces=3", delays={k: STEP for k in ("mco_node", "multus_rollout", "operator_settle",
                                                                      "server_reboot", "node_boot")})
    sim.api = config.new_client_from_config(config_file=sim.env["KUBECONFIG"])
    core = client.CoreV1Api(sim.api)
    node_count = len(core.list_node().items)
    start_migration(sim)
    run_clock(sim, node_count + 2)
    for name in ("master", "worker"):
        assert conditions(pool(sim, name))["Updated"] == "True"
    switch_network_type(sim)
    run_clock(sim, 1)
    kubectl_out(sim, "rollout", "status", "daemonset/multus", "-n", openshift.MULTUS_NAMESPACE, "--timeout=30s")
    conn = sim.openstack_sdk()
    for node in core.list_node().items:
        conn.compute.reboot_server(node.spec.provider_id.rsplit("/", 1)[-1], "SOFT")
    run_clock(sim, 3)
    net = custom(sim).get_cluster_custom_object("config.openshift.io", "v1", "networks", "cluster")
    assert net["status"]["networkType"] == "OVNKubernetes"
    assert all(ready(n) for n in core.list_node().items)
    custom(sim).patch_cluster_custom_object("operator.openshift.io", "v1", "networks", "cluster",
                                            {"spec": {"migration": None}})
    run_clock(sim, 2)
    for name in ("master", "worker"):
        done = pool(sim, name)
        assert conditions(done)["Updated"] == "True"
        assert done["status"]["configuration"]["name"] == openshift.rendered_config_name(name, "OVNKubernetes")


def pause(sim: Any, name: str, paused: bool) -> None:
    custom(sim).patch_cluster_custom_object("machineconfiguration.openshift.io", "v1", "machineconfigpools", name,
                                            {"spec": {"paused": paused}})


def test_a_paused_pool_gets_the_new_config_rendered_but_not_rolled_out_until_unpaused(cluster: Any) -> None:
    pause(cluster, "worker", True)
    start_migration(cluster)
    run_clock(cluster, 10)
    worker = pool(cluster, "worker")
    target = openshift.rendered_config_name("worker", "OVNKubernetes")
    assert worker["spec"]["configuration"]["name"] == target  # the render controller does not pause
    assert worker["status"]["configuration"]["name"] == openshift.rendered_config_name("worker", "Kuryr")
    assert conditions(worker)["Updated"] == "False" and conditions(worker)["Updating"] == "False"
    updating = next(c for c in worker["status"]["conditions"] if c["type"] == "Updating")
    assert updating["message"] == f"Pool is paused; will not update to MachineConfig {target}"
    assert worker["status"]["updatedMachineCount"] == 0
    workers = [n for n in nodes(cluster) if "worker" in n.metadata.name]
    assert all(n.metadata.annotations[openshift.ANN_CURRENT] != target for n in workers)
    assert all(n.metadata.annotations[openshift.ANN_STATE] == "Done" for n in workers)
    assert conditions(pool(cluster, "master"))["Updated"] == "True"  # the other pool rolled out

    pause(cluster, "worker", False)
    assert conditions(pool(cluster, "worker"))["Updating"] == "True"
    run_clock(cluster, 6)
    worker = pool(cluster, "worker")
    assert conditions(worker)["Updated"] == "True" and worker["status"]["configuration"]["name"] == target


def test_pausing_a_pool_in_the_middle_of_a_rollout_stops_it_after_the_node_in_progress(make_sim: Any) -> None:
    store = Store()
    sim = make_sim(store=store)
    seed_openshift(store, workers=4)
    sim.api = config.new_client_from_config(config_file=sim.env["KUBECONFIG"])
    start_migration(sim)
    run_clock(sim, 2)  # the first worker is done, the second one is updating
    pause(sim, "worker", True)
    run_clock(sim, 10)
    worker = pool(sim, "worker")
    assert (worker["status"]["updatedMachineCount"], worker["status"]["machineCount"]) == (2, 4)
    assert conditions(worker)["Updated"] == "False" and conditions(worker)["Updating"] == "False"
    assert all(n.metadata.annotations[openshift.ANN_STATE] == "Done" for n in nodes(sim))


def test_a_150_worker_cluster_generates_quickly_and_its_rollout_and_reboots_stay_fast(make_sim: Any) -> None:
    started = time.perf_counter()
    sim = make_sim(generate="masters=3,workers=150",
                   delays={"mco_node": 0.02, "server_reboot": 0.03, "node_boot": 0.03})
    generated = time.perf_counter() - started
    sim.api = config.new_client_from_config(config_file=sim.env["KUBECONFIG"])
    assert len(nodes(sim)) == 153
    # Well under a second on an idle machine; the bound leaves room for a loaded CI runner.
    assert generated < 20, f"generating took {generated:.1f}s"

    started = time.perf_counter()
    start_migration(sim)
    steps = 0
    while conditions(pool(sim, "worker"))["Updated"] != "True":
        sim.store.advance(0.02)  # the MCO moves one node at a time (maxUnavailable 1), as the real one
        steps += 1
        assert steps < 400, "the worker pool never finished its rollout"
    assert conditions(pool(sim, "master"))["Updated"] == "True"
    rolled = time.perf_counter() - started

    started = time.perf_counter()
    boot_ids = {n.metadata.name: n.status.node_info.boot_id for n in nodes(sim)}
    conn = sim.openstack_sdk()
    for server in conn.compute.servers():
        if server.name in boot_ids:
            conn.compute.reboot_server(server, "SOFT")
    sim.store.advance(0.1)
    after = nodes(sim)
    assert all(ready(n) and n.status.node_info.boot_id != boot_ids[n.metadata.name] for n in after)
    rebooted = time.perf_counter() - started
    assert rolled < 30 and rebooted < 60, (rolled, rebooted)
