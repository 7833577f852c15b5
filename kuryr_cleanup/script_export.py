"""A plan as the equivalent `oc` and `openstack` commands: a review artefact (`kuryr-migrate cleanup
--plan -o script`, and `run --plan -o script` for the whole job: the migration with the vendor's own
commands, the reboots, then the cleanup).

One command per action, in the plan's order (the step order, and within a step each item after the
items it depends on: a port before its network, a floating IP before its load balancer), with the
waits the tool does: a load balancer is deleted with `--cascade`, then the script waits until
Octavia no longer knows it before anything that depends on it. Each action is preceded by a comment
with its step and the evidence that the resource is this cluster's Kuryr's. Resources the plan keeps
or skips are listed as comments, with the reason.

A finalizer removal is a JSON patch that tests the object's resourceVersion (as the tool planned
it) and the finalizer's position, then removes exactly that entry: if anything changed the object
since the plan, the API refuses the patch and the script stops (export the plan again). Already gone
is success (`gone_ok`), as in the tool.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from typing import Any

from kuryr_cleanup import __version__, render
from kuryr_cleanup.kuryr import cluster_tag
from kuryr_cleanup.migration.base import MigrationOptions
from kuryr_cleanup.migration.reboot import ssh_argv
from kuryr_cleanup.migration.steps import GENEVE_RULE_DESCRIPTION
from kuryr_cleanup.plan import PLANNED, Plan, PlanItem

_PREAMBLE = r'''set -euo pipefail

OC=${OC:-oc}                    # kubectl works too: OC=kubectl
POLL=${POLL:-2}                 # seconds between polls of a load balancer being deleted
LB_TIMEOUT=${LB_TIMEOUT:-1800}  # seconds a load balancer may take to go

# Print a command, then run it.
run() {
    printf '+ %s\n' "$*" >&2
    "$@"
}

# Run a deletion or removal; "not found" means it is already gone, which is what we want.
gone_ok() {
    local out
    printf '+ %s\n' "$*" >&2
    if out=$("$@" 2>&1); then
        [ -z "$out" ] || printf '%s\n' "$out"
        return 0
    fi
    case $out in
        # A conflict is never "gone", whatever ids or URLs its message quotes.
        *Conflict*|*" 409"*|*"in use"*|*InUse*) ;;
        # What the CLIs say of a missing resource: the openstack CLI looks a name or id up first
        # ("No Port found for <id>", octavia's "Unable to locate <id> in loadbalancers"), the SDK raises
        # NotFoundException, Neutron names its *NotFound* error, oc says "(NotFound)".
        *NotFound*|*"No "*" found for "*|*"Unable to locate "*|*"could not be found"*)
            printf '  already gone\n' >&2
            return 0 ;;
    esac
    printf '%s\n' "$out" >&2
    return 1
}

# Delete several resources of one kind with one command (one start of the openstack CLI, which takes
# about a second). If that fails, delete them one by one, so that each is judged alone: already gone
# is success, any other error stops the script.
delete_all() {
    local noun=$1 id out
    shift
    read -ra words <<< "$noun"
    printf '+ openstack %s delete %s\n' "$noun" "$*" >&2
    if out=$(openstack "${words[@]}" delete "$@" 2>&1); then
        [ -z "$out" ] || printf '%s\n' "$out"
        return 0
    fi
    printf '%s\n  deleting them one by one\n' "$out" >&2
    for id in "$@"; do
        gone_ok openstack "${words[@]}" delete "$id" || return 1
    done
}

# Remove exactly one finalizer: a JSON patch that tests the resourceVersion (as planned) and the
# finalizer's position, then removes that entry. If the object changed since (the API refuses the
# test), read it again and recompute, as the tool does; an object or finalizer already gone is done.
remove_finalizer() {
    local ns=$1 resource=$2 name=$3 finalizer=$4 position=$5 version=$6 attempt out current
    local where=()
    [ -z "$ns" ] || where=(-n "$ns")
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        local patch='[{"op":"test","path":"/metadata/resourceVersion","value":"'$version'"},'
        patch+='{"op":"test","path":"/metadata/finalizers/'$position'","value":"'$finalizer'"},'
        patch+='{"op":"remove","path":"/metadata/finalizers/'$position'"}]'
        printf '+ %s patch %s %s %s --type=json -p %s\n' "$OC" "${where[*]}" "$resource" "$name" "'$patch'" >&2
        if out=$("$OC" patch "${where[@]}" "$resource" "$name" --type=json -p "$patch" 2>&1); then
            printf '%s\n' "$out"
            return 0
        fi
        case $out in *"(NotFound)"*|*" not found"*) printf '  already gone\n' >&2; return 0 ;; esac
        printf '  %s: reading it again\n' "$out" >&2
        local template='{{.metadata.resourceVersion}} {{range $i, $f := .metadata.finalizers}}'
        template+='{{if eq $f "'$finalizer'"}}{{$i}}{{end}}{{end}}'
        if ! current=$("$OC" get "${where[@]}" "$resource" "$name" -o go-template="$template" 2>&1); then
            case $current in *"(NotFound)"*|*" not found"*) printf '  already gone\n' >&2; return 0 ;; esac
            printf '%s\n' "$current" >&2
            return 1
        fi
        version=${current%% *}
        position=${current#* }
        if [ -z "$position" ]; then
            printf '  finalizer already removed\n' >&2
            return 0
        fi
    done
    echo "$resource $name kept changing: $attempt conflicting updates in a row" >&2
    return 1
}

# Each load balancer's id and provisioning status (GONE once Octavia no longer knows it), from one
# listing: one start of the openstack CLI per poll, however many load balancers are waited for.
lb_statuses() {
    local listing id
    listing=$(openstack loadbalancer list -f value -c id -c provisioning_status) || return 1
    for id in "$@"; do
        awk -v id="$id" '$1 == id {print $1, $2; found = 1} END {if (!found) print id, "GONE"}' <<< "$listing"
    done
}

# A load balancer in PENDING_* refuses changes (409): wait until Octavia has settled them.
wait_lbs_settled() {
    local statuses pending deadline=$((SECONDS + LB_TIMEOUT))
    while :; do
        statuses=$(lb_statuses "$@") || return 1  # a failed read is not "settled"
        pending=$(awk '$2 ~ /^PENDING_/ {print $1 " " $2}' <<< "$statuses")
        [ -n "$pending" ] || return 0
        if ((SECONDS > deadline)); then
            echo "load balancers still pending after ${LB_TIMEOUT}s: $pending" >&2
            return 1
        fi
        sleep "$POLL"
    done
}

# Cascade deletion is asynchronous: wait until the load balancers are gone. Octavia can put one in
# ERROR while deleting it; then it is deleted again (up to 3 times), as the tool does.
wait_lbs_gone() {
    local statuses left id deadline=$((SECONDS + LB_TIMEOUT))
    local -A retries=()
    while :; do
        statuses=$(lb_statuses "$@") || return 1
        left=$(awk '$2 != "GONE" {print $1 " " $2}' <<< "$statuses")
        [ -n "$left" ] || return 0
        for id in $(awk '$2 == "ERROR" {print $1}' <<< "$statuses"); do
            if ((${retries[$id]:-0} >= 3)); then
                echo "load balancer $id still in ERROR after 3 new deletes" >&2
                return 1
            fi
            retries[$id]=$((${retries[$id]:-0} + 1))
            gone_ok openstack loadbalancer delete --cascade "$id"
        done
        if ((SECONDS > deadline)); then
            echo "load balancers not gone after ${LB_TIMEOUT}s: $left" >&2
            return 1
        fi
        sleep "$POLL"
    done
}

# B15: none of the networks the KuryrNetworks named (and this script deleted) is left.
check_networks_gone() {
    local tag=$1 left
    shift
    local listed
    listed=$(openstack network list --tags "$tag" -f value -c ID) || return 1  # a failed listing is no pass
    left=$(grep -Fx -f <(printf '%s\n' "$@") <<< "$listed" || true)
    if [ -n "$left" ]; then
        echo "networks still exist: $left" >&2
        return 1
    fi
}
'''


# The migration's helpers (`run --plan -o script`): the vendor's checks, each in a loop with a deadline.
_MIGRATION_PREAMBLE = r'''
# Run a creation; "already exists" means someone made it meanwhile, which is what we want.
exists_ok() {
    local out
    printf '+ %s\n' "$*" >&2
    if out=$("$@" 2>&1); then
        [ -z "$out" ] || printf '%s\n' "$out"
        return 0
    fi
    case $out in
        *"already exists"*|*Exists*|*Duplicate*|*Conflict*) printf '  already there\n' >&2; return 0 ;;
    esac
    printf '%s\n' "$out" >&2
    return 1
}

# A1: the vendor's backup of Network.config/cluster, never overwriting an existing one.
backup_network_config() {
    if [ -e "$1" ]; then
        printf '  %s exists: kept (never overwritten)\n' "$1" >&2
        return 0
    fi
    mkdir -p "$(dirname "$1")"
    printf '+ %s get Network.config.openshift.io cluster -o yaml > %s\n' "$OC" "$1" >&2
    "$OC" get Network.config.openshift.io cluster -o yaml > "$1.partial"
    mv "$1.partial" "$1"
}

# A4: `oc get mcp` until the pool is UPDATED=True, UPDATING=False, DEGRADED=False on its new rendered
# config, that config runs `configure-ovs.sh OVNKubernetes` (the vendor's `grep ExecStart`), and every
# node says machineconfiguration.openshift.io/state Done with currentConfig == desiredConfig.
wait_pool_updated() {
    local pool=$1 state nodes deadline=$((SECONDS + MCO_TIMEOUT))
    local cond='{.status.conditions[?(@.type=="%s")].status}|'
    local template
    template="$(printf "$cond$cond$cond" Updated Updating Degraded){.spec.configuration.name}|"
    template+='{.status.configuration.name}|{.status.updatedMachineCount}/{.status.machineCount}'
    local annotations='{range .items[*]}{.metadata.name}|'
    annotations+='{.metadata.annotations.machineconfiguration\.openshift\.io/state}|'
    annotations+='{.metadata.annotations.machineconfiguration\.openshift\.io/currentConfig}|'
    annotations+='{.metadata.annotations.machineconfiguration\.openshift\.io/desiredConfig}{"\n"}{end}'
    printf '+ %s get mcp %s (until updated)\n' "$OC" "$pool" >&2
    while :; do
        if state=$("$OC" get mcp "$pool" -o jsonpath="$template" 2>/dev/null); then
            IFS='|' read -r updated updating degraded target reached count <<< "$state"
            if [ "$degraded" = True ]; then
                echo "MachineConfigPool $pool is Degraded: see oc describe mcp $pool and the" \
                     "machine-config-daemon log (oc logs -n openshift-machine-config-operator <pod>)" >&2
                return 1
            fi
            if [ "$updated/$updating" = True/False ] && [ -n "$target" ] && [ "$target" = "$reached" ] &&
                "$OC" get machineconfig "$target" -o yaml |
                    grep -q 'ExecStart=/usr/local/bin/configure-ovs.sh OVNKubernetes'
            then
                nodes=$("$OC" get nodes -o jsonpath="$annotations" | awk -F'|' 'NF && !($2 == "Done" && $3 == $4)')
                if [ -z "$nodes" ]; then
                    printf '  pool %s updated (%s) on %s\n' "$pool" "$count" "$target" >&2
                    return 0
                fi
            fi
        fi
        if ((SECONDS > deadline)); then
            echo "MachineConfigPool $pool not updated after ${MCO_TIMEOUT}s (${count:-?} machines updated)" >&2
            return 1
        fi
        sleep "$POLL"
    done
}

# A6: once the CNO has taken the switch (status.networkType), the vendor's `oc rollout status`.
wait_multus() {
    local deadline=$((SECONDS + MULTUS_TIMEOUT))
    until [ "$("$OC" get Network.config.openshift.io cluster -o jsonpath='{.status.networkType}' 2>/dev/null)" = \
            OVNKubernetes ]; do
        if ((SECONDS > deadline)); then
            echo "the Cluster Network Operator did not take the switch within ${MULTUS_TIMEOUT}s" >&2
            return 1
        fi
        sleep "$POLL"
    done
    run "$OC" -n openshift-multus rollout status daemonset/multus --timeout="${MULTUS_TIMEOUT}s"
}

# R: a node counts as rebooted when its boot ID changed and it is Ready again.
declare -A BOOT_IDS=()
remember_boot_id() {
    BOOT_IDS[$1]=$("$OC" get node "$1" -o jsonpath='{.status.nodeInfo.bootID}')
}

wait_rebooted() {
    local node boot ready deadline=$((SECONDS + REBOOT_TIMEOUT))
    local template='{.status.nodeInfo.bootID}|{.status.conditions[?(@.type=="Ready")].status}'
    for node in "$@"; do
        printf '  waiting for %s to come back Ready with a new boot ID\n' "$node" >&2
        while :; do
            # The API may be down meanwhile (the control plane reboots too): that is "not yet".
            IFS='|' read -r boot ready <<< "$("$OC" get node "$node" -o jsonpath="$template" 2>/dev/null || true)"
            if [ -n "$boot" ] && [ "$boot" != "${BOOT_IDS[$node]}" ] && [ "$ready" = True ]; then
                break
            fi
            if ((SECONDS > deadline)); then
                echo "node $node did not come back from its reboot within ${REBOOT_TIMEOUT}s" >&2
                return 1
            fi
            sleep "$POLL"
        done
    done
}

# A8: the vendor's checks until they pass: network type, nodes Ready, no pod failing to start,
# cluster operators Available=True, Progressing=False, Degraded=False. Coarser than the tool's:
# a pod Pending (not being deleted) counts as failing; Failed pods are listed, not judged.
verify_cluster() {
    local problems deadline=$((SECONDS + VERIFY_TIMEOUT))
    local nodes='{range .items[*]}{.metadata.name}|{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}'
    local cond='{.status.conditions[?(@.type=="%s")].status}'
    local operators
    operators="{range .items[*]}{.metadata.name}|$(printf "$cond|$cond|$cond" Available Progressing Degraded)"
    operators+='{"\n"}{end}'
    local pods='{range .items[*]}{.metadata.namespace}/{.metadata.name}|{.status.phase}|'
    pods+='{.metadata.deletionTimestamp}{"\n"}{end}'
    while :; do
        problems=$(
            network_type=$("$OC" get Network.config.openshift.io cluster -o jsonpath='{.status.networkType}' \
                2>&1) || true
            [ "$network_type" = OVNKubernetes ] || echo "network type: $network_type"
            "$OC" get nodes -o jsonpath="$nodes" 2>&1 | awk -F'|' 'NF && $2 != "True" {print "node not Ready: " $1}'
            "$OC" get clusteroperators -o jsonpath="$operators" 2>&1 |
                awk -F'|' 'NF && !($2 == "True" && $3 == "False" && $4 == "False") {print "cluster operator: " $1}'
            "$OC" get pods --all-namespaces -o jsonpath="$pods" 2>&1 |
                awk -F'|' 'NF && $3 == "" && ($2 == "Pending" || $2 == "Unknown") {print "pod " $2 ": " $1}'
        )
        if [ -z "$problems" ]; then
            "$OC" get pods --all-namespaces -o jsonpath="$pods" |
                awk -F'|' '$2 == "Failed" {print "  note: pod Failed: " $1}' >&2
            printf '  network type, nodes, pods, cluster operators: all good\n' >&2
            return 0
        fi
        if ((SECONDS > deadline)); then
            printf 'verification failed after %ss; do not go on to the cleanup:\n%s\n' "$VERIFY_TIMEOUT" "$problems" >&2
            return 1
        fi
        sleep "$POLL"
    done
}
'''


def _q(*words: Any) -> str:
    return " ".join(shlex.quote(str(w)) for w in words)


def _resource(item: PlanItem) -> str:
    """The kind as `oc` names it: plural, with its API group (`kuryrnetworks.openstack.org`)."""
    kind = item.kind.lower()
    plural = kind[:-1] + "ies" if kind.endswith("y") else kind + "s"
    api_version = str(item.params.get("api_version") or "v1")
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    return f"{plural}.{group}" if group else plural


def _namespace(item: PlanItem) -> list[str]:
    namespace = item.params.get("namespace")
    return ["-n", namespace] if namespace else []


def _finalizer_position(item: PlanItem) -> tuple[int, str]:
    """Where the finalizer is in the object as planned, and the object's resourceVersion then."""
    meta = (item.params.get("object") or {}).get("metadata") or {}
    return list(meta.get("finalizers") or []).index(item.params["finalizer"]), str(meta.get("resourceVersion") or "")


