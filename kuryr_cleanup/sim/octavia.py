"""Octavia (placeholder until the API is written)."""

from __future__ import annotations

from kuryr_cleanup.sim.http import Service
from kuryr_cleanup.sim.store import Store


class Octavia(Service):
    name = "load-balancer"
    prefix = "/load-balancer"

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
