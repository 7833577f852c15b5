"""The snapshot file format: what `kuryr-migrate snapshot` writes and `kuryr-migrate sim` loads.

A snapshot is one JSON document: `format` and `version` (below), `captured_at`, `source`,
`infra_id`, `settings`, `openstack` (the project id and one list of raw API records per collection in
`OPENSTACK_COLLECTIONS`) and `kubernetes.objects` (raw objects). The format belongs to the product: an
admin's recorded rehearsal must keep loading after an upgrade, so a newer tool reads every older
version or says exactly why it cannot (`check_snapshot`).
"""

from __future__ import annotations

from typing import Any

SNAPSHOT_FORMAT = "kuryr-migrate/snapshot"
SNAPSHOT_VERSION = 1

# OpenStack collections, in the order a snapshot lists them. Names are the JSON collection keys of
# the real APIs (Neutron `security_groups`, Octavia `loadbalancers`, ...), so a listing answer is
# `{name: [...]}` straight from a snapshot.
OPENSTACK_COLLECTIONS: tuple[str, ...] = (
    # Neutron
    "networks",
    "subnets",
    "subnetpools",
    "ports",
    "routers",
    "trunks",
    "security_groups",
    "security_group_rules",
    "floatingips",
    # Octavia
    "loadbalancers",
    "listeners",
    "pools",
    "members",
    "healthmonitors",
    # Nova
    "servers",
)


class SnapshotError(ValueError):
    pass


def check_snapshot(snap: Any) -> None:
    """Raise SnapshotError, saying why, unless `snap` is a snapshot document this tool reads."""
    if not isinstance(snap, dict) or snap.get("format") != SNAPSHOT_FORMAT:
        raise SnapshotError(f"not a kuryr-migrate snapshot (expected format {SNAPSHOT_FORMAT!r})")
    if snap.get("version") != SNAPSHOT_VERSION:
        raise SnapshotError(
            f"snapshot format version {snap.get('version')!r} is not supported (this tool reads "
            f"version {SNAPSHOT_VERSION})"
        )
