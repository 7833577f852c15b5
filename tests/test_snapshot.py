"""`kuryr-migrate snapshot`: read-only, a file only its owner can read, and a snapshot rehearses the same
cleanup in the simulator."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

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


# -- the file ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o000, 0o277])
def test_the_file_is_readable_by_its_owner_only_whatever_the_umask(make_sim: Any, tmp_path: Path,
                                                                    umask: int) -> None:
    sim = make_sim(generate="namespaces=1,pods=1,services=1")
    older = tmp_path / "snap.json"
    older.write_text("{}")
    older.chmod(0o644)  # an older snapshot, readable by all
    stale = tmp_path / "snap.json.tmp"
    stale.write_text("partial")
    stale.chmod(0o666)  # left by an interrupted snapshot
    saved = os.umask(umask)
    try:
        for path in (older, tmp_path / "new.json"):
            result = kuryr_migrate(sim, "snapshot", "-o", str(path))
            assert result.exit_code == 0, result.output
    finally:
        os.umask(saved)
    for path in (older, tmp_path / "new.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, oct(path.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["new.json", "snap.json"]
