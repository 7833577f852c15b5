"""The shape the code promises its maintainers: a checked step registry, docs generated from it,
one home per step, no import circle, commands free of click and a CLI free of SDK calls."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from kuryr_cleanup.cleanup import KINDS, REGISTRY, Registry, RegistryError
from kuryr_cleanup.resources.base import ResourceKind, Step

PACKAGE = Path(__file__).resolve().parent.parent / "kuryr_cleanup"
DOCS = PACKAGE.parent / "docs"


def _nothing(inv: object) -> list[object]:
    return []


def test_the_registry_holds_every_spec_step_once_in_order() -> None:
    assert [s.id for s in REGISTRY.steps] == [f"B{n}" for n in range(1, 19)]
    for step in REGISTRY.steps:
        assert all(dep in REGISTRY.dependencies() for dep in step.depends_on)


@pytest.mark.parametrize(("steps", "error"), [
    ((Step("B1", "a", (), _nothing), Step("B1", "b", (), _nothing)), "registered twice"),
    ((Step("B1", "a", ("B9",), _nothing),), "unknown step"),
    ((Step("B1", "a", ("B2",), _nothing), Step("B2", "b", ("B3",), _nothing), Step("B3", "c", ("B1",), _nothing)),
     "cycle"),
])
def test_a_broken_registry_is_refused(steps: tuple[Step, ...], error: str) -> None:
    kinds = [ResourceKind(f"kind{i}", steps=(step,)) for i, step in enumerate(steps)]
    with pytest.raises(RegistryError, match=error):
        Registry(kinds)


def test_the_docs_step_table_is_the_registry() -> None:
    text = (DOCS / "cleanup.md").read_text()
    assert REGISTRY.markdown_table() in text, (
        "docs/cleanup.md's step table differs from the registry: regenerate it with "
        "`python -m kuryr_cleanup.cleanup`")


def test_each_step_is_registered_by_exactly_one_resource_module() -> None:
    owners: dict[str, list[str]] = {}
    for path in sorted((PACKAGE / "resources").glob("*.py")):
        for step_id in set(re.findall(r'"(B\d+)"', path.read_text())):
            owners.setdefault(step_id, []).append(path.name)
    assert {s.id for s in REGISTRY.steps} == set(owners)
    assert {s: m for s, m in owners.items() if len(m) != 1} == {}
    assert len(KINDS) == len({k.name for k in KINDS})


def _module_imports(path: Path, modules: set[str]) -> set[str]:
    """Modules a file imports at import time (not inside functions or TYPE_CHECKING blocks). `from
    package import submodule` needs the submodule, not the package's own code to have finished."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            submodules = {f"{node.module}.{a.name}" for a in node.names} & modules
            found |= submodules
            if len(submodules) < len(node.names):
                found.add(node.module)
    return found


def _all_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_the_package_has_no_import_circle() -> None:
    modules = {_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: {m for m in _module_imports(path, set(modules)) if m in modules and m != name}
             for name, path in modules.items()}
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        assert state.get(name) != 1, "import circle: " + " -> ".join(path[path.index(name):] + [name])
        state[name] = 1
        for dep in sorted(graph[name]):
            visit(dep, path + [name])
        state[name] = 2

    for name in sorted(graph):
        visit(name, [])


def test_commands_import_no_click_and_the_cli_no_cloud_client() -> None:
    for path in (PACKAGE / "commands").glob("*.py"):
        assert not any(m == "click" or m.startswith("click.") for m in _all_imports(path)), path.name
    cli = _all_imports(PACKAGE / "cli.py")
    clients = ("openstack", "keystoneauth1", "kubernetes")
    assert not [m for m in cli if m.split(".")[0] in clients]


def test_every_exit_code_is_defined_in_one_place() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "errors.py" or "sim" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"exit_code\s*=\s*\d|EXIT_\w+\s*=\s*\d|sys\.exit\(\d", line):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert offenders == []