# What `openstack <noun> delete` takes several of in one command (`openstack loadbalancer delete` takes one).
_DELETE_NOUNS = {"port": "port", "network": "network", "security group": "security group",
                 "subnet pool": "subnet pool", "router": "router", "floating IP": "floating ip"}
# Ids per batched command: a failure falls back to one command per id, so a batch stays small.
DELETE_BATCH = 50


# Within a step of the cleanup, the script does one kind of action for all of the step's resources
# before the next kind (every port, then every router interface, then every network), so that one
# command takes many ids. This order between kinds is the one the plan keeps for each resource (a
# floating IP before its load balancer; a network's ports, then its router interface, then it).
_PHASES: dict[tuple[str, str], int] = {
    ("release", "floating IP"): 0, ("disassociate", "floating IP"): 0, ("delete", "floating IP"): 0,
    ("cascade-delete", "load balancer"): 1, ("unset-subports", "trunk"): 2, ("delete", "port"): 3,
    ("remove-interface", "router interface"): 4, ("delete", "network"): 5, ("delete", "security group"): 6,
    ("delete", "subnet pool"): 6, ("delete", "router"): 7,
}


def _by_phase(items: list[PlanItem]) -> list[PlanItem]:
    """The step's items by phase, when every one of them has one; else as the plan has them."""
    phases = [_PHASES.get((i.action, i.kind)) for i in items]
    if any(p is None for p in phases):
        return items
    return [i for _, _, i in sorted(zip(phases, range(len(items)), items, strict=True))]


