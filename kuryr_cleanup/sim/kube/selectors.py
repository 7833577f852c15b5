"""Label and field selectors, and the continue tokens of paged lists."""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import posixpath
import re
from dataclasses import dataclass
from typing import Any

from kuryr_cleanup.sim.kube.errors import bad_request


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!":
            return self.key not in labels
        if self.op in ("=", "in"):
            return self.key in labels and labels[self.key] in self.values
        # "!=" and "notin" match objects without the label too, as in Kubernetes.
        return self.key not in labels or labels[self.key] not in self.values


_SET_REQ = re.compile(r"^\s*([A-Za-z0-9._/-]+)\s+(in|notin)\s*\(([^)]*)\)\s*$")


def _split_selector(text: str) -> list[str]:
    """Split on commas that are not inside a `(...)` value set."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text: str) -> list[Requirement]:
    reqs = []
    for part in _split_selector(text):
        m = _SET_REQ.match(part)
        if m:
            values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            reqs.append(Requirement(m.group(1), m.group(2), values))
        elif "!=" in part:
            key, value = part.split("!=", 1)
            reqs.append(Requirement(key.strip(), "!=", (value.strip(),)))
        elif "==" in part:
            key, value = part.split("==", 1)
            reqs.append(Requirement(key.strip(), "=", (value.strip(),)))
        elif "=" in part:
            key, value = part.split("=", 1)
            reqs.append(Requirement(key.strip(), "=", (value.strip(),)))
        elif part.startswith("!"):
            reqs.append(Requirement(part[1:].strip(), "!"))
        else:
            if not re.fullmatch(r"[A-Za-z0-9._/-]+", part):
                raise bad_request(f"unable to parse requirement: invalid label key {part!r}")
            reqs.append(Requirement(part, "exists"))
    return reqs


def parse_field_selector(text: str) -> list[tuple[str, str, str]]:
    fields = []
    for part in _split_selector(text):
        for op in ("!=", "==", "="):
            if op in part:
                key, value = part.split(op, 1)
                fields.append((key.strip(), "!=" if op == "!=" else "=", value.strip()))
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
    return fields


def _field_value(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return ""
        value = value.get(part)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def matches(obj: dict[str, Any], labels: list[Requirement], fields: list[tuple[str, str, str]]) -> bool:
    if labels:
        obj_labels = obj.get("metadata", {}).get("labels") or {}
        if not all(r.matches(obj_labels) for r in labels):
            return False
    for path, op, value in fields:
        actual = _field_value(obj, path)
        if (actual == value) != (op == "="):
            return False
    return True


def encode_continue(rv: str, last_key: tuple[str, str]) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": int(rv), "start": f"{last_key[0]}/{last_key[1]}\u0000"}
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[str, str]:
    """The (namespace, name) a continue token starts after; 400 with the apiserver's message (etcd3
    store's decodeContinue, Go's base64 and JSON errors) for a token it would not take."""
    try:
        raw = _raw_url_b64decode(token)
        value = _go_json_object(raw)
        if value.get("v") != "meta.k8s.io/v1":
            raise ValueError(f'server does not recognize this encoded version "{value.get("v") or ""}"')
        if not value.get("rv"):
            raise ValueError("incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
        start = str(value.get("start") or "")
        if not start:
            raise ValueError("encoded start key empty (version meta.k8s.io/v1)")
        key = start if start.startswith("/") else "/" + start
        if posixpath.normpath(key) != key:  # path.Clean: no way above the list's own key prefix
            raise ValueError(start)
    except ValueError as exc:
        raise bad_request(f"invalid continue token: continue key is not valid: {exc}") from exc
    namespace, _, name = start.rstrip("\u0000").partition("/")
    return (namespace, name)


_B64_URL = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _raw_url_b64decode(token: str) -> bytes:
    """Go's base64.RawURLEncoding.DecodeString, with its CorruptInputError positions."""
    for index, char in enumerate(token):
        if char not in _B64_URL:
            raise ValueError(f"illegal base64 data at input byte {index}")
    if len(token) % 4 == 1:
        raise ValueError(f"illegal base64 data at input byte {len(token) - 1}")
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"illegal base64 data at input byte {len(token) - 1}") from exc


def _go_quote_byte(byte: int) -> str:
    """How Go's JSON decoder names an unexpected byte: strconv.Quote of it as a rune, in single quotes."""
    if byte == ord("'"):
        return "'\\''"
    if byte == ord('"'):
        return "'\"'"
    char = chr(byte)
    escapes = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", "\\": "\\\\"}
    if char in escapes:
        return f"'{escapes[char]}'"
    if byte < 0x20 or byte == 0x7F:
        return f"'\\x{byte:02x}'"
    if not char.isprintable():
        return f"'\\u{byte:04x}'"
    return f"'{char}'"


def _go_json_object(raw: bytes) -> dict[str, Any]:
    """json.Unmarshal into the token struct, with Go's words for the common failures."""
    text = raw.lstrip(b" \t\r\n")
    if not text:
        raise ValueError("unexpected end of JSON input")
    if text[:1] not in b'{["-0123456789tfn':
        raise ValueError(f"invalid character {_go_quote_byte(text[0])} looking for beginning of value")
    try:
        value = json.loads(raw.decode("utf-8", errors="replace"))
    except ValueError as exc:
        raise ValueError("unexpected end of JSON input") from exc
    if not isinstance(value, dict):
        kinds = {list: "array", str: "string", bool: "bool", int: "number", float: "number"}
        raise ValueError(f"json: cannot unmarshal {kinds.get(type(value), 'value')} into Go value of type "
                         "etcd3.continueToken")
    return value


def keys_after(keys: list[tuple[str, str]], start: tuple[str, str]) -> int:
    """Where a page that continues after `start` begins in the sorted `keys`."""
    return bisect.bisect_right(keys, start)
