"""The migration steps A0-A9 (SPEC A), registered in order in `STEPS`.

Each check reads the cluster (never the run's memory alone), so a step done by hand, by an earlier
run or by another tool is seen as done; each apply writes only what the check found missing,
journaling the full object first (S4).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kuryr_cleanup import kube as k
from kuryr_cleanup.migration import facts, reboot, settings, verify
from kuryr_cleanup.migration.base import (
    KURYR,
    OVN,
    MigrationContext,
    MigrationStep,
    MigrationStopped,
    ProgressLine,
    StepCheck,
    duration,
    item,
    wait_until,
)
from kuryr_cleanup.openstack_api import octavia_version, raw
from kuryr_cleanup.retrying import call, describe, http_status

BACKUP_FILE = "cluster-kuryr.yaml"
NETWORK_OPERATOR_REF = "Network.operator.openshift.io"
NETWORK_CONFIG_REF = "Network.config.openshift.io"
# A4 repeats its progress line at least this often (seconds) while no pool moves.
MCO_PROGRESS_HEARTBEAT = 300.0
# Above this many nodes the vendor asks for a support case before an offline migration.
SUPPORT_CASE_NODES = 150
GENEVE_RULE_DESCRIPTION = "Geneve between nodes (OVN-Kubernetes), added by kuryr-migrate"


def _patch(mctx: MigrationContext, step: str, kind: k.Kind, ref: str, patch: dict[str, Any]) -> dict[str, Any]:
    """Journal the object as it is, merge-patch it, journal the result (S4)."""
    before = facts.get(mctx, kind, "cluster")
    mctx.ctx.journal.write("change", step=step, kind=ref, name="cluster", action="merge-patch", patch=patch,
                           object=before)
    try:
        after = call(mctx.ctx.options.retry, lambda: mctx.cluster.patch(kind, "cluster", None, patch))
    except Exception as exc:
        mctx.ctx.journal.write("change-failed", step=step, kind=ref, name="cluster", error=describe(exc))
        raise MigrationStopped(f"{step}: patching {ref}/cluster failed: {describe(exc)}") from exc
    mctx.ctx.journal.write("changed", step=step, kind=ref, name="cluster",
                           resourceVersion=(after.get("metadata") or {}).get("resourceVersion"))
    mctx.say(f"{step:<4} patched {ref}/cluster: {_compact(patch)}")
    return after


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# -- A0 preflight ------------------------------------------------------------------------------------
def _kuryr_leftovers_exist(mctx: MigrationContext) -> bool:
    return bool(facts.read(mctx, lambda: next(iter(mctx.cluster.list(k.KURYR_NETWORK, limit=1)), None)))


def _network_type_problems(mctx: MigrationContext, state: facts.NetworkState) -> list[str]:
    target = state.migration_target
    if state.migration is not None and target != OVN:
        return [f"{NETWORK_OPERATOR_REF}/cluster spec.migration is {_compact(state.migration)}: another migration "
                f"is under way (expected null or networkType {OVN})"]
    if state.finished:
        # Already migrated: fine for finishing an earlier run (its cleanup), not for a cluster that never ran Kuryr.
        if mctx.step_state().get("finished") or _kuryr_leftovers_exist(mctx):
            return []
        return [f"the cluster is on {OVN} and has no Kuryr leftovers: there is nothing to migrate"]
    if state.status_type == KURYR or state.started:
        return []
    return [f"the cluster's network type is {state.status_type or 'unknown'}: it is neither on {KURYR} nor in a "
            f"migration to {OVN}"]


def _health_problems(mctx: MigrationContext) -> list[str]:
    problems = list(facts.unhealthy_operators(mctx))
    for pool in facts.pools(mctx):
        if not pool.settled:
            why = "Degraded" + (f": {pool.message}" if pool.message else "") if pool.degraded else \
                f"not Updated ({pool.updated_machines}/{pool.machines} machines updated)"
            problems.append(f"MachineConfigPool {pool.name} is {why}")
    for node in facts.nodes(mctx):
        if not facts.node_ready(node):
            problems.append(f"node {facts.node_name(node)} is not Ready")
    return problems


def _rollout_blockers(mctx: MigrationContext) -> list[str]:
    """What would keep the machine config rollout (A4) from ever finishing, found before the first write."""
    problems = []
    for pool in facts.pools(mctx):
        if pool.paused:
            problems.append(f"MachineConfigPool {pool.name} is paused (spec.paused: true): the MCO would roll the new "
                            f"machine configs out to none of its {pool.machines} node(s) and A4 would wait forever; "
                            f"unpause it first: oc patch mcp {pool.name} --type merge -p "
                            f"'{{\"spec\":{{\"paused\":false}}}}'")
    version = facts.cluster_version(mctx)
    if facts.conditions(version).get("Progressing") == "True":
        message = facts.condition_message(version or {}, "Progressing")
        problems.append("a cluster upgrade is in progress (ClusterVersion version Progressing=True"
                        + (f": {message}" if message else "") + "): let it finish before migrating")
    return problems


def _size_notes(mctx: MigrationContext) -> list[str]:
    count = len(facts.nodes(mctx))
    if count <= SUPPORT_CASE_NODES:
        return []
    return [f"A0: the cluster has {count} nodes: for more than {SUPPORT_CASE_NODES} the vendor asks for a support "
            f"case before the migration (see the runbook)"]


def _cloud_problems(mctx: MigrationContext) -> tuple[list[str], list[str]]:
    conn = mctx.ctx.conn
    problems: list[str] = []
    notes: list[str] = []
    aliases = {e["alias"] for e in facts.read(mctx, lambda: [raw(e) for e in conn.network.extensions()])}
    if "standard-attr-tag" not in aliases and "tag" not in aliases:
        problems.append("Neutron has no tag extension: the ownership of Kuryr's resources cannot be proven")
    major, minor = octavia_version(conn, mctx.ctx.options.retry)
    if (major, minor) < (2, 5):
        notes.append(f"Octavia API {major}.{minor} has no tags (2.5 added them): the cleanup will match load "
                     f"balancers by the cluster tag in their description")
    return problems, notes


def _reboot_problems(mctx: MigrationContext) -> tuple[list[str], list[str]]:
    """What stops the reboots, by whose fault it is: nodes without a Nova server are the admin's
    `--method nova` (bad values: exit 2 before any plan); a node with several servers of its name, or
    without an address for SSH, is the cluster's (preflight)."""
    nodes = facts.nodes(mctx)
    if mctx.options.method == "nova":
        _, unmatched = reboot.server_matches(mctx, nodes)
        missing = reboot.without_server(mctx, unmatched)
        return [missing] if missing else [], [f"node {name}: {why}: use --method ssh" for name, why in
                                              sorted(unmatched.items()) if not why.startswith(reboot.NO_SERVER)]
    return [], [f"node {facts.node_name(n)} has no InternalIP to reach over SSH" for n in nodes
                if not facts.internal_ip(n)]


