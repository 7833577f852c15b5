"""One OpenShift cluster with Kuryr, built whole: infrastructure, system namespaces, user namespaces."""

from __future__ import annotations

from collections.abc import Callable

from kuryr_cleanup.sim import openshift
from kuryr_cleanup.sim.generate.infrastructure import Infrastructure
from kuryr_cleanup.sim.generate.names import (
    GATEWAY_GUARD_SERVICE,
    IMAGE_REGISTRY_NAMESPACE,
    KURYR_NAMESPACE,
    SYSTEM_NAMESPACES,
)
from kuryr_cleanup.sim.generate.objects import Namespace, PodPlan, ServicePlan
from kuryr_cleanup.sim.generate.workloads import Workloads


class Cluster(Infrastructure, Workloads):
    """One OpenShift cluster with Kuryr: its OpenStack resources and (if it is ours) its Kubernetes objects."""

    # -- the whole cluster -------------------------------------------------------------------------
    def build(self) -> None:
        self.build_installer()
        self.build_cno()
        self.build_nodes()
        for name, labels in SYSTEM_NAMESPACES:
            pod_network, fill = _SYSTEM_NAMESPACE_CONTENT[name]
            ns = self.build_namespace(name, labels, pod_network)
            fill(self, ns)
        if IMAGE_REGISTRY_NAMESPACE in self.finished_pods:  # the image pruner's finished run
            ns = self.build_namespace(IMAGE_REGISTRY_NAMESPACE, {"openshift.io/cluster-monitoring": "true"})
            self.build_finished_pods(ns)
        for i in range(1, self.spec.namespaces + 1):
            name = f"ns-{i}"
            ns = self.build_namespace(name, {}, pod_network=self.spec.pods > 0 or name in self.finished_pods)
            self.fill_user_namespace(ns)
            self.build_finished_pods(ns)
        self.build_trunks()
        if self.ours:
            self.build_cluster_objects()


# -- the system namespaces (what a 4.x cluster on Kuryr has) ----------------------------------------
def _fill_default(cluster: Cluster, ns: Namespace) -> None:
    # Kuryr gives `default/kubernetes` an LB too: its members are the masters' API on the node network.
    cluster.build_service(ns, ServicePlan("kubernetes", (("https", 443, "TCP", 6443),), None, "172.30.0.1",
                                          host_endpoints=tuple(n.ip for n in cluster.masters)))


def _fill_kuryr(cluster: Cluster, ns: Namespace) -> None:
    # Kuryr's own pods run on the host network: no ports, no finalizers.
    master = cluster.masters[0]
    plans = [PodPlan(f"kuryr-controller-{cluster.sc.suffix(10)}-{cluster.sc.suffix()}", master.name,
                     {"app": "kuryr-controller"}, host_network=True, containers=("controller",))]
    plans += [PodPlan(f"kuryr-cni-{cluster.sc.suffix()}", n.name, {"app": "kuryr-cni"}, host_network=True,
                      containers=("kuryr-cni",)) for n in cluster.nodes]
    cluster.build_pods(ns, plans)
    if cluster.gateway_guard_ip:
        cluster.build_service(ns, ServicePlan(GATEWAY_GUARD_SERVICE, (("", 80, "TCP", 80),), None,
                                              cluster.gateway_guard_ip), kuryr=False)


def _fill_dns(cluster: Cluster, ns: Namespace) -> None:
    plans = [PodPlan(f"dns-default-{cluster.sc.suffix()}", n.name, {"dns.operator.openshift.io/daemonset-dns":
                                                                    "default"}, containers=("dns", "kube-rbac-proxy"))
             for n in cluster.nodes]
    cluster.build_pods(ns, plans)
    # Kuryr also makes a UDP listener on 53 where Octavia allows two listeners on one port (>= 2.13);
    # the simulated Octavia refuses that, so the scenario keeps the TCP ones.
    ports: tuple[tuple[str, int, str, int], ...] = (("dns-tcp", 53, "TCP", 5353), ("metrics", 9154, "TCP", 9154))
    cluster.build_service(ns, ServicePlan("dns-default", ports, {"dns.operator.openshift.io/daemonset-dns":
                                                                 "default"}, "172.30.0.10"))


