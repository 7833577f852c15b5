"""Keystone v3 (placeholder until the identity API is written)."""

from __future__ import annotations

from typing import Any

from kuryr_cleanup.sim.http import Service
from kuryr_cleanup.sim.store import Store


class Keystone(Service):
    name = "identity"
    prefix = "/identity"

    def __init__(self, store: Store, server: Any) -> None:
        super().__init__()
        self.store = store
        self.server = server
