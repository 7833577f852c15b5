"""The admin's conventions: options offered only where they do something, contradictions and bad
values refused before anything is read, the next step said at the end, the resume line last after an
interruption, `-v` and `--log-file`, and progress bars that fit an 80-column terminal."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kuryr_cleanup import render
from kuryr_cleanup.cli import cli
from kuryr_cleanup.console import Progress
from kuryr_cleanup.plan import DONE, Plan, PlanItem, StepInfo
from tests.test_cleanup import FAST, _wait_for, kuryr_migrate, migrated_sim
from tests.test_migration import FAST as MIGRATION_DELAYS
from tests.test_migration import SMALL, kuryr, text, writes_except_reads


def _help(*command: str) -> str:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", ["status", "verify", "snapshot"])
def test_options_that_do_nothing_are_not_offered(command: str) -> None:
    shown = _help(command)
    assert "--poll-interval" not in shown and "--concurrency" not in shown
    if command == "snapshot":
        assert "--run-dir" not in shown  # a snapshot reads no run state
    # ... where they do something, they are.
    assert "--poll-interval" in _help("cleanup") and "--concurrency" in _help("cleanup")
    assert "--poll-interval" in _help("reboot") and "--concurrency" not in _help("reboot")


def _option_help(command: str, option: str) -> str:
    """An option's help text in `command --help`, as one line."""
    shown = " ".join(_help(command).split())
    return shown.split(f" {option} ")[1].split(" --")[0].split(" -o, ")[0]


@pytest.mark.parametrize(("command", "polled", "not_polled"), [
    ("cleanup", ["load balancers being deleted"], ["machine config", "reboot"]),
    ("migrate", ["machine config pools", "multus rollout", "nodes being rebooted"], ["load balancer"]),
    ("reboot", ["nodes being rebooted", "new boot ID"], ["load balancer", "machine config"]),
    ("run", ["machine config pools", "nodes being rebooted", "load balancers being deleted"], []),
])
def test_poll_interval_says_what_each_command_polls(command: str, polled: list[str], not_polled: list[str]) -> None:
    # Waiting on a load balancer is the cleanup's; `migrate` and `reboot` never delete one.
    shown = _option_help(command, "--poll-interval")
    assert shown.startswith("FLOAT RANGE Seconds between polls of "), shown
    for words in polled:
        assert words in shown, (words, shown)
    for words in not_polled:
        assert words not in shown, (words, shown)


@pytest.mark.parametrize(("command", "vendor_words"), [
    (["run"], ["migrating to the OVN-Kubernetes network plugin", "cleaning up resources after migration"]),
    (["migrate"], ["migrating to the OVN-Kubernetes network plugin", "spec.migration", "machine config pool",
                   "multus rollout", "reboots every node"]),
    (["reboot"], ["reboot each node in your cluster", "openstack server reboot"]),
    (["verify"], ["oc get co", "Ready", "error state"]),
    (["cleanup"], ["cleaning up resources after migration", "finalizers", "load balancers", "subports"]),
    (["status"], ["machine config pools"]),
    (["snapshot"], ["read-only"]),
])
def test_help_speaks_the_admins_words_and_names_the_vendor_step(command: list[str],
                                                                 vendor_words: list[str]) -> None:
    shown = " ".join(_help(*command).split())  # as one line: click wraps the text
    for words in vendor_words:
        assert words in shown, words
    # No internal step numbers (A4, B12, SPEC R), no abbreviations an admin must decode.
    assert not re.search(r"\bSPEC\b|\b[ABS]\d+\b|\(R\)|\bLB\b", shown), shown
    listing = " ".join(_help().split())
    assert "SPEC" not in listing and not re.search(r"\b[AB]\d+\b", listing)