def _rule_covers(rule: dict[str, Any], port: int, source_group: str, source_ips: list[str]) -> bool:
    if rule.get("direction") != "ingress" or rule.get("ethertype", "IPv4") != "IPv4":
        return False
    if rule.get("protocol") not in (None, "udp", "17"):
        return False
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    if low is not None and not int(low) <= port <= int(high if high is not None else low):
        return False
    if rule.get("remote_group_id"):
        return bool(rule["remote_group_id"] == source_group)
    prefix = rule.get("remote_ip_prefix")
    if not prefix:
        return True
    net = ipaddress.ip_network(prefix, strict=False)
    return all(ipaddress.ip_address(ip) in net for ip in source_ips)


def geneve_rule_items(mctx: MigrationContext) -> tuple[list[Any], list[str]]:
    """Missing UDP Geneve rules between the node security groups (`<infraID>-master`/`-worker`)."""
    conn = mctx.ctx.conn
    infra = mctx.ctx.infra_id
    port = settings.geneve_port(mctx)
    groups: dict[str, dict[str, Any]] = {}
    notes = []
    for role in ("master", "worker"):
        name = f"{infra}-{role}"
        found = facts.read(mctx, lambda n=name: [raw(g) for g in conn.network.security_groups(name=n)])
        if not found:
            notes.append(f"A0: security group {name} not found: the Geneve rule (UDP {port}) between nodes is not "
                         f"checked; make sure the nodes' groups allow it")
            continue
        groups[role] = found[0]
    ips: dict[str, list[str]] = {"master": [], "worker": []}
    for node in facts.nodes(mctx):
        ip = facts.internal_ip(node)
        if ip:
            ips["master" if facts.is_control_plane(node) else "worker"].append(ip)
    items = []
    for group in groups.values():
        rules = group.get("security_group_rules") or facts.read(
            mctx, lambda g=group["id"]: [raw(r) for r in conn.network.security_group_rules(security_group_id=g)])
        for source_role, source in groups.items():
            if any(_rule_covers(r, port, source["id"], ips[source_role]) for r in rules):
                continue
            items.append(item("A0", "security group rule", group["id"], "add rule",
                              f"node security group {group['name']}",
                              name=f"{group['name']}: ingress UDP {port} from {source['name']}",
                              security_group_id=group["id"], remote_group_id=source["id"], port=port))
    return items, notes