def _batch_noun(item: PlanItem) -> str | None:
    """The `openstack <noun> delete` an item is, when it can share one command with its neighbours."""
    if item.state != PLANNED:
        return None
    if item.action == "cascade-delete":
        return "loadbalancer"
    if item.action == "release":
        return "floating ip"
    if item.action == "delete" and "object_name" not in item.params:
        return _DELETE_NOUNS.get(item.kind)
    return None


def commands(item: PlanItem, tag: str) -> list[str]:
    """The shell lines that do what the tool does for `item`."""
    action, kind, ident = item.action, item.kind, item.id
    if action == "remove-finalizer":
        position, version = _finalizer_position(item)
        where = (item.params.get("namespace") or "", _resource(item), item.params["object_name"])
        return [f"remove_finalizer {_q(*where, item.params['finalizer'], position, version)}"]
    if action == "delete" and "object_name" in item.params:
        return [f'gone_ok "$OC" delete {_q(*_namespace(item), _resource(item), item.params["object_name"])} '
                f"--ignore-not-found --wait=false"]
    if action == "cascade-delete":
        return [f"wait_lbs_settled {_q(ident)}", f"gone_ok openstack loadbalancer delete --cascade {_q(ident)}",
                f"wait_lbs_gone {_q(ident)}"]
    if action == "release":
        return [f"gone_ok openstack floating ip delete {_q(ident)}"]
    if action == "disassociate":
        return [f"gone_ok openstack floating ip unset --port {_q(ident)}"]
    if action == "unset-subports":
        subports = " ".join(f"--subport {_q(p)}" for p in item.params["subports"])
        return [f"gone_ok openstack network trunk unset {subports} {_q(ident)}"]
    if action == "remove-interface":
        return [f"gone_ok openstack router remove subnet {_q(item.params['router_id'], item.params['subnet_id'])}"]
    if action == "check":
        return [f"check_networks_gone {_q(tag, *item.params['networks'])}"]
    if action == "delete":
        noun = _DELETE_NOUNS.get(kind)
        if noun:
            return [f"gone_ok openstack {noun} delete {_q(ident)}"]
    raise ValueError(f"no command for {item.key}")  # a new action: teach the script before it ships


