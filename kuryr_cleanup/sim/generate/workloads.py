"""Kuryr's resources for a cluster's workloads: namespace networks, pod ports, Service LBs, policy groups.

Each with the Kubernetes objects and Kuryr CRs (and their finalizers) Kuryr leaves behind.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from kuryr_cleanup.sim import neutron, octavia, openshift
from kuryr_cleanup.sim.generate.cluster_state import ClusterState
from kuryr_cleanup.sim.generate.names import (
    CLUSTER_NETWORK,
    IMAGE_REGISTRY_NAMESPACE,
    KURYR_API,
    KURYR_FIP_DESCRIPTION,
    KURYR_POOL_PORT_NAME,
    KURYR_PORT_DEVICE_OWNER,
    KURYRLB_FINALIZER,
    KURYRNETWORK_FINALIZER,
    MACHINE_NETWORK,
    NETWORKPOLICY_FINALIZER,
    NP_RULE_DESCRIPTION,
    NP_SG_DESCRIPTION,
    POD_FINALIZER,
    SERVICE_FINALIZER,
)
from kuryr_cleanup.sim.generate.objects import (
    Addresses,
    FinishedPodPlan,
    Namespace,
    PodNetwork,
    PodPlan,
    ServicePlan,
    days_before,
    endpoint_slice,
    finished_pod_object,
    kuryr_port_object,
    pod_object,
    policy_name,
    policy_spec,
    service_name,
    service_object,
)


class Workloads(ClusterState):
    """Namespaces (network, subnet, Namespace, KuryrNetwork), pods (ports as trunk subports, Pod,
    KuryrPort, pool ports), Services (LB, listeners, pools, members, floating IPs, Service,
    KuryrLoadBalancer) and NetworkPolicies (security group, rules, NetworkPolicy, KuryrNetworkPolicy)."""

    # -- namespaces -------------------------------------------------------------------------------------
    def build_namespace(self, name: str, labels: dict[str, str], pod_network: bool = True) -> Namespace:
        """A Namespace, and if pods of it are on the pod network, Kuryr's network, subnet and KuryrNetwork:
        Kuryr's namespace handler makes them only for a namespace that has such a pod (`_handle_namespace`
        in kuryr_kubernetes/controller/handlers/namespace.py)."""
        uid = str(uuid.uuid4())
        ns = Namespace(name=name, uid=uid, labels={"kubernetes.io/metadata.name": name, **labels})
        ns.pod_security_groups = [self.pods_sg["id"]]
        if pod_network:
            ns.pod_network = self._build_pod_network(ns)
        self.namespaces[name] = ns
        namespace_obj = openshift.make_namespace(name, labels)
        namespace_obj["metadata"]["uid"] = uid
        self._put(namespace_obj)
        if ns.pod_network is not None:
            network, subnet = ns.pod_network.network, ns.pod_network.subnet
            self._put({
                "apiVersion": KURYR_API,
                "kind": "KuryrNetwork",
                "metadata": {"name": name, "namespace": name, "finalizers": [KURYRNETWORK_FINALIZER],
                             "labels": {}, "annotations": {}},
                "spec": {"nsName": name, "projectId": self.project_id, "nsLabels": dict(ns.labels)},
                "status": {"netId": network["id"], "subnetId": subnet["id"], "subnetCIDR": subnet["cidr"],
                           "routerId": self.router["id"], "populated": True, "nsLabels": dict(ns.labels)},
            })
        return ns

    def _build_pod_network(self, ns: Namespace) -> PodNetwork:
        store, sc = self.store, self.sc
        network_name = f"{ns.uid}/{ns.name}"  # kuryr: c_utils.get_resource_name(ns_name, ns_uid)
        # Kuryr names the network and subnet `<ns uid>/<ns name>` and puts its tags in the description.
        description = "" if self.spec.legacy_names else self.tag
        # Tags go in with the create here (Kuryr tags in a second call): the same end state, half the work.
        tags = self._tags("network", ns.name)
        network = sc.network(name=network_name, description=description, mtu=self.spec.mtu, tags=tags)
        prefix = self.host_prefix
        pool_net = ipaddress.ip_network(CLUSTER_NETWORK)
        size = 1 << (32 - prefix)
        if (self._subnet_index + 1) * size > pool_net.num_addresses:
            raise ValueError(f"{CLUSTER_NETWORK} has no room for another /{prefix} namespace subnet: set host-prefix")
        cidr = str(ipaddress.ip_network((int(pool_net.network_address) + self._subnet_index * size, prefix)))
        self._subnet_index += 1
        subnet = neutron.create_subnet(
            store, name=network_name, network_id=network["id"], subnetpool_id=self.subnetpool["id"], cidr=cidr,
            ip_version=4, enable_dhcp=False, description=description, tags=tags,
        )
        neutron.add_router_interface(store, self.router["id"], subnet_id=subnet["id"])
        # The router's interface has the gateway; on DVR its SNAT port took an address of the subnet too.
        on_subnet = neutron.lookup(store, "ports", "fixed_ips.subnet_id", subnet["id"])
        taken = frozenset(f["ip_address"] for port in on_subnet for f in port["fixed_ips"])
        return PodNetwork(network, subnet, Addresses(cidr, 2, taken))

    def fill_user_namespace(self, ns: Namespace) -> None:
        spec = self.spec
        for k in range(spec.policies):
            self.build_policy(ns, policy_name(k))
        apps = [service_name(j) for j in range(spec.services)] or ["app"]
        pods = []
        for k in range(spec.pods):
            app = apps[k % len(apps)]
            pods.append(PodPlan(f"{app}-{self.sc.suffix(10)}-{self.sc.suffix()}", self.next_worker().name,
                                {"app": app}))
        self.build_pods(ns, pods)
        for j in range(spec.services):
            name = service_name(j)
            key = f"{ns.name}/{name}"
            lb_type = "LoadBalancer" if key in self.pool_fip_services or key == self.user_fip_service else "ClusterIP"
            self.build_service(ns, ServicePlan(name, (("http", 80, "TCP", 8080),), {"app": name},
                                               self.service_ips.take(), lb_type))

    # -- pods -------------------------------------------------------------------------------------------
    def build_pods(self, ns: Namespace, pods: list[PodPlan]) -> None:
        """Pods with their Kuryr ports (VLAN subports of their node's trunk), plus the pool ports."""
        sc = self.sc
        nodes_with_pods: list[str] = []
        first_port = True
        for plan in pods:
            node = self.node_by_name[plan.node]
            pod_uid = str(uuid.uuid4())
            if plan.host_network:
                self._put(pod_object(ns.name, plan, pod_uid, node, node.ip, finalizers=[]))
                continue
            ip = ns.net.addresses.take()
            mac = sc.mac()
            port = neutron.create_port(
                self.store, name=f"{ns.name}/{plan.name}", network_id=ns.net.network["id"], mac_address=mac,
                fixed_ips=[{"subnet_id": ns.net.subnet["id"], "ip_address": ip}],
                security_groups=list(ns.pod_security_groups), device_owner=KURYR_PORT_DEVICE_OWNER,
                status="ACTIVE", tags=self._tags("port", ns.name if first_port else ""),
                **{"binding:host_id": plan.node},
            )
            first_port = False
            self.add_subport(node, port)
            ns.pods[plan.name] = (ip, plan.node, plan.labels)
            node.pods += 1
            if plan.node not in nodes_with_pods:
                nodes_with_pods.append(plan.node)
            self._put(pod_object(ns.name, plan, pod_uid, node, ip, finalizers=[POD_FINALIZER]))
            vlan = node.sub_ports[-1]["segmentation_id"]
            self._put(kuryr_port_object(ns, plan, pod_uid, port, vlan))
        # Kuryr keeps ready ports per node and security-group set, made in batches once a pod of the
        # namespace landed on the node: named kuryr-pool-port, subports already, no pod behind them.
        for node_name in nodes_with_pods:
            node = self.node_by_name[node_name]
            for _ in range(self.spec.pool_ports):
                port = neutron.create_port(
                    self.store, name=KURYR_POOL_PORT_NAME, network_id=ns.net.network["id"], mac_address=sc.mac(),
                    fixed_ips=[{"subnet_id": ns.net.subnet["id"], "ip_address": ns.net.addresses.take()}],
                    security_groups=list(ns.pod_security_groups), device_owner=KURYR_PORT_DEVICE_OWNER,
                    tags=[self.tag],
                )
                self.add_subport(node, port)

    def build_finished_pods(self, ns: Namespace) -> None:
        """Pods of Jobs that finished (Succeeded, or Failed) days before the migration, as the kubelet and
        Kuryr left them: the pod keeps its IP in its status but has no Kuryr finalizer and no KuryrPort,
        since Kuryr's VIF handler finalized it when it completed (`utils.is_pod_completed`), and its port
        went back to the pool: still a tagged subport of its node's trunk, named `kuryr-pool-port`
        (kuryr_kubernetes/controller/drivers/vif_pool.py, `_trigger_return_to_pool` with port_debug)."""
        for number in self.finished_pods.get(ns.name, []):
            node = self.next_worker()
            pruner = ns.name == IMAGE_REGISTRY_NAMESPACE
            # The pruner is a CronJob's Job, named after its schedule time in minutes.
            job = f"image-pruner-{28480320 - 1440 * number}" if pruner else f"batch-{number}"
            started = days_before(self.sc.created_at, 2 + number)
            plan = FinishedPodPlan(f"{job}-{self.sc.suffix()}", node.name, job,
                                   "image-pruner" if pruner else "batch", succeeded=number % 2 == 1,
                                   started_at=started, finished_at=days_before(started, 0, minutes=-3))
            ip = ns.net.addresses.take()
            port = neutron.create_port(
                self.store, name=KURYR_POOL_PORT_NAME, network_id=ns.net.network["id"], mac_address=self.sc.mac(),
                fixed_ips=[{"subnet_id": ns.net.subnet["id"], "ip_address": ip}],
                security_groups=list(ns.pod_security_groups), device_owner=KURYR_PORT_DEVICE_OWNER,
                status="ACTIVE", tags=[self.tag], **{"binding:host_id": node.name},
            )
            self.add_subport(node, port)
            self._put(finished_pod_object(ns.name, plan, str(uuid.uuid4()), str(uuid.uuid4()), node, ip))

    # -- services ---------------------------------------------------------------------------------------
    def build_service(self, ns: Namespace, plan: ServicePlan, kuryr: bool = True) -> None:
        """A Service, its Octavia LB (listener, pool and members per port) and its KuryrLoadBalancer."""
        sc, store = self.sc, self.store
        key = f"{ns.name}/{plan.name}"
        svc_uid = str(uuid.uuid4())
        service_obj = service_object(ns.name, plan, svc_uid, [SERVICE_FINALIZER] if kuryr else [])
        if not kuryr:
            self._put(service_obj)
            return
        tags = self._tags("lb", key)
        # Octavia < 2.5 has no tags: Kuryr wrote the tag text in the description (LB, listeners, pools),
        # and LBs made then keep it so after an upgrade.
        tagged = sc.octavia_tags and not self._created_before_octavia_upgrade(ns.name)
        marker: dict[str, Any] = {"tags": tags} if tagged else {"description": ",".join(tags)}
        error = key in self.error_lbs
        lb = octavia.create_loadbalancer(
            store, name=key, vip_subnet_id=self.service_subnet["id"], vip_address=plan.cluster_ip,
            provider=sc.lb_provider, provisioning_status="ERROR" if error else "ACTIVE",
            operating_status="ERROR" if error else "ONLINE", **marker,
        )
        vip_port = store.os["ports"][lb["vip_port_id"]]
        lb_status = {
            "id": lb["id"], "ip": lb["vip_address"], "name": key, "port_id": lb["vip_port_id"],
            "project_id": self.project_id, "provider": sc.lb_provider, "security_groups": [],
            "subnet_id": self.service_subnet["id"],
        }
        listeners, pools, members = [], [], []
        endpoints = self._endpoints(ns, plan)
        if not error:
            for _, port, protocol, target in plan.ports:
                child_name = f"{key}:{protocol}:{port}"
                listener = octavia.create_listener(
                    store, name=child_name, loadbalancer_id=lb["id"], protocol=protocol, protocol_port=port,
                    **dict(marker),
                )
                pool = octavia.create_pool(
                    store, name=child_name, listener_id=listener["id"], protocol=protocol,
                    lb_algorithm="SOURCE_IP_PORT" if sc.lb_provider == "ovn" else "ROUND_ROBIN", **dict(marker),
                )
                listeners.append({"id": listener["id"], "loadbalancer_id": lb["id"], "name": child_name,
                                  "port": port, "project_id": self.project_id, "protocol": protocol})
                pools.append({"id": pool["id"], "listener_id": listener["id"], "loadbalancer_id": lb["id"],
                              "name": child_name, "project_id": self.project_id, "protocol": protocol})
                for target_name, address, subnet_id in endpoints:
                    member_name = f"{ns.name}/{target_name}:{target}"
                    member = octavia.create_member(
                        store, pool["id"], name=member_name, address=address, protocol_port=target,
                        subnet_id=subnet_id, **({"tags": tags} if tagged else {}),
                    )
                    members.append({"id": member["id"], "ip": address, "name": member_name, "pool_id": pool["id"],
                                    "port": target, "project_id": self.project_id, "subnet_id": subnet_id})
        status: dict[str, Any] = {"loadbalancer": lb_status}
        if listeners:
            status.update(listeners=listeners, pools=pools, members=members)
        if plan.lb_type == "LoadBalancer":
            if key == self.user_fip_service:
                # The admin made this floating IP and gave it as spec.loadBalancerIP: Kuryr only
                # associates it, so it has no Kuryr description and no tag.
                fip = sc.floating_ip(port_id=vip_port["id"], description="reserved for " + key)
                alloc_method = "user"
                service_obj["spec"]["loadBalancerIP"] = fip["floating_ip_address"]
            else:
                fip = sc.floating_ip(port_id=vip_port["id"], description=KURYR_FIP_DESCRIPTION)
                self._tag("floatingips", fip)
                alloc_method = "pool"
            status["service_pub_ip_info"] = {"ip_id": fip["id"], "ip_addr": fip["floating_ip_address"],
                                             "alloc_method": alloc_method}
            service_obj["status"] = {"loadBalancer": {"ingress": [{"ip": fip["floating_ip_address"]}]}}
        self._put(service_obj)
        klb_spec: dict[str, Any] = {
            "endpointSlices": [endpoint_slice(ns.name, plan, endpoints)] if endpoints else [],
            "ip": plan.cluster_ip,
            "ports": [{"name": n, "port": p, "protocol": proto, "targetPort": str(t)} for n, p, proto, t in plan.ports],
            "project_id": self.project_id,
            "provider": sc.lb_provider,
            "security_groups_ids": list(ns.pod_security_groups),
            "subnet_id": self.service_subnet["id"],
            "type": plan.lb_type,
        }
        if "loadBalancerIP" in service_obj["spec"]:
            klb_spec["lb_ip"] = service_obj["spec"]["loadBalancerIP"]
        self._put({
            "apiVersion": KURYR_API,
            "kind": "KuryrLoadBalancer",
            "metadata": {
                "name": plan.name, "namespace": ns.name, "finalizers": [KURYRLB_FINALIZER],
                "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": plan.name, "uid": svc_uid}],
            },
            "spec": klb_spec,
            "status": status,
        })

    def _created_before_octavia_upgrade(self, namespace: str) -> bool:
        """With `octavia-upgraded`: the LBs of the system namespaces (made at install) and of the odd user
        namespaces ns-1, ns-3, ... predate the upgrade to Octavia >= 2.5."""
        if not self.spec.octavia_upgraded:
            return False
        number = namespace.removeprefix("ns-")
        return not number.isdigit() or int(number) % 2 == 1

    def _endpoints(self, ns: Namespace, plan: ServicePlan) -> list[tuple[str, str, str]]:
        """(target name, address, member subnet) of the Service's backends."""
        if plan.host_endpoints:
            return [(plan.name, ip, self.node_subnet["id"]) for ip in plan.host_endpoints]
        if not plan.selector:
            return []
        return [
            (pod, ip, ns.net.subnet["id"])
            for pod, (ip, _, labels) in ns.pods.items()
            if all(labels.get(k) == v for k, v in plan.selector.items())
        ]

    # -- network policies -------------------------------------------------------------------------------
    def build_policy(self, ns: Namespace, name: str) -> None:
        """A NetworkPolicy's security group (pods of the namespace get it) and its KuryrNetworkPolicy."""
        store = self.store
        key = f"{ns.name}/{name}"
        sg_name = f"sg-{ns.name}-{name}" if self.spec.legacy_names else f"sg/{ns.name}-{name}"
        group = neutron.create_security_group(
            store, name=sg_name, description=NP_SG_DESCRIPTION.format(namespace=ns.name, name=name),
            tags=self._tags("sg", key),
        )
        rule_bodies: list[dict[str, Any]] = []
        if name == "allow-from-same-namespace":
            if ns.pod_network is not None:  # else no pod for the rule to allow
                rule_bodies.append({"remote_ip_prefix": ns.pod_network.subnet["cidr"]})
        elif name == "allow-from-openshift-ingress":
            ingress = self.namespaces.get("openshift-ingress")
            # The routers of a cluster on OpenStack are on the host network: the nodes' addresses.
            ingress_net = ingress.pod_network if ingress else None
            rule_bodies.append({"remote_ip_prefix": ingress_net.subnet["cidr"] if ingress_net else MACHINE_NETWORK})
        elif name != "deny-by-default":
            rule_bodies.append({"protocol": "tcp", "port_range_min": 8080, "port_range_max": 8080,
                                "remote_ip_prefix": "0.0.0.0/0"})
        # Kuryr always lets the service subnet and the nodes reach the pods.
        defaults = [{"remote_ip_prefix": self.service_subnet["cidr"]}, {"remote_ip_prefix": MACHINE_NETWORK}]
        sg_rules = []
        ingress_rules = []
        for body in rule_bodies + defaults:
            rule = neutron.create_security_group_rule(
                store, security_group_id=group["id"], direction="ingress", ethertype="IPv4",
                description=NP_RULE_DESCRIPTION, **body,
            )
            sg_rule = {k: rule[k] for k in ("description", "direction", "ethertype", "id", "port_range_max",
                                             "port_range_min", "protocol", "remote_ip_prefix", "security_group_id")
                       if rule.get(k) is not None}
            sg_rules.append(sg_rule)
            if body in rule_bodies:
                ingress_rules.append({"sgRule": {k: v for k, v in sg_rule.items() if k not in ("id",
                                                                                            "security_group_id")}})
        if ns.pod_security_groups == [self.pods_sg["id"]]:
            ns.pod_security_groups = []
        ns.pod_security_groups.append(group["id"])
        np_spec = policy_spec(name)
        np_uid = str(uuid.uuid4())
        self._put({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns.name, "uid": np_uid, "finalizers": [NETWORKPOLICY_FINALIZER],
                         "generation": 1},
            "spec": np_spec,
        })
        self._put({
            "apiVersion": KURYR_API,
            "kind": "KuryrNetworkPolicy",
            "metadata": {
                "name": name, "namespace": ns.name, "finalizers": [NETWORKPOLICY_FINALIZER],
                "annotations": {"networkPolicyLink":
                                f"/apis/networking.k8s.io/v1/namespaces/{ns.name}/networkpolicies/{name}"},
            },
            "spec": {"egressSgRules": [], "ingressSgRules": ingress_rules,
                     "podSelector": np_spec["podSelector"], "policyTypes": np_spec["policyTypes"]},
            "status": {"securityGroupId": group["id"], "securityGroupRules": sg_rules,
                       "podSelector": np_spec["podSelector"]},
        })