def check_preflight(mctx: MigrationContext) -> StepCheck:
    state = facts.network_state(mctx)
    problems = _network_type_problems(mctx, state)
    notes: list[str] = []
    bad_values: list[str] = []
    if not problems and not state.started and state.status_type == KURYR:
        # Health matters before the first change; once started, pools update and nodes reboot on purpose,
        # and the waits (A4, A6, A7, A8) judge them.
        problems += _health_problems(mctx)
    cloud_problems, cloud_notes = _cloud_problems(mctx)
    problems += cloud_problems
    notes += cloud_notes
    if not state.switched:
        problems += _rollout_blockers(mctx)
        found = settings.validate(mctx, state)
        problems += found.cluster
        bad_values += found.given
        notes += _size_notes(mctx)
    if not state.finished:
        backup = backup_problem(mctx)
        # A file the admin named with --backup-file is their value; a stray one in the run directory is not.
        (bad_values if mctx.options.backup_file else problems).extend([backup] if backup else [])
    if not state.finished:
        given, cluster = _reboot_problems(mctx)
        bad_values += given
        problems += cluster
    items, rule_notes = geneve_rule_items(mctx) if not state.finished else ([], [])
    notes += rule_notes
    summary = f"cluster {state.phase}" + (f"; {len(items)} Geneve rule(s) to add" if items else "")
    return StepCheck(done=not items, items=tuple(items), notes=tuple(notes), summary=summary,
                     problems=tuple(problems), bad_values=tuple(bad_values))


def apply_preflight(mctx: MigrationContext, check: StepCheck) -> None:
    conn = mctx.ctx.conn
    for planned in check.items:
        params = planned.params
        group = raw(facts.read(mctx, lambda g=params["security_group_id"]: conn.network.get_security_group(g)))
        mctx.ctx.journal.write("change", step="A0", kind="security group", id=group["id"], action="add rule",
                               object=group, rule=params)
        try:
            create = functools.partial(
                conn.network.create_security_group_rule, security_group_id=params["security_group_id"],
                direction="ingress", ether_type="IPv4", protocol="udp", port_range_min=params["port"],
                port_range_max=params["port"], remote_group_id=params["remote_group_id"],
                description=GENEVE_RULE_DESCRIPTION)
            rule = call(mctx.ctx.options.retry, create, retry_conflicts=False)
        except Exception as exc:
            if http_status(exc) == 409:  # SecurityGroupRuleExists: someone added it meanwhile
                continue
            raise MigrationStopped(f"A0: adding the Geneve rule to {planned.name} failed: {describe(exc)}") from exc
        mctx.ctx.journal.write("changed", step="A0", kind="security group rule", id=raw(rule).get("id"))
        mctx.say(f"A0   added security group rule {planned.name}")


# -- A1 backup -----------------------------------------------------------------------------------------
def backup_path(mctx: MigrationContext) -> Path:
    return Path(mctx.options.backup_file) if mctx.options.backup_file else mctx.ctx.run_dir / BACKUP_FILE


def backup_problem(mctx: MigrationContext) -> str | None:
    """An existing backup file counts only if it is this cluster's Network.config (it is never overwritten,
    so a stray or foreign file must stop the run instead of standing in for the backup)."""
    path = backup_path(mctx)
    if not path.exists():
        return None
    try:
        saved = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return f"A1: the backup file {path} exists but cannot be read as YAML ({type(exc).__name__}): move it away"
    meta = (saved.get("metadata") or {}) if isinstance(saved, dict) else {}
    if not isinstance(saved, dict) or saved.get("kind") != "Network" or \
            not str(saved.get("apiVersion") or "").startswith("config.openshift.io/") or meta.get("name") != "cluster":
        return f"A1: the backup file {path} exists but is not a {NETWORK_CONFIG_REF}/cluster: move it away"
    current = facts.get(mctx, k.NETWORK_CONFIG, "cluster") or {}
    uid = (current.get("metadata") or {}).get("uid")
    if uid and meta.get("uid") != uid:
        return (f"A1: the backup file {path} is the {NETWORK_CONFIG_REF}/cluster of another cluster (uid "
                f"{meta.get('uid') or 'missing'}, this cluster's is {uid}): move it away or choose --backup-file")
    return None


