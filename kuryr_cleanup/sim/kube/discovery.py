"""Discovery: /version, /api, /apis, the resource lists of each group version, and /openapi.

Everything is derived from the kind registry (`resources.KINDS`), so kubectl and the dynamic client
find every kind the simulator serves.
"""

from __future__ import annotations

from typing import Any

from kuryr_cleanup.sim import openshift
from kuryr_cleanup.sim.http import Request, Response
from kuryr_cleanup.sim.kube.errors import status_error
from kuryr_cleanup.sim.kube.resources import BUILTIN_GROUPS, KINDS, group_versions

KUBE_VERSION = {
    "major": "1",
    "minor": "27",
    "gitVersion": openshift.KUBELET_VERSION,
    "gitCommit": "28ed2d7a4a5b8ee1e2b2d81c0b0c9fa07a6b7a1c",
    "gitTreeState": "clean",
    "buildDate": "2024-02-06T16:05:53Z",
    "goVersion": "go1.20.12 X:strictfipsruntime",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def path_not_found(path: str) -> Response:
    """A path nothing serves. The built-in groups' routes (go-restful) answer a Status; the rest of
    /apis (custom resources' groups, unknown groups) and other paths fall through to a plain-text 404."""
    parts = path.strip("/").split("/")
    if parts[0] == "api" or (parts[0] == "apis" and len(parts) > 1 and parts[1] in BUILTIN_GROUPS):
        err = status_error(404, "NotFound", "the server could not find the requested resource", {})
        return Response(404, err.body)
    return Response(404, b"404 page not found\n", {"X-Content-Type-Options": "nosniff"},
                    content_type="text/plain; charset=utf-8")


def version(request: Request) -> Response:
    return Response(200, KUBE_VERSION)


def api_versions(request: Request) -> Response:
    return Response(
        200,
        {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
        },
    )


def _group_doc(group: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_groups(request: Request) -> Response:
    groups = [_group_doc(g, v) for g, v in group_versions().items() if g]
    return Response(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})


def api_group(request: Request) -> Response:
    group = request.params["group"]
    versions = group_versions().get(group)
    if not group or not versions:
        return path_not_found(request.path)
    return Response(200, {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(group, versions)})


def resource_list(request: Request) -> Response:
    group = request.params.get("group", "")
    version = request.params["version"]
    kinds = [k for k in KINDS if k.group == group and k.version == version]
    if not kinds:
        return path_not_found(request.path)
    resources: list[dict[str, Any]] = []
    for k in kinds:
        entry: dict[str, Any] = {
            "name": k.plural,
            "singularName": k.singular,
            "namespaced": k.namespaced,
            "kind": k.kind,
            "verbs": k.verbs(),
        }
        if k.short_names:
            entry["shortNames"] = list(k.short_names)
        if k.categories:
            entry["categories"] = list(k.categories)
        resources.append(entry)
        for sub in k.subresources:
            verbs = ["get"] if sub == "log" else ["update"] if sub == "finalize" else ["get", "patch", "update"]
            sub_kind = "Pod" if sub == "log" else k.kind
            resources.append(
                {"name": f"{k.plural}/{sub}", "singularName": "", "namespaced": k.namespaced,
                 "kind": sub_kind, "verbs": verbs}
            )
    group_version = f"{group}/{version}" if group else version
    return Response(
        200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}
    )


def openapi_v2(request: Request) -> Response:
    # An empty document: kubectl then skips client-side schema validation instead of failing.
    return Response(200, b"", content_type="application/octet-stream")


def openapi_v3(request: Request) -> Response:
    return path_not_found(request.path)
