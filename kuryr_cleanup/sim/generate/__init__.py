"""Kuryr-shaped scenarios of any size: an OpenStack project and an OpenShift cluster as Kuryr leaves them.

`ScenarioSpec.parse("namespaces=50,pods=4,second-cluster,fips")` describes a scenario;
`generate_scenario(store, spec)` fills a simulator store with it by calling the API modules' model
functions directly (no HTTP), so a 2,000-namespace cluster takes seconds.

What is generated, and why it looks the way it does (names, tags and descriptions are the ones the
real components write; docs/scenarios.md cites the sources):
- The installer's resources: node network `<infraID>-openshift` and subnet `<infraID>-nodes`, router
  `<infraID>-external-router` (description `Created By OpenShift Installer`) with a gateway on the
  external network, security groups `<infraID>-master`/`-worker`, the API and ingress VIP ports, and
  per node a Nova server, a trunk parent port and a trunk. All carry the cluster tag.
- The CNO's Kuryr resources: `<infraID>-kuryr-service-network`/`-subnet` (attached to the installer
  router through the port `<infraID>-kuryr-service-subnet-router-port`), `<infraID>-kuryr-pods-security-group`
  and `<infraID>-kuryr-pod-subnetpool`. Before mid-2019 the names had no `<infraID>-` prefix.
- Kuryr's per-namespace network `<ns-uid>/<ns-name>` and subnet (from the pool, on the router), pod
  ports (VLAN subports of their node's trunk), pool ports `kuryr-pool-port`, one Octavia LB per
  Service `<ns>/<svc>` and one security group per NetworkPolicy, plus the matching Kubernetes objects
  and Kuryr CRs with their finalizers.
- Options add a second cluster in the same project, untagged leftovers, floating IPs on LBs, LBs in
  ERROR, resources the project's users made that nobody may touch, and what real deployments have:
  DVR routers and their ports, availability zones, a second project with look-alikes, LBs older than
  Octavia 2.5, finished pods, a paused MachineConfigPool, an upgrade in progress.

Ids come from a seeded random generator, so a spec with the same seed gives the same cloud
(`python -m kuryr_cleanup.sim.generate --fixtures fixtures/` rewrites the recorded fixtures).

Modules: `spec` (the spec), `names` (what the real components call things), `build`
(`generate_scenario`), `scenario` (what the clusters of a scenario share; the users' resources),
`cluster` (one cluster: `infrastructure` + `workloads` over `cluster_state`), `other_project`,
`objects` (Kubernetes object shapes) and `fixtures` (the recorded snapshots).
"""

from kuryr_cleanup.sim.generate.build import generate_scenario
from kuryr_cleanup.sim.generate.fixtures import FIXTURES, fixture_snapshot, normalize_timestamps, write_fixture
from kuryr_cleanup.sim.generate.names import (
    CLUSTER_TAG_KEY,
    INSTALLER_ROUTER_DESCRIPTION,
    KURYR_FIP_DESCRIPTION,
    KURYR_POOL_PORT_NAME,
    NP_SG_DESCRIPTION,
    SCENARIO_EPOCH,
    cluster_tag,
)
from kuryr_cleanup.sim.generate.spec import ScenarioSpec

__all__ = [
    "CLUSTER_TAG_KEY",
    "FIXTURES",
    "INSTALLER_ROUTER_DESCRIPTION",
    "KURYR_FIP_DESCRIPTION",
    "KURYR_POOL_PORT_NAME",
    "NP_SG_DESCRIPTION",
    "SCENARIO_EPOCH",
    "ScenarioSpec",
    "cluster_tag",
    "fixture_snapshot",
    "generate_scenario",
    "normalize_timestamps",
    "write_fixture",
]
