"""`kuryr-migrate snapshot`: a read-only capture of the cloud and the cluster as raw API objects.

The format is the simulator's (kuryr_cleanup.sim.store: format `kuryr-migrate/snapshot`, version 1),
so a snapshot of a real cloud can be loaded by `kuryr-migrate sim serve --snapshot` to rehearse the
cleanup. Objects are kept as the APIs return them: raw JSON, following pagination links, except the
MachineConfigs: they are cut down to what the migration reads of them, since on a real cluster the
rendered ones carry the nodes' files, the pull secret among them, and a snapshot leaves the admin's
machine (support cases, bug reports). The file is readable by its owner only.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
from pathlib import Path
from typing import Any

from openstack import exceptions as os_exc

from kuryr_cleanup import kube as k
from kuryr_cleanup.context import Context
from kuryr_cleanup.journal import scrub
from kuryr_cleanup.openstack_api import list_raw
from kuryr_cleanup.retrying import call, describe
from kuryr_cleanup.snapshot_format import OPENSTACK_COLLECTIONS, SNAPSHOT_FORMAT, SNAPSHOT_VERSION

# (proxy attribute, path, JSON key) for every collection a snapshot holds.
_OPENSTACK_SOURCES: dict[str, tuple[str, str, str]] = {
    "networks": ("network", "/networks", "networks"),
    "subnets": ("network", "/subnets", "subnets"),
    "subnetpools": ("network", "/subnetpools", "subnetpools"),
    "ports": ("network", "/ports", "ports"),
    "routers": ("network", "/routers", "routers"),
    "trunks": ("network", "/trunks", "trunks"),
    "security_groups": ("network", "/security-groups", "security_groups"),
    "security_group_rules": ("network", "/security-group-rules", "security_group_rules"),
    "floatingips": ("network", "/floatingips", "floatingips"),
    "loadbalancers": ("load_balancer", "/lbaas/loadbalancers", "loadbalancers"),
    "listeners": ("load_balancer", "/lbaas/listeners", "listeners"),
    "pools": ("load_balancer", "/lbaas/pools", "pools"),
    "healthmonitors": ("load_balancer", "/lbaas/healthmonitors", "healthmonitors"),
    "servers": ("compute", "/servers/detail", "servers"),
}

CLUSTER_KINDS: tuple[k.Kind, ...] = (
    k.INFRASTRUCTURE, k.NETWORK_CONFIG, k.NETWORK_OPERATOR, k.CLUSTER_OPERATOR, k.NODE,
    k.MACHINE_CONFIG_POOL, k.MACHINE_CONFIG, k.NAMESPACE, k.SERVICE, k.POD, k.NETWORK_POLICY, k.DAEMON_SET,
    k.KURYR_NETWORK, k.KURYR_PORT, k.KURYR_LOAD_BALANCER, k.KURYR_NETWORK_POLICY,
)

# The one line of a rendered MachineConfig the migration reads (A4, migration/facts.py
# `rendered_config_has_ovs_line`): the OVS unit's ExecStart with the network type it configures.
OVS_EXEC_START = "ExecStart=/usr/local/bin/configure-ovs.sh"
_MACHINE_CONFIG_METADATA = ("name", "labels", "annotations", "ownerReferences", "resourceVersion", "uid",
                            "creationTimestamp")


def capture(ctx: Context) -> dict[str, Any]:
    policy = ctx.options.retry
    infra_id = ctx.infra_id
    ctx.check_openstack()
    conn = ctx.conn
    openstack: dict[str, Any] = {"project_id": conn.current_project_id}
    notes: list[str] = []
    for collection in OPENSTACK_COLLECTIONS:
        source = _OPENSTACK_SOURCES.get(collection)
        if source is None:
            openstack[collection] = []
            continue
        proxy_name, path, key = source
        try:
            openstack[collection] = list_raw(conn, proxy_name, path, key, policy)
        except (os_exc.EndpointNotFound, os_exc.NotFoundException) as exc:
            if proxy_name != "compute":
                raise
            # A cloud (or a token) without Nova: the snapshot is still useful for the cleanup.
            openstack[collection] = []
            notes.append(f"no servers captured: {describe(exc)}")
    # Members live under their pools.
    members = []
    for pool in openstack.get("pools", []):
        for member in list_raw(conn, "load_balancer", f"/lbaas/pools/{pool['id']}/members", "members", policy):
            member.setdefault("pool_id", pool["id"])
            members.append(member)
    openstack["members"] = members
    objects = cluster_objects(ctx)
    notes.append(f"MachineConfigs reduced to their metadata and their {OVS_EXEC_START} lines")
    return {
        "format": SNAPSHOT_FORMAT,
        "version": SNAPSHOT_VERSION,
        "captured_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": "kuryr-migrate snapshot",
        "infra_id": infra_id,
        "settings": {},
        "notes": notes,
        "openstack": scrub(openstack),
        "kubernetes": {"objects": scrub(objects)},
    }


# -- the cluster --------------------------------------------------------------------------------------
def cluster_objects(ctx: Context) -> list[dict[str, Any]]:
    """The cluster's objects of `CLUSTER_KINDS`, MachineConfigs reduced (`reduce_machine_config`)."""
    policy = ctx.options.retry

    def list_kind(kind: k.Kind) -> list[dict[str, Any]]:
        return list(ctx.cluster.list(kind))

    objects: list[dict[str, Any]] = []
    for kind in CLUSTER_KINDS:
        for obj in call(policy, functools.partial(list_kind, kind), retry_conflicts=False):
            obj.setdefault("apiVersion", kind.api_version)
            obj.setdefault("kind", kind.kind)
            objects.append(reduce_machine_config(obj) if kind == k.MACHINE_CONFIG else obj)
    return objects


def reduce_machine_config(obj: dict[str, Any]) -> dict[str, Any]:
    """A MachineConfig with only what the migration reads: its metadata, and of its systemd units only the
    `configure-ovs.sh` ExecStart lines.

    A rendered MachineConfig holds every file the MCO writes to the nodes: the pull secret
    (/var/lib/kubelet/config.json), kubelet certificates, the core user's SSH keys. None of it may
    leave the cluster in a snapshot, and A4 checks one line (the network type OVS is set up for).
    """
    meta = obj.get("metadata") or {}
    units = (((obj.get("spec") or {}).get("config") or {}).get("systemd") or {}).get("units") or []
    kept_units = []
    for unit in units:
        lines = [line for line in str(unit.get("contents") or "").splitlines() if OVS_EXEC_START in line]
        if lines:
            kept_units.append({"name": unit.get("name"), "contents": "\n".join(lines) + "\n"})
    spec: dict[str, Any] = {"config": {"systemd": {"units": kept_units}}} if kept_units else {}
    return {
        "apiVersion": obj.get("apiVersion", k.MACHINE_CONFIG.api_version),
        "kind": obj.get("kind", k.MACHINE_CONFIG.kind),
        "metadata": {key: meta[key] for key in _MACHINE_CONFIG_METADATA if key in meta},
        "spec": spec,
    }


# -- the file ----------------------------------------------------------------------------------------
def write_snapshot(data: dict[str, Any], path: Path) -> None:
    """Write the snapshot readable by its owner only, from the first byte, whatever the umask.

    It holds the cloud's and the cluster's raw objects: created 0600 (never a moment world-readable),
    written to a temporary file beside it and renamed over it, so a reader sees the old file or the
    whole new one.
    """
    tmp = path.with_name(path.name + ".tmp")
    # A temporary file left by an interrupted run may have any mode (or be a link): start afresh.
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o600)  # the umask may have taken bits off; it can't have added any
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
