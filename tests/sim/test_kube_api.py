"""The simulated Kubernetes API, driven by the official kubernetes client and by kubectl."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException

from kuryr_cleanup.sim import openshift
from kuryr_cleanup.sim.store import Store

KUBECTL = str(Path(sys.executable).with_name("kubectl"))
PORT_FINALIZER = "kuryr.openstack.org/kuryrport-finalizer"


def kuryr_port(namespace: str, name: str, finalizers: list[str] | None = None,
               labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels or {}}
    if finalizers:
        meta["finalizers"] = finalizers
    return {
        "apiVersion": "openstack.org/v1",
        "kind": "KuryrPort",
        "metadata": meta,
        "spec": {"podUid": f"uid-{name}", "podNodeName": "worker-0"},
        "status": {"vifs": {"eth0": {"default": True, "vif": {"id": f"port-{name}"}}}},
    }


def seeded_store(namespaces: list[str], ports_per_namespace: int = 2) -> Store:
    store = Store()
    with store.lock:
        for ns in ("default", openshift.MULTUS_NAMESPACE, *namespaces):
            store.kube_put(openshift.make_namespace(ns))
        for ns in namespaces:
            for i in range(ports_per_namespace):
                store.kube_put(kuryr_port(ns, f"pod-{i}", [PORT_FINALIZER], {"app": f"a{i}"}))
        store.kube_put(openshift.make_multus_daemonset(3))
        store.kube_put(openshift.make_cluster_operator("network"))
    return store


def api_client(sim: Any) -> client.ApiClient:
    return config.new_client_from_config(config_file=sim.env["KUBECONFIG"])


def kubectl(sim: Any, *args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KUBECTL, *args], env=sim.env, input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def ports_resource(api: client.ApiClient) -> Any:
    return dynamic.DynamicClient(api).resources.get(api_version="openstack.org/v1", kind="KuryrPort")


@pytest.fixture
def cluster(make_sim: Any) -> Any:
    return make_sim(store=seeded_store(["demo", "shop"]))


# -- the kubernetes client ---------------------------------------------------------------------
def test_dynamic_client_lists_kuryr_ports_across_namespaces(cluster: Any) -> None:
    ports = ports_resource(api_client(cluster))
    listed = ports.get()
    assert listed.kind == "KuryrPortList"
    assert sorted((p.metadata.namespace, p.metadata.name) for p in listed.items) == [
        ("demo", "pod-0"), ("demo", "pod-1"), ("shop", "pod-0"), ("shop", "pod-1")
    ]
    one = ports.get(name="pod-1", namespace="shop")
    assert one.status.vifs.eth0.vif.id == "port-pod-1"


def test_finalizer_lifecycle_delete_marks_then_finalizer_removal_deletes(cluster: Any) -> None:
    ports = ports_resource(api_client(cluster))
    ports.delete(name="pod-0", namespace="demo")
    marked = ports.get(name="pod-0", namespace="demo")
    assert marked.metadata.deletionTimestamp
    assert marked.metadata.finalizers == [PORT_FINALIZER]
    # The safe removal: a JSON patch whose `test` proves we remove what we think we remove.
    ports.patch(
        name="pod-0", namespace="demo", content_type="application/json-patch+json",
        body=[{"op": "test", "path": "/metadata/finalizers/0", "value": PORT_FINALIZER},
              {"op": "remove", "path": "/metadata/finalizers/0"}],
    )
    with pytest.raises(dynamic.exceptions.NotFoundError):
        ports.get(name="pod-0", namespace="demo")


def test_failed_json_patch_test_answers_422_and_changes_nothing(cluster: Any) -> None:
    ports = ports_resource(api_client(cluster))
    before = ports.get(name="pod-1", namespace="demo").metadata.resourceVersion
    with pytest.raises(ApiException) as err:
        ports.patch(name="pod-1", namespace="demo", content_type="application/json-patch+json",
                    body=[{"op": "test", "path": "/metadata/finalizers/0", "value": "someone-else"},
                          {"op": "remove", "path": "/metadata/finalizers/0"}])
    body = json.loads(err.value.body)
    assert body["kind"] == "Status" and body["reason"] == "Invalid" and body["code"] == 422
    after = ports.get(name="pod-1", namespace="demo")
    assert after.metadata.resourceVersion == before and after.metadata.finalizers == [PORT_FINALIZER]


def test_stale_replace_is_a_409_conflict(cluster: Any) -> None:
    ports = ports_resource(api_client(cluster))
    stale = ports.get(name="pod-0", namespace="shop").to_dict()
    ports.patch(name="pod-0", namespace="shop", content_type="application/merge-patch+json",
                body={"metadata": {"labels": {"touched": "yes"}}})
    stale["metadata"]["labels"]["mine"] = "1"
    with pytest.raises(dynamic.exceptions.ConflictError) as err:
        ports.replace(body=stale, name="pod-0", namespace="shop")
    body = json.loads(err.value.body)
    assert body["reason"] == "Conflict" and body["code"] == 409
    assert body["message"] == (
        'Operation cannot be fulfilled on kuryrports.openstack.org "pod-0": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


def test_strategic_merge_patch_is_415_for_custom_resources_and_works_for_pods(cluster: Any) -> None:
    api = api_client(cluster)
    ports = ports_resource(api)
    with pytest.raises(ApiException) as err:
        ports.patch(name="pod-0", namespace="demo", content_type="application/strategic-merge-patch+json",
                    body={"metadata": {"labels": {"x": "y"}}})
    assert err.value.status == 415
    assert json.loads(err.value.body)["reason"] == "UnsupportedMediaType"

    core = client.CoreV1Api(api)
    pod = client.V1Pod(metadata=client.V1ObjectMeta(name="web", finalizers=[PORT_FINALIZER, "other/finalizer"]),
                       spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="img")]))
    core.create_namespaced_pod("demo", pod)
    core.patch_namespaced_pod("web", "demo", {"metadata": {"$deleteFromPrimitiveList/finalizers": [PORT_FINALIZER]}})
    assert core.read_namespaced_pod("web", "demo").metadata.finalizers == ["other/finalizer"]


def test_namespace_deletion_waits_for_finalized_content_then_finishes(cluster: Any) -> None:
    api = api_client(cluster)
    core = client.CoreV1Api(api)
    ports = ports_resource(api)
    core.delete_namespace("demo")
    ns = core.read_namespace("demo")
    assert ns.status.phase == "Terminating" and ns.metadata.deletion_timestamp
    remaining = ports.get(namespace="demo").items
    assert len(remaining) == 2 and all(p.metadata.deletionTimestamp for p in remaining)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("demo", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="late")))
    assert err.value.status == 403 and json.loads(err.value.body)["reason"] == "Forbidden"
    for port in remaining:
        ports.patch(name=port.metadata.name, namespace="demo", content_type="application/merge-patch+json",
                    body={"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as gone:
        core.read_namespace("demo")
    assert gone.value.status == 404
    with pytest.raises(ApiException) as missing:
        core.create_namespaced_config_map("demo", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x")))
    assert missing.value.status == 404


def test_the_namespace_controller_deletes_the_content_after_the_delete_has_answered(make_sim: Any) -> None:
    store = seeded_store(["demo"])
    with store.lock:
        store.kube_put(openshift.make_node("worker-0", "server-0", "10.0.0.5", "worker"))
    sim = make_sim(store=store, delays={"namespace_sync": 5.0})
    api = api_client(sim)
    core = client.CoreV1Api(api)
    core.create_namespaced_pod("demo", pod("web", "worker-0"))
    core.delete_namespace("demo")
    assert core.read_namespace("demo").status.phase == "Terminating"
    assert not any(p.metadata.deletionTimestamp for p in ports_resource(api).get(namespace="demo").items)
    assert core.read_namespaced_pod("web", "demo").metadata.deletion_timestamp is None
    sim.control("POST", "clock", {"advance": 5})
    assert all(p.metadata.deletionTimestamp for p in ports_resource(api).get(namespace="demo").items)
    assert core.list_namespaced_pod("demo").items == []  # its kubelet confirmed at once (pod_stop 0)
    conditions = {c.type: (c.status, c.reason) for c in core.read_namespace("demo").status.conditions}
    assert conditions == {
        "NamespaceDeletionDiscoveryFailure": ("False", "ResourcesDiscovered"),
        "NamespaceDeletionGroupVersionParsingFailure": ("False", "ParsedGroupVersions"),
        "NamespaceDeletionContentFailure": ("False", "ContentDeleted"),
        "NamespaceContentRemaining": ("True", "SomeResourcesRemain"),
        "NamespaceFinalizersRemaining": ("True", "SomeFinalizersRemain"),
    }


def test_create_conflicts_and_errors_are_status_documents(cluster: Any) -> None:
    core = client.CoreV1Api(api_client(cluster))
    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"a": "1"})
    core.create_namespaced_config_map("shop", cm)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("shop", cm)
    body = json.loads(err.value.body)
    assert (err.value.status, body["reason"], body["message"]) == (409, "AlreadyExists",
                                                                    'configmaps "settings" already exists')
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("nope", "shop")
    assert json.loads(err.value.body)["details"] == {"name": "nope", "kind": "configmaps"}


def test_paging_and_selectors(make_sim: Any) -> None:
    store = seeded_store([f"ns-{i:02d}" for i in range(12)], ports_per_namespace=2)
    sim = make_sim(store=store)
    api = api_client(sim)
    custom = client.CustomObjectsApi(api)
    seen: list[tuple[str, str]] = []
    token = None
    pages = 0
    while True:
        kwargs: dict[str, Any] = {"limit": 10}
        if token:
            kwargs["_continue"] = token
        page = custom.list_cluster_custom_object("openstack.org", "v1", "kuryrports", **kwargs)
        pages += 1
        seen += [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
    assert pages == 3 and len(seen) == 24 and len(set(seen)) == 24 and seen == sorted(seen)

    def names(selector: str) -> set[str]:
        items = custom.list_namespaced_custom_object("openstack.org", "v1", "ns-00", "kuryrports",
                                                     label_selector=selector)["items"]
        return {p["metadata"]["name"] for p in items}

    assert names("app=a0") == {"pod-0"}
    assert names("app!=a0") == {"pod-1"}
    assert names("app in (a0, a1)") == {"pod-0", "pod-1"}
    assert names("app notin (a1)") == {"pod-0"}
    assert names("app") == {"pod-0", "pod-1"}
    assert names("!app") == set()
    by_name = custom.list_cluster_custom_object("openstack.org", "v1", "kuryrports",
                                                field_selector="metadata.name=pod-1,metadata.namespace=ns-03")
    assert [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in by_name["items"]] == [("ns-03", "pod-1")]

    core = client.CoreV1Api(api)
    for i, node in enumerate(["worker-0", "worker-1", "worker-0"]):
        core.create_namespaced_pod("ns-01", client.V1Pod(
            metadata=client.V1ObjectMeta(name=f"p{i}"),
            spec=client.V1PodSpec(node_name=node, containers=[client.V1Container(name="c", image="i")])))
    on_node = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=worker-0,status.phase=Pending")
    assert sorted(p.metadata.name for p in on_node.items) == ["p0", "p2"]


def test_status_subresource_owns_status(cluster: Any) -> None:
    custom = client.CustomObjectsApi(api_client(cluster))
    co = custom.get_cluster_custom_object("config.openshift.io", "v1", "clusteroperators", "network")
    co["status"]["conditions"] = []
    co["spec"] = {"note": "x"}
    custom.replace_cluster_custom_object("config.openshift.io", "v1", "clusteroperators", "network", co)
    after = custom.get_cluster_custom_object("config.openshift.io", "v1", "clusteroperators", "network")
    assert after["spec"] == {"note": "x"} and len(after["status"]["conditions"]) == 4
    custom.patch_cluster_custom_object_status("config.openshift.io", "v1", "clusteroperators", "network",
                                              {"status": {"versions": [{"name": "operator", "version": "9"}]}})
    after = custom.get_cluster_custom_object("config.openshift.io", "v1", "clusteroperators", "network")
    assert after["status"]["versions"] == [{"name": "operator", "version": "9"}]


def test_watch_streams_changes_until_deleted(cluster: Any) -> None:
    custom = client.CustomObjectsApi(api_client(cluster))
    listed = custom.list_namespaced_custom_object("openstack.org", "v1", "shop", "kuryrports")
    custom.patch_namespaced_custom_object("openstack.org", "v1", "shop", "kuryrports", "pod-1",
                                          {"metadata": {"finalizers": None}})
    custom.delete_namespaced_custom_object("openstack.org", "v1", "shop", "kuryrports", "pod-1")
    events = []
    w = watch.Watch()
    for event in w.stream(custom.list_namespaced_custom_object, "openstack.org", "v1", "shop", "kuryrports",
                          resource_version=listed["metadata"]["resourceVersion"],
                          field_selector="metadata.name=pod-1", timeout_seconds=5):
        events.append(event["type"])
        if event["type"] == "DELETED":
            w.stop()
    assert events == ["MODIFIED", "DELETED"]


def test_the_deleted_event_carries_the_object_as_last_stored(cluster: Any) -> None:
    """When removing the last finalizer deletes an object, watchers see it with the finalizer still listed
    (etcd's previous value), as a kube-apiserver sends it."""
    custom = client.CustomObjectsApi(api_client(cluster))
    listed = custom.list_namespaced_custom_object("openstack.org", "v1", "demo", "kuryrports")
    custom.delete_namespaced_custom_object("openstack.org", "v1", "demo", "kuryrports", "pod-0")
    custom.patch_namespaced_custom_object("openstack.org", "v1", "demo", "kuryrports", "pod-0",
                                          {"metadata": {"finalizers": None}})
    deleted = []
    w = watch.Watch()
    for event in w.stream(custom.list_namespaced_custom_object, "openstack.org", "v1", "demo", "kuryrports",
                          resource_version=listed["metadata"]["resourceVersion"],
                          field_selector="metadata.name=pod-0", timeout_seconds=5):
        if event["type"] == "DELETED":
            deleted.append(event["object"]["metadata"])
            w.stop()
    assert len(deleted) == 1
    assert deleted[0]["finalizers"] == [PORT_FINALIZER] and deleted[0]["deletionTimestamp"]
    assert int(deleted[0]["resourceVersion"]) > int(listed["metadata"]["resourceVersion"])


def test_a_2000_namespace_cluster_pages_kuryr_ports_in_seconds(make_sim: Any) -> None:
    started = time.monotonic()
    store = Store()
    with store.lock:
        for i in range(2000):
            ns = f"project-{i:04d}"
            store.kube_put(openshift.make_namespace(ns))
            for j in range(3):
                store.kube_put(kuryr_port(ns, f"pod-{j}", [PORT_FINALIZER]))
    sim = make_sim(store=store)
    custom = client.CustomObjectsApi(api_client(sim))
    total, token = 0, None
    while True:
        kwargs: dict[str, Any] = {"limit": 500}
        if token:
            kwargs["_continue"] = token
        page = custom.list_cluster_custom_object("openstack.org", "v1", "kuryrports", **kwargs)
        total += len(page["items"])
        token = page["metadata"].get("continue")
        if not token:
            break
    assert total == 6000
    assert time.monotonic() - started < 20


# -- kubectl ----------------------------------------------------------------------------------------
def test_kubectl_gets_crs_across_namespaces_in_every_output_format(cluster: Any) -> None:
    out = kubectl(cluster, "get", "kuryrports", "-A", "-o", "yaml")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("kind: KuryrPort\n") == 4 and PORT_FINALIZER in out.stdout
    out = kubectl(cluster, "get", "kp", "-A", "-o",
                  "custom-columns=NS:.metadata.namespace,NAME:.metadata.name,NODE:.spec.podNodeName")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1:] == ["demo   pod-0   worker-0", "demo   pod-1   worker-0",
                                           "shop   pod-0   worker-0", "shop   pod-1   worker-0"]
    out = kubectl(cluster, "get", "kuryrports", "-A", "--template",
                  "{{range .items}}{{.metadata.namespace}}/{{.metadata.name}} {{end}}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["demo/pod-0", "demo/pod-1", "shop/pod-0", "shop/pod-1"]
    out = kubectl(cluster, "get", "kuryrports", "-A")
    assert out.returncode == 0 and "pod-1" in out.stdout, out.stderr


def test_kubectl_replace_and_patches(cluster: Any) -> None:
    current = kubectl(cluster, "get", "kp", "-n", "demo", "pod-0", "-o", "json")
    obj = json.loads(current.stdout)
    obj["metadata"]["labels"]["replaced"] = "yes"
    out = kubectl(cluster, "replace", "-f", "-", stdin=json.dumps(obj))
    assert out.returncode == 0, out.stderr
    out = kubectl(cluster, "patch", "kp", "-n", "demo", "pod-0", "--type=merge",
                  "-p", '{"metadata":{"labels":{"merged":"yes"}}}')
    assert out.returncode == 0, out.stderr
    out = kubectl(cluster, "patch", "kp", "-n", "demo", "pod-0", "--type=json",
                  "-p", f'[{{"op":"test","path":"/metadata/finalizers/0","value":"{PORT_FINALIZER}"}},'
                        '{"op":"remove","path":"/metadata/finalizers/0"}]')
    assert out.returncode == 0, out.stderr
    final = json.loads(kubectl(cluster, "get", "kp", "-n", "demo", "pod-0", "-o", "json").stdout)
    assert final["metadata"]["labels"] == {"app": "a0", "replaced": "yes", "merged": "yes"}
    assert "finalizers" not in final["metadata"]
    # Replaying the stale copy loses against the newer writes.
    out = kubectl(cluster, "replace", "-f", "-", stdin=json.dumps(obj))
    assert out.returncode != 0 and "the object has been modified" in out.stderr


def test_kubectl_delete_waits_and_returns(cluster: Any) -> None:
    kubectl(cluster, "patch", "kp", "-n", "shop", "pod-0", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    out = kubectl(cluster, "delete", "kp", "-n", "shop", "pod-0", "--timeout=30s")
    assert out.returncode == 0, out.stderr
    assert "deleted" in out.stdout
    assert kubectl(cluster, "get", "kp", "-n", "shop", "pod-0").returncode != 0


def test_kubectl_delete_with_finalizer_returns_once_the_finalizer_is_removed(cluster: Any) -> None:
    proc = subprocess.Popen([KUBECTL, "delete", "kp", "-n", "shop", "pod-1", "--timeout=60s"], env=cluster.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with cluster.store.lock:
            port = cluster.store.kube_get("openstack.org/v1", "KuryrPort", "pod-1", "shop")
            if port and port["metadata"].get("deletionTimestamp"):
                break
        time.sleep(0.05)
    out = kubectl(cluster, "patch", "kp", "-n", "shop", "pod-1", "--type=json",
                  "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
    assert out.returncode == 0, out.stderr
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "deleted" in stdout


def test_kubectl_rollout_status_of_multus(cluster: Any) -> None:
    out = kubectl(cluster, "rollout", "status", "daemonset/multus", "-n", "openshift-multus", "--timeout=30s")
    assert out.returncode == 0, out.stderr
    assert 'daemon set "multus" successfully rolled out' in out.stdout




# -- pods: graceful deletion and the kubelet -------------------------------------------------------
def pod(name: str, node: str | None, finalizers: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "img"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "finalizers": finalizers or []},
            "spec": spec}


def test_a_bound_pod_goes_once_its_kubelet_confirms_an_unbound_one_at_once(make_sim: Any) -> None:
    store = seeded_store(["demo"])
    with store.lock:
        store.kube_put(openshift.make_node("worker-0", "server-0", "10.0.0.5", "worker"))
    sim = make_sim(store=store, delays={"pod_stop": 5.0})
    core = client.CoreV1Api(api_client(sim))
    core.create_namespaced_pod("demo", pod("bound", "worker-0"))
    core.create_namespaced_pod("demo", pod("unbound", None))
    answer = core.delete_namespaced_pod("unbound", "demo")
    assert answer.metadata.deletion_timestamp and answer.metadata.deletion_grace_period_seconds == 0
    answer = core.delete_namespaced_pod("bound", "demo")
    assert answer.metadata.deletion_grace_period_seconds == 30
    assert core.read_namespaced_pod("bound", "demo").metadata.deletion_timestamp  # the containers are stopping
    sim.control("POST", "clock", {"advance": 5})
    assert [p.metadata.name for p in core.list_namespaced_pod("demo").items] == []


def test_a_pod_on_a_node_that_is_down_stays_terminating_until_the_node_is_back(make_sim: Any) -> None:
    store = seeded_store(["demo"])
    with store.lock:
        store.kube_put(openshift.make_node("worker-0", "server-0", "10.0.0.5", "worker"))
    sim = make_sim(store=store, delays={"server_reboot": 10.0, "node_boot": 0.0})
    core = client.CoreV1Api(api_client(sim))
    core.create_namespaced_pod("demo", pod("web", "worker-0", [PORT_FINALIZER]))
    sim.control("POST", "reboot-by-ip", {"ip": "10.0.0.5"})
    core.delete_namespaced_pod("web", "demo")
    # Kuryr's finalizer goes first; the pod still waits for its kubelet.
    core.patch_namespaced_pod("web", "demo", {"metadata": {"finalizers": None}})
    waiting = core.read_namespaced_pod("web", "demo")
    assert waiting.metadata.deletion_grace_period_seconds == 30 and not waiting.metadata.finalizers
    sim.control("POST", "clock", {"advance": 10})  # the node is Ready again: its kubelet confirms
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_pod("web", "demo")
    assert gone.value.status == 404


def test_a_confirmed_pod_with_a_finalizer_waits_for_it_then_goes(make_sim: Any) -> None:
    store = seeded_store(["demo"])
    with store.lock:
        store.kube_put(openshift.make_node("worker-0", "server-0", "10.0.0.5", "worker"))
    sim = make_sim(store=store)
    core = client.CoreV1Api(api_client(sim))
    core.create_namespaced_pod("demo", pod("web", "worker-0", [PORT_FINALIZER]))
    core.delete_namespaced_pod("web", "demo")
    confirmed = core.read_namespaced_pod("web", "demo")  # pod_stop 0: confirmed by the next request
    assert confirmed.metadata.deletion_grace_period_seconds == 0 and confirmed.metadata.finalizers == [PORT_FINALIZER]
    core.patch_namespaced_pod("web", "demo", {"metadata": {"$deleteFromPrimitiveList/finalizers": [PORT_FINALIZER]}})
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_pod("web", "demo")
    assert gone.value.status == 404


# -- who may call -------------------------------------------------------------------------------
def test_a_token_the_server_does_not_know_is_401_everywhere(cluster: Any) -> None:
    kubeconfig = Path(cluster.env["KUBECONFIG"])
    wrong = kubeconfig.with_name("kubeconfig-wrong-token")
    wrong.write_text(kubeconfig.read_text().replace("token: sim-token", "token: not-the-token"))
    api = config.new_client_from_config(config_file=str(wrong))
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(api).list_namespace()
    assert err.value.status == 401
    assert json.loads(err.value.body) == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                          "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
    with pytest.raises(ApiException) as version:
        client.VersionApi(api).get_code()
    assert version.value.status == 401


def test_a_user_rbac_refuses_reads_discovery_and_gets_the_apiservers_403(cluster: Any) -> None:
    limited = config.new_client_from_config(config_file=cluster.env["KUBECONFIG"], context="sim-limited")
    assert client.CoreApi(limited).get_api_versions().versions == ["v1"]
    with pytest.raises(ApiException) as err:
        ports_resource(limited).get(name="pod-0", namespace="demo")
    body = json.loads(err.value.body)
    assert (err.value.status, body["reason"]) == (403, "Forbidden")
    assert body["message"] == ('kuryrports.openstack.org "pod-0" is forbidden: User "sim-limited" cannot get resource '
                               '"kuryrports" in API group "openstack.org" in the namespace "demo"')
    assert body["details"] == {"name": "pod-0", "group": "openstack.org", "kind": "kuryrports"}
    with pytest.raises(ApiException) as refused:
        client.CoreV1Api(limited).delete_collection_namespaced_config_map("demo")
    assert json.loads(refused.value.body)["message"] == (
        'configmaps is forbidden: User "sim-limited" cannot deletecollection resource "configmaps" in API group "" '
        'in the namespace "demo"')


def test_requests_without_a_token_are_the_admins_unless_anonymous_is_refused(cluster: Any) -> None:
    # kubectl sends no credentials over plain HTTP: the simulator lets it in as system:anonymous.
    out = kubectl(cluster, "get", "kp", "-n", "demo", "-o", "name")
    assert out.returncode == 0 and out.stdout.split() == ["kuryrport.openstack.org/pod-0",
                                                          "kuryrport.openstack.org/pod-1"], out.stderr
    cluster.server.kube_api.authorizer.anonymous_admin = False  # a real apiserver's default RBAC
    out = kubectl(cluster, "get", "kp", "-n", "demo", "-o", "name")
    assert out.returncode != 0
    assert ('kuryrports.openstack.org is forbidden: User "system:anonymous" cannot list resource "kuryrports" in '
            'API group "openstack.org" in the namespace "demo"') in out.stderr


# -- the kinds a migration tool reads or holds -----------------------------------------------------
def lease(name: str, holder: str, resource_version: str | None = None, renewed: str = "09:00:00") -> client.V1Lease:
    meta = client.V1ObjectMeta(name=name, resource_version=resource_version)
    return client.V1Lease(metadata=meta, spec=client.V1LeaseSpec(
        holder_identity=holder, lease_duration_seconds=60, acquire_time="2024-03-01T09:00:00.000000Z",
        renew_time=f"2024-03-01T{renewed}.000000Z", lease_transitions=0))


def test_a_lease_is_a_lock_two_holders_cannot_both_take(cluster: Any) -> None:
    leases = client.CoordinationV1Api(api_client(cluster))
    taken = leases.create_namespaced_lease("demo", lease("kuryr-migrate", "run-a"))
    assert taken.spec.holder_identity == "run-a" and taken.metadata.resource_version
    with pytest.raises(ApiException) as exists:
        leases.create_namespaced_lease("demo", lease("kuryr-migrate", "run-b"))
    assert exists.value.status == 409 and json.loads(exists.value.body)["reason"] == "AlreadyExists"

    # Both read version N; the first write wins, the second is told its version is stale.
    renewed = leases.replace_namespaced_lease(
        "kuryr-migrate", "demo", lease("kuryr-migrate", "run-a", taken.metadata.resource_version, renewed="09:00:30"))
    with pytest.raises(ApiException) as stale:
        leases.replace_namespaced_lease("kuryr-migrate", "demo",
                                        lease("kuryr-migrate", "run-b", taken.metadata.resource_version))
    assert stale.value.status == 409 and json.loads(stale.value.body)["reason"] == "Conflict"
    # Unlike most built-in kinds, a Lease is never overwritten blindly: no resourceVersion, no update.
    with pytest.raises(ApiException) as blind:
        leases.replace_namespaced_lease("kuryr-migrate", "demo", lease("kuryr-migrate", "run-b"))
    assert blind.value.status == 422
    assert leases.read_namespaced_lease("kuryr-migrate", "demo").spec.holder_identity == "run-a"

    patched = leases.patch_namespaced_lease("kuryr-migrate", "demo", {"spec": {"holderIdentity": "run-b"}})
    assert patched.spec.holder_identity == "run-b"
    assert int(patched.metadata.resource_version) > int(renewed.metadata.resource_version)
    assert [item.metadata.name for item in leases.list_lease_for_all_namespaces().items] == ["kuryr-migrate"]
    leases.delete_namespaced_lease("kuryr-migrate", "demo")
    with pytest.raises(ApiException) as gone:
        leases.read_namespaced_lease("kuryr-migrate", "demo")
    assert gone.value.status == 404
    # In any namespace that exists; not in one that does not.
    leases.create_namespaced_lease("shop", lease("kuryr-migrate", "run-c"))
    with pytest.raises(ApiException) as missing:
        leases.create_namespaced_lease("nowhere", lease("kuryr-migrate", "run-c"))
    assert missing.value.status == 404


def test_discovery_serves_cluster_version_and_lease(cluster: Any) -> None:
    api = api_client(cluster)
    discovered = dynamic.DynamicClient(api).resources
    version = discovered.get(api_version="config.openshift.io/v1", kind="ClusterVersion")
    assert (version.name, version.namespaced) == ("clusterversions", False)
    held = discovered.get(api_version="coordination.k8s.io/v1", kind="Lease")
    assert (held.name, held.namespaced) == ("leases", True)
    listed = kubectl(cluster, "api-resources", "--api-group=coordination.k8s.io", "-o", "name")
    assert listed.returncode == 0 and listed.stdout.split() == ["leases.coordination.k8s.io"]


def test_deleting_openshift_kuryr_on_a_generated_cluster_waits_for_nothing(make_sim: Any) -> None:
    # Kuryr's own pods are on the host network, so the namespace has no KuryrNetwork (whose finalizer
    # only the cleanup removes): `oc delete namespace openshift-kuryr` returns once the pods are gone.
    sim = make_sim(generate="namespaces=1")
    deleted = kubectl(sim, "delete", "namespace", "openshift-kuryr", "--timeout=20s")
    assert deleted.returncode == 0, deleted.stderr
    assert sim.store.kube_get("v1", "Namespace", "openshift-kuryr") is None
    assert not [key for objects in sim.store.kube.values() for key in objects if key[0] == "openshift-kuryr"]
