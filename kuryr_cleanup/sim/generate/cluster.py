"""One OpenShift cluster with Kuryr, built whole: infrastructure, system namespaces, user namespaces."""

from __future__ import annotations

from collections.abc import Callable

from kuryr_cleanup.sim import openshift
from kuryr_cleanup.sim.generate.infrastructure import Infrastructure
from kuryr_cleanup.sim.generate.names import GATEWAY_GUARD_SERVICE, KURYR_NAMESPACE, SYSTEM_NAMESPACES
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
            ns = self.build_namespace(name, labels)
            _FILLERS[name](self, ns)
        for i in range(1, self.spec.namespaces + 1):
            ns = self.build_namespace(f"ns-{i}", {})
            self.fill_user_namespace(ns)
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


def _fill_host_network_daemon(pod_prefix: str, container: str) -> Callable[[Cluster, Namespace], None]:
    def fill(cluster: Cluster, ns: Namespace) -> None:
        plans = [PodPlan(f"{pod_prefix}-{cluster.sc.suffix()}", n.name, {"app": pod_prefix}, host_network=True,
                         containers=(container,)) for n in cluster.nodes]
        cluster.build_pods(ns, plans)

    return fill


def _fill_nothing(cluster: Cluster, ns: Namespace) -> None:
    """The machine-config-daemon pods come with the cluster objects (from the OpenShift builders)."""


# What each system namespace holds (names.SYSTEM_NAMESPACES gives their order and labels).
_FILLERS: dict[str, Callable[[Cluster, Namespace], None]] = {
    "default": _fill_default,
    KURYR_NAMESPACE: _fill_kuryr,
    "openshift-dns": _fill_dns,
    "openshift-ingress": _fill_ingress,
    "openshift-monitoring": _fill_monitoring,
    "openshift-multus": _fill_host_network_daemon("multus", "kube-multus"),
    openshift.MCO_NAMESPACE: _fill_nothing,
}
