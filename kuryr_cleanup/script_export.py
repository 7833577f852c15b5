"""The cleanup plan as the equivalent `oc` and `openstack` commands: a review artefact
(`kuryr-migrate cleanup --plan -o script`).

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
        *NotFound*|*"not found"*|*"Not Found"*|*"could not be found"*|*"404"*)
            printf '  already gone\n' >&2
            return 0 ;;
    esac
    printf '%s\n' "$out" >&2
    return 1
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
        case $out in *NotFound*|*"not found"*) printf '  already gone\n' >&2; return 0 ;; esac
        printf '  %s: reading it again\n' "$out" >&2
        local template='{{.metadata.resourceVersion}} {{range $i, $f := .metadata.finalizers}}'
        template+='{{if eq $f "'$finalizer'"}}{{$i}}{{end}}{{end}}'
        if ! current=$("$OC" get "${where[@]}" "$resource" "$name" -o go-template="$template" 2>&1); then
            case $current in *NotFound*|*"not found"*) printf '  already gone\n' >&2; return 0 ;; esac
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

# The load balancer's provisioning status, or GONE once Octavia no longer knows it.
lb_status() {
    local out
    if out=$(openstack loadbalancer show "$1" -f value -c provisioning_status 2>&1); then
        printf '%s\n' "$out"
        return 0
    fi
    case $out in
        *"Not Found"*|*"not found"*|*"404"*|*"Unable to locate"*|*"could not be found"*)
            echo GONE
            return 0 ;;
    esac
    printf '%s\n' "$out" >&2
    return 1
}

# A load balancer in PENDING_* refuses changes (409): wait until Octavia has settled it.
wait_lb_settled() {
    local status deadline=$((SECONDS + LB_TIMEOUT))
    while status=$(lb_status "$1") && [[ $status == PENDING_* ]]; do
        if ((SECONDS > deadline)); then
            echo "load balancer $1 still $status after ${LB_TIMEOUT}s" >&2
            return 1
        fi
        sleep "$POLL"
    done
}

# Cascade deletion is asynchronous: wait until the load balancer is gone. Octavia can put it in
# ERROR while deleting it; then it is deleted again (up to 3 times), as the tool does.
wait_lb_gone() {
    local status retries=0 deadline=$((SECONDS + LB_TIMEOUT))
    while :; do
        status=$(lb_status "$1") || return 1
        case $status in
            GONE) return 0 ;;
            ERROR)
                if ((retries >= 3)); then
                    echo "load balancer $1 still in ERROR after $retries new deletes" >&2
                    return 1
                fi
                retries=$((retries + 1))
                gone_ok openstack loadbalancer delete --cascade "$1" ;;
        esac
        if ((SECONDS > deadline)); then
            echo "load balancer $1 still $status after ${LB_TIMEOUT}s" >&2
            return 1
        fi
        sleep "$POLL"
    done
}

# B15: none of the networks the KuryrNetworks named (and this script deleted) is left.
check_networks_gone() {
    local tag=$1 left
    shift
    left=$(openstack network list --tags "$tag" -f value -c ID | grep -Fx -f <(printf '%s\n' "$@") || true)
    if [ -n "$left" ]; then
        echo "networks still exist: $left" >&2
        return 1
    fi
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
        return [f"wait_lb_settled {_q(ident)}", f"gone_ok openstack loadbalancer delete --cascade {_q(ident)}",
                f"wait_lb_gone {_q(ident)}"]
    if action == "release":
        return [f"gone_ok openstack floating ip delete {_q(ident)}"]
    if action == "disassociate":
        return [f"run openstack floating ip unset --port {_q(ident)}"]
    if action == "unset-subports":
        subports = " ".join(f"--subport {_q(p)}" for p in item.params["subports"])
        return [f"run openstack network trunk unset {subports} {_q(ident)}"]
    if action == "remove-interface":
        return [f"gone_ok openstack router remove subnet {_q(item.params['router_id'], item.params['subnet_id'])}"]
    if action == "check":
        return [f"check_networks_gone {_q(tag, *item.params['networks'])}"]
    if action == "delete":
        noun = {"port": "port", "network": "network", "security group": "security group",
                "subnet pool": "subnet pool", "router": "router", "floating IP": "floating ip"}.get(kind)
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
    shown = []
    for line in commands(item, tag):
        line = line.removeprefix("gone_ok ").removeprefix("run ").replace('"$OC" ', "oc ")
        shown.append(line)
    return shown


def _comment(text: str) -> list[str]:
    return ["# " + line.lstrip() for line in render.wrap(text, 2, render.WIDTH - 2)]


def script(plan: Plan, identity: dict[str, str], now: dt.datetime | None = None) -> str:
    """The whole script: header, checks that it runs against the cluster and project it was made for,
    then every action in order."""
    infra_id = identity.get("infraID") or plan.infra_id
    tag = cluster_tag(infra_id)
    stamp = (now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds")
    lines = ["#!/usr/bin/env bash",
             f"# The cleanup plan of cluster {infra_id} as oc and openstack commands (kuryr-migrate {__version__}, "
             f"{stamp}).",
             f"# Cluster ID {identity.get('clusterID', 'unknown')}; OpenStack project "
             f"{identity.get('projectID', 'unknown')}.",
             "# Review it, then run it with the admin's usual environment (OS_CLOUD or OS_* for openstack, the",
             "# cluster's kubeconfig for oc). `kuryr-migrate cleanup` does the same, in parallel, resumably, and",
             "# journals every object before it changes it.",
             *_comment(render.plan_summary(plan, "Plan")[-1])]
    lines += ["", _PREAMBLE.rstrip("\n"), "",
              "# Run only against the cluster and the project this plan was made for, and only once the cluster",
              "# runs OVN-Kubernetes: removing Kuryr's ports under pods that still use them cuts them off.",
              "infra_id=$(\"$OC\" get infrastructures.config.openshift.io cluster "
              "-o jsonpath='{.status.infrastructureName}')",
              f'[ "$infra_id" = {_q(infra_id)} ] || {{ echo "this is cluster $infra_id, not {infra_id}" >&2; '
              f"exit 2; }}",
              "network_type=$(\"$OC\" get networks.config.openshift.io cluster -o jsonpath='{.status.networkType}')",
              '[ "$network_type" = OVNKubernetes ] || { echo "the network type is $network_type, not '
              'OVNKubernetes: migrate first" >&2; exit 3; }']
    project = identity.get("projectID")
    if project:
        lines += ["project=$(openstack token issue -f value -c project_id)",
                  f'[ "$project" = {_q(project)} ] || {{ echo "OpenStack project $project is not {project}" >&2; '
                  f"exit 2; }}"]
    for step, items in plan.by_step():
        lines += ["", f"# == {step.id} {step.title}"]
        if not items:
            lines.append("# nothing to do")
        for item in items:
            if item.state != PLANNED:
                lines += _comment(f"{item.step} {item.state}: {render.describe(item)}: {item.reason}")
                continue
            why = f"{item.step} {render.describe(item)}" + (f"; evidence: {item.evidence}" if item.evidence else "")
            if item.reason:
                why += f" ({item.reason})"
            lines += _comment(why)
            lines += commands(item, tag)
    lines += ["", "# == Done", f"echo 'The cleanup of {infra_id} is done.'", ""]
    return "\n".join(lines)
