"""`kuryr-migrate snapshot`: a read-only capture of the cloud and the cluster, as a snapshot file."""

from __future__ import annotations

from pathlib import Path

from kuryr_cleanup.commands.base import UI, Result
from kuryr_cleanup.context import Context
from kuryr_cleanup.errors import ExitCode
from kuryr_cleanup.snapshot import capture, write_snapshot


def snapshot_command(ctx: Context, ui: UI, path: Path, whole_project: bool = False) -> Result:
    # As every command that reads both: an unreachable or refusing API is one line, and credentials of
    # another project (which would capture none of the cluster's resources) are refused.
    ctx.connect()
    data = capture(ctx, whole_project=whole_project)
    write_snapshot(data, path)
    os_counts = {k: len(v) for k, v in data["openstack"].items() if isinstance(v, list)}
    scope = "the whole project" if whole_project else f"{ctx.infra_id}'s OpenStack resources only"
    summary = (f"snapshot of {ctx.infra_id} ({scope}) written to {path} (readable by you only): "
               + ", ".join(f"{n} {name}" for name, n in os_counts.items() if n)
               + f", {len(data['kubernetes']['objects'])} cluster objects")
    return Result(ExitCode.OK, {"apiVersion": "kuryr-migrate/v1", "kind": "SnapshotResult", "path": str(path),
                                "infraID": ctx.infra_id, "scope": data["scope"], "openstack": os_counts,
                                "clusterObjects": len(data["kubernetes"]["objects"])}, summary)
