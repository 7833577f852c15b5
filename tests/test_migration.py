"""The migration (SPEC A0-A9) through the CLI against the simulator: what an admin sees and gets.

Also home of the small helpers the run and reboot tests share (`kuryr`, `FAST`, end-state readers).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from kuryr_cleanup.cli import cli

CONFIG_API = "config.openshift.io/v1"
OPERATOR_API = "operator.openshift.io/v1"
# Simulated delays small enough for fast tests, large enough that every wait really waits.
FAST = {"server_reboot": 0.03, "node_boot": 0.03, "mco_node": 0.02, "multus_rollout": 0.05,
        "operator_settle": 0.05, "lb_create": 0.01, "lb_update": 0.01, "lb_delete": 0.02}
SMALL = "namespaces=2,pods=2,services=1,policies=1,masters=3,workers=2"
_ACTION = re.compile(r"^/v2\.1/servers/(?P<id>[^/]+)/action$")


def connection_args(sim: Any, run_dir: Path, cloud: str = "sim") -> list[str]:
    return ["--os-cloud", cloud, "--kubeconfig", sim.env["KUBECONFIG"], "--run-dir", str(run_dir),
            "--poll-interval", "0.02", "--retry-scale", "0.01"]


def kuryr(sim: Any, run_dir: Path, command: str, *args: str, input: str | None = None,
          env: dict[str, str] | None = None, cloud: str = "sim") -> Result:
    """`kuryr-migrate <command> <connection> <args>` in-process, as the admin would type it (`cloud`: the
    clouds.yaml entry, e.g. `sim-admin` for an admin token)."""
    runner = CliRunner(mix_stderr=False) if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else CliRunner()
    environment = {"OS_CLIENT_CONFIG_FILE": sim.env["OS_CLIENT_CONFIG_FILE"], "OS_CLOUD": cloud,
                   "KUBECONFIG": sim.env["KUBECONFIG"], **(env or {})}
    return runner.invoke(cli, [command, *connection_args(sim, run_dir, cloud), *args], input=input, env=environment,
                         catch_exceptions=False)


def text(result: Result) -> str:
    return result.output + (result.stderr if result.stderr_bytes is not None else "")


def kube_object(sim: Any, api_version: str, kind: str, name: str, namespace: str = "") -> dict[str, Any]:
    with sim.store.lock:
        obj = sim.store.kube_get(api_version, kind, name, namespace)
        assert obj is not None
        return json.loads(json.dumps(obj))


def nova_reboots(sim: Any) -> Counter[str]:
    """Server id -> accepted Nova reboot actions, from the simulator's request log."""
    counts: Counter[str] = Counter()
    for request in sim.requests():
        match = _ACTION.match(request["path"])
        if request["service"] == "compute" and request["method"] == "POST" and match and request["status"] == 202:
            counts[match["id"]] += 1
    return counts


def server_ids(sim: Any) -> set[str]:
    with sim.store.lock:
        return {n["spec"]["providerID"].rsplit("/", 1)[1] for n in sim.store.kube_objects("v1", "Node").values()}


def assert_migrated(sim: Any) -> None:
    config = kube_object(sim, CONFIG_API, "Network", "cluster")
    operator = kube_object(sim, OPERATOR_API, "Network", "cluster")
    assert config["status"]["networkType"] == "OVNKubernetes"
    assert config["spec"]["networkType"] == "OVNKubernetes"
    assert operator["spec"].get("migration") is None


def assert_rebooted_once_each(sim: Any) -> None:
    counts = nova_reboots(sim)
    assert set(counts) == server_ids(sim)
    assert set(counts.values()) == {1}, counts


