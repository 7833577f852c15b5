"""One mutating run at a time per cluster (SPEC S6): a coordination.k8s.io Lease held in the cluster.

Two admins (or a Job and an admin) running the cleanup or the migration at once would race on the
same finalizers, ports and reboots, and each would journal only half of what happened. The lock is a
Lease `kube-system/kuryr-migrate` (a namespace the cleanup never deletes), as Kubernetes' own leader
election does it: the holder renews it while the run lives; a holder that stopped renewing (a
SIGKILLed run, a lost bastion) loses it once it expires, or at once with `--take-over-lock`. Every
change is a write guarded by the Lease's resourceVersion, so two runs can't both take it. `--plan`,
`status`, `verify` and `snapshot` take no lock.
"""

from __future__ import annotations

import _thread
import datetime as dt
import getpass
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kuryr_cleanup import kube as k
from kuryr_cleanup.errors import UsageError
from kuryr_cleanup.retrying import call, describe, http_status

LOCK_NAMESPACE = "kube-system"
LOCK_NAME = "kuryr-migrate"
LEASE_SECONDS = 60  # a dead run's lock is free after this long without renewal
RENEW_EVERY = LEASE_SECONDS / 4


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _micro(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def holder_identity(command: str) -> str:
    return f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()} ({command}, {uuid.uuid4().hex[:8]})"


_HOLDER = re.compile(r"^(?P<user>[^@]*)@(?P<host>\S+) pid (?P<pid>\d+) ")


def _dead_here(holder: str) -> bool:
    """A holder that ran on this machine and whose process is gone (SIGKILLed, the shell closed): its
    lock is stale now, not in a minute."""
    match = _HOLDER.match(holder)
    if not match or match["host"] != socket.gethostname():
        return False
    try:
        os.kill(int(match["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def expiry(lease: dict[str, Any]) -> dt.datetime | None:
    spec = lease.get("spec") or {}
    renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
    if renewed is None:
        return None
    return renewed + dt.timedelta(seconds=int(spec.get("leaseDurationSeconds") or LEASE_SECONDS))


class LockLost(Exception):
    pass


class RunLock:
    """The Lease, taken for one command's writes and renewed in the background until released."""

    def __init__(self, cluster: Any, policy: Any, command: str, take_over: bool = False,
                 on_lost: Callable[[str], None] | None = None, journal: Any = None) -> None:
        self.cluster = cluster
        self.journal = journal
        self.policy = policy
        self.holder = holder_identity(command)
        self.take_over = take_over
        self.on_lost = on_lost or (lambda reason: None)
        self.lease: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read(self) -> dict[str, Any] | None:
        return call(self.policy, lambda: self.cluster.get(k.LEASE, LOCK_NAME, LOCK_NAMESPACE), retry_conflicts=False)

    def _spec(self, transitions: int, acquired: dt.datetime) -> dict[str, Any]:
        now = _now()
        return {"holderIdentity": self.holder, "leaseDurationSeconds": LEASE_SECONDS,
                "acquireTime": _micro(acquired), "renewTime": _micro(now), "leaseTransitions": transitions}

    def _journal(self, event: str, lease: dict[str, Any] | None) -> None:
        if self.journal is not None:
            self.journal.write(event, kind="Lease", id=f"{LOCK_NAMESPACE}/{LOCK_NAME}", holder=self.holder,
                               object=lease)

    def acquire(self) -> None:
        current = self._read()
        self._journal("lock", current)
        if current is None:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": LOCK_NAME, "namespace": LOCK_NAMESPACE},
                    "spec": self._spec(0, _now())}
            try:
                self.lease = self.cluster.create(k.LEASE, body, LOCK_NAMESPACE)
            except Exception as exc:
                if http_status(exc) != 409:
                    raise UsageError(f"cannot take the run lock (Lease {LOCK_NAMESPACE}/{LOCK_NAME}): "
                                     f"{describe(exc)}") from exc
                current = self._read()  # someone created it first: judge it below
        if self.lease is None:
            self._take(current or {})
        self._thread = threading.Thread(target=self._renew_loop, name="kuryr-migrate-lock", daemon=True)
        self._thread.start()

    def _take(self, current: dict[str, Any]) -> None:
        spec = current.get("spec") or {}
        holder = spec.get("holderIdentity")
        ends = expiry(current)
        now = _now()
        if holder and ends is not None and ends > now and not self.take_over and not _dead_here(holder):
            left = int((ends - now).total_seconds())
            raise UsageError(
                f"another kuryr-migrate run holds the lock (Lease {LOCK_NAMESPACE}/{LOCK_NAME}): {holder}, renewed "
                f"{spec.get('renewTime')}, expires in {left} s unless renewed; nothing was changed (wait for it, or "
                f"pass --take-over-lock if that run is dead)")
        body = dict(current)
        body["spec"] = self._spec(int(spec.get("leaseTransitions") or 0) + 1, now)
        try:
            self.lease = self.cluster.replace(k.LEASE, LOCK_NAME, LOCK_NAMESPACE, body)
        except Exception as exc:
            if http_status(exc) == 409:
                raise UsageError("another kuryr-migrate run took the lock at the same moment; nothing was "
                                 "changed") from exc
            raise UsageError(f"cannot take the run lock (Lease {LOCK_NAMESPACE}/{LOCK_NAME}): "
                             f"{describe(exc)}") from exc

    def _renew_loop(self) -> None:
        while not self._stop.wait(RENEW_EVERY):
            try:
                self.renew()
            except LockLost as exc:
                self.on_lost(str(exc))
                return
            except Exception:  # noqa: BLE001 - the API down for a while (masters rebooting): next time
                continue

    def renew(self) -> None:
        lease = self.lease or {}
        spec = dict(lease.get("spec") or {})
        body = dict(lease)
        spec["renewTime"] = _micro(_now())
        body["spec"] = spec
        try:
            self.lease = self.cluster.replace(k.LEASE, LOCK_NAME, LOCK_NAMESPACE, body)
        except Exception as exc:
            if http_status(exc) in (404, 409):
                current = self._read()
                if current is None or (current.get("spec") or {}).get("holderIdentity") != self.holder:
                    who = ((current or {}).get("spec") or {}).get("holderIdentity") or "nobody"
                    raise LockLost(f"the run lock was taken over by {who}") from exc
                self.lease = current
                return
            raise

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.lease is None:
            return
        try:
            current = self._read()
            if current is not None and (current.get("spec") or {}).get("holderIdentity") == self.holder:
                self._journal("unlock", current)
                body = dict(current)
                body["spec"] = {**(current.get("spec") or {}), "holderIdentity": None, "renewTime": None}
                self.cluster.replace(k.LEASE, LOCK_NAME, LOCK_NAMESPACE, body)
        except Exception:  # noqa: BLE001 - an unreleased lock expires on its own
            pass
        self.lease = None


def _interrupt(reason: str) -> None:
    # Stop the run as Ctrl-C does (state and journal stay valid): another run now owns the cluster.
    _thread.interrupt_main()


@contextmanager
def held(ctx: Any, command: str) -> Iterator[RunLock]:
    """Hold the run lock for the writes of `command` (re-entrant within one command: `run` holds it
    across the migration and the cleanup)."""
    existing: RunLock | None = getattr(ctx, "run_lock", None)
    if existing is not None:
        yield existing
        return
    lock = RunLock(ctx.cluster, ctx.options.retry.probe(), command, take_over=ctx.options.take_over_lock,
                   on_lost=_interrupt, journal=ctx.journal)
    lock.acquire()
    ctx.run_lock = lock
    try:
        yield lock
    finally:
        ctx.run_lock = None
        lock.release()
