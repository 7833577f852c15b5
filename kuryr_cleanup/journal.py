"""The run directory: the append-only journal (SPEC S4) and the run state that makes re-runs finish
the job (S3).

journal.jsonl: one JSON object per line, fsynced before the change it describes is sent, so even a
power cut leaves the full body of every object the tool was about to change or delete.
state.json: facts that can only be learnt from objects the run removes (the Kuryr router id, the
KuryrNetworks' network and subnet ids, Kuryr's floating-IP allocations) and migration progress (node
boot ids), merged across runs and replaced atomically.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

JOURNAL_FILE = "journal.jsonl"
STATE_FILE = "state.json"

# Keys that never belong in a journal line, wherever they appear in an object.
_SECRET_KEYS = frozenset({
    "password", "token", "secret", "auth", "x-auth-token", "client-key-data", "application_credential_secret",
})


# A journal line naming one of these keys is scrubbed; the others (nearly all) are written as encoded.
_SECRET_KEY_IN_JSON = re.compile(r'"(?:' + "|".join(re.escape(k) for k in sorted(_SECRET_KEYS)) + r')"\s*:',
                                 re.IGNORECASE)

_second: tuple[int, str] = (0, "")


def _now() -> str:
    """UTC with milliseconds, as datetime's isoformat(timespec="milliseconds") writes it; the part up to
    the second is formatted once a second (a run writes thousands of lines a second)."""
    global _second
    now = time.time()
    whole = int(now)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int((now - whole) * 1000):03d}+00:00"


def scrub(value: Any) -> Any:
    """A copy of `value` with anything that looks like a credential replaced."""
    if isinstance(value, dict):
        return {k: ("<redacted>" if str(k).lower() in _SECRET_KEYS else scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


class Journal:
    """Append-only JSON lines, fsynced before `write` returns. Safe to share between worker threads.

    Group commit: twenty workers each waiting for their own fsync would serialise the whole run on
    the disk; instead, one fsync covers every line written before it started, and a writer whose
    line is already covered returns at once.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._written = 0
        self._synced = 0
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run

    def write(self, event: str, sync: bool = True, **fields: Any) -> None:
        """Append a record; with `sync` (the default) it is on disk when this returns. Records of
        results may skip the wait: losing one to a crash only makes the next run check again."""
        record = {"time": _now(), "event": event, **fields}
        line = json.dumps(record, sort_keys=True, default=str)
        if _SECRET_KEY_IN_JSON.search(line):
            line = json.dumps(scrub(record), sort_keys=True, default=str)
        with self._lock:
            self._fh.write(line + "\n")
            self._fh.flush()
            self._written += 1
            mine = self._written
        if not sync:
            return
        with self._sync_lock:
            if self._synced >= mine:
                return
            with self._lock:
                upto = self._written
            os.fsync(self._fh.fileno())
            self._synced = upto

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.close()


class StateError(Exception):
    pass


# What each fact of the run state is: a state of another shape was not written by this tool.
_SHAPES: dict[str, type] = {"identity": dict, "infra_id": str, "router_ids": list, "kuryr_networks": dict,
                            "kuryr_lbs": dict, "np_security_groups": dict, "migration": dict}


class RunState:
    """A small JSON document of facts learnt by earlier runs, merged and saved atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.data: dict[str, Any] = {}
        if path.exists():
            # An unreadable state must stop the run, not reset it: the facts in it (the Kuryr router,
            # the networks of KuryrNetworks already gone, recorded boot IDs) may exist nowhere else.
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise StateError(f"cannot read the run state {path}: {exc}") from exc
            if not isinstance(data, dict):
                raise StateError(f"the run state {path} is not a JSON object")
            for key, kind in _SHAPES.items():
                if data.get(key) is not None and not isinstance(data[key], kind):
                    raise StateError(f"the run state {path} is damaged: {key} is a {type(data[key]).__name__}, "
                                     f"not a {kind.__name__} (restore it, or use another --run-dir)")
            self.data = data

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self.data.get(key, default)

    def merge_dict(self, key: str, values: dict[str, Any]) -> dict[str, Any]:
        """Union `values` into the dict at `key` (earlier facts are kept) and return the result."""
        with self._lock:
            current = dict(self.data.get(key) or {})
            current.update(values)
            self.data[key] = current
            return dict(current)

    def set(self, key: str, value: Any) -> None:
        with self._lock:
            self.data[key] = value

    def save(self) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(self.data, fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(self.path)
