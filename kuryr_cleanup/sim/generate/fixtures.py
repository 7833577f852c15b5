"""The recorded fixtures (snapshots of seeded scenarios) and `python -m kuryr_cleanup.sim.generate`."""

from __future__ import annotations

import argparse
import copy
import json
import re
from pathlib import Path
from typing import Any

from kuryr_cleanup.sim.generate.build import generate_scenario
from kuryr_cleanup.sim.generate.names import SCENARIO_EPOCH
from kuryr_cleanup.sim.generate.spec import ScenarioSpec
from kuryr_cleanup.sim.store import Store

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")


def normalize_timestamps(snapshot: dict[str, Any], when: str = SCENARIO_EPOCH) -> dict[str, Any]:
    """A copy of `snapshot` whose timestamps all read `when` (so recorded fixtures don't change with the clock)."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and _TIMESTAMP.match(value):
            return when if value.endswith("Z") else when.rstrip("Z")
        return value

    return dict(walk(copy.deepcopy(snapshot)))


# The recorded fixtures: file name -> spec. `--fixtures DIR` regenerates them all.
FIXTURES: dict[str, str] = {
    "small.json": "namespaces=5,pods=3,services=2,policies=1,seed=7",
    "shared-project.json": "namespaces=4,pods=2,services=1,policies=1,second-cluster,seed=11",
    "legacy-octavia24.json": "namespaces=4,pods=2,services=2,policies=1,legacy-names,octavia=2.4,untagged=1,fips,"
                             "error-lbs=1,installer-router=no,seed=24",
}


def fixture_snapshot(spec_text: str) -> dict[str, Any]:
    """The snapshot document of a generated scenario, as recorded in fixtures/ (timestamps fixed)."""
    store = Store()
    spec = ScenarioSpec.parse(spec_text)
    generate_scenario(store, spec)
    snap = normalize_timestamps(store.snapshot(source=f"generated: {spec.text()}"))
    return snap


def write_fixture(spec_text: str, path: Path) -> None:
    path.write_text(json.dumps(fixture_snapshot(spec_text), indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kuryr_cleanup.sim.generate",
                                     description="Write generated scenarios as snapshot files.")
    parser.add_argument("--fixtures", metavar="DIR", help="rewrite the recorded fixtures into DIR")
    parser.add_argument("--spec", metavar="SCENARIO", default="", help="a scenario, e.g. namespaces=5,fips")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the --spec scenario here")
    args = parser.parse_args(argv)
    if args.fixtures:
        for name, spec_text in FIXTURES.items():
            write_fixture(spec_text, Path(args.fixtures) / name)
            print(f"wrote {Path(args.fixtures) / name}")
    if args.output:
        write_fixture(args.spec, Path(args.output))
        print(f"wrote {args.output}")
    if not args.fixtures and not args.output:
        parser.error("give --fixtures DIR or --spec SCENARIO -o FILE")
    return 0
