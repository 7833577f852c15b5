"""R: reboot every node once after the switch, through Nova (default) or SSH, and wait for each.

A node counts as rebooted when its `status.nodeInfo.bootID` differs from the one recorded before its
reboot was requested and it is Ready again. The boot IDs and every request are in the run state
(saved before the request is sent), so an interrupted reboot resumes with the nodes not yet rebooted
and never reboots a node twice: a node whose request was sent is only waited for; one whose request
may or may not have left is asked again only if it still shows no sign of rebooting (Ready, same
boot ID, and for Nova a server ACTIVE with no task).

`reboot --node NAME` reboots chosen nodes again (a node whose pods are in error after the switch), even
after the migration finished, with the same methods, strategies and safety; it keeps its own boot IDs
and requests (`AGAIN_KEY`), so the migration's record of its reboots stays what it was, and an
interrupted `reboot --node` run again with the same nodes resumes rather than rebooting twice.

Strategies: `rolling` keeps etcd's quorum and the API up to watch progress (control plane one at a
time, then workers `--max-unavailable` at a time); `all` reboots every node at once, as the vendor
procedure does, which is the shortest outage since pod networking is down until a node has rebooted.
"""

from __future__ import annotations

import math
import shlex
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from kuryr_cleanup import kube as k
from kuryr_cleanup.migration import facts
from kuryr_cleanup.migration.base import (
    BadSetting,
    MigrationContext,
    MigrationOptions,
    MigrationStopped,
    ProgressLine,
    item,
    wait_until,
)
from kuryr_cleanup.openstack_api import raw
from kuryr_cleanup.plan import PlanItem
from kuryr_cleanup.retrying import call, describe, http_status

STATE_KEY = "reboot"  # the migration's reboots (A7): boot IDs from before the switch
AGAIN_KEY = "reboot_again"  # `reboot --node`: the chosen nodes and their boot IDs from before
SSH_DEFAULT_OPTIONS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=15")
REBOOT_COMMAND = ("sudo", "shutdown", "-r", "-t", "3")
# A rolling reboot expected to keep pod networking down longer than this (seconds) gets a note on how
# to shorten it: a batch this wide at least, or every node at once.
LONG_OUTAGE = 3600.0
WIDER_BATCH = 10
# A batch of at most this many nodes is watched by reading each node (else by listing them all).
NODES_READ_BY_NAME = 20
NO_SERVER = "has no Nova server"
NAMES_SHOWN = 5  # nodes named in the one line that refuses Nova reboots (then "and N more")


