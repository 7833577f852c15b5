"""How failures are classified and retried (SPEC S5).

Three kinds of failure, as kopf and libnuke tell them apart:
- transient: connection errors, 5xx, 429 (honouring Retry-After): retried with exponential backoff
  and jitter, a bounded number of times;
- waiting on a dependency: 409 while something it depends on is still going away (a port still a
  subport, an LB still PENDING_*): retried at a steady pace until a deadline;
- permanent: anything else (403, 400, ...): reported at once; the engine goes on with independent work.
Already gone (404) is not a failure at all: callers treat it as done.
"""

from __future__ import annotations

import enum
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import tenacity
import urllib3.exceptions as u3
from keystoneauth1 import exceptions as ksa_exc
from openstack import exceptions as os_exc

from kuryr_cleanup.kube import api_status

T = TypeVar("T")


class Failure(enum.Enum):
    TRANSIENT = "transient"
    DEPENDENCY = "dependency"
    GONE = "gone"
    PERMANENT = "permanent"


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of an error from openstacksdk, keystoneauth (raw proxy calls) or kubernetes."""
    if isinstance(exc, os_exc.HttpException):
        return int(exc.status_code) if exc.status_code else None
    if isinstance(exc, ksa_exc.HttpError):
        return int(exc.http_status) if exc.http_status else None
    return api_status(exc)


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, (ksa_exc.ConnectionError, ConnectionError, TimeoutError)):
        return Failure.TRANSIENT
    if isinstance(exc, (u3.ProtocolError, u3.MaxRetryError, u3.NewConnectionError, u3.TimeoutError)):
        return Failure.TRANSIENT
    status = http_status(exc)
    if status is None:
        return Failure.PERMANENT
    if status == 404:
        return Failure.GONE
    if status == 409:
        return Failure.DEPENDENCY
    if status == 429 or status >= 500:
        return Failure.TRANSIENT
    return Failure.PERMANENT


def retry_after(exc: BaseException) -> float | None:
    """The Retry-After header of a 429/503, in seconds, if the server sent one."""
    headers: Any = None
    response = getattr(exc, "response", None)
    if response is not None:
        headers = getattr(response, "headers", None)
    if headers is None:
        headers = getattr(exc, "headers", None)
    if not headers:
        return None
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds for retries. `scale` shrinks every wait (tests and rehearsals on the simulator)."""

    transient_attempts: int = 8
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    dependency_timeout: float = 600.0
    dependency_interval: float = 3.0
    scale: float = 1.0

    def probe(self) -> RetryPolicy:
        """For the first contact with an API: a few quick tries, so an unreachable endpoint or a wrong
        URL is reported in seconds, not after the full transient budget."""
        return RetryPolicy(5, self.backoff_initial, 4.0, 0.0, self.dependency_interval, self.scale)

    def scaled(self, scale: float) -> RetryPolicy:
        return RetryPolicy(
            self.transient_attempts,
            self.backoff_initial,
            self.backoff_max,
            self.dependency_timeout,
            self.dependency_interval,
            scale,
        )


