"""Neutron (placeholder until the API is written)."""

from __future__ import annotations

from kuryr_cleanup.sim.http import Service
from kuryr_cleanup.sim.store import Store


class Neutron(Service):
    name = "network"
    prefix = "/networking"

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
