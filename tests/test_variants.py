"""The deployments production clusters run on (issue "Real deployments"), each a simulator variant:
the whole cleanup, and the whole job (`run`: migration, reboots, cleanup), through the CLI, judged by
the independent oracle of the end state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kuryr_cleanup.cli import cli
from tests.cleanup_oracle import check_end_state
from tests.test_cleanup import FAST, migrated_sim
from tests.test_migration import FAST as FAST_DELAYS
from tests.test_migration import assert_migrated, assert_rebooted_once_each, kuryr, text

BASE = "namespaces=3,pods=2,services=2,policies=1"
VARIANTS = {
    "ml2-ovs-dvr": "dvr",
    "availability-zones": "azs=az1,az2,az3",
    "admin-token-two-projects": "other-project",
    "octavia-upgraded-across-2.5": "octavia-upgraded",
    "finished-pods": "finished-pods=4",
    "second-cluster": "second-cluster",
    "all-together": "dvr,azs=az1,az2,other-project,octavia-upgraded,finished-pods=3,second-cluster",
}


def cloud_for(spec: str) -> str:
    """An admin token sees every project: with `other-project` the tool must still keep to the cluster's."""
    return "sim-admin" if "other-project" in spec else "sim"


def cleanup(sim: Any, cloud: str, *args: str) -> Any:
    env = {"OS_CLIENT_CONFIG_FILE": sim.env["OS_CLIENT_CONFIG_FILE"], "OS_CLOUD": cloud,
           "KUBECONFIG": sim.env["KUBECONFIG"]}
    return CliRunner().invoke(cli, ["cleanup", "--run-dir", str(sim.workdir / "run"), *args, *FAST], env=env,
                              catch_exceptions=False)


@pytest.mark.parametrize("variant", VARIANTS, ids=list(VARIANTS))
def test_the_cleanup_is_right_on_each_deployment_variant(make_sim: Any, variant: str) -> None:
    spec = f"{BASE},{VARIANTS[variant]}"
    sim = migrated_sim(make_sim, generate=spec)
    cloud = cloud_for(spec)
    before = sim.state()
    plan = cleanup(sim, cloud, "--plan", "-o", "json")
    assert plan.exit_code == 0, plan.output
    assert sim.writes() == []
    result = cleanup(sim, cloud, "--yes", "-o", "json")
    assert result.exit_code == 0, result.output
    check_end_state(before, sim.state())
    planned = {(i["kind"], i["id"]) for i in json.loads(plan.stdout)["items"] if i["state"] == "planned"}
    done = {(i["kind"], i["id"]) for i in json.loads(result.stdout)["items"] if i["state"] in ("done", "gone")}
    assert planned == done  # plan equals run


def test_on_dvr_the_snat_ports_are_never_deleted_directly(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate=f"{BASE},dvr")
    snat = {p["id"] for p in sim.state()["openstack"]["ports"]
            if p["device_owner"] == "network:router_centralized_snat"}
    assert snat
    result = cleanup(sim, "sim", "--yes")
    assert result.exit_code == 0, result.output
    assert not [r for r in sim.requests() if r["method"] == "DELETE" and r["path"].rsplit("/", 1)[-1] in snat]


# -- the whole job ---------------------------------------------------------------------------------
def run_whole_job(sim: Any, run_dir: Path, spec: str) -> None:
    """`kuryr-migrate run --yes --etcd-backup-confirmed`: the cluster ends on OVN-Kubernetes, each node
    rebooted once, and of Kuryr's resources only what is not this cluster's is left, unchanged."""
    before = sim.state()
    result = kuryr(sim, run_dir, "run", "--yes", "--etcd-backup-confirmed", cloud=cloud_for(spec))
    assert result.exit_code == 0, text(result)
    assert "is on OVN-Kubernetes and Kuryr's resources are gone" in result.output
    assert_migrated(sim)
    assert_rebooted_once_each(sim)
    check_end_state(before, sim.state(), migrated=True)


@pytest.mark.parametrize("variant", VARIANTS, ids=list(VARIANTS))
def test_the_whole_job_is_right_on_each_deployment_variant(make_sim: Any, tmp_path: Path, variant: str) -> None:
    spec = f"{BASE},{VARIANTS[variant]}"
    run_whole_job(make_sim(generate=spec, delays=FAST_DELAYS), tmp_path / "run", spec)


def unpause_worker_pool(sim: Any) -> None:
    """The admin's `oc patch mcp worker --type merge -p '{"spec":{"paused":false}}'`."""
    from kubernetes import client, config

    api = client.CustomObjectsApi(config.new_client_from_config(sim.env["KUBECONFIG"]))
    api.patch_cluster_custom_object("machineconfiguration.openshift.io", "v1", "machineconfigpools", "worker",
                                    {"spec": {"paused": False}})


def finish_upgrade(sim: Any) -> None:
    """The cluster-version operator reports the upgrade done: the new release, Progressing=False."""
    from kuryr_cleanup.sim.cluster_version import UPGRADE_VERSION, make_cluster_version
    from kuryr_cleanup.sim.store import iso_now

    with sim.store.lock:
        version = sim.store.kube_get("config.openshift.io/v1", "ClusterVersion", "version")
        done = make_cluster_version(version["spec"]["clusterID"], iso_now(sim.store.clock.now()), UPGRADE_VERSION)
        version["spec"], version["status"] = done["spec"], done["status"]


@pytest.mark.parametrize(("variant", "resolve"), [("paused-pool=worker", unpause_worker_pool),
                                                   ("upgrading", finish_upgrade)], ids=["paused-pool", "upgrading"])
def test_a_paused_pool_or_an_upgrade_is_refused_then_the_same_command_completes(make_sim: Any, tmp_path: Path,
                                                                                  variant: str, resolve: Any) -> None:
    spec = f"{BASE},{variant}"
    sim = make_sim(generate=spec, delays=FAST_DELAYS)
    before = sim.state()
    refused = kuryr(sim, tmp_path / "run", "run", "--yes", "--etcd-backup-confirmed")
    assert refused.exit_code == 3, text(refused)
    assert "preflight failed, nothing was changed" in text(refused)
    after = sim.state()
    assert (after["openstack"], after["kubernetes"]) == (before["openstack"], before["kubernetes"])
    resolve(sim)
    run_whole_job(sim, tmp_path / "run", spec)
