"""Kubernetes API errors: `kind: Status` documents with the apiserver's reason, code and message."""

from __future__ import annotations

from typing import Any

from kuryr_cleanup.sim.http import ApiError
from kuryr_cleanup.sim.kube.resources import Kind


def status_error(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> ApiError:
    """An apiserver error: a `kind: Status` document with its HTTP code."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return ApiError(code, body)


def status_details(kind: Kind, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if kind.group:
        details["group"] = kind.group
    details["kind"] = kind.plural
    return details


def not_found(kind: Kind, name: str) -> ApiError:
    return status_error(404, "NotFound", f'{kind.resource} "{name}" not found', status_details(kind, name))


def conflict(kind: Kind, name: str, why: str) -> ApiError:
    return status_error(
        409, "Conflict", f'Operation cannot be fulfilled on {kind.resource} "{name}": {why}', status_details(kind, name)
    )


def precondition_failed(kind: Kind, name: str, why: str) -> ApiError:
    """A DELETE's failed precondition: rest.BeforeDelete names the object by its Kind, not its resource."""
    group_kind = f"{kind.kind}.{kind.group}" if kind.group else kind.kind
    details: dict[str, Any] = {"name": name}
    if kind.group:
        details["group"] = kind.group
    details["kind"] = kind.kind
    return status_error(409, "Conflict", f'Operation cannot be fulfilled on {group_kind} "{name}": {why}', details)


def deleted_status(kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
    """The answer to a DELETE that removed the object (every kind's but pods', which return the pod)."""
    details = status_details(kind, obj["metadata"]["name"])
    details["uid"] = obj["metadata"].get("uid")
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


STALE = "the object has been modified; please apply your changes to the latest version and try again"


def invalid(kind: Kind, name: str, field: str, cause_reason: str, message: str, by_resource: bool = False) -> ApiError:
    """422 Invalid. `by_resource`: named as the generic store names an object whose Go type it does not know
    (a custom resource): by its resource (`kuryrports.openstack.org`), not its Kind."""
    label = kind.plural if by_resource else kind.kind
    group_kind = f"{label}.{kind.group}" if kind.group else label
    details: dict[str, Any] = {"name": name}
    if kind.group:
        details["group"] = kind.group
    details["kind"] = label
    details["causes"] = [{"reason": cause_reason, "message": message, "field": field}]
    return status_error(422, "Invalid", f'{group_kind} "{name}" is invalid: {field}: {message}', details)


def invalid_fields(kind: Kind, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422 Invalid with several causes (field, reason, message); the message lists them as Go's
    aggregate error does (one alone, several in brackets)."""
    group_kind = f"{kind.kind}.{kind.group}" if kind.group else kind.kind
    texts = [f"{field}: {message}" for field, _, message in causes]
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details: dict[str, Any] = {"name": name}
    if kind.group:
        details["group"] = kind.group
    details["kind"] = kind.kind
    details["causes"] = [{"reason": reason, "message": message, "field": field} for field, reason, message in causes]
    return status_error(422, "Invalid", f'{group_kind} "{name}" is invalid: {summary}', details)


def bad_request(message: str) -> ApiError:
    return status_error(400, "BadRequest", message)


def unsupported_media_type(accepted: tuple[str, ...]) -> ApiError:
    return status_error(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: " + ", ".join(accepted),
    )