def check_backup(mctx: MigrationContext) -> StepCheck:
    path = backup_path(mctx)
    if path.exists():
        problem = backup_problem(mctx)
        if problem:
            raise MigrationStopped(problem)
        return StepCheck(True, summary=f"backup {path} exists (this cluster's; never overwritten)")
    state = facts.network_state(mctx)
    if state.finished:
        return StepCheck(True, summary="the migration is complete: there is no Kuryr configuration to back up")
    notes = () if not state.started else (
        f"A1: the migration is already under way; the backup will show Network.config as it is now ({state.phase})",)
    return StepCheck(False, (item("A1", "file", str(path), "write", f"{NETWORK_CONFIG_REF}/cluster as YAML",
                                  name=str(path)),), notes, summary=f"write {path}")


def apply_backup(mctx: MigrationContext, check: StepCheck) -> None:
    path = backup_path(mctx)
    config = facts.get(mctx, k.NETWORK_CONFIG, "cluster")
    if config is None:
        raise MigrationStopped(f"A1: {NETWORK_CONFIG_REF}/cluster does not exist")
    config = dict(config)
    config["metadata"] = {key: v for key, v in (config.get("metadata") or {}).items() if key != "managedFields"}
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x", encoding="utf-8") as fh:  # "x": an existing backup is never overwritten
            yaml.safe_dump(config, fh, sort_keys=False)
            fh.flush()
            os.fsync(fh.fileno())
    except FileExistsError:
        return
    mctx.ctx.journal.write("backup", step="A1", path=str(path))
    mctx.say(f"A1   wrote {path}")


# -- A2 prepare -------------------------------------------------------------------------------------
MIGRATION_PATCH = {"spec": {"migration": {"networkType": OVN}}}


def check_prepare(mctx: MigrationContext) -> StepCheck:
    state = facts.network_state(mctx)
    if state.migration_target == OVN or state.switched:
        return StepCheck(True, summary=f"spec.migration is {_compact(state.migration)}" if state.migration else
                         "the migration is past this step")
    if state.migration is not None:
        raise MigrationStopped(f"A2: {NETWORK_OPERATOR_REF}/cluster spec.migration is {_compact(state.migration)}, "
                               f"not null or networkType {OVN}: refusing to change it")
    return StepCheck(False, (item("A2", NETWORK_OPERATOR_REF, "cluster", "merge-patch", "spec.migration is null",
                                  name=f"spec.migration={_compact(MIGRATION_PATCH['spec']['migration'])}",
                                  merge_patch=MIGRATION_PATCH),),
                     summary="set spec.migration (the MCO then rolls new machine configs to every node)")


def apply_prepare(mctx: MigrationContext, check: StepCheck) -> None:
    _patch(mctx, "A2", k.NETWORK_OPERATOR, NETWORK_OPERATOR_REF, MIGRATION_PATCH)


# -- A3 OVN-Kubernetes settings ------------------------------------------------------------------------
def check_settings(mctx: MigrationContext) -> StepCheck:
    state = facts.network_state(mctx)
    if state.switched:
        return StepCheck(True, summary="the network is switched: settings are fixed")
    wanted = settings.ovn_config_patch(mctx)
    current = ((state.operator.get("spec") or {}).get("defaultNetwork") or {}).get("ovnKubernetesConfig") or {}
    missing = {key: v for key, v in wanted.items() if current.get(key) != v}
    note = settings.expected_mtu_note(mctx)
    notes = (note,) if note else ()
    if not missing:
        return StepCheck(True, notes=notes, summary=f"ovnKubernetesConfig has {_compact(wanted)}" if wanted else
                         "no setting given (OVN-Kubernetes defaults)")
    return StepCheck(False, (item("A3", NETWORK_OPERATOR_REF, "cluster", "merge-patch", "given by the admin",
                                  name=f"spec.defaultNetwork.ovnKubernetesConfig={_compact(missing)}",
                                  patch=missing,
                                  merge_patch={"spec": {"defaultNetwork": {"ovnKubernetesConfig": missing}}}),),
                     notes,
                     summary=f"set ovnKubernetesConfig {_compact(missing)}")


