"""Kuryr-shaped scenarios of any size (placeholder until the generator is written)."""

from __future__ import annotations

from dataclasses import dataclass

from kuryr_cleanup.sim.store import Store


@dataclass(frozen=True)
class ScenarioSpec:
    namespaces: int = 5

    @classmethod
    def parse(cls, text: str) -> ScenarioSpec:
        return cls()


def generate_scenario(store: Store, spec: ScenarioSpec) -> None:
    store.infra_id = "sim-abc12"
