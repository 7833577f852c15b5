"""The errors the tool reports to the admin. `cli.main` maps each to one line and an exit code."""

from __future__ import annotations


class KuryrMigrateError(Exception):
    """A failure the admin must act on; its message is shown as one line."""

    exit_code = 1


class UsageError(KuryrMigrateError):
    """Bad input (flag, cloud, kubeconfig, infraID, unreachable API, permission): nothing was changed."""

    exit_code = 2
