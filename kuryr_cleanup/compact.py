"""Listed API objects held for a whole run with only the fields planning reads at hand.

A cleanup at scale holds tens of thousands of listed OpenStack resources (every port on the Kuryr
networks, every load balancer with its listeners and pools, every security group) from discovery to
the end of the run: planning reads a few fields of each, and the journal records each whole before
it is changed (S4). As decoded Python dicts they take four to five times their JSON's size (5 KB for
a Neutron port of 1.1 KB); measured at L (22,000 ports, 4,000 LBs), they were half the tool's memory.

The fields planning does not read go to a spill file (an unlinked temporary file, read back by
position): the full object goes to the journal, not to RAM. Kept in memory, even compressed, they
were ~50 MB at L.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from typing import IO, Any

_MISSING = object()


log = logging.getLogger(__name__)

class _Spill:
    """Append-only bytes in an unlinked temporary file (created on first use, gone when the process
    ends: never a named file, so nothing is left behind, `--plan` included), read back by offset: safe
    from any thread (appends under a lock, reads by pread). If the temporary directory is full or
    unusable, the bytes stay in memory instead (handles below zero): a small /tmp costs memory, not
    the run."""

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None
        self._end = 0
        self._memory: list[bytes] | None = None
        self._lock = threading.Lock()

    def put(self, data: bytes) -> int:
        with self._lock:
            if self._memory is None:
                try:
                    return self._write(data)
                except OSError as exc:
                    log.warning("cannot use the temporary directory for the listings' unread fields (%s): they "
                                "stay in memory", exc)
                    self._memory = []
            self._memory.append(bytes(data))
            return -len(self._memory)

    def _write(self, data: bytes) -> int:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="kuryr-migrate-", buffering=0)  # noqa: SIM115 - for the process
        at = self._end
        view = memoryview(data)
        while view:
            view = view[os.write(self._file.fileno(), view):]
        self._end += len(data)
        return at

    def get(self, at: int, size: int) -> bytes:
        if at < 0:
            assert self._memory is not None
            return self._memory[-at - 1]
        assert self._file is not None
        return os.pread(self._file.fileno(), size, at)


_SPILL = _Spill()


class CompactRecord(dict):
    """A dict of the fields in `keep`; the others stay one encoded JSON object until something
    reads them (each such read decodes them for that read only: planning never does, the journal
    does once per object).

    It is a dict: `json.dumps`, `dict(...)`, `items()`, equality and copies see the whole object.
    Writing to it first makes it a whole dict again (nothing writes to listed records today).
    """

    __slots__ = ("_at", "_size")

    def __init__(self, obj: dict[str, Any], keep: frozenset[str]) -> None:
        super().__init__({key: value for key, value in obj.items() if key in keep})
        rest = {key: value for key, value in obj.items() if key not in keep}
        encoded = json.dumps(rest, separators=(",", ":")).encode() if rest else b""
        self._at = _SPILL.put(encoded) if encoded else 0
        self._size = len(encoded)

    def _others(self) -> dict[str, Any]:
        return json.loads(_SPILL.get(self._at, self._size)) if self._size else {}

    def _whole(self) -> None:
        """Decode the rest for good (before a write)."""
        if self._size:
            for key, value in self._others().items():
                dict.__setitem__(self, key, value)
            self._size = 0

    # -- reads ---------------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        value = self._others().get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        return self._others().get(key, default) if self._size else default

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or (self._size > 0 and key in self._others())

    def keys(self) -> Any:
        return [*dict.keys(self), *self._others()]

    def items(self) -> Any:
        return [*dict.items(self), *self._others().items()]

    def values(self) -> Any:
        return [*dict.values(self), *self._others().values()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return dict.__len__(self) + len(self._others())

    def __bool__(self) -> bool:  # `record or {}` must not decode the rest
        return self._size > 0 or dict.__len__(self) > 0

    def copy(self) -> dict[str, Any]:
        return dict(self.items())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, dict) and dict(self.items()) == dict(other.items())

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None

    def __repr__(self) -> str:
        return repr(dict(self.items()))

    def __reduce__(self) -> Any:
        return dict, (dict(self.items()),)

    # -- writes: the whole object first ---------------------------------------------------------
    def __setitem__(self, key: str, value: Any) -> None:
        self._whole()
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        self._whole()
        dict.__delitem__(self, key)

    def pop(self, key: str, *default: Any) -> Any:
        self._whole()
        return dict.pop(self, key, *default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._whole()
        return dict.setdefault(self, key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._whole()
        dict.update(self, *args, **kwargs)

    def popitem(self) -> Any:
        self._whole()
        return dict.popitem(self)

    def clear(self) -> None:
        self._size = 0
        dict.clear(self)


def compact(records: Iterable[dict[str, Any]], keep: frozenset[str] | None) -> list[dict[str, Any]]:
    """`records` as CompactRecords keeping `keep` at hand (all of them whole when `keep` is None)."""
    if keep is None:
        return list(records)
    return [CompactRecord(r, keep) for r in records]