def apply_settings(mctx: MigrationContext, check: StepCheck) -> None:
    patch = dict(check.items[0].params["patch"])
    _patch(mctx, "A3", k.NETWORK_OPERATOR, NETWORK_OPERATOR_REF,
           {"spec": {"defaultNetwork": {"ovnKubernetesConfig": patch}}})


# -- A4 wait for the MCO ------------------------------------------------------------------------------
def _mco_status(mctx: MigrationContext) -> tuple[bool, list[facts.PoolState], list[dict[str, Any]], list[str]]:
    pools = facts.pools(mctx)
    nodes = facts.nodes(mctx)
    waiting: list[str] = []
    for pool in pools:
        if not pool.settled:
            waiting.append(f"pool {pool.name} {pool.updated_machines}/{pool.machines}")
        elif not pool.on_target:
            waiting.append(f"pool {pool.name} reports {pool.reached or 'no config'}, not yet its target {pool.target}")
        elif not facts.rendered_config_has_ovs_line(mctx, pool.target):
            waiting.append(f"pool {pool.name} config {pool.target} lacks configure-ovs.sh {OVN}")
    for node in nodes:
        node_pool = facts.pool_of(node, pools)
        target = node_pool.target if node_pool is not None else None
        if not facts.node_config_done(node, target):
            ann = facts.node_annotations(node)
            waiting.append(f"node {facts.node_name(node)} {ann.get(facts.ANN_STATE, '?')} on "
                           f"{ann.get(facts.ANN_CURRENT) or 'no config'}" + (f" (target {target})" if target else ""))
    return not waiting, pools, nodes, waiting


@dataclass(frozen=True)
class RolloutCeiling:
    """How long A4 may wait at most: the MCO updates every pool at once, each `maxUnavailable` nodes at
    a time, so the rollout takes about as many node updates in a row as its longest pool needs."""

    seconds: float
    per_node: float
    updates: int  # node updates in a row in the slowest pool
    pool: str
    machines: int
    at_a_time: int

    def text(self) -> str:
        return (f"{duration(self.seconds)}: {duration(self.per_node)} per node update x {self.updates} in a row in "
                f"pool {self.pool} ({self.machines} node(s), {self.at_a_time} at a time)")


def rollout_ceiling(mctx: MigrationContext, pools: list[facts.PoolState]) -> RolloutCeiling:
    per_node = mctx.options.mco_timeout
    if not pools:
        return RolloutCeiling(per_node, per_node, 1, "(none)", 0, 1)
    slowest = max(pools, key=lambda p: (math.ceil(max(p.machines, 1) / p.max_unavailable), p.name))
    updates = math.ceil(max(slowest.machines, 1) / slowest.max_unavailable)
    return RolloutCeiling(per_node * updates, per_node, updates, slowest.name, slowest.machines,
                          slowest.max_unavailable)


def check_mco(mctx: MigrationContext) -> StepCheck:
    state = facts.network_state(mctx)
    if state.switched:
        return StepCheck(True, summary="the network is switched: the machine configs were rolled out")
    done, pools, nodes, waiting = _mco_status(mctx) if state.migration_target == OVN else (False, facts.pools(mctx),
                                                                                         [], [])
    if done:
        return StepCheck(True, summary="pools " + ", ".join(p.text() for p in pools) + " updated")
    items = tuple(item("A4", "MachineConfigPool", p.name, "wait", f"{p.machines} machine(s)",
                       reason=f"until Updated with configure-ovs.sh OVNKubernetes ({p.max_unavailable} node(s) at "
                              f"a time)") for p in pools)
    ceiling = rollout_ceiling(mctx, pools).text()
    return StepCheck(False, items, (f"A4: the machine config rollout is waited for at most {ceiling} (--mco-timeout "
                                    f"per node update)",),
                     summary=f"wait for the MCO to update every pool, at most {ceiling}")


def _pool_progress(pools: list[facts.PoolState]) -> str:
    """`worker 37/150 updated, master 3/3`: the largest pool first (the one the wait is about)."""
    ordered = sorted(pools, key=lambda p: (-p.machines, p.name))
    parts = [f"{p.name} {p.updated_machines}/{p.machines}" for p in ordered]
    if parts:
        parts[0] += " updated"
    return ", ".join(parts) or "no MachineConfigPool"


