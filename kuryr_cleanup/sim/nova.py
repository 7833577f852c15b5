"""Nova (placeholder until the API is written)."""

from __future__ import annotations

from kuryr_cleanup.sim.http import Service
from kuryr_cleanup.sim.store import Store


class Nova(Service):
    name = "compute"
    prefix = "/compute"

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
