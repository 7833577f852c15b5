"""`kuryr-migrate snapshot`: a read-only capture of the cloud and the cluster, as a snapshot file."""

from __future__ import annotations

from pathlib import Path

from kuryr_cleanup.commands.base import UI, Result
from kuryr_cleanup.context import Context
from kuryr_cleanup.errors import ExitCode
from kuryr_cleanup.snapshot import capture, write_snapshot


def snapshot_command(ctx: Context, ui: UI, path: Path) -> Result:
    data = capture(ctx)
    write_snapshot(data, path)
    os_counts = {k: len(v) for k, v in data["openstack"].items() if isinstance(v, list)}
    summary = (f"snapshot of {ctx.infra_id} written to {path}: "
               + ", ".join(f"{n} {name}" for name, n in os_counts.items() if n)
               + f", {len(data['kubernetes']['objects'])} cluster objects")
    return Result(ExitCode.OK, {"apiVersion": "kuryr-migrate/v1", "kind": "SnapshotResult", "path": str(path),
                                "infraID": ctx.infra_id, "openstack": os_counts,
                                "clusterObjects": len(data["kubernetes"]["objects"])}, summary)
