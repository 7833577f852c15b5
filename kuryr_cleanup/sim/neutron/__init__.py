"""Neutron v2.0: the records, the rules real Neutron enforces, and the HTTP API under /networking.

The model functions (`create_port`, `delete_network`, ...) are what the scenario generator, the other
simulated APIs (Octavia creates its VIP ports here) and the HTTP handlers all call, so a record made
by the generator is the same record a POST would make. The caller holds `store.lock`.

Real Neutron's behaviour that the cleanup tool depends on is reproduced on purpose, with the real
error types and messages (neutron-lib exceptions, checked against a Neutron 29 server): what may be
deleted in which order (NetworkInUse, SubnetInUse, PortInUseAsSubPort, ...), what is allowed
(a trunk with subports, a router with its gateway, a port with a floating IP), tag filters, and the
500 a real server answers when `tags` and `tags-any` are combined in one query.

Modules: `records` (errors, indexes, what every record has, tags), `networks` (networks, subnet
pools, subnets, address allocation), `security_groups`, `ports` (ports, trunks), `routers` (routers,
interfaces, gateways, floating IPs), `dvr` (what distributed routers add), `listing` (filters,
sorting, paging), `policy` (what a token may see) and `api` (the HTTP API).
This package exports the model functions and the `Neutron` service.
"""

from kuryr_cleanup.sim.neutron.api import Neutron
from kuryr_cleanup.sim.neutron.dvr import ensure_agent_gateway_port, l3_agent_id
from kuryr_cleanup.sim.neutron.networks import (
    create_network,
    create_subnet,
    create_subnetpool,
    delete_network,
    delete_subnet,
    delete_subnetpool,
)
from kuryr_cleanup.sim.neutron.ports import (
    add_subports,
    create_port,
    create_trunk,
    delete_port,
    delete_trunk,
    remove_subports,
)
from kuryr_cleanup.sim.neutron.records import (
    AGENT_GATEWAY_OWNER,
    AUTO_DELETE_PORT_OWNERS,
    CENTRALIZED_SNAT_OWNER,
    DHCP_OWNER,
    DISTRIBUTED_OWNER,
    DVR_INTERFACE_OWNER,
    FLOATINGIP_OWNER,
    L3_OWNERS,
    ROUTER_GATEWAY_OWNER,
    ROUTER_INTERFACE_OWNERS,
    SUBPORT_OWNER,
    TAGGABLE,
    NeutronError,
    add_tag,
    get,
    lookup,
    remove_tag,
    set_tags,
)
from kuryr_cleanup.sim.neutron.routers import (
    add_router_interface,
    associate_floatingip,
    create_floatingip,
    create_router,
    delete_floatingip,
    delete_router,
    remove_router_interface,
    router_interfaces,
    set_router_gateway,
)
from kuryr_cleanup.sim.neutron.security_groups import (
    create_security_group,
    create_security_group_rule,
    delete_security_group,
    delete_security_group_rule,
    ensure_default_security_group,
)

__all__ = [
    "AGENT_GATEWAY_OWNER",
    "AUTO_DELETE_PORT_OWNERS",
    "CENTRALIZED_SNAT_OWNER",
    "DHCP_OWNER",
    "DISTRIBUTED_OWNER",
    "DVR_INTERFACE_OWNER",
    "FLOATINGIP_OWNER",
    "L3_OWNERS",
    "ROUTER_GATEWAY_OWNER",
    "ROUTER_INTERFACE_OWNERS",
    "SUBPORT_OWNER",
    "TAGGABLE",
    "Neutron",
    "NeutronError",
    "add_router_interface",
    "add_subports",
    "add_tag",
    "associate_floatingip",
    "create_floatingip",
    "create_network",
    "create_port",
    "create_router",
    "create_security_group",
    "create_security_group_rule",
    "create_subnet",
    "create_subnetpool",
    "create_trunk",
    "delete_floatingip",
    "delete_network",
    "delete_port",
    "delete_router",
    "delete_security_group",
    "delete_security_group_rule",
    "delete_subnet",
    "delete_subnetpool",
    "delete_trunk",
    "ensure_agent_gateway_port",
    "ensure_default_security_group",
    "get",
    "l3_agent_id",
    "lookup",
    "remove_router_interface",
    "remove_subports",
    "remove_tag",
    "router_interfaces",
    "set_router_gateway",
    "set_tags",
]
