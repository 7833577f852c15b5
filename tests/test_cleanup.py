"""The cleanup, told as the admin's story: driven through the CLI against the simulator, judged by
the end state of the simulated cloud and cluster."""

from __future__ import annotations

import json
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


def test_journal_holds_every_object_before_it_is_changed(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=2,pods=1,services=1")
    run_dir = sim.workdir / "run"
    result = kuryr_migrate(sim, "cleanup", "--yes", *FAST, run_dir=run_dir)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    deletes = [r for r in records if r["event"] == "delete"]
    assert deletes and all(r.get("object") and r["object"].get("id", r["object"].get("metadata")) for r in deletes)
    text = (run_dir / "journal.jsonl").read_text()
    assert "sim-password" not in text and "sim-token" not in text
    # The journal came before the deletion: the first delete record precedes its result record.
    first = next(i for i, r in enumerate(records) if r["event"] == "delete")
    assert records[first + 1:] and any(r["event"] == "result" and r["id"] == records[first]["id"]
                                       for r in records[first + 1:])


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