def assert_no_kuryr_left(sim: Any) -> None:
    """The cleanup's end state, read from the simulator: nothing of this cluster's Kuryr remains."""
    infra = sim.store.infra_id
    tag = f"openshiftClusterID={infra}"
    state = sim.state()
    os_state = state["openstack"]
    assert not [lb for lb in os_state["loadbalancers"] if tag in (lb.get("tags") or [])]
    assert not [p for p in os_state["subnetpools"] if tag in (p.get("tags") or [])]
    names = {n["name"] for n in os_state["networks"]}
    assert f"{infra}-kuryr-service-network" not in names
    assert not [n for n in os_state["networks"] if tag in (n.get("tags") or []) and n["name"].startswith("ns-")]
    assert f"{infra}-kuryr-pods-security-group" not in {g["name"] for g in os_state["security_groups"]}
    assert not [g for g in os_state["security_groups"] if tag in (g.get("tags") or [])
                and (g.get("description") or "").startswith("Kuryr-Kubernetes Network Policy")]
    kuryr_ports = [p for p in os_state["ports"] if tag in (p.get("tags") or []) and p["device_owner"] in
                   ("compute:kuryr", "trunk:subport")]
    assert not kuryr_ports
    objects = state["kubernetes"]["objects"]
    assert not [o for o in objects if o["kind"] == "Namespace" and o["metadata"]["name"] == "openshift-kuryr"]
    with_kuryr_finalizers = [o for o in objects if any("kuryr" in f for f in o["metadata"].get("finalizers") or [])]
    assert not with_kuryr_finalizers


def writes_except_reads(sim: Any) -> list[dict[str, Any]]:
    return [w for w in sim.writes() if not (w["service"] == "identity" and w["path"].endswith("/auth/tokens"))]


def set_network_type(sim: Any, network_type: str) -> None:
    with sim.store.lock:
        config = sim.store.kube_get(CONFIG_API, "Network", "cluster")
        config["spec"]["networkType"] = network_type
        config["status"]["networkType"] = network_type