@pytest.mark.parametrize(("command", "placeholders"), [
    (["sim", "serve"], ["--generate SCENARIO", "--faults RULES", "--capacity LIMITS"]),
    (["run"], ["--generate SCENARIO"]),
])
def test_the_simulators_placeholders_do_not_read_as_the_product_specification(command: list[str],
                                                                              placeholders: list[str]) -> None:
    shown = _help(*command)
    for placeholder in placeholders:
        assert placeholder in shown, placeholder
    assert not re.search(r"\bSPEC\b", shown), shown


@pytest.mark.parametrize(("args", "message"), [
    (["reboot", "--method", "ssh", "--hard"], "--hard is a Nova reboot type: it does nothing with --method ssh"),
    (["run", "--strategy", "all", "--max-unavailable", "3"],
     "--max-unavailable is for --strategy rolling: --strategy all reboots every node at once"),
    (["migrate", "--ssh-user", "admin"], "--ssh-user and --ssh-option go with --method ssh"),
    (["migrate", "--cluster-network", "10.128.0.0/33", "--host-prefix", "23"],
     "--cluster-network '10.128.0.0/33' is not a network CIDR"),
    (["run", "--v4-internal-subnet", "fd99::/64"], "--v4-internal-subnet fd99::/64 is not an IPv4 network"),
    (["run", "--plan", "--mtu", "100"], "--mtu 100 is not a usable MTU"),
    (["cleanup", "-o", "script"], "-o script is a review artefact of the plan: add --plan"),
])
def test_contradictions_and_bad_values_are_one_line_before_any_read(make_sim: Any, tmp_path: Path,
                                                                     args: list[str], message: str) -> None:
    sim = make_sim(generate="namespaces=1")
    sim.clear_requests()
    result = kuryr(sim, tmp_path / "run", *args)
    assert result.exit_code == 2, text(result)
    assert result.stderr.strip().splitlines() == [f"kuryr-migrate: error: {result.stderr.split('error: ')[1].strip()}"]
    assert message in result.stderr
    assert sim.requests() == []  # not even a read
    assert not (tmp_path / "run").exists()