class _Wait(tenacity.wait.wait_base):
    """Retry-After when the server gave one; otherwise jittered exponential backoff for transient
    failures and a steady interval for dependencies."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.jitter = tenacity.wait_random_exponential(multiplier=policy.backoff_initial, max=policy.backoff_max)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if exc is not None:
            after = retry_after(exc)
            if after is not None:
                # The server said when (not scaled: it knows its own limits), within our own bound:
                # a Retry-After of an hour must not park a worker for an hour.
                return min(after, self.policy.backoff_max)
            if classify(exc) is Failure.DEPENDENCY:
                return self.policy.dependency_interval * self.policy.scale * (0.75 + random.random() / 2)
        return float(self.jitter(retry_state)) * self.policy.scale


class _Stop(tenacity.stop.stop_base):
    def __init__(self, policy: RetryPolicy, started: float) -> None:
        self.policy = policy
        self.started = started

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if exc is not None and classify(exc) is Failure.DEPENDENCY:
            return time.monotonic() - self.started > self.policy.dependency_timeout * self.policy.scale
        return retry_state.attempt_number >= self.policy.transient_attempts


_ABORT = threading.Event()


class RetryAborted(Exception):
    """A retry wait was cut short because the run is stopping (Ctrl-C, SIGTERM)."""


def abort_waits() -> None:
    """Wake every worker sleeping between retries and make it give up: a 409 loop may otherwise keep
    Ctrl-C waiting for minutes."""
    _ABORT.set()


def allow_waits() -> None:
    _ABORT.clear()


def _sleep(seconds: float) -> None:
    if _ABORT.wait(seconds):
        raise RetryAborted("stopped while waiting to retry")


def call(policy: RetryPolicy, fn: Callable[[], T], *, retry_conflicts: bool = True) -> T:
    """Call `fn`, retrying transient failures (and 409s, unless `retry_conflicts` is False) within
    the policy's bounds; the last exception is raised when they are exhausted."""

    def retryable(exc: BaseException) -> bool:
        kind = classify(exc)
        return kind is Failure.TRANSIENT or (kind is Failure.DEPENDENCY and retry_conflicts)

    # Most calls succeed at once: try once before building tenacity's machinery (~0.25 ms a call,
    # as much as the request itself). A retryable failure is then replayed as tenacity's first
    # attempt, so waits, bounds and the deadline are exactly as if tenacity had made it.
    started = time.monotonic()
    try:
        return fn()
    except Exception as exc:
        if not retryable(exc):
            raise
        first: BaseException | None = exc

    def attempt() -> T:
        nonlocal first
        if first is not None:
            failed, first = first, None
            raise failed
        return fn()

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(retryable),
        wait=_Wait(policy),
        stop=_Stop(policy, started),
        sleep=_sleep,
        reraise=True,
    )
    return retrying(attempt)


def _json(text: Any) -> Any:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str) or not text.strip().startswith("{"):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def cloud_reason(exc: BaseException) -> tuple[str, str] | None:
    """The service's own (type, message) from an error body, when it sent one.

    Neutron: `{"NeutronError": {"type", "message", "detail"}}`; Octavia: `{"faultcode", "faultstring"}`;
    Kubernetes: a `kind: Status` with `reason` and `message`. keystoneauth's raw requests decode none of
    them (its text is "Unrecognized schema in response body"), so the body is read here.
    """
    response = getattr(exc, "response", None)
    body = _json(getattr(response, "text", None)) if response is not None else None
    if body is None:
        body = _json(getattr(exc, "body", None))
    if not isinstance(body, dict):
        return None
    neutron = body.get("NeutronError")
    if isinstance(neutron, dict) and neutron.get("message"):
        return str(neutron.get("type") or ""), str(neutron["message"])
    if body.get("faultstring"):
        return "", str(body["faultstring"])
    if body.get("kind") == "Status" and body.get("message"):
        return str(body.get("reason") or ""), str(body["message"])
    if isinstance(body.get("error"), dict) and body["error"].get("message"):  # Keystone, Nova
        return str(body["error"].get("title") or ""), str(body["error"]["message"])
    for value in body.values():  # Nova: {"conflictingRequest": {"message", "code"}}
        if isinstance(value, dict) and value.get("message"):
            return "", str(value["message"])
    return None


def describe(exc: BaseException) -> str:
    """One line saying what went wrong, with the cloud's own error type and message when it sent them
    (e.g. `HTTP 409 SecurityGroupInUse: Security Group <id> in use.`); never credentials (error bodies
    and exception texts carry no tokens)."""
    status = http_status(exc)
    reason = cloud_reason(exc) if status else None
    if reason is not None:
        kind, text = reason
    else:
        kind, text = "", str(getattr(exc, "details", None) or getattr(exc, "message", None) or exc)
    text = " ".join(text.strip().split())
    if len(text) > 300:
        text = text[:297] + "..."
    if status:
        return f"HTTP {status} {kind}: {text}" if kind else f"HTTP {status}: {text}"
    return f"{type(exc).__name__}: {text}"
