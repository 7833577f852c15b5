"""The plan as review artefacts: the table a change-review board reads (summary first, details on
request), the JSON and YAML envelopes, the self-contained HTML page (rendered by a real headless
Chromium), and the equivalent `oc`/`openstack` script (run with the real `openstack` CLI and
`kubectl` against the simulator, to the same end state as `kuryr-migrate cleanup`)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from html import unescape as html_unescape
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from kuryr_cleanup.cli import cli
from tests.cleanup_oracle import check_end_state
from tests.conftest import Sim
from tests.test_cleanup import FAST, kuryr_migrate, migrated_sim
from tests.test_migration import FAST as MIGRATION_DELAYS
from tests.test_migration import SMALL, assert_migrated, kuryr

BIN = Path(sys.executable).parent
# A cluster with something of every kind, and some of it kept or skipped with a reason.
MIXED = "namespaces=3,pods=2,services=1,policies=1,fips,second-cluster,untagged=1"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _plan_json(sim: Sim) -> dict[str, Any]:
    result = kuryr_migrate(sim, "cleanup", "--plan", "-o", "json", *FAST)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def _assert_readable(text: str) -> None:
    """What a person reads: lines under 120 characters, no Python values, no word said twice in a row."""
    for line in text.splitlines():
        assert len(line) < 120, line
        assert not re.search(r"\bNone\b|\{'|\['|\bTrue\b|\bFalse\b", line), line
        doubled = re.search(r"(?<![\w-])([A-Za-z]{3,}) \1\b", line)  # not "kuryr-migrate migrate"
        assert not doubled, f"doubled word {doubled.group(0)!r} in: {line}"


# -- the table ----------------------------------------------------------------------------------------
def test_the_plan_starts_with_a_summary_per_step_and_the_details_come_on_request(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate=MIXED)
    plan = _plan_json(sim)
    planned = [i for i in plan["items"] if i["state"] == "planned"]
    ports = sum(1 for i in planned if i["kind"] == "port" and i["step"] == "B12")
    networks = sum(1 for i in planned if i["kind"] == "network" and i["step"] == "B12")
    skipped = [i for i in plan["items"] if i["state"] == "skipped"]
    assert ports and networks and skipped

    summary = kuryr_migrate(sim, "cleanup", "--plan", *FAST)
    assert summary.exit_code == 0, summary.output
    _assert_readable(summary.stdout)
    lines = summary.stdout.splitlines()
    # One line (wrapped when long) per step, in words, with counts per kind and action.
    assert sum(1 for line in lines if re.match(r"B\d+ +\S", line)) == 18
    text = " ".join(line.strip() for line in lines)
    assert f"{ports} ports, {networks} networks to delete" in text
    other = skipped[0]["reason"].split("(")[1].split(")")[0]
    assert f"skipped: tagged for another cluster ({other}) ({len(skipped)})" in text
    # No resource ids without --details: the summary is what a board reads first.
    assert not any(i["id"] in summary.stdout for i in planned if UUID.fullmatch(i["id"]))
    assert f"Total: {len(planned)} changes and deletions planned" in summary.stdout

    detailed = kuryr_migrate(sim, "cleanup", "--plan", "--details", *FAST)
    _assert_readable(detailed.stdout)
    for item in plan["items"]:  # every resource, with its whole id (never cut by the line length)
        assert re.search(rf"(^|\s){re.escape(item['id'])}(\s|$)", detailed.stdout, re.M), item
    # The summary comes first and again last, where the eye lands before a prompt.
    head = summary.stdout.split("Every resource")[0].strip()
    assert detailed.stdout.startswith(head)
    last = detailed.stdout.rstrip().splitlines()
    assert last[-2] == head.splitlines()[-1] and last[-1].startswith("next: kuryr-migrate cleanup")


def test_the_summary_is_the_last_thing_before_the_prompt(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=2")
    result = kuryr_migrate(sim, "cleanup", *FAST, input="no\n")
    assert result.exit_code == 2
    before_prompt = result.output.split("Type the infraID")[0].rstrip().splitlines()
    assert before_prompt[-2].startswith("Total: ") and before_prompt[-1].startswith("Every resource")
    detailed = kuryr_migrate(sim, "cleanup", "--details", *FAST, input="no\n")
    before_prompt = detailed.output.split("Type the infraID")[0].rstrip().splitlines()
    assert "In short:" in before_prompt and before_prompt[-1].startswith("Total: ")


def test_the_run_plan_and_status_read_as_words(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=MIGRATION_DELAYS)
    plan = kuryr(sim, tmp_path / "run", "run", "--plan")
    assert plan.exit_code == 0, plan.output
    _assert_readable(plan.output)
    assert "A7   Reboot every node (R): 5 nodes to reboot" in plan.output
    assert "A8   Verify: 1 check to run" in plan.output
    status = kuryr(sim, tmp_path / "run", "status")
    assert status.exit_code == 0, status.output
    _assert_readable(status.output)
    # Leftovers in words, not "B1 24, B2 1".
    assert not re.search(r"\bB\d+ \d+\b", status.output)
    assert re.search(r"B1 +Service finalizers: finalizer to remove from \d+ Services", status.output)
    assert "spec.migration: not set" in status.output
    assert status.output.rstrip().endswith("next: kuryr-migrate migrate --plan")


def test_details_of_the_migration_plan(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=MIGRATION_DELAYS)
    plain = kuryr(sim, tmp_path / "run", "migrate", "--plan")
    detailed = kuryr(sim, tmp_path / "run", "migrate", "--plan", "--details")
    assert plain.exit_code == detailed.exit_code == 0, detailed.output
    _assert_readable(detailed.output)
    assert "Details:" not in plain.output and "Details:" in detailed.output
    plan = json.loads(kuryr(sim, tmp_path / "run", "migrate", "--plan", "-o", "json").output)
    for item in plan["items"]:
        assert item["id"] in detailed.output and item["id"] not in plain.output.split("Details:")[0] or \
            not UUID.fullmatch(item["id"]), item


def test_the_html_run_plan_has_the_migration_steps(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=MIGRATION_DELAYS)
    result = kuryr(sim, tmp_path / "run", "run", "--plan", "-o", "html")
    assert result.exit_code == 0, result.output
    page = result.stdout
    assert page.startswith("<!DOCTYPE html>")
    assert '<section id="migration">' in page and '<section id="cleanup">' in page
    for step in ("A0", "A2", "A5", "A7", "A9", "B3", "B12"):
        assert f'id="step-{step}"' in page
    nodes = [i for i in json.loads(kuryr(sim, tmp_path / "run", "run", "--plan", "-o", "json").stdout)["items"]
             if i["kind"] == "node"]
    assert len(nodes) == 5 and all(f'data-id="{n["id"]}" data-kind="node"' in page for n in nodes)


# -- JSON and YAML ----------------------------------------------------------------------------------------
ENVELOPES = {
    "CleanupPlan": {"apiVersion", "kind", "infraID", "notes", "steps", "items", "summary"},
    "RunPlan": {"apiVersion", "kind", "infraID", "notes", "steps", "items", "summary", "preflightProblems"},
    "MigrationPlan": {"apiVersion", "kind", "infraID", "notes", "steps", "items", "summary", "preflightProblems"},
    "Status": {"apiVersion", "kind", "infraID", "phase", "networkType", "migration", "pools", "nodes", "lastStep",
               "kuryrLeftovers"},
    "VerifyReport": {"apiVersion", "kind", "infraID", "ok"},
}


@pytest.mark.parametrize(("command", "kind"), [(["cleanup", "--plan"], "CleanupPlan"), (["run", "--plan"], "RunPlan"),
                                               (["migrate", "--plan"], "MigrationPlan"), (["status"], "Status"),
                                               (["verify"], "VerifyReport")])
def test_every_reporting_command_speaks_json_and_yaml_alike(make_sim: Any, tmp_path: Path, command: list[str],
                                                           kind: str) -> None:
    sim = make_sim(generate=SMALL, delays=MIGRATION_DELAYS)
    documents = {}
    for output in ("json", "yaml"):
        result = kuryr(sim, tmp_path / "run", command[0], *command[1:], "-o", output)
        assert result.exit_code in (0, 1), result.output  # verify fails on a cluster still on Kuryr
        documents[output] = json.loads(result.stdout) if output == "json" else yaml.safe_load(result.stdout)
    as_json, as_yaml = documents["json"], documents["yaml"]
    assert (as_json["apiVersion"], as_json["kind"]) == ("kuryr-migrate/v1", kind)
    assert as_json["infraID"] == sim.store.infra_id
    assert ENVELOPES[kind] <= set(as_json)
    if kind != "VerifyReport":
        assert set(as_json) == ENVELOPES[kind]
    # The same document either way (timestamps aside, there are none in these).
    assert as_yaml == as_json


def test_a_cleanup_result_in_yaml(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=1")
    result = kuryr_migrate(sim, "cleanup", "--yes", "-o", "yaml", *FAST)
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(result.stdout)
    assert doc["apiVersion"] == "kuryr-migrate/v1" and doc["kind"] == "CleanupResult" and doc["ok"] is True
    assert {"items", "steps", "summary", "elapsedSeconds", "interrupted"} <= set(doc)
    assert "Run directory:" in result.stderr  # lines go to stderr when stdout is a document


# -- the HTML page ------------------------------------------------------------------------------------------
def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed: .ci/run installs it (apt-get install chromium)")
    pytest.skip("chromium is not installed (Debian: apt-get install chromium); CI installs it")


def _chromium_args(profile: Path) -> list[str]:
    return [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}"]


def test_the_html_plan_is_one_self_contained_page_with_every_resource(make_sim: Any, tmp_path: Path) -> None:
    args = _chromium_args(tmp_path / "profile")
    sim = migrated_sim(make_sim, generate=MIXED)
    plan = _plan_json(sim)
    result = kuryr_migrate(sim, "cleanup", "--plan", "-o", "html", *FAST)
    assert result.exit_code == 0, result.output
    page = tmp_path / "plan.html"
    page.write_text(result.stdout)
    # Self-contained: nothing is fetched from anywhere (no stylesheet, script, image, font or frame).
    html = result.stdout
    assert not re.search(r"<(link|script|img|iframe|object|embed)\b|@import|url\(|src=|https?://", html)
    dom = subprocess.run([*args, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr
    text = dom.stdout
    assert f'<dd id="infra-id">{sim.store.infra_id}</dd>' in text
    assert re.search(r'<dd id="cluster-id">[0-9a-f-]{36}</dd>', text)
    assert re.search(r'<dd id="project-id">[0-9a-f]{32}</dd>', text)
    counts: dict[str, dict[str, int]] = {}
    for item in plan["items"]:
        counts.setdefault(item["step"], {}).setdefault(item["state"], 0)
        counts[item["step"]][item["state"]] += 1
    for step, by_state in counts.items():
        row = re.search(rf'<tr id="summary-{step}" data-step="{step}">(.*?)</tr>', text, re.S)
        assert row, step
        for state in ("planned", "kept", "skipped"):
            assert f'data-state="{state}">{by_state.get(state, 0):,}</td>' in row.group(1), (step, state)
    planned = sum(1 for i in plan["items"] if i["state"] == "planned")
    assert f'data-planned="{planned}"' in text
    # Every resource is in the page, with its evidence, or its reason when it is kept or skipped, and
    # each planned one with the command that would do it by hand.
    found = re.findall(r'<tr class="item (?:planned|kept|skipped)" data-id="([^"]+)" data-kind="([^"]+)">(.*?)</tr>',
                       text, re.S)
    rows = {(kind, ident): row for ident, kind, row in found}
    for item in plan["items"]:
        row = rows[(item["kind"], item["id"])]
        shown = item["evidence"] if item["state"] == "planned" else item["reason"]
        assert shown in html_unescape(row), item
    rows = {ident: row for (kind, ident), row in rows.items() if kind == "port"}
    port = next(i for i in plan["items"] if i["kind"] == "port" and i["state"] == "planned")
    assert f"openstack port delete {port['id']}" in rows[port["id"]]


def _command_cells(dom: str) -> dict[tuple[str, str], str]:
    """(kind, id) -> the by-hand commands shown in the rows of that planned resource (A2 and A9 both
    patch Network.operator cluster), as text."""
    rows = re.findall(r'<tr class="item planned" data-id="([^"]+)" data-kind="([^"]+)">(.*?)</tr>', dom, re.S)
    cells: dict[tuple[str, str], str] = {}
    for ident, kind, row in rows:
        cell = re.search(r'<td class="cmd"><code>(.*?)</code></td>', row, re.S)
        key = (html_unescape(kind), html_unescape(ident))
        cells[key] = "\n".join(filter(None, [cells.get(key), html_unescape(cell.group(1)) if cell else ""]))
    return cells


def test_the_html_run_plan_shows_the_vendors_commands_for_the_migration_and_the_reboots(
        make_sim: Any, tmp_path: Path) -> None:
    """A review board sees what each migration step and each reboot would run, as an admin types
    it: the same vendor commands as `run --plan -o script`, without the script's helpers."""
    args = _chromium_args(tmp_path / "profile")
    sim = make_sim(generate=SMALL, delays=MIGRATION_DELAYS)
    result = kuryr(sim, tmp_path / "run", "run", "--plan", "-o", "html")
    assert result.exit_code == 0, result.output
    page = tmp_path / "run-plan.html"
    page.write_text(result.stdout)
    dom = subprocess.run([*args, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr
    cells = _command_cells(dom.stdout)
    items = json.loads(kuryr(sim, tmp_path / "run", "run", "--plan", "-o", "json").stdout)["items"]
    migration = [i for i in items if i["state"] == "planned" and i["step"][0] in "AR"]
    assert migration and all(cells[(i["kind"], i["id"])] for i in migration), migration
    shown = "\n".join(cells[(i["kind"], i["id"])] for i in migration)
    script = kuryr(sim, tmp_path / "run", "run", "--plan", "-o", "script").stdout
    for command in ("oc patch Network.operator.openshift.io cluster --type=merge --patch "
                    "'{\"spec\":{\"migration\":{\"networkType\":\"OVNKubernetes\"}}}'",
                    "oc patch Network.config.openshift.io cluster --type=merge --patch "
                    "'{\"spec\":{\"networkType\":\"OVNKubernetes\"}}'",
                    "oc patch Network.operator.openshift.io cluster --type=merge --patch "
                    "'{\"spec\":{\"migration\":null}}'",
                    "openstack security group rule create --ingress --ethertype IPv4 --protocol udp --dst-port 6081 "):
        assert command in shown, command
        assert command.replace("oc ", 'run "$OC" ', 1) in script or command in script, command
    for pool in ("master", "worker"):
        assert cells[("MachineConfigPool", pool)].startswith(f"oc get mcp {pool}")
        assert "grep ExecStart" in cells[("MachineConfigPool", pool)]
    assert cells[("DaemonSet", "openshift-multus/multus")] == "oc -n openshift-multus rollout status daemonset/multus"
    assert "oc get co" in cells[("check", "cluster")]
    nodes = [i for i in migration if i["kind"] == "node"]
    assert len(nodes) == 5
    for node in nodes:  # the reboot the script sends, then the wait for the node
        command = f"openstack server reboot --soft {node['id']}"
        assert cells[("node", node["id"])].splitlines()[0] == command
        assert f"run {command}" in script
        assert f"oc get node {node['name']}` is Ready with a new" in cells[("node", node["id"])]
    # No helper of the script leaks into what an admin would type.
    assert not re.search(r"\b(run|gone_ok|exists_ok|wait_\w+|remember_boot_id|verify_cluster)\b |\$OC", shown), shown
    # Through SSH, the vendor's `ssh core@<InternalIP> sudo shutdown -r -t 3`.
    ssh = kuryr(sim, tmp_path / "run", "run", "--plan", "-o", "html", "--method", "ssh")
    assert ssh.exit_code == 0, ssh.output
    ips = [i["id"] for i in json.loads(kuryr(sim, tmp_path / "run", "run", "--plan", "-o", "json", "--method",
                                             "ssh").stdout)["items"] if i["kind"] == "node"]
    ssh_cells = _command_cells(ssh.stdout)
    assert len(ips) == 5 and all(re.match(rf"ssh .*core@{re.escape(ip)} sudo shutdown -r -t 3$",
                                          ssh_cells[("node", ip)].splitlines()[0]) for ip in ips), ssh_cells


def test_html_and_script_are_artefacts_of_a_plan(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=1")
    sim.clear_requests()
    result = kuryr_migrate(sim, "cleanup", "--yes", "-o", "html", *FAST)
    assert result.exit_code == 2
    assert result.stderr.strip() == "kuryr-migrate: error: -o html is a review artefact of the plan: add --plan"
    assert sim.requests() == []


# -- the script --------------------------------------------------------------------------------------------
def test_the_exported_script_does_what_cleanup_does(make_sim: Any, tmp_path: Path) -> None:
    """Run with the admin's own `openstack` CLI and `kubectl` (for `oc`), the script reaches the end
    state the cleanup reaches, judged by the same oracle, and leaves the tool nothing to do."""
    sim = migrated_sim(make_sim, generate="namespaces=1,pods=1,services=1,policies=1,fips,second-cluster,"
                                          "installer-router=no,pool-ports=0")
    before = sim.state()
    result = kuryr_migrate(sim, "cleanup", "--plan", "-o", "script", *FAST)
    assert result.exit_code == 0, result.output
    script = tmp_path / "cleanup.sh"
    script.write_text(result.stdout)
    text = result.stdout
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text and 'OC=${OC:-oc}' in text
    plan = _plan_json(sim)
    body = text.split("\n# == B1 ")[1].splitlines()[1:]
    commands = [line for line in body if line and not line.startswith("#")]
    # Each action is one command (a load balancer's: settle, delete, wait), right after a comment that
    # names its step, the resource and the evidence.
    comment = ""
    for line in body:
        if line.startswith("# ==") or line == "# nothing to do":
            comment = ""
        elif line.startswith("# "):
            comment = line if re.match(r"# B\d+ ", line) else comment + " " + line[2:]
        elif line and not line.startswith("echo "):
            assert re.match(r"# B\d+ ", comment) and ("evidence: " in comment or "check" in comment), (comment, line)
    for item in (i for i in plan["items"] if i["state"] == "planned"):
        if UUID.fullmatch(item["id"]):
            assert any(item["id"] in c for c in commands), item
    assert any(c.startswith("gone_ok openstack loadbalancer delete --cascade ") for c in commands)
    assert any(c.startswith("gone_ok openstack network trunk unset --subport ") for c in commands)
    assert any(c.startswith("remove_finalizer ") for c in commands)
    assert '"$OC" patch "${where[@]}" "$resource" "$name" --type=json -p "$patch"' in text
    # Neighbouring deletions of one kind are one command (each start of the openstack CLI costs a second).
    batched = [c.split() for c in commands if c.startswith("delete_all port ")]
    assert batched and max(len(c) for c in batched) > 3, batched
    assert not any(c.startswith("gone_ok openstack port delete ") for c in commands)
    lbs = [i["id"] for i in plan["items"] if i["action"] == "cascade-delete" and i["state"] == "planned"]
    assert len(lbs) > 1  # deleted one per command, waited for together
    assert [c for c in commands if c.startswith("wait_lbs_gone ")] == [f"wait_lbs_gone {' '.join(lbs)}"]
    # The first port of the smallest batch of several is refused once (409): the batch falls back to one by one,
    # where the ports the batch did delete are already gone (success) and the refused one is deleted.
    refused = min((c for c in batched if len(c) > 3), key=len)[2]
    sim.control("PUT", "faults", [{"service": "network", "method": "DELETE", "path": f"/v2.0/ports/{refused}",
                                   "status": 409, "count": 1}])
    env = {**sim.env, "OC": str(BIN / "kubectl"), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "POLL": "0.05"}
    run = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "deleting them one by one" in run.stderr and "already gone" in run.stderr
    assert run.stdout.rstrip().endswith(f"The cleanup of {sim.store.infra_id} is done.")
    check_end_state(before, sim.state())
    after = _plan_json(sim)
    assert [i for i in after["items"] if i["state"] == "planned"] == []


def test_the_script_refuses_another_cluster(make_sim: Any, tmp_path: Path) -> None:
    first = migrated_sim(make_sim, generate="namespaces=1,infra-id=alpha-aaaaa")
    script = tmp_path / "alpha.sh"
    script.write_text(kuryr_migrate(first, "cleanup", "--plan", "-o", "script", *FAST).stdout)
    second = migrated_sim(make_sim, generate="namespaces=1,infra-id=beta-bbbbb")
    second.clear_requests()
    env = {**second.env, "OC": str(BIN / "kubectl"), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    assert "this is cluster beta-bbbbb, not alpha-aaaaa" in run.stderr
    assert second.writes() == []


def _invoke(args: list[str], sim: Sim) -> Result:
    env = {k: sim.env[k] for k in ("OS_CLIENT_CONFIG_FILE", "OS_CLOUD", "KUBECONFIG")}
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


# -- the run script: the migration with the vendor's commands, the reboots, then the cleanup ----------------
def test_the_run_script_is_the_whole_job_in_the_vendors_order(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=MIGRATION_DELAYS)
    sim.clear_requests()
    result = kuryr(sim, tmp_path / "run", "run", "--plan", "-o", "script")
    assert result.exit_code == 0, result.output
    assert sim.writes() == [] or all(w["path"].endswith("/auth/tokens") for w in sim.writes())
    text = result.stdout
    script = tmp_path / "run.sh"
    script.write_text(text)
    syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=60)
    assert syntax.returncode == 0, syntax.stderr
    # Every step once, in order: A0-A9 (the reboots in A7), then B1-B18.
    headings = re.findall(r"^\s*# == ([AB]\d+) ", text, re.M)
    assert headings == [f"A{n}" for n in range(10)] + [f"B{n}" for n in range(1, 19)]
    assert text.index("\nmigration() {") < text.index("\ncleanup() {") < text.index("    all) migration; cleanup ;;")
    body = text[text.index("\nmigration() {"):].splitlines()
    commands = [line.strip() for line in body if line.startswith("    ") and not line.strip().startswith("#")]
    # The vendor's commands, in the vendor's order.
    wanted = [
        "exists_ok openstack security group rule create --ingress --ethertype IPv4 --protocol udp --dst-port 6081 ",
        "backup_network_config ",
        "run \"$OC\" patch Network.operator.openshift.io cluster --type=merge --patch "
        "'{\"spec\":{\"migration\":{\"networkType\":\"OVNKubernetes\"}}}'",
        "wait_pool_updated master", "wait_pool_updated worker",
        "run \"$OC\" patch Network.config.openshift.io cluster --type=merge --patch "
        "'{\"spec\":{\"networkType\":\"OVNKubernetes\"}}'",
        "wait_multus", "remember_boot_id ", "run openstack server reboot --soft ", "wait_rebooted ",
        "verify_cluster",
        "run \"$OC\" patch Network.operator.openshift.io cluster --type=merge --patch "
        "'{\"spec\":{\"migration\":null}}'",
        "echo 'The migration of ", "remove_finalizer ", "gone_ok openstack loadbalancer delete --cascade ",
        "echo 'The cleanup of ",
    ]
    at = [next(n for n, c in enumerate(commands) if c.startswith(w)) for w in wanted]
    assert at == sorted(at), list(zip(wanted, at, strict=True))
    assert 'run "$OC" -n openshift-multus rollout status daemonset/multus' in text
    # Rolling: the control plane one node at a time, each batch waited for before the next.
    waits = [c for c in commands if c.startswith("wait_rebooted ")]
    assert len(waits) == 3 + 2 and all(len(c.split()) == 2 for c in waits)


def test_the_migration_part_of_the_run_script_migrates_the_simulated_cluster(make_sim: Any, tmp_path: Path) -> None:
    """`bash run.sh migration` with kubectl for `oc` and the SSH reboot (tests/bin's stand-in ssh):
    the cluster ends on OVN-Kubernetes, every node rebooted, and the tool finds the migration done."""
    sim = make_sim(generate=SMALL + ",geneve-rule", delays=MIGRATION_DELAYS)
    result = kuryr(sim, tmp_path / "run", "run", "--plan", "-o", "script", "--method", "ssh", "--strategy", "all",
                   "--backup-file", str(tmp_path / "cluster-kuryr.yaml"))
    assert result.exit_code == 0, result.output
    assert "openstack server reboot" not in result.stdout and "security group rule create" not in result.stdout
    script = tmp_path / "run.sh"
    script.write_text(result.stdout)
    tests_bin = Path(__file__).parent / "bin"
    env = {**sim.env, "OC": str(BIN / "kubectl"), "KURYR_SIM_URL": sim.server.os_url, "POLL": "0.05",
           "PATH": f"{tests_bin}{os.pathsep}{BIN}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(["bash", str(script), "migration"], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    assert run.stdout.rstrip().endswith(f"The migration of {sim.store.infra_id} is done.")
    assert yaml.safe_load((tmp_path / "cluster-kuryr.yaml").read_text())["spec"]["networkType"] == "Kuryr"
    assert_migrated(sim)
    again = kuryr(sim, tmp_path / "run", "migrate", "--plan", "-o", "json")
    assert again.exit_code == 0, again.output
    assert [i for i in json.loads(again.stdout)["items"] if i["step"] != "A0"] == []


# -- the script in hostile hands ----------------------------------------------------------------------------
def _helpers(body: str) -> subprocess.CompletedProcess[str]:
    """Run `body` in bash after the script's helpers, with `openstack` a shell function that answers as
    the real CLI does in the case at hand (no cloud needed to judge how a helper reads an answer)."""
    from kuryr_cleanup.script_export import _PREAMBLE

    return subprocess.run(["bash", "-c", _PREAMBLE + "\nPOLL=0\nLB_TIMEOUT=5\n" + body], capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("answer", [
    # A 409 whose URL or ids happen to contain "404" is a conflict, not "already gone".
    "ConflictException: 409: Client Error for url: http://127.0.0.1:40400/v2.0/security-groups/"
    "8e76f01e-4040-4404-8404-000000000404, Security Group 8e76f01e-4040-4404-8404-000000000404 in use.",
    "Failed to delete port with name or ID 'a404': ConflictException: 409: PortInUse",
])
def test_the_script_never_takes_a_conflict_for_already_gone(answer: str) -> None:
    done = _helpers(f"openstack() {{ printf '%s\\n' {shlex.quote(answer)}; return 1; }}\n"
                    "gone_ok openstack security group delete x && echo WRONG-DONE")
    assert done.returncode != 0 and "WRONG-DONE" not in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("answer", [
    "Failed to delete port with name or ID 'p1': No Port found for p1\n1 of 1 ports failed to delete.",
    "Unable to locate 0f6c3a1e-8b9d-4f4e-9c57-1d2e3f405060 in loadbalancers",
    "No FloatingIP found for 10.0.0.5",
    "NotFoundException: 404: Client Error for url: http://x/v2.0/routers/r/remove_router_interface, "
    "Router r has no interface on subnet s",
])
def test_a_rerun_of_the_script_takes_what_is_gone_as_done(answer: str) -> None:
    done = _helpers(f"openstack() {{ printf '%s\\n' {shlex.quote(answer)}; return 1; }}\n"
                    "gone_ok openstack port delete p1 && echo DONE")
    assert done.returncode == 0 and "DONE" in done.stdout, done.stdout + done.stderr


def test_a_failed_read_is_never_a_passed_check_or_a_settled_load_balancer() -> None:
    failing = "openstack() { echo 'HttpException: 500: Server Error' >&2; return 1; }\n"
    check = _helpers(failing + "check_networks_gone openshiftClusterID=x net-1 && echo PASSED")
    assert check.returncode != 0 and "PASSED" not in check.stdout, check.stderr
    settled = _helpers(failing + "wait_lbs_settled lb-1 && echo SETTLED")
    assert settled.returncode != 0 and "SETTLED" not in settled.stdout, settled.stderr


@pytest.mark.parametrize(("kind", "path", "value"), [
    ("ClusterVersion", ("spec", "clusterID"), "a4076b26\ntouch /tmp/PWNED #"),
    ("Infrastructure", ("status", "infrastructureName"), "ostest-v248z' ; touch /tmp/PWNED ; echo '"),
])
def test_a_cluster_identity_that_is_not_the_installers_is_refused_before_any_output(
        make_sim: Any, kind: str, path: tuple[str, str], value: str) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=1,pods=1,services=1")
    with sim.store.lock:
        name = "version" if kind == "ClusterVersion" else "cluster"
        api = "config.openshift.io/v1"
        sim.store.kube_get(api, kind, name)[path[0]][path[1]] = value
    result = kuryr_migrate(sim, "cleanup", "--plan", "-o", "script")
    assert result.exit_code == 2 and result.stdout == "", result.output
    assert "touch" in result.stderr and len(result.stderr.splitlines()) == 1


def test_names_read_from_the_cloud_never_leave_a_comment_in_the_script(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=1,pods=1,services=1,policies=1")
    conn = sim.openstack_sdk()
    # Looks like a policy group, so the plan lists it as kept, with its name, in a comment.
    conn.network.create_security_group(name="sg/x\ntouch /tmp/PWNED\n#",
                                       description="Kuryr-Kubernetes Network Policy\nrm -rf /tmp/x")
    result = kuryr_migrate(sim, "cleanup", "--plan", "-o", "script")
    assert result.exit_code == 0, result.output
    assert "PWNED" in result.stdout  # it is listed...
    assert not [line for line in result.stdout.splitlines() if line.lstrip().startswith(("touch", "rm "))]
    assert subprocess.run(["bash", "-n"], input=result.stdout, text=True).returncode == 0