def by_hand(item: PlanItem, tag: str) -> list[str]:
    """The same commands as an admin types them (for the HTML page): `oc` and `openstack` alone,
    without the script's helpers (already-gone tolerance, the waits, the re-read on a conflict)."""
    if item.action == "remove-finalizer":
        position, version = _finalizer_position(item)
        patch = [{"op": "test", "path": "/metadata/resourceVersion", "value": version},
                 {"op": "test", "path": f"/metadata/finalizers/{position}", "value": item.params["finalizer"]},
                 {"op": "remove", "path": f"/metadata/finalizers/{position}"}]
        where = _q(*_namespace(item), _resource(item), item.params["object_name"])
        return [f"oc patch {where} --type=json -p {shlex.quote(json.dumps(patch, separators=(',', ':')))}"]
    if item.action == "cascade-delete":
        return [f"openstack loadbalancer delete --cascade {_q(item.id)}",
                f"# then wait until `openstack loadbalancer show {item.id}` says it is not found"]
    if item.action == "check":
        count = len(item.params["networks"])
        return [f"openstack network list --tags {_q(tag)} -f value -c ID   # none of the {count} deleted networks"]
    return [_typed(line) for line in commands(item, tag)]


def _typed(line: str) -> str:
    """A script line as an admin types it: the command without the script's wrapper and `$OC`."""
    for wrapper in ("gone_ok ", "exists_ok ", "run "):
        line = line.removeprefix(wrapper)
    return line.replace('"$OC" ', "oc ")


