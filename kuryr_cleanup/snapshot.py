"""`kuryr-migrate snapshot`: a read-only capture of the cloud and the cluster as raw API objects.

The format is the simulator's (kuryr_cleanup.sim.store: format `kuryr-migrate/snapshot`, version 1),
so a snapshot of a real cloud can be loaded by `kuryr-migrate sim serve --snapshot` to rehearse the
cleanup. Objects are kept exactly as the APIs return them: raw JSON, following pagination links.
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
    objects: list[dict[str, Any]] = []
    def list_kind(kind: k.Kind) -> list[dict[str, Any]]:
        return list(ctx.cluster.list(kind))

    for kind in CLUSTER_KINDS:
        for obj in call(policy, functools.partial(list_kind, kind), retry_conflicts=False):
            obj.setdefault("apiVersion", kind.api_version)
            obj.setdefault("kind", kind.kind)
            objects.append(obj)
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


def write_snapshot(data: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
