"""The documentation can't drift from the tool: the site builds strictly, its command reference is
the CLI's own, the home page names every command, and the README's links lead somewhere."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest

from kuryr_cleanup.cli import cli
from tests.test_migration import SMALL, kuryr

REPO = Path(__file__).resolve().parent.parent


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every visible command and subcommand, with its path below `kuryr-migrate`."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def test_the_site_builds_strictly_with_every_page_of_the_nav(site: Path) -> None:
    for page in ("quickstart", "install", "runbook", "cleanup", "simulator", "scenarios", "real-services",
                 "reference", "faq"):
        assert (site / page / "index.html").is_file(), page


def test_the_command_reference_documents_every_command_and_option_of_the_cli(site: Path) -> None:
    reference = (site / "reference" / "index.html").read_text()
    ids = set(re.findall(r'id="([^"]+)"', reference))
    for path, command in commands(cli):
        anchor = "-".join(("kuryr-migrate", *path))
        assert anchor in ids, f"`kuryr-migrate {' '.join(path)}` has no section in the command reference"
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert all(opt in reference for opt in param.opts), f"{' '.join(path)} {param.opts} not documented"


def test_the_command_reference_reads_as_the_help_does(site: Path) -> None:
    # The CLI's own help text, placeholders and defaults included: `--generate SCENARIO`, not a bare
    # type, and never a default the renderer could not read (click's UNSET sentinel).
    reference = (site / "reference" / "index.html").read_text()
    assert "--generate SCENARIO" in reference and "[default: 2.0; 0.0&lt;=x&lt;=600.0]" in reference
    assert "Sentinel" not in reference and not re.search(r"\bSPEC\b", reference)
    for page in (REPO / "docs").glob("*.md"):
        assert not re.search(r"--(generate|faults|capacity) SPEC\b", page.read_text()), page.name


def test_the_home_page_links_every_command_to_its_reference() -> None:
    home = (REPO / "docs" / "index.md").read_text()
    for path, command in commands(cli):
        if isinstance(command, click.Group):
            continue  # a group is reached through its subcommands (`sim serve`)
        anchor = "-".join(("kuryr-migrate", *path))
        assert f"(reference.md#{anchor})" in home, f"docs/index.md does not list `{' '.join(path)}`"


def test_the_readme_links_only_to_files_that_exist() -> None:
    readme = (REPO / "README.md").read_text()
    links = [target for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme) if "://" not in target]
    assert links, "the README links to no documentation"
    missing = [target for target in links if not (REPO / target).exists()]
    assert missing == []


def _readme_commands(readme: str) -> list[list[str]]:
    """Every `kuryr-migrate` command the README shows (in its code blocks, and in backquotes with the
    plugin names), as the words after `kuryr-migrate`: no comment, no redirection."""
    found = []
    blocks = re.findall(r"^```\n(.*?)^```", readme, re.S | re.M)
    lines = [line for block in blocks for line in block.splitlines()]
    lines += re.findall(r"`((?:kubectl |oc )kuryr-migrate [^`]+)`", readme)
    for line in lines:
        for part in line.split("#")[0].split("&&"):
            words = shlex.split(part.split(">")[0])
            at = next((n for n, w in enumerate(words) if w.endswith("kuryr-migrate")), None)
            if at is not None:
                found.append(words[at + 1:])
    return found


def _parse(words: list[str]) -> None:
    """Parse `kuryr-migrate WORDS` as the CLI would, without running it (an unknown command, option
    or choice raises)."""
    command: Any = cli
    name = "kuryr-migrate"
    while isinstance(command, click.Group):
        ctx = command.make_context(name, [], resilient_parsing=True)
        name, *words = words
        command = command.get_command(ctx, name)
        assert command is not None, f"no command {name}"
    command.make_context(name, list(words))


def test_the_readme_shows_the_plugin_the_report_and_the_script_as_they_are(make_sim: Any, tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    commands = _readme_commands(readme)
    for artefact in (["run", "--plan", "-o", "html"], ["cleanup", "--plan", "-o", "html"],
                     ["run", "--plan", "-o", "script"], ["cleanup", "--plan", "-o", "script"]):
        assert artefact in commands, artefact
    for words in commands:  # every command shown still parses: no stale command, option or choice
        _parse(words)
    # The plugin names the README gives are installed as the same entry point as kuryr-migrate.
    scripts = (REPO / "pyproject.toml").read_text().split("[project.scripts]")[1].split("\n[")[0]
    for plugin in ("kubectl-kuryr_migrate", "oc-kuryr_migrate"):
        assert plugin in readme and re.search(rf'^{plugin} = "kuryr_cleanup.cli:main"$', scripts, re.M), plugin
    assert "`kubectl kuryr-migrate " in readme and "`oc kuryr-migrate " in readme
    # `bash run.sh PART` runs the parts the exported script has, and no argument the whole job.
    sim = make_sim(generate=SMALL)
    script = kuryr(sim, tmp_path / "run", "run", "--plan", "-o", "script").stdout
    parts = re.findall(r"`bash run\.sh ?(\w*)`", readme)
    assert sorted(parts) == ["", "cleanup", "migration"], parts
    assert 'case ${1:-all} in' in script
    for part in parts:
        assert f"\n    {part or 'all'}) " in script, part