def _plain(text: Any) -> str:
    """Text for a comment line: no control character (a newline in a name or an id read from the
    cluster must not end the comment and start a command)."""
    return "".join(c if c.isprintable() else "?" for c in str(text))


def _comment(text: str) -> list[str]:
    return ["# " + line.lstrip() for line in render.wrap(_plain(text), 2, render.WIDTH - 2)]


def migration_commands(item: PlanItem, options: MigrationOptions) -> list[str]:
    """The shell lines that do what the tool does for a migration item (A0-A9, R), with the vendor's
    commands: `oc patch ... --type=merge`, `oc get mcp`, `oc rollout status`, `openstack server reboot`."""
    action, params = item.action, item.params
    if action == "add rule":
        return [f"exists_ok openstack security group rule create --ingress --ethertype IPv4 --protocol udp "
                f"--dst-port {int(params['port'])} --remote-group {_q(params['remote_group_id'])} "
                f"--description {_q(GENEVE_RULE_DESCRIPTION)} {_q(params['security_group_id'])}"]
    if action == "write":
        return [f"backup_network_config {_q(item.id)}"]
    if action == "merge-patch":
        patch = json.dumps(params["merge_patch"], sort_keys=True, separators=(",", ":"))
        return [f'run "$OC" patch {_q(item.kind, item.id)} --type=merge --patch {_q(patch)}']
    if action == "wait" and item.kind == "MachineConfigPool":
        return [f"wait_pool_updated {_q(item.id)}"]
    if action == "wait" and item.kind == "DaemonSet":
        return ["wait_multus"]
    if action == "reboot":
        send = (f"run openstack server reboot {'--hard' if options.hard else '--soft'} {_q(item.id)}"
                if params.get("method", options.method) == "nova" else f"run {_q(*ssh_argv(options, item.id))}")
        return [f"remember_boot_id {_q(item.name)}", send]
    if action == "verify":
        return ["verify_cluster"]
    raise ValueError(f"no command for {item.key}")  # a new action: teach the script before it ships