def _being_updated(mctx: MigrationContext, pool: facts.PoolState, nodes: list[dict[str, Any]],
                   pools: list[facts.PoolState]) -> list[str]:
    """The pool's nodes the MCO is on now (desired config not reached, or the daemon not Done)."""
    found = []
    for node in nodes:
        if facts.pool_of(node, pools) is not pool:
            continue
        ann = facts.node_annotations(node)
        if ann.get(facts.ANN_STATE) != "Done" or ann.get(facts.ANN_CURRENT) != ann.get(facts.ANN_DESIRED):
            found.append(f"{facts.node_name(node)} (state {ann.get(facts.ANN_STATE) or 'unknown'}, "
                         f"{ann.get(facts.ANN_CURRENT) or 'no config'} -> {ann.get(facts.ANN_DESIRED) or 'no config'})")
    return found


def _stall(mctx: MigrationContext, pools: list[facts.PoolState], nodes: list[dict[str, Any]]) -> MigrationStopped:
    lines = []
    log: list[str] = []
    for pool in pools:
        if pool.on_target:
            continue
        updating = _being_updated(mctx, pool, nodes, pools)
        if updating:
            lines.append(f"pool {pool.name} {pool.updated_machines}/{pool.machines} updated; node(s) being updated: "
                         + ", ".join(updating))
            for entry in updating[:3]:
                log += facts.daemon_log_tail(mctx, entry.split(" ", 1)[0], 10)
        else:
            lines.append(f"pool {pool.name} {pool.updated_machines}/{pool.machines} updated; the MCO is updating no "
                         f"node of it (oc describe mcp {pool.name})")
    return MigrationStopped(
        f"A4: no MachineConfigPool progressed for {duration(mctx.options.node_timeout)} (--node-timeout):\n  "
        + "\n  ".join(lines) + ("\n  the tail of the machine-config-daemon log:\n  " + "\n  ".join(log) if log else "")
        + "\n  fix it (oc describe mcp, the machine-config-daemon log), then run the same command again")


def apply_mco(mctx: MigrationContext, check: StepCheck) -> None:
    say = ProgressLine(mctx.say, "A4", heartbeat=MCO_PROGRESS_HEARTBEAT)
    not_ready_since: dict[str, float] = {}
    last_waiting: list[str] = []
    started = time.monotonic()
    last_marker: tuple[object, ...] = ()
    moved_at = started
    ceiling = rollout_ceiling(mctx, facts.pools(mctx))

    def probe() -> bool:
        nonlocal last_marker, moved_at
        done, pools, nodes, waiting = _mco_status(mctx)
        last_waiting[:] = waiting
        for pool in pools:
            if pool.degraded:
                degraded_nodes = [facts.node_name(n) for n in nodes
                                  if facts.node_annotations(n).get(facts.ANN_STATE) == "Degraded"]
                log = [line for n in degraded_nodes for line in facts.daemon_log_tail(mctx, n, 10)]
                raise MigrationStopped(
                    f"A4: MachineConfigPool {pool.name} is Degraded: {pool.message or 'no message'}"
                    + ("\n  " + "\n  ".join(log) if log else "")
                    + "\n  fix it (oc describe mcp, the machine-config-daemon log), then run the same command again")
            if pool.paused and not pool.on_target:
                raise MigrationStopped(
                    f"A4: MachineConfigPool {pool.name} is paused (spec.paused: true) with {pool.updated_machines}/"
                    f"{pool.machines} node(s) updated: the MCO rolls nothing more out to it; unpause it (oc patch mcp "
                    f"{pool.name} --type merge -p '{{\"spec\":{{\"paused\":false}}}}'), then run the same command "
                    f"again")
        now = time.monotonic()
        for node in nodes:
            name = facts.node_name(node)
            if facts.node_ready(node):
                not_ready_since.pop(name, None)
                continue
            since = not_ready_since.setdefault(name, now)
            if now - since > mctx.options.node_timeout:
                log = facts.daemon_log_tail(mctx, name)
                raise MigrationStopped(
                    f"A4: node {name} has been NotReady for more than {mctx.options.node_timeout:.0f} s during the "
                    f"machine config rollout; the tail of its machine-config-daemon log:\n  " + "\n  ".join(log))
        # Progress: a pool gained an updated node, or a node finished its update. A rollout of 150
        # nodes may rightly take a day; one that moved nothing for --node-timeout is stuck.
        marker = (tuple((p.name, p.updated_machines) for p in pools),
                  frozenset(facts.node_name(n) for n in nodes if facts.node_config_done(n)))
        if marker != last_marker:
            last_marker, moved_at = marker, now
        elif not done and now - moved_at > mctx.options.node_timeout:
            raise _stall(mctx, pools, nodes)
        text = _pool_progress(pools)
        say(f"{text} ({duration(int(now - started))})", key=text)
        return done

    if not wait_until(mctx, ceiling.seconds, probe, say):
        raise MigrationStopped(f"A4: the machine config rollout did not finish within {ceiling.text()}: still "
                               f"waiting for " + "; ".join(last_waiting[:10]) + "\n  give more time per node with "
                               "--mco-timeout, then run the same command again")


