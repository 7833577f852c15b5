"""Watches: every change of a stored object, kept in a bounded history and streamed as JSON lines.

`store.kube_listeners` feeds the history (every write through `resources.save_object`/`drop_object`
is one event, as every apiserver write is one etcd revision); a watch answers the events after its
resourceVersion, polling the history with the store lock released.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kuryr_cleanup.sim.http import Request, Response
from kuryr_cleanup.sim.kube.errors import bad_request, status_error
from kuryr_cleanup.sim.kube.resources import Kind, serialize
from kuryr_cleanup.sim.kube.selectors import Requirement, matches
from kuryr_cleanup.sim.store import Store

WATCH_HISTORY = 50_000  # changes kept for watches that resume from a resourceVersion
WATCH_MAX_SECONDS = 60.0  # one watch connection at most; clients re-watch from their last version
WATCH_POLL_SECONDS = 0.02


@dataclass
class WatchEvent:
    rv: int
    store_key: str
    namespace: str
    name: str
    type: str
    data: bytes  # the object as it was, serialized at the time of the change


class Watches:
    """The change history of one store, and the watches served from it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.history: deque[WatchEvent] = deque(maxlen=WATCH_HISTORY)
        self.history_floor = 0  # watches from an older resourceVersion get 410 Expired
        store.kube_listeners.append(self.record)

    def record(self, event: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata", {})
        rv = int(meta.get("resourceVersion") or 0)
        if len(self.history) == self.history.maxlen and self.history:
            self.history_floor = self.history[0].rv
        self.history.append(
            WatchEvent(rv, Store.kube_key(obj["apiVersion"], obj["kind"]), meta.get("namespace") or "",
                       meta.get("name", ""), event, serialize(obj))
        )

    def watch(
        self,
        kind: Kind,
        namespace: str | None,
        labels: list[Requirement],
        fields: list[tuple[str, str, str]],
        request: Request,
    ) -> Response:
        rv_text = request.arg("resourceVersion") or ""
        send_initial = (request.arg("sendInitialEvents") or "").lower() == "true"
        bookmarks = (request.arg("allowWatchBookmarks") or "").lower() == "true"
        timeout = min(float(request.arg("timeoutSeconds") or WATCH_MAX_SECONDS), WATCH_MAX_SECONDS)
        name_filter = next((v for p, op, v in fields if p == "metadata.name" and op == "="), None)
        if namespace is None:
            namespace = next((v for p, op, v in fields if p == "metadata.namespace" and op == "="), None)
        store_key = kind.store_key
        initial: list[bytes] = []
        if rv_text in ("", "0") or send_initial:
            objects = self.store.kube_objects(kind.api_version, kind.kind)
            for key in sorted(objects):
                obj = objects[key]
                if namespace is not None and key[0] != namespace:
                    continue
                if matches(obj, labels, fields):
                    initial.append(serialize({"type": "ADDED", "object": obj}) + b"\n")
            start = int(self.store.next_resource_version())
        else:
            try:
                start = int(rv_text)
            except ValueError as exc:
                raise bad_request(f"invalid resource version: {rv_text}") from exc
            if start < self.history_floor:
                gone = status_error(410, "Expired", f"too old resource version: {start} ({self.history_floor})")
                return Response(200, serialize({"type": "ERROR", "object": gone.body}) + b"\n")
        if send_initial and bookmarks:
            mark = {"kind": kind.kind, "apiVersion": kind.api_version,
                    "metadata": {"resourceVersion": str(start), "annotations": {"k8s.io/initial-events-end": "true"}}}
            initial.append(serialize({"type": "BOOKMARK", "object": mark}) + b"\n")
        needs_object = bool(labels) or any(p not in ("metadata.name", "metadata.namespace") for p, _, _ in fields)

        def wanted(event: WatchEvent) -> bool:
            if event.store_key != store_key:
                return False
            if namespace is not None and event.namespace != namespace:
                return False
            if name_filter is not None and event.name != name_filter:
                return False
            return not needs_object or matches(json.loads(event.data), labels, fields)

        return Response(200, stream=self._stream(initial, start, wanted, timeout))

    def _stream(
        self, initial: list[bytes], start: int, wanted: Callable[[WatchEvent], bool], timeout: float
    ) -> Iterator[bytes]:
        yield from initial
        deadline = time.monotonic() + timeout
        last = start
        while time.monotonic() < deadline:
            with self.store.lock:
                self.store.tick()
                fresh: list[WatchEvent] = []
                for event in reversed(self.history):
                    if event.rv <= last:
                        break
                    fresh.append(event)
            if not fresh:
                time.sleep(WATCH_POLL_SECONDS)
                continue
            fresh.reverse()
            last = fresh[-1].rv
            for event in fresh:
                if wanted(event):
                    yield b'{"type":"' + event.type.encode() + b'","object":' + event.data + b"}\n"