def test_an_error_is_one_line_on_stderr_as_the_admin_sees_it(tmp_path: Path) -> None:
    """In a real process, not under pytest: pytest's log capture gives the root logger a handler,
    which hid that every error also reached stderr bare through logging's last-resort handler."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "KUBECONFIG"))}
    missing = tmp_path / "no-such-kubeconfig"
    proc = subprocess.run([sys.executable, "-m", "kuryr_cleanup", "cleanup", "--plan", "--kubeconfig", str(missing),
                           "--run-dir", str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [f"kuryr-migrate: error: cannot read kubeconfig {missing}"]
    assert proc.stdout == ""


@pytest.mark.parametrize("command", [["migrate"], ["migrate", "--plan"], ["run"], ["run", "--plan"],
                                     ["run", "--plan", "-o", "json"]])
@pytest.mark.parametrize(("args", "message"), [
    (["--mtu", "1400"], "--mtu 1400 is above the smallest node network MTU (1450: "),
    (["--cluster-network", "10.196.0.0/14", "--host-prefix", "23"],
     "--cluster-network 10.196.0.0/14 overlaps the machine network 10.196.0.0/16"),
    (["--v4-internal-subnet", "100.88.0.0/16"],
     "--v4-internal-subnet 100.88.0.0/16 overlaps OVN's reserved transit switch subnet 100.88.0.0/16"),
    (["--geneve-port", "31000"], "--geneve-port 31000 is in the cluster's Service NodePort range 30000-32767"),
])
def test_a_value_the_cluster_rules_out_is_one_line_before_any_plan(make_sim: Any, tmp_path: Path,
                                                                  command: list[str], args: list[str],
                                                                  message: str) -> None:
    # Checking these needs the cluster (its node networks' MTU, its machine network), but they are the
    # admin's to fix: bad input (exit 2), not a preflight refusal after a whole plan.
    sim = make_sim(generate=SMALL, delays=MIGRATION_DELAYS)
    sim.clear_requests()
    result = kuryr(sim, tmp_path / "run", *command, "--yes", "--etcd-backup-confirmed", *args)
    assert result.exit_code == 2, text(result)
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("kuryr-migrate: error: ") and message in result.stderr
    assert result.stderr.rstrip().endswith("(nothing was changed)")
    assert result.stdout == ""  # no plan, not even part of one
    assert writes_except_reads(sim) == []


def test_a_cluster_condition_stays_a_preflight_refusal_after_the_plan(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL + ",paused-pool=worker", delays=MIGRATION_DELAYS)
    sim.clear_requests()
    result = kuryr(sim, tmp_path / "run", "migrate", "--plan", "--mtu", "1300")
    assert result.exit_code == 3, text(result)
    assert "Migration plan" in result.stdout and "Preflight would refuse to start:" in result.stdout
    assert "MachineConfigPool worker is paused" in result.stdout
    assert writes_except_reads(sim) == []


def test_migrate_ends_with_the_run_directory_and_the_next_step(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(generate=SMALL, delays=MIGRATION_DELAYS)
    result = kuryr(sim, tmp_path / "run", "migrate", "--yes", "--etcd-backup-confirmed")
    assert result.exit_code == 0, text(result)
    last = result.stdout.rstrip().splitlines()
    assert last[-1] == "next: kuryr-migrate cleanup --plan"
    assert _run_directory_line(last[:-1]).startswith(f"Run directory: {tmp_path / 'run'} (journal.jsonl")


def _run_directory_line(lines: list[str]) -> str:
    """The run directory line at the end of `lines`, with its continuation lines (long ones wrap)."""
    at = max(n for n, line in enumerate(lines) if line.startswith("Run directory: "))
    assert all(line.startswith("    ") for line in lines[at + 1:]), lines[at:]
    return " ".join(line.strip() for line in lines[at:])


def test_after_ctrl_c_the_resume_line_is_the_last_line(make_sim: Any) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=3")
    # The networks stay in use: the run waits on them, and is interrupted while it does.
    sim.control("PUT", "faults", [{"service": "network", "method": "DELETE", "path": "/v2.0/networks/*",
                                   "status": 409}])
    env = {**os.environ, **{k: sim.env[k] for k in ("OS_CLIENT_CONFIG_FILE", "OS_CLOUD", "KUBECONFIG")}}
    proc = subprocess.Popen([sys.executable, "-m", "kuryr_cleanup", "cleanup", "--yes", "--run-dir",
                             str(sim.workdir / "run"), *FAST], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: any(r["status"] == 409 for r in sim.requests()))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    lines = out.rstrip().splitlines()
    assert lines[-1] == render.RESUME_LINE
    assert "journal.jsonl" in _run_directory_line(lines[:-1])
    left = lines.index(next(line for line in lines if line.startswith("Left to do (")))
    assert left < len(lines) - 2  # what is left comes before, the resume line after everything


def test_verbose_and_the_structured_log(make_sim: Any, tmp_path: Path) -> None:
    sim = migrated_sim(make_sim, generate="namespaces=1")
    log = tmp_path / "run.log"
    result = kuryr_migrate(sim, "cleanup", "--yes", "-v", "--log-file", str(log), *FAST)
    assert result.exit_code == 0, result.output
    # -v: one line per API request on stderr, and what the tool did.
    assert re.search(r'"DELETE /\S*/v2\.0/ports/[0-9a-f-]{36} HTTP/1\.1" 204', result.stderr)
    assert "DEBUG" in result.stderr or "INFO" in result.stderr
    assert result.stdout.splitlines()[0].startswith("Run directory:") or "Summary" in result.stdout
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records[0]["event"] == "start" and records[-1]["event"] == "end" and records[-1]["exitCode"] == 0
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    items = [r for r in records if r.get("state") == "done"]
    assert items and all({"step", "kind", "id", "action", "state"} <= set(r) for r in items)
    raw = log.read_text()
    assert "sim-password" not in raw
    tokens = {r.get("token") for r in sim.control("GET", "requests")["requests"]} - {None}
    assert not any(t and t in raw for t in tokens)


def test_json_output_is_the_standard_indented_json_whatever_the_items_hold() -> None:
    """`-o json` writes big plans' items itself (faster than json's Python encoder with an indent):
    the text must stay exactly json.dumps(indent=2, sort_keys=True)."""
    odd = {"step": "B7", "kind": "Pod", "id": 'ns/\u00e9"x\\', "name": "", "action": "remove-finalizer",
           "evidence": "line\nbreak\ttab \u2603", "state": "planned", "reason": ""}
    for doc in ({"apiVersion": "v1", "items": [odd, odd], "steps": [{"counts": {"planned": 2}}]},
                {"items": []}, {"items": [{}]}, {"items": [{"a": None}]}, {"ok": True}):
        assert render.to_json(doc) == json.dumps(doc, indent=2, sort_keys=True)


def test_a_listed_record_held_compact_is_the_whole_object_to_its_readers() -> None:
    """The inventory holds listings with only the fields planning reads decoded; the journal, equality
    and copies still see every field, and `record or {}` does not decode the rest."""
    from kuryr_cleanup.compact import CompactRecord

    port = {"id": "p1", "fixed_ips": [{"subnet_id": "s"}], "binding:profile": {"a": [1]}, "status": "ACTIVE"}
    record = CompactRecord(port, frozenset({"id", "fixed_ips"}))
    assert record == port and dict(record) == port and {**record} == port and len(record) == 4
    assert json.loads(json.dumps(record, sort_keys=True)) == port
    assert record["status"] == "ACTIVE" and record.get("binding:profile") == {"a": [1]} and "status" in record
    assert record.get("absent") is None and "absent" not in record
    assert (record or {}) is record
    record["status"] = "DOWN"  # a write makes it whole first
    assert record == {**port, "status": "DOWN"}


def test_the_log_file_scrubs_credentials_in_any_text() -> None:
    from kuryr_cleanup.console import scrub_text

    line = ('REQ: curl -g -i -X POST http://x/v3/auth/tokens -H "X-Auth-Token: gAAAAABsecret" -d '
            '\'{"auth": {"identity": {"password": {"user": {"name": "admin", "password": "sim-password"}}}}}\' '
            "Authorization: Bearer eyJhbGciOi token=abc&x=1")
    clean = scrub_text(line)
    for secret in ("gAAAAABsecret", "sim-password", "eyJhbGciOi", "abc&"):
        assert secret not in clean
    assert "admin" in clean


def test_progress_bars_fit_80_columns_with_the_elapsed_time() -> None:
    steps = [StepInfo("B12", "Namespace networks: ports, router interfaces, networks"),
             StepInfo("B3", "Octavia load balancers and their floating IPs")]
    items = [PlanItem("B12", "port", f"p{n}", "", "delete", "") for n in range(2104)]
    items += [PlanItem("B3", "load balancer", f"lb{n}", "", "cascade-delete", "") for n in range(210)]
    stream = io.StringIO()
    progress = Progress(Plan("infra", steps, items), json_output=False, stream=stream, width=80, tty=True)
    for item in items[:1000]:
        progress(item.with_state(DONE))
    progress.close()
    shown = [line for line in re.split(r"[\r\n]|\x1b\[[0-9;]*[A-Za-z]", stream.getvalue()) if "%|" in line]
    assert shown
    for line in shown:
        assert len(line) <= 80, line
        bar = line.split("|")[1]
        assert len(bar) >= 10, line  # a bar, not one character
        assert re.search(r"\[\d\d:\d\d\]$", line.rstrip()), line  # elapsed time
    assert any(line.startswith("B12  Namespace networks") for line in shown)
    time.sleep(0)  # no waiting: the bars are drawn synchronously
