"""`kuryr-migrate snapshot`: read-only, and a snapshot rehearses the same cleanup in the simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.test_cleanup import FAST, kuryr_migrate, migrated_sim


def _plan(sim: Any) -> list[tuple[str, ...]]:
    result = kuryr_migrate(sim, "cleanup", "--plan", "-o", "json", *FAST)
    assert result.exit_code == 0, result.output
    return [tuple(i[k] for k in ("step", "kind", "id", "name", "action", "state", "evidence"))
            for i in json.loads(result.stdout)["items"]]


def test_a_snapshot_is_read_only_and_replays_the_same_plan(make_sim: Any, tmp_path: Path) -> None:
    original = migrated_sim(make_sim, generate="namespaces=3,second-cluster,fips,untagged=1")
    original.clear_requests()
    out = tmp_path / "snap.json"
    result = kuryr_migrate(original, "snapshot", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert original.writes() == []
    snap = json.loads(out.read_text())
    assert snap["format"] == "kuryr-migrate/snapshot" and snap["infra_id"] == original.store.infra_id
    assert "sim-password" not in out.read_text()
    replica = make_sim(snapshot=out)
    assert _plan(replica) == _plan(original)