def _fill_ingress(cluster: Cluster, ns: Namespace) -> None:
    # On OpenStack the routers publish on the host network: endpoints are worker node addresses.
    workers = cluster.workers_list[:2]
    plans = [PodPlan(f"router-default-{cluster.sc.suffix(10)}-{cluster.sc.suffix()}", n.name,
                     {"ingresscontroller.operator.openshift.io/deployment-ingresscontroller": "default"},
                     host_network=True, containers=("router",)) for n in workers]
    cluster.build_pods(ns, plans)
    cluster.build_service(ns, ServicePlan(
        "router-internal-default",
        (("http", 80, "TCP", 80), ("https", 443, "TCP", 443), ("metrics", 1936, "TCP", 1936)),
        None, cluster.service_ips.take(), host_endpoints=tuple(n.ip for n in workers)))


def _fill_monitoring(cluster: Cluster, ns: Namespace) -> None:
    plans = [PodPlan(f"prometheus-k8s-{i}", cluster.next_worker().name, {"app.kubernetes.io/name": "prometheus"},
                     containers=("prometheus",)) for i in range(2)]
    plans.append(PodPlan("alertmanager-main-0", cluster.next_worker().name,
                         {"app.kubernetes.io/name": "alertmanager"}, containers=("alertmanager",)))
    cluster.build_pods(ns, plans)
    cluster.build_service(ns, ServicePlan("prometheus-k8s", (("web", 9091, "TCP", 9091),),
                                          {"app.kubernetes.io/name": "prometheus"}, cluster.service_ips.take()))


def _fill_multus(cluster: Cluster, ns: Namespace) -> None:
    # multus itself runs on the host network; its admission controller and the metrics daemon do not.
    plans = [PodPlan(f"multus-{cluster.sc.suffix()}", n.name, {"app": "multus"}, host_network=True,
                     containers=("kube-multus",)) for n in cluster.nodes]
    plans += [PodPlan(f"multus-admission-controller-{cluster.sc.suffix(10)}-{cluster.sc.suffix()}", m.name,
                      {"app": "multus-admission-controller"}, containers=("multus-admission-controller",))
              for m in cluster.masters[:2]]
    plans += [PodPlan(f"network-metrics-daemon-{cluster.sc.suffix()}", n.name, {"app": "network-metrics-daemon"},
                      containers=("network-metrics-daemon", "kube-rbac-proxy")) for n in cluster.nodes]
    cluster.build_pods(ns, plans)


def _fill_machine_config(cluster: Cluster, ns: Namespace) -> None:
    """The operator and its controller run on the pod network; the machine-config-daemon pods (host
    network) come with the cluster objects, from the OpenShift builders."""
    master = cluster.masters[0]
    plans = [PodPlan(f"{app}-{cluster.sc.suffix(10)}-{cluster.sc.suffix()}", master.name, {"k8s-app": app},
                     containers=(app,)) for app in ("machine-config-operator", "machine-config-controller")]
    cluster.build_pods(ns, plans)


# What each system namespace holds (names.SYSTEM_NAMESPACES gives their order and labels), and whether
# any of its pods is on the pod network: only then did Kuryr make it a network and a KuryrNetwork.
# `default` has no pods; Kuryr's own pods and, on OpenStack, the ingress routers use the host network.
_SYSTEM_NAMESPACE_CONTENT: dict[str, tuple[bool, Callable[[Cluster, Namespace], None]]] = {
    "default": (False, _fill_default),
    KURYR_NAMESPACE: (False, _fill_kuryr),
    "openshift-dns": (True, _fill_dns),
    "openshift-ingress": (False, _fill_ingress),
    "openshift-monitoring": (True, _fill_monitoring),
    "openshift-multus": (True, _fill_multus),
    openshift.MCO_NAMESPACE: (True, _fill_machine_config),
}
