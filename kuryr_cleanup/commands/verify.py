"""`kuryr-migrate verify`: the post-migration checks (SPEC A8) as a report; exit 1 on any failure."""

from __future__ import annotations

from kuryr_cleanup.commands.base import UI, Result
from kuryr_cleanup.commands.migrate import migration_context
from kuryr_cleanup.context import Context
from kuryr_cleanup.errors import ExitCode
from kuryr_cleanup.migration import verify
from kuryr_cleanup.migration.base import MigrationOptions


def verify_command(ctx: Context, ui: UI) -> Result:
    ctx.connect(openstack=False)
    mctx = migration_context(ctx, ui, MigrationOptions())
    report = verify.run_checks(mctx)
    lines = [f"Verification of cluster {ctx.infra_id}", *verify.report_lines(report),
             "All checks pass." if report.ok else "Verification FAILED: do not clean up yet."]
    return Result(ExitCode.OK if report.ok else ExitCode.LEFT, verify.report_document(report, ctx.infra_id),
                  "\n".join(lines))
