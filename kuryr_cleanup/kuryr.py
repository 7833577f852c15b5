"""What Kuryr, the Cluster Network Operator and the installer name and tag things (SPEC B, S2).

The one home of these facts: the cleanup steps, the ownership rules and the migration all read them
from here. Each value is what the real components write (kuryr-kubernetes, cluster-network-operator,
the OpenShift installer); a change in one of them is a change here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# The cluster tag: `openshiftClusterID=<infraID>`. Kuryr and the CNO put it on every Neutron and
# Octavia resource they create (on Octavia < 2.5 in the description instead).
CLUSTER_TAG_KEY = "openshiftClusterID"

# Finalizers Kuryr puts on cluster objects (SPEC B1, B4, B7-B10, B17). The KuryrLoadBalancer one is
# plural: that is how Kuryr spells it.
SERVICE_FINALIZER = "kuryr.openstack.org/service-finalizer"
KLB_FINALIZER = "kuryr.openstack.org/kuryrloadbalancer-finalizers"
POD_FINALIZER = "kuryr.openstack.org/pod-finalizer"
KURYRPORT_FINALIZER = "kuryr.openstack.org/kuryrport-finalizer"
NETWORKPOLICY_FINALIZER = "kuryr.openstack.org/networkpolicy-finalizer"
KURYRNETWORK_FINALIZER = "kuryrnetwork.finalizers.kuryr.openstack.org"

# Where Kuryr's CRs record the OpenStack project of what they stand for (kuryr-kubernetes' CRDs:
# KuryrNetwork `spec.projectId`, KuryrLoadBalancer `spec.project_id`).
KURYRNETWORK_PROJECT = "projectId"
KURYRLOADBALANCER_PROJECT = "project_id"

# Cluster objects.
KURYR_NAMESPACE = "openshift-kuryr"
GATEWAY_SERVICE = "service-subnet-gateway-ip"

# Descriptions.
NP_SG_DESCRIPTION = "Kuryr-Kubernetes Network Policy"  # Kuryr's network-policy security groups
INSTALLER_ROUTER_DESCRIPTION = "Created By OpenShift Installer"
KURYR_FIP_DESCRIPTION = "kuryr_lb"  # a floating IP Kuryr allocated for a LoadBalancer Service

# Names the CNO gives (`<infraID>-<suffix>`); before mid-2019 they had no `<infraID>-` prefix.
SERVICE_NETWORK = "kuryr-service-network"
SERVICE_SUBNET = "kuryr-service-subnet"
PODS_SECURITY_GROUP = "kuryr-pods-security-group"
POD_SUBNETPOOL = "kuryr-pod-subnetpool"
INSTALLER_NODE_NETWORK = "openshift"  # `<infraID>-openshift`: the installer's machine network

# Kuryr's pod ports (kuryr.lib DEVICE_OWNER); a Nova VM's ports are `compute:<availability zone>`.
# Added to a node's trunk, a port's owner becomes `trunk:subport`; taken off it, no owner at all.
KURYR_PORT_DEVICE_OWNER = "compute:kuryr"
SUBPORT_DEVICE_OWNER = "trunk:subport"
# Kuryr names a pod's port `<namespace>/<pod>`, and the ports it keeps in its pools this
# (kuryr_kubernetes.constants.KURYR_PORT_NAME).
KURYR_POOL_PORT_NAME = "kuryr-pool-port"

# Neutron device owners of a router's own ports. Interfaces are removed through the router, never
# deleted as ports; on DVR the SNAT port goes with its interface (Neutron refuses a direct delete).
ROUTER_INTERFACE_OWNERS = ("network:router_interface", "network:router_interface_distributed",
                           "network:ha_router_replicated_interface")
ROUTER_DEVICE_OWNERS = ROUTER_INTERFACE_OWNERS + ("network:router_centralized_snat", "network:router_gateway",
                                                  "network:floatingip_agent_gateway")


def cluster_tag(infra_id: str) -> str:
    return f"{CLUSTER_TAG_KEY}={infra_id}"


def cno_name(infra_id: str, suffix: str) -> str:
    """A name the Cluster Network Operator gives: `<infraID>-kuryr-...`."""
    return f"{infra_id}-{suffix}"


def cluster_tags(tags: Iterable[str] | None) -> set[str]:
    return {t for t in (tags or []) if t.startswith(CLUSTER_TAG_KEY + "=")}


# A whole token on both sides: `copied-from-openshiftClusterID=x` or `...=x-other` is not the tag of x.
_DESCRIPTION_TAG = re.compile(r"(?<![^\s,;])" + re.escape(CLUSTER_TAG_KEY) + r"=([^\s,;]+)")


def description_tags(description: str | None) -> set[str]:
    """The cluster tags written into a description (Kuryr on Octavia < 2.5), as whole tokens: a
    substring test would take `...=abc12` for `...=abc12-other` too."""
    return {f"{CLUSTER_TAG_KEY}={m}" for m in _DESCRIPTION_TAG.findall(description or "")}
