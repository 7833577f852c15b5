"""The errors the tool reports to the admin, and every exit code, in one place.

`cli` maps each error to one line and its exit code; commands return the other codes.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    LEFT = 1  # work is left: failed or blocked items, a failed verification
    USAGE = 2  # bad input (flag, cloud, kubeconfig, infraID, unreachable API, permission): nothing changed
    REFUSED = 3  # preflight refused, or the cleanup refused (cluster not migrated): nothing changed
    STOPPED = 4  # the migration stopped at a step that could not finish; the same command resumes
    INTERRUPTED = 130  # Ctrl-C or SIGTERM; the same command resumes


class KuryrMigrateError(Exception):
    """A failure the admin must act on; its message is shown as one line."""

    exit_code: int = ExitCode.LEFT


class UsageError(KuryrMigrateError):
    """Bad input (flag, cloud, kubeconfig, infraID, unreachable API, permission): nothing was changed."""

    exit_code = ExitCode.USAGE


class Interrupted(KuryrMigrateError):
    """Ctrl-C or SIGTERM: state and journal are kept, the same command resumes."""

    exit_code = ExitCode.INTERRUPTED
