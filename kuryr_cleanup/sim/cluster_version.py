"""The cluster's identity and release: ClusterVersion `version` (config.openshift.io/v1, cluster-scoped).

Every OpenShift 4 cluster has one, made by the installer: `spec.clusterID` is the cluster instance's
UUID (what telemetry and support cases know it by, and what tells two clusters with the same infraID
apart), `status.conditions` Available/Progressing/Failing say whether an upgrade is under way, and
`status.history` lists the releases it has run. The builder imports nothing else of the simulator,
so the store can give one to a recorded snapshot that lacks it.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from typing import Any

OPENSHIFT_VERSION = "4.14.12"
UPGRADE_VERSION = "4.14.13"  # what an `upgrading` cluster is moving to
CHANNEL = "stable-4.14"
CHANNELS = ["candidate-4.14", "eus-4.14", "fast-4.14", "stable-4.14"]
CAPABILITIES = ["Build", "CSISnapshot", "Console", "DeploymentConfig", "ImageRegistry", "Insights", "MachineAPI",
                "NodeTuning", "Storage", "baremetal", "marketplace", "openshift-samples"]


def cluster_id_from(text: str) -> str:
    """A random-looking (version 4) UUID that is always the same for the same `text`."""
    return str(uuid.UUID(int=random.Random(f"cluster-id/{text}").getrandbits(128), version=4))


def release_image(version: str) -> str:
    digest = hashlib.sha256(f"ocp-release/{version}".encode()).hexdigest()
    return f"quay.io/openshift-release-dev/ocp-release@sha256:{digest}"


def _condition(ctype: str, status: str, when: str, message: str = "", reason: str = "") -> dict[str, Any]:
    cond: dict[str, Any] = {"lastTransitionTime": when, "status": status, "type": ctype}
    if message:
        cond["message"] = message
    if reason:
        cond["reason"] = reason
    return cond


def make_cluster_version(cluster_id: str, when: str, version: str = OPENSHIFT_VERSION,
                         upgrading_to: str | None = None) -> dict[str, Any]:
    """ClusterVersion `version` of a cluster running `version`; with `upgrading_to`, an upgrade to that
    release is under way (Progressing=True, a Partial entry on top of the history), as the
    cluster-version operator reports it."""
    target = upgrading_to or version
    progressing = upgrading_to is not None
    history: list[dict[str, Any]] = [
        {"completionTime": when, "image": release_image(version), "startedTime": when, "state": "Completed",
         "verified": False, "version": version},
    ]
    spec: dict[str, Any] = {"channel": CHANNEL, "clusterID": cluster_id}
    if progressing:
        history.insert(0, {"completionTime": None, "image": release_image(target), "startedTime": when,
                           "state": "Partial", "verified": True, "version": target})
        spec["desiredUpdate"] = {"architecture": "", "force": False, "image": "", "version": target}
    progress = (f"Working towards {target}: 106 of 860 done (12% complete)" if progressing
                else f"Cluster version is {version}")
    return {
        "apiVersion": "config.openshift.io/v1",
        "kind": "ClusterVersion",
        "metadata": {
            "name": "version",
            "generation": 3 if progressing else 2,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"clusterversion/{cluster_id}")),
        },
        "spec": spec,
        "status": {
            "availableUpdates": None,
            "capabilities": {"enabledCapabilities": list(CAPABILITIES), "knownCapabilities": list(CAPABILITIES)},
            "conditions": [
                _condition("RetrievedUpdates", "False", when, "Unable to retrieve available updates: currently "
                           "reconciling cluster version", "RemoteFailed"),
                _condition("ImplicitlyEnabledCapabilities", "False", when, "Capabilities match configured spec",
                           "AsExpected"),
                _condition("ReleaseAccepted", "True", when, f'Payload loaded version="{target}" '
                           f'image="{release_image(target)}" architecture="amd64"', "PayloadLoaded"),
                _condition("Available", "True", when, f"Done applying {version}"),
                _condition("Failing", "False", when),
                _condition("Progressing", "True" if progressing else "False", when, progress),
            ],
            "desired": {"channels": list(CHANNELS), "image": release_image(target), "version": target},
            "history": history,
            "observedGeneration": 3 if progressing else 2,
            "versionHash": hashlib.sha256(target.encode()).hexdigest()[:11] + "=",
        },
    }