# -- the migration alone ----------------------------------------------------------------------------
def test_migrate_takes_a_kuryr_cluster_to_ovn_kubernetes(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    result = kuryr(sim, tmp_path / "run", "migrate", "--yes", "--etcd-backup-confirmed")
    assert result.exit_code == 0, text(result)
    assert_migrated(sim)
    assert_rebooted_once_each(sim)
    out = result.output
    for step in ("A0", "A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8", "A9"):
        assert re.search(rf"^{step} ", out, re.M), step
    assert re.search(r"^A4 +(master \d/3 updated, worker \d/2 \(\d+ s\)|done: pools)", out, re.M)
    assert "outage expected about" in out
    # Only settings the admin gives are patched; the MTU OVN-K will pick is shown: 1450 minus 100 for Geneve.
    operator = kube_object(sim, OPERATOR_API, "Network", "cluster")
    assert "ovnKubernetesConfig" not in operator["spec"]["defaultNetwork"]
    # A1 wrote the backup as it was before anything changed.
    backup = (tmp_path / "run" / "cluster-kuryr.yaml").read_text()
    assert "networkType: Kuryr" in backup
    # A0 added the Geneve rules between the node groups.
    rules = [r for r in sim.state()["openstack"]["security_group_rules"] if r.get("port_range_min") == 6081]
    assert len(rules) == 4 and all(r["protocol"] == "udp" and r["remote_group_id"] for r in rules)
    # The journal holds every object before it was changed.
    journal = [json.loads(line) for line in (tmp_path / "run" / "journal.jsonl").read_text().splitlines()]
    changes = [j for j in journal if j["event"] == "change"]
    assert {c["step"] for c in changes} >= {"A0", "A2", "A5", "A9"} and "A3" not in {c["step"] for c in changes}
    assert all(c.get("object") for c in changes)
    assert "sim-password" not in (tmp_path / "run" / "journal.jsonl").read_text()


def test_a_second_migrate_finds_everything_done_and_changes_nothing(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    assert kuryr(sim, tmp_path / "run", "migrate", "--yes", "--etcd-backup-confirmed").exit_code == 0
    sim.clear_requests()
    again = kuryr(sim, tmp_path / "run", "migrate", "--yes")
    assert again.exit_code == 0, text(again)
    assert all(re.search(rf"^{s}\s+done: ", again.output, re.M) for s in ("A1", "A2", "A5", "A7", "A9"))
    assert writes_except_reads(sim) == []


def test_migrate_plan_lists_the_patches_and_reboots_without_writing(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    sim.clear_requests()
    result = kuryr(sim, tmp_path / "run", "migrate", "--plan", "-o", "json")
    assert result.exit_code == 0, text(result)
    assert writes_except_reads(sim) == []
    doc = json.loads(result.output)
    assert doc["apiVersion"] == "kuryr-migrate/v1" and doc["kind"] == "MigrationPlan"
    by_step = Counter(i["step"] for i in doc["items"])
    assert by_step["A7"] == 5 and by_step["A0"] == 4
    assert {i["action"] for i in doc["items"] if i["step"] in ("A2", "A3", "A5", "A9")} == {"merge-patch"}
    assert not (tmp_path / "run" / "cluster-kuryr.yaml").exists()
    assert by_step["A3"] == 0
    assert "A3: no --mtu given: OVN-Kubernetes is expected to use MTU 1350 (the smallest node network MTU 1450 minus " \
           "100); not patched" in doc["notes"]


def test_settings_the_admin_gives_are_patched(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    result = kuryr(sim, tmp_path / "run", "migrate", "--yes", "--etcd-backup-confirmed", "--mtu", "1300",
                   "--geneve-port", "6090", "--v4-internal-subnet", "100.66.0.0/16",
                   "--cluster-network", "10.132.0.0/14", "--host-prefix", "23")
    assert result.exit_code == 0, text(result)
    operator = kube_object(sim, OPERATOR_API, "Network", "cluster")
    assert operator["spec"]["defaultNetwork"]["ovnKubernetesConfig"] == {
        "mtu": 1300, "genevePort": 6090, "v4InternalSubnet": "100.66.0.0/16"}
    config = kube_object(sim, CONFIG_API, "Network", "cluster")
    assert config["spec"]["clusterNetwork"] == [{"cidr": "10.132.0.0/14", "hostPrefix": 23}]
    ports = {r.get("port_range_min") for r in sim.state()["openstack"]["security_group_rules"]}
    assert 6090 in ports


# -- refusals: clear, non-zero, and before any write --------------------------------------------------
@pytest.mark.parametrize(("args", "message"), [
    (["--geneve-port", "4789"], "--geneve-port 4789 is Kuryr's VXLAN port"),
    (["--v4-internal-subnet", "10.128.0.0/16"], "--v4-internal-subnet 10.128.0.0/16 overlaps the cluster network"),
    (["--v4-internal-subnet", "100.88.0.0/16"], "overlaps OVN's reserved transit switch subnet"),
    (["--cluster-network", "100.64.0.0/14", "--host-prefix", "23"], "overlaps OVN's internal (join) subnet"),
    (["--cluster-network", "10.196.0.0/14", "--host-prefix", "23"], "overlaps the machine network 10.196.0.0/16"),
    (["--cluster-network", "10.132.0.0/14"], "--cluster-network and --host-prefix go together"),
    (["--mtu", "1400"], "--mtu 1400 is above the smallest node network MTU (1450"),
    (["--v4-internal-subnet", "100.66.0.0/30"], "too small for 5 nodes"),
])
def test_bad_settings_refuse_before_any_write(make_sim: Any, tmp_path: Path, args: list[str], message: str) -> None:
    # The admin's own value is wrong for this cluster: bad input (exit 2), one line, before any plan.
    sim = make_sim(generate=SMALL, delays=FAST)
    sim.clear_requests()
    result = kuryr(sim, tmp_path / "run", "run", "--yes", "--etcd-backup-confirmed", *args)
    assert result.exit_code == 2, text(result)
    assert result.stderr.startswith("kuryr-migrate: error: ") and len(result.stderr.splitlines()) == 1
    assert "(nothing was changed)" in result.stderr
    assert message in result.stderr
    assert writes_except_reads(sim) == []


def test_a_cluster_neither_on_kuryr_nor_migrating_is_refused(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    set_network_type(sim, "OpenShiftSDN")
    sim.clear_requests()
    result = kuryr(sim, tmp_path / "run", "run", "--yes", "--etcd-backup-confirmed")
    assert result.exit_code == 3
    assert "network type is OpenShiftSDN: it is neither on Kuryr nor in a migration to OVNKubernetes" in text(result)
    assert writes_except_reads(sim) == []


def test_an_unhealthy_cluster_is_refused_with_every_reason(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    sim.control("PUT", "behaviours", {"degraded_operator": "dns"})
    with sim.store.lock:
        node = sorted(sim.store.kube_objects("v1", "Node").values(), key=lambda n: n["metadata"]["name"])[-1]
        for cond in node["status"]["conditions"]:
            cond["status"] = "Unknown"
    sim.clear_requests()
    result = kuryr(sim, tmp_path / "run", "migrate", "--yes", "--etcd-backup-confirmed")
    assert result.exit_code == 3
    assert "ClusterOperator dns: Degraded=True" in text(result)
    assert f"node {node['metadata']['name']} is not Ready" in text(result)
    assert writes_except_reads(sim) == []


def test_a_migration_to_something_else_is_not_touched(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    with sim.store.lock:
        sim.store.kube_get(OPERATOR_API, "Network", "cluster")["spec"]["migration"] = {"networkType": "OpenShiftSDN"}
    sim.clear_requests()
    result = kuryr(sim, tmp_path / "run", "migrate", "--yes", "--etcd-backup-confirmed")
    assert result.exit_code == 3
    assert 'spec.migration is {"networkType":"OpenShiftSDN"}' in text(result)
    assert writes_except_reads(sim) == []


def test_yes_does_not_stand_in_for_the_etcd_backup(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    sim.clear_requests()
    result = kuryr(sim, tmp_path / "run", "migrate", "--yes")
    assert result.exit_code == 2
    assert "--etcd-backup-confirmed" in text(result)
    assert writes_except_reads(sim) == []


def test_without_yes_the_admin_types_the_infra_id_and_confirms_the_backup(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    refused = kuryr(sim, tmp_path / "run", "migrate", input="not-it\n")
    assert refused.exit_code == 2 and "not confirmed" in text(refused)
    assert writes_except_reads(sim) == []
    result = kuryr(sim, tmp_path / "run", "migrate", input=f"{sim.store.infra_id}\ny\n")
    assert result.exit_code == 0, text(result)
    assert "Migration plan for cluster" in result.output
    assert_migrated(sim)


def test_a_degraded_pool_stops_the_migration_with_its_reason(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    sim.control("PUT", "behaviours", {"degraded_pool": "worker"})
    result = kuryr(sim, tmp_path / "run", "run", "--yes", "--etcd-backup-confirmed")
    assert result.exit_code == 4, text(result)
    assert "A4: MachineConfigPool worker is Degraded" in text(result)
    assert "failed to drain node" in text(result)
    assert "Marking Degraded" in text(result)  # the machine-config-daemon log tail
    config = kube_object(sim, CONFIG_API, "Network", "cluster")
    assert config["spec"]["networkType"] == "Kuryr"  # never switched
    assert not [w for w in sim.writes() if w["method"] == "DELETE"]  # no cleanup


def test_a_node_stuck_not_ready_during_the_rollout_is_named_with_its_daemon_log(make_sim: Any,
                                                                                tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    with sim.store.lock:
        workers = sorted(n["metadata"]["name"] for n in sim.store.kube_objects("v1", "Node").values()
                         if "node-role.kubernetes.io/worker" in n["metadata"]["labels"])
    sim.control("PUT", "behaviours", {"lost_node": workers[0]})
    result = kuryr(sim, tmp_path / "run", "run", "--yes", "--etcd-backup-confirmed", "--node-timeout", "0.3")
    assert result.exit_code == 4, text(result)
    assert f"A4: node {workers[0]} has been NotReady" in text(result)
    assert "machine-config-daemon-" in text(result) and "Rebooting node" in text(result)
    assert not [w for w in sim.writes() if w["method"] == "DELETE"]


# -- status.networkType is no proof of the multus rollout nor of the reboots ---------------------------
def test_the_multus_rollout_is_waited_for_even_though_status_says_ovn_kubernetes(make_sim: Any,
                                                                                 tmp_path: Path) -> None:
    # The CNO reports status.networkType as soon as it processed the switch; multus takes its time.
    sim = make_sim(generate=SMALL, delays={**FAST, "multus_rollout": 3600})
    result = kuryr(sim, tmp_path / "run", "migrate", "--yes", "--etcd-backup-confirmed", "--multus-timeout", "0.3")
    assert result.exit_code == 4, text(result)
    assert "A6: the multus rollout did not finish" in text(result)
    assert kube_object(sim, CONFIG_API, "Network", "cluster")["status"]["networkType"] == "OVNKubernetes"
    assert nova_reboots(sim) == {}  # no reboot before multus rolled out


def test_a_switched_cluster_without_recorded_reboots_is_rebooted_not_assumed_done(make_sim: Any,
                                                                                   tmp_path: Path) -> None:
    from tests.test_run import NOVA_ACTION

    sim = make_sim(generate=SMALL, delays=FAST)
    sim.control("PUT", "faults", [NOVA_ACTION])
    first = kuryr(sim, tmp_path / "first", "migrate", "--yes", "--etcd-backup-confirmed")
    assert first.exit_code == 4, text(first)
    sim.control("PUT", "faults", [])
    assert kube_object(sim, CONFIG_API, "Network", "cluster")["status"]["networkType"] == "OVNKubernetes"
    # Another run directory knows no boot IDs: the cluster can't say whether the nodes rebooted.
    status = json.loads(kuryr(sim, tmp_path / "other", "status", "-o", "json").output)
    assert status["phase"].startswith("switched") and status["nodes"]["rebootedSinceSwitch"] is None
    verified = kuryr(sim, tmp_path / "other", "verify")
    assert verified.exit_code == 1 and "no boot IDs recorded in this run directory" in verified.output
    result = kuryr(sim, tmp_path / "other", "migrate", "--yes")
    assert result.exit_code == 0, text(result)
    assert "A7   done" not in result.output
    assert_rebooted_once_each(sim)
    assert_migrated(sim)


def test_a4_does_not_pass_on_pool_conditions_written_before_the_new_target(make_sim: Any, tmp_path: Path) -> None:
    from kuryr_cleanup.sim.openshift import make_rendered_machine_config

    sim = make_sim(generate=SMALL, delays=FAST)
    with sim.store.lock:
        # spec.migration is set and the MCO has rendered and targeted the new configs, but the pools'
        # conditions (Updated=True) and the nodes (Done, current == desired) still describe the old ones.
        sim.store.kube_get(OPERATOR_API, "Network", "cluster")["spec"]["migration"] = {"networkType": "OVNKubernetes"}
        for pool in sim.store.kube_objects("machineconfiguration.openshift.io/v1", "MachineConfigPool").values():
            rendered = sim.store.kube_put(make_rendered_machine_config(pool["metadata"]["name"], "OVNKubernetes"))
            pool["spec"]["configuration"]["name"] = rendered["metadata"]["name"]
    result = kuryr(sim, tmp_path / "run", "migrate", "--yes", "--etcd-backup-confirmed", "--mco-timeout", "0.3")
    assert result.exit_code == 4, text(result)
    assert "A4: the machine config rollout did not finish" in text(result)
    assert "pool master reports rendered-master-" in text(result) and "not yet its target" in text(result)
    assert kube_object(sim, CONFIG_API, "Network", "cluster")["spec"]["networkType"] == "Kuryr"  # never switched


def _set_machine_network(sim: Any, cidr: str) -> None:
    with sim.store.lock:
        for subnet in sim.store.os["subnets"].values():
            if subnet["cidr"] == "10.196.0.0/16":
                subnet["cidr"] = cidr


def _set_config_networks(sim: Any, cluster: list[dict[str, Any]] | None = None,
                         service: list[str] | None = None) -> None:
    with sim.store.lock:
        spec = sim.store.kube_get(CONFIG_API, "Network", "cluster")["spec"]
        if cluster is not None:
            spec["clusterNetwork"] = cluster
        if service is not None:
            spec["serviceNetwork"] = service


@pytest.mark.parametrize(("change", "args", "code", "message"), [
    # The cluster as it is against OVN's defaults: a preflight refusal (exit 3)...
    (lambda sim: _set_machine_network(sim, "100.64.0.0/16"), [], 3,
     "the machine network 100.64.0.0/16 overlaps OVN's internal (join) subnet 100.64.0.0/16 (the default)"),
    (lambda sim: _set_config_networks(sim, service=["100.88.0.0/16"]), [], 3,
     "the service network 100.88.0.0/16 overlaps OVN's reserved transit switch subnet 100.88.0.0/16"),
    # ... the admin's value against the cluster: bad input (exit 2).
    (lambda sim: _set_config_networks(sim, service=["172.30.0.0/16"]), ["--v4-internal-subnet", "172.30.0.0/16"], 2,
     "--v4-internal-subnet 172.30.0.0/16 overlaps the service network 172.30.0.0/16"),
    (lambda sim: _set_config_networks(sim, cluster=[{"cidr": "10.128.0.0/14", "hostPrefix": 23},
                                                    {"cidr": "fd01::/48", "hostPrefix": 64}],
                                      service=["172.30.0.0/16", "fd02::/112"]), ["--mtu", "1000"], 2,
     "--mtu 1000 is below the minimum 1280 (the cluster has IPv6)"),
])
def test_existing_networks_are_checked_against_what_ovn_brings(make_sim: Any, tmp_path: Path, change: Any,
                                                                args: list[str], code: int, message: str) -> None:
    sim = make_sim(generate=SMALL, delays=FAST)
    change(sim)
    sim.clear_requests()
    result = kuryr(sim, tmp_path / "run", "run", "--yes", "--etcd-backup-confirmed", *args)
    assert result.exit_code == code, text(result)
    assert message in text(result)
    assert writes_except_reads(sim) == []


@pytest.mark.parametrize(("content", "message"), [
    ("not: [valid", "cannot be read as YAML"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cluster}\n", "is not a Network.config.openshift.io/cluster"),
    ("apiVersion: config.openshift.io/v1\nkind: Network\nmetadata: {name: cluster, uid: 1234}\n",
     "is the Network.config.openshift.io/cluster of another cluster (uid 1234"),
])
@pytest.mark.parametrize("given", [True, False])
def test_an_existing_backup_must_be_this_clusters_network_config(make_sim: Any, tmp_path: Path, content: str,
                                                                 message: str, given: bool) -> None:
    # Named with --backup-file, the file is the admin's value: bad input (exit 2) before any plan; a
    # stray file where the run directory keeps the backup is a preflight refusal (exit 3).
    sim = make_sim(generate=SMALL, delays=FAST)
    backup = tmp_path / "cluster-kuryr.yaml" if given else tmp_path / "run" / "cluster-kuryr.yaml"
    backup.parent.mkdir(parents=True, exist_ok=True)
    backup.write_text(content)
    sim.clear_requests()
    result = kuryr(sim, tmp_path / "run", "migrate", "--yes", "--etcd-backup-confirmed",
                   *(["--backup-file", str(backup)] if given else []))
    assert result.exit_code == (2 if given else 3), text(result)
    assert message in text(result)
    assert writes_except_reads(sim) == []
    assert backup.read_text() == content  # never overwritten