# -- A5 switch -----------------------------------------------------------------------------------------
def switch_patch(mctx: MigrationContext) -> dict[str, Any]:
    spec: dict[str, Any] = {"networkType": OVN}
    if mctx.options.cluster_network and mctx.options.host_prefix is not None:
        spec["clusterNetwork"] = [{"cidr": mctx.options.cluster_network, "hostPrefix": mctx.options.host_prefix}]
    return {"spec": spec}


def check_switch(mctx: MigrationContext) -> StepCheck:
    state = facts.network_state(mctx)
    if state.switched:
        return StepCheck(True, summary=f"spec.networkType is {OVN}")
    patch = switch_patch(mctx)
    return StepCheck(False, (item("A5", NETWORK_CONFIG_REF, "cluster", "merge-patch",
                                  f"spec.networkType is {state.spec_type}", name=_compact(patch["spec"]),
                                  merge_patch=patch),),
                     summary=f"switch spec.networkType to {OVN}")


def apply_switch(mctx: MigrationContext, check: StepCheck) -> None:
    # Boot IDs from before the switch decide which nodes still need their reboot (R); the time of the
    # switch tells A8 which pods ended before it (nothing the migration did) from those that failed after.
    reboot.record_boot_ids(mctx)
    if "switched_at" not in mctx.step_state():
        mctx.remember(switched_at=time.time())
    _patch(mctx, "A5", k.NETWORK_CONFIG, NETWORK_CONFIG_REF, switch_patch(mctx))


# -- A6 multus rollout ---------------------------------------------------------------------------------
def _multus_done(state: facts.NetworkState, ds: dict[str, Any] | None) -> tuple[bool, str]:
    """`oc rollout status` on the DaemonSet, once the CNO has processed the switch.

    The rollout is judged as kubectl judges it (the spec update observed, every scheduled pod updated
    and available), never by the generation growing past its pre-switch value: the CNO's update may
    keep the generation. That the CNO reports the new network type is what says the DaemonSet seen is
    the one it applied for the switch, not the old rollout still reported complete.
    """
    if ds is None:
        return False, "DaemonSet openshift-multus/multus not found"
    if state.status_type != OVN:
        return False, f"the CNO has not processed the switch yet (status.networkType is {state.status_type or 'unset'})"
    done, updated, available, desired, observed = facts.multus_progress(ds)
    if not observed:
        return False, "the multus DaemonSet's spec update is not observed yet"
    return done, f"multus {updated}/{desired} updated, {available}/{desired} available"


def check_multus(mctx: MigrationContext) -> StepCheck:
    # Decided by the DaemonSet alone: status.networkType may say OVNKubernetes before multus rolled out.
    state = facts.network_state(mctx)
    if state.finished:
        return StepCheck(True, summary="the migration is finished (spec.migration is null)")
    if state.switched:
        done, text = _multus_done(state, facts.multus(mctx))
        if done:
            return StepCheck(True, summary=text)
    return StepCheck(False, (item("A6", "DaemonSet", "openshift-multus/multus", "wait", "the CNO's multus",
                                  reason="until every scheduled pod is updated and available (oc rollout status)"),),
                     summary="wait for the multus rollout")


def apply_multus(mctx: MigrationContext, check: StepCheck) -> None:
    say = ProgressLine(mctx.say, "A6")
    last = [""]

    def probe() -> bool:
        done, text = _multus_done(facts.network_state(mctx), facts.multus(mctx))
        last[0] = text
        say(text)
        return done

    if not wait_until(mctx, mctx.options.multus_timeout, probe, say):
        raise MigrationStopped(f"A6: the multus rollout did not finish within {mctx.options.multus_timeout:.0f} s: "
                               f"{last[0]}")


