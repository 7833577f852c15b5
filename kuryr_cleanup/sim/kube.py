"""The Kubernetes API (placeholder until it is written)."""

from __future__ import annotations

from kuryr_cleanup.sim.http import Service
from kuryr_cleanup.sim.store import Store


class KubeApi(Service):
    name = "kube"
    prefix = ""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