def migration_by_hand(item: PlanItem, options: MigrationOptions) -> list[str]:
    """A migration item's commands as an admin types them (for the HTML page): the vendor's `oc` and
    `openstack` commands that `migration_commands` runs, without the script's helpers. A wait is the
    vendor's command to repeat, with what it must show; a reboot is followed by the wait for the node."""
    action, ident = item.action, _q(item.id)
    if action == "write":
        return [f"oc get Network.config.openshift.io cluster -o yaml > {ident}   # never over an existing backup"]
    if action == "wait" and item.kind == "MachineConfigPool":
        rendered = f"\"$(oc get mcp {ident} -o jsonpath='{{.status.configuration.name}}')\""
        return [f"oc get mcp {ident}   # until UPDATED True, UPDATING False, DEGRADED False",
                'oc describe node | egrep "hostname|machineconfig"   # state Done, currentConfig = desiredConfig',
                f"oc get machineconfig {rendered} -o yaml | grep ExecStart   # configure-ovs.sh OVNKubernetes"]
    if action == "wait" and item.kind == "DaemonSet":
        return ["oc -n openshift-multus rollout status daemonset/multus"]
    if action == "reboot":
        sent = [_typed(line) for line in migration_commands(item, options) if not line.startswith("remember_boot_id")]
        return [*sent, f"# then wait until `oc get node {_plain(_q(item.name))}` is Ready with a new "
                       f".status.nodeInfo.bootID"]
    if action == "verify":
        return ["oc get network.config/cluster -o jsonpath='{.status.networkType}'   # OVNKubernetes",
                "oc get nodes   # every node Ready",
                "oc get pods --all-namespaces -o wide --sort-by='{.spec.nodeName}'   # no pod in an error state",
                "oc get co   # each Available True, Progressing False, Degraded False"]
    return [_typed(line) for line in migration_commands(item, options)]


