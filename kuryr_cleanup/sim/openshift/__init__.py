"""OpenShift's side of the migration, simulated: object builders and the operators' behaviours.

Builders (`make_*`, in `objects`, `nodes` and `machine_config`) return cluster objects in the exact shape
OpenShift 4.14 has them (Node with MCO annotations, MachineConfigPool with its conditions and counts,
rendered MachineConfig with the `ovs-configuration.service` unit, ClusterOperator, ClusterVersion
(in `cluster_version`, beside this package), the multus DaemonSet, Network.config, Network.operator,
Infrastructure), so the scenario generator and the
behaviours write the same shapes. They do not store anything: callers pass the result to
`store.kube_put`.

`behaviours` holds the MCO rollout, the CNO switch and the reboots (`behaviours_for(store)`).
This package exports the builders, their constants and `behaviours_for`.
"""

from kuryr_cleanup.sim.cluster_version import OPENSHIFT_VERSION, cluster_id_from, make_cluster_version
from kuryr_cleanup.sim.openshift.behaviours import OpenShiftBehaviours, behaviours_for
from kuryr_cleanup.sim.openshift.machine_config import (
    ANN_CURRENT,
    ANN_DESIRED,
    ANN_REASON,
    ANN_STATE,
    MC_API,
    MCO_NAMESPACE,
    machine_config_sources,
    make_machine_config_daemon_pod,
    make_machine_config_pool,
    make_rendered_machine_config,
    ovs_configuration_unit,
    pool_conditions,
    rendered_config_name,
)
from kuryr_cleanup.sim.openshift.nodes import (
    make_node,
    new_boot_id,
    node_ip,
    node_is_ready,
    node_ready_conditions,
    node_role,
)
from kuryr_cleanup.sim.openshift.objects import (
    CLUSTER_OPERATORS,
    CONFIG_API,
    DEFAULT_CLUSTER_NETWORK,
    DEFAULT_SERVICE_NETWORK,
    KUBELET_VERSION,
    MULTUS_NAMESPACE,
    OPERATOR_API,
    make_cluster_operator,
    make_infrastructure,
    make_multus_daemonset,
    make_namespace,
    make_network_config,
    make_network_operator,
)

__all__ = [
    "ANN_CURRENT",
    "ANN_DESIRED",
    "ANN_REASON",
    "ANN_STATE",
    "CLUSTER_OPERATORS",
    "CONFIG_API",
    "DEFAULT_CLUSTER_NETWORK",
    "DEFAULT_SERVICE_NETWORK",
    "KUBELET_VERSION",
    "MCO_NAMESPACE",
    "MC_API",
    "MULTUS_NAMESPACE",
    "OPENSHIFT_VERSION",
    "OPERATOR_API",
    "OpenShiftBehaviours",
    "behaviours_for",
    "cluster_id_from",
    "machine_config_sources",
    "make_cluster_operator",
    "make_cluster_version",
    "make_infrastructure",
    "make_machine_config_daemon_pod",
    "make_machine_config_pool",
    "make_multus_daemonset",
    "make_namespace",
    "make_network_config",
    "make_network_operator",
    "make_node",
    "make_rendered_machine_config",
    "new_boot_id",
    "node_ip",
    "node_is_ready",
    "node_ready_conditions",
    "node_role",
    "ovs_configuration_unit",
    "pool_conditions",
    "rendered_config_name",
]
