"""The one way a cloud resource is deleted: journal the object, send the delete, 404 is success."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kuryr_cleanup.context import Context
from kuryr_cleanup.engine import Finished, Outcome
from kuryr_cleanup.plan import DONE, GONE, PlanItem
from kuryr_cleanup.retrying import call, http_status


def delete_journaled(ctx: Context, item: PlanItem, fn: Callable[[], Any]) -> Outcome:
    """Journal the object, delete it, treat 404 as done; 409s (still in use while a dependency goes
    away) are retried until the dependency deadline."""
    ctx.journal.write("delete", step=item.step, kind=item.kind, id=item.id, object=item.params.get("object"),
                      related=item.params.get("related"))
    try:
        call(ctx.options.retry, fn, retry_conflicts=True)
    except Exception as exc:
        if http_status(exc) == 404:
            ctx.journal.write("result", sync=False, step=item.step, kind=item.kind, id=item.id, result="gone")
            return Finished(GONE, "already gone")
        raise
    ctx.journal.write("result", sync=False, step=item.step, kind=item.kind, id=item.id, result="done")
    return Finished(DONE)
