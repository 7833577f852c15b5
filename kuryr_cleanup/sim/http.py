"""The small HTTP toolkit the simulated APIs are written with: requests, responses, routing."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Request:
    method: str
    path: str  # below the service's prefix, e.g. /v2.0/ports/abc
    query_string: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # named groups of the matched route
    auth: Any = None  # who the token is (keystone.AuthContext), set by the service that checked it

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.query_string, keep_blank_values=True)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes/str -> as is; None -> empty
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    # A streaming body (watch): chunks are written as they come, with chunked transfer encoding.
    stream: Iterator[bytes] | None = None

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


class ApiError(Exception):
    """Raised by a handler to answer with an error; `body` is the service's own error document."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


Handler = Callable[[Request], Response]


class Service:
    """One simulated API: a name (for logs and fault rules), a URL prefix and its routes.

    Subclasses register handlers with `self.route(method, pattern, handler)`; patterns are regular
    expressions over the path below the prefix, with named groups, matched in full.
    """

    name = "service"
    prefix = ""  # e.g. /networking; "" for the Kubernetes API, which has its own port

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method.upper(), re.compile(pattern), handler))

    def fault_response(self, status: int, retry_after: float | None) -> Response:
        """The answer to an injected fault; services override it to speak their error format."""
        headers = {"Retry-After": str(max(0, math.ceil(retry_after)))} if retry_after is not None else {}
        return Response(status, {"error": {"code": status, "message": "injected fault"}}, headers)

    def not_found(self, request: Request) -> Response:
        return Response(404, {"error": {"message": f"no route for {request.method} {request.path}"}})

    def method_not_allowed(self, request: Request) -> Response:
        return Response(405, {"error": {"message": f"{request.method} not allowed on {request.path}"}})

    def dispatch(self, request: Request) -> Response:
        path_matched = False
        for method, pattern, handler in self._routes:
            m = pattern.fullmatch(request.path)
            if not m:
                continue
            path_matched = True
            if method != request.method and method != "*":
                continue
            request.params = {k: v for k, v in m.groupdict().items() if v is not None}
            try:
                return handler(request)
            except ApiError as err:
                return Response(err.status, err.body, headers=dict(err.headers))
        if path_matched:
            return self.method_not_allowed(request)
        return self.not_found(request)
