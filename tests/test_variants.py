"""The deployments production clusters run on (issue "Real deployments"), each a simulator variant:
the whole cleanup through the CLI, judged by the independent oracle of the end state."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from kuryr_cleanup.cli import cli
from tests.cleanup_oracle import check_end_state
from tests.test_cleanup import FAST, migrated_sim

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


def cleanup(sim: Any, cloud: str, *args: str) -> Any:
    env = {"OS_CLIENT_CONFIG_FILE": sim.env["OS_CLIENT_CONFIG_FILE"], "OS_CLOUD": cloud,
           "KUBECONFIG": sim.env["KUBECONFIG"]}
    return CliRunner().invoke(cli, ["cleanup", "--run-dir", str(sim.workdir / "run"), *args, *FAST], env=env,
                              catch_exceptions=False)


@pytest.mark.parametrize("variant", VARIANTS, ids=list(VARIANTS))
def test_the_cleanup_is_right_on_each_deployment_variant(make_sim: Any, variant: str) -> None:
    spec = f"{BASE},{VARIANTS[variant]}"
    sim = migrated_sim(make_sim, generate=spec)
    # An admin token sees every project: the tool must still keep to the cluster's.
    cloud = "sim-admin" if "other-project" in spec else "sim"
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