def server_matches(mctx: MigrationContext,
                   nodes: list[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Node name -> Nova server, by `spec.providerID` (`openstack:///<id>`), else by name `<infraID>-...`;
    and node name -> why no server could be chosen (none found, or several with its name: never guess)."""
    if "servers" not in mctx.cache:
        conn = mctx.ctx.conn
        mctx.cache["servers"] = facts.read(mctx, lambda: [raw(s) for s in conn.compute.servers()])
    servers: list[dict[str, Any]] = mctx.cache["servers"]
    by_id = {s["id"]: s for s in servers}
    prefix = f"{mctx.ctx.infra_id}-"
    by_name: dict[str, list[dict[str, Any]]] = {}
    for server in servers:
        if str(server.get("name") or "").startswith(prefix):
            by_name.setdefault(str(server["name"]), []).append(server)
    found: dict[str, dict[str, Any]] = {}
    unmatched: dict[str, str] = {}
    for node in nodes:
        name = facts.node_name(node)
        server_id = facts.server_id_of(node)
        by_provider = by_id.get(server_id) if server_id else None
        if by_provider is not None:
            found[name] = by_provider
            continue
        named = by_name.get(name) or []
        if len(named) == 1:
            found[name] = named[0]
        elif named:
            ids = ", ".join(sorted(s["id"] for s in named))
            unmatched[name] = (f"{len(named)} Nova servers are named {name} ({ids}) and its providerID names none "
                               f"of them: which one to reboot is ambiguous")
        else:
            unmatched[name] = f"{NO_SERVER} (providerID or name {prefix}...)"
    return found, unmatched


def without_server(mctx: MigrationContext, unmatched: dict[str, str]) -> str:
    """The nodes that have no Nova server at all, as one line ('' if none). Nova can't reboot them;
    SSH can: the admin's `--method` is what is wrong (a usage error), not the cluster. (A node with
    several servers of its name is the cloud's ambiguity: a preflight refusal.)"""
    names = sorted(name for name, why in unmatched.items() if why.startswith(NO_SERVER))
    if not names:
        return ""
    shown = ", ".join(names[:NAMES_SHOWN]) + (f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN
                                              else "")
    which = f"node {shown} has" if len(names) == 1 else f"{len(names)} nodes ({shown}) have"
    return (f"{which} no Nova server (providerID or name {mctx.ctx.infra_id}-...) to reboot through: "
            f"use --method ssh")


def match_servers(mctx: MigrationContext, nodes: list[dict[str, Any]],
                  strict: bool = True) -> dict[str, dict[str, Any]]:
    """Node name -> Nova server (see `server_matches`).

    With `strict`, a node without exactly one server is an error naming it (Nova can't reboot what it
    can't find, and must not reboot a server it guessed).
    """
    found, unmatched = server_matches(mctx, nodes)
    if unmatched and strict:
        raise MigrationStopped("; ".join(f"node {n}: {why}" for n, why in sorted(unmatched.items()))
                               + ": use --method ssh")
    return found


@dataclass(frozen=True)
class NodeProgress:
    name: str
    control_plane: bool
    rebooted: bool
    ready: bool


def _state(mctx: MigrationContext, key: str = STATE_KEY) -> dict[str, Any]:
    data = mctx.ctx.state.get(key) or {}
    return {"boot_ids": dict(data.get("boot_ids") or {}), "requests": dict(data.get("requests") or {}),
            **{k: v for k, v in data.items() if k not in ("boot_ids", "requests")}}


def _save(mctx: MigrationContext, data: dict[str, Any], key: str = STATE_KEY) -> None:
    mctx.ctx.state.set(key, data)
    mctx.ctx.state.save()


def _chosen(nodes: list[dict[str, Any]], only: frozenset[str] | None) -> list[dict[str, Any]]:
    return nodes if only is None else [n for n in nodes if facts.node_name(n) in only]


def record_boot_ids(mctx: MigrationContext, nodes: list[dict[str, Any]] | None = None,
                    key: str = STATE_KEY) -> dict[str, str]:
    """Remember each node's boot ID from before its reboot; never overwrite one recorded."""
    data = _state(mctx, key)
    changed = False
    for node in nodes if nodes is not None else facts.nodes(mctx):
        name = facts.node_name(node)
        if name not in data["boot_ids"]:
            data["boot_ids"][name] = facts.boot_id(node)
            changed = True
    if changed:
        _save(mctx, data, key)
    return dict(data["boot_ids"])


def progress(mctx: MigrationContext, nodes: list[dict[str, Any]] | None = None, key: str = STATE_KEY,
             only: frozenset[str] | None = None) -> list[NodeProgress]:
    data = _state(mctx, key)
    result = []
    for node in _chosen(nodes if nodes is not None else facts.nodes(mctx), only):
        name = facts.node_name(node)
        before = data["boot_ids"].get(name)
        ready = facts.node_ready(node)
        rebooted = before is not None and facts.boot_id(node) != before and ready
        result.append(NodeProgress(name, facts.is_control_plane(node), rebooted, ready))
    return result


# -- rebooting chosen nodes again (`reboot --node`) --------------------------------------------------
def resumes_again(mctx: MigrationContext, names: frozenset[str]) -> bool:
    """An earlier `reboot --node` of exactly these nodes was interrupted: go on with it."""
    data = mctx.ctx.state.get(AGAIN_KEY) or {}
    return set(data.get("nodes") or []) == set(names) and not data.get("finished_at")


def start_again(mctx: MigrationContext, names: frozenset[str]) -> None:
    """Start rebooting the chosen nodes again, unless an interrupted run of the same choice resumes.

    A finished earlier choice, or another one, is replaced (it is in the journal): the admin asks for
    a reboot now, and every chosen node gets exactly one.
    """
    if resumes_again(mctx, names):
        return
    previous = mctx.ctx.state.get(AGAIN_KEY)
    if previous:
        mctx.ctx.journal.write("reboot-again-replaced", step="R", previous=previous)
    _save(mctx, {"nodes": sorted(names), "boot_ids": {}, "requests": {}}, AGAIN_KEY)


def batches(mctx: MigrationContext, nodes: list[dict[str, Any]]) -> list[list[str]]:
    names_cp = [facts.node_name(n) for n in nodes if facts.is_control_plane(n)]
    names_w = [facts.node_name(n) for n in nodes if not facts.is_control_plane(n)]
    if mctx.options.strategy == "all":
        return [names_cp + names_w] if nodes else []
    size = max(1, mctx.options.max_unavailable)
    return [[n] for n in names_cp] + [names_w[i:i + size] for i in range(0, len(names_w), size)]


def expected_outage(mctx: MigrationContext, node_count_batches: int) -> float:
    return node_count_batches * mctx.options.reboot_estimate


def method_words(mctx: MigrationContext) -> str:
    opts = mctx.options
    if opts.method == "ssh":
        return f"ssh {opts.ssh_user}@<InternalIP> {' '.join(REBOOT_COMMAND)}"
    return f"Nova {'HARD' if opts.hard else 'SOFT'} reboot"


def plan(mctx: MigrationContext, step: str = "A7", key: str = STATE_KEY, only: frozenset[str] | None = None,
         fresh: bool = False) -> tuple[list[PlanItem], list[str]]:
    """The reboots still to do, in the order they will happen, and notes with the expected outage.

    `only`: just these nodes (`reboot --node`); `fresh`: none of them counts as rebooted yet (a new
    choice, whatever an earlier one recorded)."""
    nodes = _chosen(facts.nodes(mctx), only)
    done = set() if fresh else {p.name for p in progress(mctx, nodes, key) if p.rebooted}
    servers: dict[str, dict[str, Any]] = {}
    if mctx.options.method == "nova":
        servers, unmatched = server_matches(mctx, nodes)
        missing = without_server(mctx, {n: why for n, why in unmatched.items() if n not in done})
        if missing:
            raise BadSetting([missing])
    by_name = {facts.node_name(n): n for n in nodes}
    items = []
    todo_batches = [[n for n in b if n not in done] for b in batches(mctx, nodes)]
    todo_batches = [b for b in todo_batches if b]
    for number, batch in enumerate(todo_batches, 1):
        for name in batch:
            node = by_name[name]
            if mctx.options.method == "nova":
                server = servers.get(name)
                ident = server["id"] if server else "(no Nova server found)"
                evidence = ("providerID " + str(node["spec"].get("providerID")) if server and
                            facts.server_id_of(node) == server["id"] else f"server name {name}")
            else:
                ident = facts.internal_ip(node) or "(no InternalIP)"
                evidence = "InternalIP"
            items.append(item(step, "node", ident, "reboot", evidence, name=name,
                              reason=f"batch {number}/{len(todo_batches)}", batch=number,
                              method=mctx.options.method))
    notes = []
    if items:
        expected = expected_outage(mctx, len(todo_batches))
        notes.append(f"{step}: {len(items)} node(s) to reboot by {method_words(mctx)}, strategy "
                     f"{mctx.options.strategy} in {len(todo_batches)} batch(es); expected outage about "
                     f"{_duration(expected)} ({_duration(mctx.options.reboot_estimate)} per batch)")
        workers = [n for n in by_name if not facts.is_control_plane(by_name[n]) and n not in done]
        if mctx.options.strategy == "rolling" and expected > LONG_OUTAGE and len(workers) > 1:
            # Pod networking is down on every node from the switch until its reboot: rebooting 150
            # workers one at a time keeps most of them down for hours.
            wider = min(len(workers), max(mctx.options.max_unavailable * 2, WIDER_BATCH))
            cp_batches = len(todo_batches) - math.ceil(len(workers) / mctx.options.max_unavailable)
            faster = expected_outage(mctx, cp_batches + math.ceil(len(workers) / wider))
            notes.append(f"{step}: pod networking stays down on each node until its reboot: with --max-unavailable "
                         f"{wider} the workers would take about {_duration(faster)} in all, with --strategy all "
                         f"(the API down too) about {_duration(mctx.options.reboot_estimate)}")
    if done:
        since = "since the switch" if key == STATE_KEY else "in this reboot --node run"
        notes.append(f"{step}: {len(done)} node(s) already rebooted {since}: {', '.join(sorted(done))}")
    return items, notes


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"


# -- sending the reboot ------------------------------------------------------------------------------
def _server_shows_reboot(mctx: MigrationContext, server_id: str) -> bool:
    conn = mctx.ctx.conn
    server = raw(facts.read(mctx, lambda: conn.compute.get_server(server_id)))
    return bool(server.get("OS-EXT-STS:task_state")) or server.get("status") in ("REBOOT", "HARD_REBOOT")


def _send_nova(mctx: MigrationContext, name: str, server_id: str) -> None:
    conn = mctx.ctx.conn
    kind = "HARD" if mctx.options.hard else "SOFT"
    try:
        call(mctx.ctx.options.retry, lambda: conn.compute.reboot_server(server_id, kind), retry_conflicts=False)
    except Exception as exc:
        # 409: Nova is already rebooting it (our earlier request did reach it): that is what we wanted.
        if http_status(exc) == 409 and _server_shows_reboot(mctx, server_id):
            return
        raise MigrationStopped(f"Nova refused to reboot node {name} (server {server_id}): {describe(exc)}") from exc


def ssh_argv(options: MigrationOptions, ip: str) -> list[str]:
    """`ssh [options] core@<InternalIP> sudo shutdown -r -t 3`, as the vendor's procedure reboots a node."""
    argv: list[str] = ["ssh", *SSH_DEFAULT_OPTIONS]
    for option in options.ssh_options:
        argv.extend(shlex.split(option))
    return [*argv, f"{options.ssh_user}@{ip}", *REBOOT_COMMAND]


def _send_ssh(mctx: MigrationContext, name: str, ip: str | None) -> None:
    if not ip:
        raise MigrationStopped(f"node {name} has no InternalIP to reach it over SSH")
    argv = ssh_argv(mctx.options, ip)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError as exc:
        raise MigrationStopped("the ssh command is not installed (use --method nova)") from exc
    except subprocess.TimeoutExpired as exc:
        raise MigrationStopped(f"ssh to node {name} ({ip}) did not finish in 120 s") from exc
    if done.returncode != 0:
        err = " ".join((done.stderr or "").split())[-300:]
        raise MigrationStopped(f"ssh to node {name} ({ip}) failed with exit {done.returncode}: {err}")


def _request(mctx: MigrationContext, node: dict[str, Any], server: dict[str, Any] | None, data: dict[str, Any],
             step: str, key: str) -> None:
    """Save the request (state, journal) before sending it; mark it sent once the API accepted it."""
    name = facts.node_name(node)
    entry = {"at": time.time(), "method": mctx.options.method, "sent": False,
             "server_id": server["id"] if server else None, "boot_id": data["boot_ids"].get(name)}
    data["requests"][name] = entry
    data.setdefault("started_at", entry["at"])
    _save(mctx, data, key)
    mctx.ctx.journal.write("reboot-request", step=step, node=name, method=mctx.options.method,
                           server_id=entry["server_id"], boot_id=entry["boot_id"], hard=mctx.options.hard,
                           object=node)
    if mctx.options.method == "nova":
        assert server is not None
        _send_nova(mctx, name, server["id"])
    else:
        _send_ssh(mctx, name, facts.internal_ip(node))
    entry["sent"] = True
    _save(mctx, data, key)
    mctx.ctx.journal.write("reboot-sent", step=step, node=name)


def _needs_request(mctx: MigrationContext, node: dict[str, Any], server: dict[str, Any] | None,
                   data: dict[str, Any]) -> bool:
    name = facts.node_name(node)
    request = data["requests"].get(name)
    if not request:
        return True
    if request.get("sent"):
        return False
    # Interrupted between saving the request and hearing back: ask again only without any sign of a reboot.
    if facts.boot_id(node) != data["boot_ids"].get(name) or not facts.node_ready(node):
        return False
    return not (server is not None and _server_shows_reboot(mctx, server["id"]))


def _wait_for_the_other_control_plane_nodes(mctx: MigrationContext, step: str, batch: list[str],
                                            control_plane: set[str], say: ProgressLine) -> None:
    """Rolling: reboot a control-plane node only while every other one is Ready, so etcd keeps quorum.

    A control-plane node may be down for a reason of its own (a reboot by hand, the MCO, a crash):
    wait for it within the reboot timeout, then stop naming it rather than take a second member down.
    """
    if mctx.options.strategy == "all":
        return  # the admin chose the outage: every node at once
    in_batch = set(batch)
    if not in_batch & control_plane:
        return  # workers: the control plane is not touched
    down: list[str] = []

    def others_ready() -> bool:
        nodes = facts.nodes(mctx)
        if not any(facts.is_control_plane(n) and facts.node_name(n) in in_batch for n in nodes):
            down.clear()
            return True
        down[:] = [facts.node_name(n) for n in nodes if facts.is_control_plane(n)
                   and facts.node_name(n) not in in_batch and not facts.node_ready(n)]
        if down:
            say(f"waiting for control-plane node(s) {', '.join(down)} to be Ready before rebooting "
                f"{', '.join(batch)} (etcd quorum)")
        return not down

    if not wait_until(mctx, mctx.options.reboot_timeout, others_ready, say):
        raise MigrationStopped(
            f"{step}: control-plane node(s) {', '.join(down)} not Ready within {mctx.options.reboot_timeout:.0f} s: "
            f"rebooting {', '.join(batch)} now could lose etcd quorum, so it was not rebooted; bring "
            f"{', '.join(down)} back (console, Nova), then run the same command again")


def _batch_nodes(mctx: MigrationContext, names: list[str]) -> dict[str, dict[str, Any]]:
    """The batch's Node objects (a node removed from the cluster is absent).

    A small batch is read node by node: a rolling reboot of 150 workers one at a time that listed every
    node at every poll read the cluster's largest objects n² times over, and took minutes of it.
    """
    if len(names) > NODES_READ_BY_NAME:
        wanted = set(names)
        return {facts.node_name(n): n for n in facts.nodes(mctx) if facts.node_name(n) in wanted}
    found = {}
    for name in names:
        node = facts.get(mctx, k.NODE, name)
        if node is not None:
            found[name] = node
    return found


@dataclass
class RebootResult:
    rebooted: list[str]
    requested_now: list[str]
    expected_seconds: float
    actual_seconds: float | None


def run(mctx: MigrationContext, step: str = "A7", key: str = STATE_KEY,
        only: frozenset[str] | None = None) -> RebootResult:
    """Reboot every node not yet rebooted since the switch (or the chosen ones, `only`, not yet rebooted
    in this `reboot --node` run), batch by batch; raise naming stuck nodes."""
    say = ProgressLine(mctx.say, step)
    nodes = _chosen(facts.nodes(mctx), only)
    record_boot_ids(mctx, nodes, key)
    servers = match_servers(mctx, nodes, strict=True) if mctx.options.method == "nova" else {}
    all_batches = batches(mctx, nodes)
    done_before = {p.name for p in progress(mctx, nodes, key) if p.rebooted}
    todo = [[n for n in b if n not in done_before] for b in all_batches]
    todo = [b for b in todo if b]
    data = _state(mctx, key)
    if todo and "expected_seconds" not in data:
        data["expected_seconds"] = expected_outage(mctx, len(todo))
        _save(mctx, data, key)
    requested_now: list[str] = []
    total = len(nodes)
    control_plane = {facts.node_name(n) for n in nodes if facts.is_control_plane(n)}
    rebooted_before = set(done_before)
    for batch in todo:
        _wait_for_the_other_control_plane_nodes(mctx, step, batch, control_plane, say)
        current = _batch_nodes(mctx, batch)
        data = _state(mctx, key)
        for name in batch:
            node = current.get(name)
            if node is None:
                continue  # the node was removed from the cluster meanwhile: nothing to reboot
            server = servers.get(name)
            if _needs_request(mctx, node, server, data):
                mctx.say(f"{step:<4} rebooting {name} ({method_words(mctx)})")
                _request(mctx, node, server, data, step, key)
                requested_now.append(name)

        last: dict[str, NodeProgress] = {}

        def batch_done(batch: list[str] = batch, last: dict[str, NodeProgress] = last,
                       before: set[str] = rebooted_before) -> bool:
            state = {p.name: p for p in progress(mctx, list(_batch_nodes(mctx, batch).values()), key)}
            last.clear()
            last.update(state)
            rebooted = len(before | {p.name for p in state.values() if p.rebooted})
            waiting = [n for n in batch if n in state and not state[n].rebooted]
            detail = ", ".join(f"{n} {'Ready, old boot' if state[n].ready else 'NotReady'}" for n in waiting)
            say(f"nodes rebooted {rebooted}/{total}" + (f"; waiting for {detail}" if waiting else ""))
            return not waiting

        if not wait_until(mctx, mctx.options.reboot_timeout, batch_done, say):
            stuck = [n for n in batch if (n in last and not last[n].rebooted) or not last]  # empty: API down
            lines = []
            for name in stuck:
                if name not in last:
                    state = "unknown: the cluster API was unreachable"
                else:
                    state = "NotReady" if not last[name].ready else "Ready but still on its old boot ID"
                lines.append(f"node {name} did not come back from its reboot within "
                             f"{mctx.options.reboot_timeout:.0f} s ({state})")
            log = [line for name in stuck for line in facts.daemon_log_tail(mctx, name, 10)]
            raise MigrationStopped("; ".join(lines) + ("\n  " + "\n  ".join(log) if log else "") +
                                   "\n  fix the node (console, Nova), then run the same command again: nodes "
                                   "already rebooted are not rebooted again")
        rebooted_before.update(n for n, p in last.items() if p.rebooted)
    data = _state(mctx, key)
    if todo or "finished_at" not in data:
        data["finished_at"] = time.time()
        _save(mctx, data, key)
    actual = data["finished_at"] - data["started_at"] if "started_at" in data else None
    result = RebootResult([p.name for p in progress(mctx, key=key, only=only) if p.rebooted], requested_now,
                          float(data.get("expected_seconds") or 0.0), actual)
    if actual is not None:
        mctx.say(f"{step:<4} all {total} node(s) rebooted; outage expected about "
                 f"{_duration(result.expected_seconds)}, took {_duration(actual)}")
    return result