def _header(what: str, plan: Plan, identity: dict[str, str], now: dt.datetime | None) -> list[str]:
    infra_id = identity.get("infraID") or plan.infra_id
    stamp = (now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds")
    return ["#!/usr/bin/env bash",
            *_comment(f"The {what} plan of cluster {infra_id} as oc and openstack commands (kuryr-migrate "
                      f"{__version__}, {stamp})."),
            *_comment(f"Cluster ID {identity.get('clusterID', 'unknown')}; OpenStack project "
                      f"{identity.get('projectID', 'unknown')}.")]


def _identity_checks(infra_id: str, identity: dict[str, str]) -> list[str]:
    lines = ["# Run only against the cluster and the project this plan was made for.",
             "infra_id=$(\"$OC\" get infrastructures.config.openshift.io cluster "
             "-o jsonpath='{.status.infrastructureName}')",
             f'[ "$infra_id" = {_q(infra_id)} ] || {{ printf \'this is cluster %s, not %s\\n\' "$infra_id" '
             f"{_q(infra_id)} >&2; exit 2; }}"]
    project = identity.get("projectID")
    if project:
        lines += ["project=$(openstack token issue -f value -c project_id)",
                  f'[ "$project" = {_q(project)} ] || {{ printf \'OpenStack project %s is not %s\\n\' "$project" '
                  f"{_q(project)} >&2; exit 2; }}"]
    return lines


def _steps(plan: Plan, lines_of: Any, batch: bool = False) -> list[str]:
    """Each step's items: a comment with the step, the resource and the evidence, then its commands;
    what the plan keeps or skips as a comment with the reason. With `batch`, neighbouring deletions of
    one kind share one `delete_all` command after their comments (up to DELETE_BATCH ids)."""
    lines: list[str] = []
    for step, items in plan.by_step():
        lines += ["", f"# == {step.id} {step.title}"]
        if not items:
            lines.append("# nothing to do")
        pending: list[PlanItem] = []
        items = _by_phase(items) if batch else items
        for number, item in enumerate(items):
            noun = _batch_noun(item) if batch else None
            if not noun or (pending and (_batch_noun(pending[0]) != noun or len(pending) >= DELETE_BATCH)):
                lines += _delete_all(pending)
            if item.state != PLANNED:
                lines += _comment(f"{item.step} {item.state}: {render.describe(item)}: {item.reason}")
                continue
            why = f"{item.step} {render.describe(item)}" + (f"; evidence: {item.evidence}" if item.evidence else "")
            if item.reason:
                why += f" ({item.reason})"
            lines += _comment(why)
            if noun:
                pending.append(item)
            else:
                lines += lines_of(item, items[number + 1:])
        lines += _delete_all(pending)
    return lines


def _delete_all(pending: list[PlanItem]) -> list[str]:
    """The commands for the deletions gathered so far (none when there are none); empties the list.
    Load balancers are deleted one per command (Octavia's CLI takes one), but waited for together."""
    if not pending:
        return []
    noun = _batch_noun(pending[0])
    ids = [i.id for i in pending]
    pending.clear()
    if noun == "loadbalancer":
        return [f"wait_lbs_settled {_q(*ids)}", *(f"gone_ok openstack loadbalancer delete --cascade {_q(i)}"
                                                  for i in ids), f"wait_lbs_gone {_q(*ids)}"]
    return [f"delete_all {_q(noun, *ids)}"]


def _cleanup_body(plan: Plan, infra_id: str) -> list[str]:
    tag = cluster_tag(infra_id)
    lines = ["# Only once the cluster runs OVN-Kubernetes: removing Kuryr's ports under pods that still use them",
             "# cuts them off.",
             "network_type=$(\"$OC\" get networks.config.openshift.io cluster -o jsonpath='{.status.networkType}')",
             '[ "$network_type" = OVNKubernetes ] || { echo "the network type is $network_type, not '
             'OVNKubernetes: migrate first" >&2; exit 3; }']
    lines += _steps(plan, lambda item, _rest: commands(item, tag), batch=True)
    return lines + ["", "# == Done", f"echo {_q(f'The cleanup of {infra_id} is done.')}"]


def _migration_body(plan: Plan, options: MigrationOptions, infra_id: str) -> list[str]:
    def lines_of(item: PlanItem, rest: list[PlanItem]) -> list[str]:
        lines = migration_commands(item, options)
        batch = item.params.get("batch")
        if item.action == "reboot" and not any(r.params.get("batch") == batch for r in rest):
            # The batch's last node: wait for every node of the batch before the next one.
            names = [i.name for i in plan.items if i.action == "reboot" and i.params.get("batch") == batch]
            lines.append(f"wait_rebooted {_q(*names)}")
        return lines

    return _steps(plan, lines_of) + ["", "# == Done", f"echo {_q(f'The migration of {infra_id} is done.')}"]


def _indent(lines: list[str]) -> list[str]:
    return [f"    {line}" if line else "" for line in lines]


def run_script(migration: Plan, cleanup_plan: Plan | None, options: MigrationOptions, identity: dict[str, str],
               problems: list[str] | None = None, now: dt.datetime | None = None) -> str:
    """The whole job as one script (`run --plan -o script`; `migrate --plan -o script` without the
    cleanup): the migration with the vendor's commands and waits, the reboots, then the cleanup."""
    infra_id = identity.get("infraID") or migration.infra_id
    parts = ["migration"] + (["cleanup"] if cleanup_plan is not None else [])
    whole = Plan(infra_id, migration.steps + (cleanup_plan.steps if cleanup_plan else []),
                 migration.items + (cleanup_plan.items if cleanup_plan else []))
    reboots = sum(1 for i in migration.items if i.action == "reboot")
    lines = _header("run" if cleanup_plan is not None else "migration", whole, identity, now)
    lines += ["# Review it, then run it with the admin's usual environment (OS_CLOUD or OS_* for openstack, the",
              "# cluster's kubeconfig for oc): `bash SCRIPT` does " + (
                  "the whole job; `bash SCRIPT migration` or `bash SCRIPT cleanup` one part." if cleanup_plan
                  is not None else "the migration."),
              "# `kuryr-migrate run` does the same resumably, and journals every object before it changes it.",
              *_comment(render.plan_summary(whole, "Plan")[-1])]
    if cleanup_plan is not None:
        lines += _comment("The cleanup part is the inventory as it stands now: after the migration, "
                          "`kuryr-migrate cleanup --plan -o script` gives one that is current.")
    lines += ["", _PREAMBLE.rstrip("\n"), _MIGRATION_PREAMBLE.rstrip("\n"), "",
              "# Waits (seconds), as the tool's --mco-timeout (per node update), --multus-timeout, --reboot-timeout",
              "# and --verify-timeout.",
              f"MCO_TIMEOUT=${{MCO_TIMEOUT:-{int(options.mco_timeout * max(1, reboots))}}}",
              f"MULTUS_TIMEOUT=${{MULTUS_TIMEOUT:-{int(options.multus_timeout)}}}",
              f"REBOOT_TIMEOUT=${{REBOOT_TIMEOUT:-{int(options.reboot_timeout)}}}",
              f"VERIFY_TIMEOUT=${{VERIFY_TIMEOUT:-{int(options.verify_timeout)}}}",
              "", *_identity_checks(infra_id, identity)]
    if problems:
        # What preflight refuses, the script refuses too: fix it, then export the plan again.
        lines += ["", *_comment("Preflight would refuse to start: " + "; ".join(problems)),
                  "echo 'preflight would refuse to start (see the comment above): fix it, then export the plan "
                  "again' >&2", "exit 3"]
    lines += ["", "migration() {", *_indent(_migration_body(migration, options, infra_id)), "}"]
    if cleanup_plan is not None:
        lines += ["", "cleanup() {", *_indent(_cleanup_body(cleanup_plan, infra_id)), "}"]
    usage = "|".join(["all", *parts]) if cleanup_plan is not None else "migration"
    lines += ["", f'case ${{1:-{"all" if cleanup_plan is not None else "migration"}}} in']
    if cleanup_plan is not None:
        lines += ["    all) migration; cleanup ;;", "    migration) migration ;;", "    cleanup) cleanup ;;"]
    else:
        lines += ["    migration) migration ;;"]
    lines += [f'    *) echo "usage: $0 [{usage}]" >&2; exit 2 ;;', "esac", ""]
    return "\n".join(lines)


def script(plan: Plan, identity: dict[str, str], now: dt.datetime | None = None) -> str:
    """The cleanup's script: header, checks that it runs against the cluster and project it was made
    for, then every action in order."""
    infra_id = identity.get("infraID") or plan.infra_id
    lines = _header("cleanup", plan, identity, now)
    lines += ["# Review it, then run it with the admin's usual environment (OS_CLOUD or OS_* for openstack, the",
              "# cluster's kubeconfig for oc). `kuryr-migrate cleanup` does the same, in parallel, resumably, and",
              "# journals every object before it changes it.",
              *_comment(render.plan_summary(plan, "Plan")[-1])]
    lines += ["", _PREAMBLE.rstrip("\n"), "", *_identity_checks(infra_id, identity), *_cleanup_body(plan, infra_id),
              ""]
    return "\n".join(lines)
