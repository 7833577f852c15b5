"""The patch types the apiserver accepts: JSON merge patch, JSON patch and strategic merge patch."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class JsonPatchError(Exception):
    pass


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise JsonPatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve(doc: Any, parts: list[str], path: str) -> Any:
    for part in parts:
        if isinstance(doc, dict):
            if part not in doc:
                raise JsonPatchError(f"missing path: {path}")
            doc = doc[part]
        elif isinstance(doc, list):
            try:
                doc = doc[int(part)]
            except (ValueError, IndexError) as exc:
                raise JsonPatchError(f"missing path: {path}") from exc
        else:
            raise JsonPatchError(f"missing path: {path}")
    return doc


def _list_index(container: list[Any], key: str, path: str, for_add: bool) -> int:
    if key == "-" and for_add:
        return len(container)
    try:
        index = int(key)
    except ValueError as exc:
        raise JsonPatchError(f"invalid array index {key!r} in {path}") from exc
    limit = len(container) if for_add else len(container) - 1
    if index < 0 or index > limit:
        raise JsonPatchError(f"Unable to access invalid index: {index}")
    return index


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test) applied to `doc` in place."""
    if not isinstance(ops, list):
        raise ValueError("json patch must be a list of operations")

    def add(path: str, value: Any) -> None:
        nonlocal doc
        parts = _pointer(path)
        if not parts:
            doc = value
            return
        parent = _resolve(doc, parts[:-1], path)
        key = parts[-1]
        if isinstance(parent, dict):
            parent[key] = value
        elif isinstance(parent, list):
            parent.insert(_list_index(parent, key, path, True), value)
        else:
            raise JsonPatchError(f"doc is missing path: {path}")

    def remove(path: str) -> Any:
        parts = _pointer(path)
        parent = _resolve(doc, parts[:-1], path)
        key = parts[-1]
        if isinstance(parent, dict):
            if key not in parent:
                raise JsonPatchError(f"remove operation does not apply: doc is missing key: {path}")
            return parent.pop(key)
        if isinstance(parent, list):
            return parent.pop(_list_index(parent, key, path, False))
        raise JsonPatchError(f"remove operation does not apply: doc is missing path: {path}")

    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ValueError("json patch operations need 'op' and 'path'")
        kind, path = op["op"], op["path"]
        if kind == "add":
            add(path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            remove(path)
        elif kind == "replace":
            parts = _pointer(path)
            if parts:
                _resolve(doc, parts, path)  # replace needs an existing target
                remove(path)
            add(path, copy.deepcopy(op.get("value")))
        elif kind == "move":
            value = remove(op["from"])
            add(path, value)
        elif kind == "copy":
            add(path, copy.deepcopy(_resolve(doc, _pointer(op["from"]), op["from"])))
        elif kind == "test":
            try:
                actual = _resolve(doc, _pointer(path), path)
            except JsonPatchError:
                actual = None
            if actual != op.get("value"):
                raise JsonPatchError(f"testing value {path} failed: test failed")
        else:
            raise ValueError(f"Unexpected kind: {kind}")
    return doc


# Lists merged by key in strategic merge patches (the patchMergeKey tags of the built-in types). "ports" is
# two lists: a Service's (merged by `port`) and a container's (by `containerPort`).
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "conditions": "type",
    "ownerReferences": "uid",
    "addresses": "type",
    "imagePullSecrets": "name",
    "containerStatuses": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
}
_PRIMITIVE_MERGE_LISTS = {"finalizers"}


def _merge_key(field: str, current: list[Any], patch: list[Any]) -> str | None:
    if field == "ports":
        items = [i for i in (*current, *patch) if isinstance(i, dict)]
        return "containerPort" if any("containerPort" in i for i in items) else "port"
    return _MERGE_KEYS.get(field)


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """A strategic merge patch for built-in kinds: maps merge, lists with a merge key merge by it,
    `metadata.finalizers` merges as a set, `$patch: replace|delete` and
    `$deleteFromPrimitiveList/<field>` directives work; other lists are replaced. Merged lists are in the
    apiserver's order (strategicpatch's normalizeElementOrder): the patch's new items before the ones
    only the server had, items both have where the server had them."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key == "$patch" or key.startswith("$setElementOrder/") or key == "$retainKeys":
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in (value or [])]
            continue
        current = result.get(key)
        merge_key = _merge_key(key, current, value) if isinstance(value, list) and isinstance(current, list) else None
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and key in _PRIMITIVE_MERGE_LISTS:
            merged = list(current or [])
            merged.extend(v for v in value if v not in merged)
            result[key] = _in_server_order(merged, value, list(current or []), lambda v: v)
        elif isinstance(value, list) and merge_key is not None and isinstance(current, list):
            result[key] = _merge_list_by_key(current, value, merge_key)
        elif isinstance(value, dict):
            merged_value = strategic_merge_patch(current, value)
            if merged_value is None:
                result.pop(key, None)
            else:
                result[key] = merged_value
        else:
            result[key] = copy.deepcopy(value)
    return result


def _merge_list_by_key(current: list[Any], patch: list[Any], merge_key: str) -> list[Any]:
    original = list(current)
    merged = list(current)
    kept_patch = []
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            merged.append(copy.deepcopy(item))
            continue
        index = next(
            (i for i, e in enumerate(merged) if isinstance(e, dict) and e.get(merge_key) == item[merge_key]), None
        )
        if item.get("$patch") == "delete":
            if index is not None:
                merged.pop(index)
            continue
        kept_patch.append(item)
        if index is None:
            merged.append(copy.deepcopy(item))
        else:
            merged[index] = strategic_merge_patch(merged[index], item)

    def key_of(item: Any) -> Any:
        return item.get(merge_key) if isinstance(item, dict) else json.dumps(item, sort_keys=True)

    return _in_server_order(merged, kept_patch, original, key_of)


def _in_server_order(merged: list[Any], patch: list[Any], original: list[Any],
                     key_of: Callable[[Any], Any]) -> list[Any]:
    """strategicpatch's normalizeElementOrder: the items the patch names, in the patch's order, merged into
    the items only the server had, in the server's order; a patch item the server had goes where the
    server had it, a new one before the server's items it meets."""
    patch_keys = [key_of(v) for v in patch]
    server_keys = [key_of(v) for v in original]
    in_patch = [v for v in merged if key_of(v) in patch_keys]
    server_only = [v for v in merged if key_of(v) not in patch_keys]
    in_patch.sort(key=lambda v: patch_keys.index(key_of(v)))
    server_only.sort(key=lambda v: server_keys.index(key_of(v)) if key_of(v) in server_keys else len(server_keys))
    ordered: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(in_patch):
        if j >= len(in_patch):
            ordered.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            ordered.append(in_patch[j])
            j += 1
        else:
            left, right = key_of(server_only[i]), key_of(in_patch[j])
            if left in server_keys and right in server_keys and server_keys.index(left) < server_keys.index(right):
                ordered.append(server_only[i])
                i += 1
            else:
                ordered.append(in_patch[j])
                j += 1
    return ordered
