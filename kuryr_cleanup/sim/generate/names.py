"""Names, tags and markers the real components use, and the address plan of a scenario.

Sources: openshift/installer, openshift/cluster-network-operator `pkg/platform/openstack/kuryr.go`,
kuryr-kubernetes (`constants.py`, `controller/drivers/*.py`, `lb_public_ip.py`, `network_policy.py`);
docs/scenarios.md says which name comes from where.
"""

from __future__ import annotations

from kuryr_cleanup.sim.openshift import MCO_NAMESPACE

CLUSTER_TAG_KEY = "openshiftClusterID"
INSTALLER_ROUTER_DESCRIPTION = "Created By OpenShift Installer"
KURYR_POOL_PORT_NAME = "kuryr-pool-port"  # kuryr_kubernetes.constants.KURYR_PORT_NAME
KURYR_PORT_DEVICE_OWNER = "compute:kuryr"  # kuryr.lib.constants.DEVICE_OWNER, before the trunk takes the port
KURYR_FIP_DESCRIPTION = "kuryr_lb"  # lb_public_ip.py: floating IPs Kuryr allocates for LoadBalancer Services
NP_SG_DESCRIPTION = "Kuryr-Kubernetes Network Policy {namespace}/{name} SG"
NP_RULE_DESCRIPTION = "Kuryr-Kubernetes NetPolicy SG rule"

POD_FINALIZER = "kuryr.openstack.org/pod-finalizer"
KURYRPORT_FINALIZER = "kuryr.openstack.org/kuryrport-finalizer"
SERVICE_FINALIZER = "kuryr.openstack.org/service-finalizer"
KURYRLB_FINALIZER = "kuryr.openstack.org/kuryrloadbalancer-finalizers"
NETWORKPOLICY_FINALIZER = "kuryr.openstack.org/networkpolicy-finalizer"
KURYRNETWORK_FINALIZER = "kuryrnetwork.finalizers.kuryr.openstack.org"

KURYR_API = "openstack.org/v1"
KURYR_NAMESPACE = "openshift-kuryr"
IMAGE_REGISTRY_NAMESPACE = "openshift-image-registry"  # where the image pruner's Job runs
GATEWAY_GUARD_SERVICE = "service-subnet-gateway-ip"

# The system namespaces of a 4.x cluster on Kuryr, with their labels, in the order they are built.
SYSTEM_NAMESPACES: tuple[tuple[str, dict[str, str]], ...] = (
    ("default", {}),
    (KURYR_NAMESPACE, {"openshift.io/run-level": "0"}),
    ("openshift-dns", {"openshift.io/cluster-monitoring": "true"}),
    ("openshift-ingress", {"policy-group.network.openshift.io/ingress": "",
                           "network.openshift.io/policy-group": "ingress"}),
    ("openshift-monitoring", {"openshift.io/cluster-monitoring": "true"}),
    ("openshift-multus", {"openshift.io/run-level": "0"}),
    (MCO_NAMESPACE, {"openshift.io/run-level": "1"}),
)

MACHINE_NETWORK = "10.196.0.0/16"  # the installer's default machine network on OpenStack
CLUSTER_NETWORK = "10.128.0.0/14"
SERVICE_NETWORK = "172.30.0.0/16"
AMPHORA_SERVICE_NETWORK = "172.30.0.0/15"  # kuryrConfig.openStackServiceNetwork: twice the service network
EXTERNAL_CIDR = "172.24.4.0/24"
MAX_VLAN_ID = 4094  # one trunk carries at most this many subports
PODS_PER_NODE = 200  # used to size the workers when the spec leaves their number open
SCENARIO_EPOCH = "2024-03-01T09:00:00Z"  # what the recorded fixtures say every timestamp is

# Octavia gained tags in API 2.5 and provider selection in 2.6; the CNO picks the OVN provider when
# Octavia offers it and falls back to amphora (with a doubled service subnet) otherwise.
OCTAVIA_TAGS_VERSION = (2, 5)
OCTAVIA_PROVIDERS_VERSION = (2, 6)

# Kubernetes' generateName alphabet (no vowels, no look-alikes).
SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

# NetworkPolicies a real project has, in the order the generator hands them out.
POLICY_NAMES = ("allow-from-same-namespace", "deny-by-default", "allow-from-openshift-ingress")
SERVICE_NAMES = ("web", "api", "db", "cache", "queue")


def cluster_tag(infra_id: str) -> str:
    """The tag Kuryr and the CNO put on everything they create: `openshiftClusterID=<infraID>`."""
    return f"{CLUSTER_TAG_KEY}={infra_id}"