# -- A7 reboot ---------------------------------------------------------------------------------------
def check_reboot(mctx: MigrationContext) -> StepCheck:
    # Done only by the recorded reboots (boot ID changed, Ready) or once A9 cleared spec.migration:
    # status.networkType is no proof, the CNO may set it before any node rebooted.
    state = facts.network_state(mctx)
    if state.finished:
        return StepCheck(True, summary="the migration is finished (spec.migration is null): every node rebooted")
    recorded = (mctx.ctx.state.get(reboot.STATE_KEY) or {}).get("boot_ids")
    if state.switched and recorded:
        nodes = facts.nodes(mctx)
        progress = reboot.progress(mctx, nodes)
        if all(p.rebooted for p in progress):
            return StepCheck(True, summary=f"nodes rebooted {len(progress)}/{len(progress)}")
    items, notes = reboot.plan(mctx, "A7")
    return StepCheck(False, tuple(items), tuple(notes), summary=f"reboot {len(items)} node(s)")


def apply_reboot(mctx: MigrationContext, check: StepCheck) -> None:
    reboot.run(mctx, "A7")


# -- A8 verify ---------------------------------------------------------------------------------------
def check_verify(mctx: MigrationContext) -> StepCheck:
    state = facts.network_state(mctx)
    if state.switched:
        report = verify.run_checks(mctx)
        if report.ok:
            notes = tuple(f"A8: {n}" for c in report.checks for n in c.expected)
            pods = next((c.detail for c in report.checks if c.name == "pods"), "")
            extra = pods.split("; ", 1)[1] if "; " in pods else ""
            return StepCheck(True, notes=notes, summary="network type, nodes, pods, cluster operators: all good"
                             + (f" ({extra})" if extra else ""))
    return StepCheck(False, (item("A8", "check", "cluster", "verify",
                                  "network type, nodes Ready, no pod in error, cluster operators healthy"),),
                     summary="verify the cluster on OVN-Kubernetes")


def apply_verify(mctx: MigrationContext, check: StepCheck) -> None:
    say = ProgressLine(mctx.say, "A8")
    last: list[verify.Report] = []

    def probe() -> bool:
        report = verify.run_checks(mctx)
        last[:] = [report]
        failing = report.failures()
        say("all checks pass" if not failing else "waiting: " + "; ".join(failing))
        return report.ok

    if not wait_until(mctx, mctx.options.verify_timeout, probe, say):
        lines = verify.report_lines(last[0]) if last else []
        raise MigrationStopped(f"A8: verification failed after {mctx.options.verify_timeout:.0f} s; the cleanup was "
                               f"not started:\n  " + "\n  ".join(lines))


# -- A9 finish ---------------------------------------------------------------------------------------
FINISH_PATCH: dict[str, Any] = {"spec": {"migration": None}}


def check_finish(mctx: MigrationContext) -> StepCheck:
    state = facts.network_state(mctx)
    if state.finished:
        return StepCheck(True, summary="spec.migration is null")
    return StepCheck(False, (item("A9", NETWORK_OPERATOR_REF, "cluster", "merge-patch", "the migration verified",
                                  name="spec.migration=null", merge_patch=FINISH_PATCH),),
                     summary="clear spec.migration")


def apply_finish(mctx: MigrationContext, check: StepCheck) -> None:
    _patch(mctx, "A9", k.NETWORK_OPERATOR, NETWORK_OPERATOR_REF, FINISH_PATCH)


STEPS: tuple[MigrationStep, ...] = (
    MigrationStep("A0", "Preflight (and the Geneve rule between nodes)", check_preflight, apply_preflight),
    MigrationStep("A1", "Backup of Network.config/cluster", check_backup, apply_backup),
    MigrationStep("A2", "Prepare: spec.migration on Network.operator", check_prepare, apply_prepare),
    MigrationStep("A3", "OVN-Kubernetes settings", check_settings, apply_settings),
    MigrationStep("A4", "Wait for the Machine Config Operator", check_mco, apply_mco),
    MigrationStep("A5", "Switch the network type", check_switch, apply_switch),
    MigrationStep("A6", "Wait for the multus rollout", check_multus, apply_multus),
    MigrationStep("A7", "Reboot every node (R)", check_reboot, apply_reboot),
    MigrationStep("A8", "Verify", check_verify, apply_verify),
    MigrationStep("A9", "Finish: clear spec.migration", check_finish, apply_finish),
)
