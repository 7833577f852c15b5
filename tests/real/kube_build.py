"""Build kube-apiserver and kube-controller-manager 1.20.2 from Debian's source, once per machine; fetch etcd.

Standard library only, so it runs under any Python 3.10+:

    python3 tests/real/kube_build.py          # builds if a binary is missing; prints the paths as JSON
    python3 tests/real/kube_build.py --force  # rebuilds

Debian 12 ships no kube-apiserver binary, but its `kubernetes` source package (1.20.2) is the whole
upstream tree with `vendor/`, and it builds offline with Debian's golang-1.19-go (see TESTBED.md, tier
4). Everything lives under one per-machine directory, `~/.cache/kuryr-migrate/kube-1.20.2/` (or
`$KURYR_MIGRATE_KUBE_CACHE`), shared by every checkout and worktree so the ~10 min cold build happens
once per machine:

    bin/kube-apiserver, bin/kube-controller-manager   the build's output (all that is kept of the tree)
    etcd/usr/bin/etcd                                  Debian's etcd-server, unpacked (`dpkg -x`), not installed
    apt/                                               a private apt state (deb-src lines), not the system's
    src/                                               the unpacked source tree (deleted after a good build)
    go/                                                private GOPATH and HOME for the build; build-cache/ is
                                                       the Go build cache kept from the last build (~0.8 GB)
    logs/build.log, logs/timings.log

What the build needs from the system: `golang-1.19-go` (installed with apt-get when missing: root), `make`,
`dpkg-source`. Network only for apt (Debian's mirrors); Go itself runs with GOPROXY=off.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

VERSION = "1.20.2"
CACHE = Path(os.environ.get("KURYR_MIGRATE_KUBE_CACHE") or Path.home() / ".cache" / "kuryr-migrate" /
             f"kube-{VERSION}").expanduser()
BIN = CACHE / "bin"
ETCD_ROOT = CACHE / "etcd"
ETCD = ETCD_ROOT / "usr" / "bin" / "etcd"
LOGS = CACHE / "logs"
BUILD_LOG = LOGS / "build.log"
TIMINGS_LOG = LOGS / "timings.log"
GOROOT = Path("/usr/lib/go-1.19")
BINARIES = ("kube-apiserver", "kube-controller-manager")
# Debian's archive as the system's sources name it; the private apt state adds the deb-src lines.
DEBIAN_SOURCES = (
    "deb-src http://deb.debian.org/debian bookworm main\n"
    "deb-src http://deb.debian.org/debian-security bookworm-security main\n"
    "deb http://deb.debian.org/debian bookworm main\n"
)


class BuildError(RuntimeError):
    """The build failed; the message names the log to read."""


class ToolchainMissing(BuildError):
    """Debian's Go is not installed and cannot be (not root)."""


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One builder per machine: pytest-xdist workers and other checkouts wait for the first one."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def record_timing(step: str, seconds: float) -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    with open(TIMINGS_LOG, "a") as log:
        log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {step} {seconds:.1f}s\n")
    print(f"[tests/real kube] {step}: {seconds:.1f}s", file=sys.stderr)


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no {path})"


def _run(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    with open(BUILD_LOG, "ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        rc = subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL).returncode
    if rc != 0:
        raise BuildError(f"{' '.join(argv)} exited {rc}; {BUILD_LOG}:\n{_log_tail(BUILD_LOG)}")


def binaries_present() -> bool:
    return all(os.access(BIN / name, os.X_OK) for name in BINARIES) and os.access(ETCD, os.X_OK)


# ---------------------------------------------------------------- toolchain and sources


def ensure_go() -> Path:
    """Debian's Go 1.19; apt-get installs it when missing (this needs root)."""
    go = GOROOT / "bin" / "go"
    if os.access(go, os.X_OK):
        return go
    if os.geteuid() != 0:
        raise ToolchainMissing(f"{go} is missing and this is not root: apt-get install -y golang-1.19-go")
    started = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update", "-q"], env=env)
    _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "golang-1.19-go"], env=env)
    record_timing("install golang-1.19-go (apt-get)", time.monotonic() - started)
    return go


def _apt_options() -> list[str]:
    """A private apt state whose sources.list has deb-src lines; the system's apt setup is not changed."""
    root = CACHE / "apt"
    for sub in ("lists/partial", "archives/partial", "etc/preferences.d", "etc/sources.list.d"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "etc" / "sources.list").write_text(DEBIAN_SOURCES)
    return [
        "-o", f"Dir::Etc::SourceList={root / 'etc' / 'sources.list'}",
        "-o", f"Dir::Etc::SourceParts={root / 'etc' / 'sources.list.d'}",
        "-o", f"Dir::Etc::Preferences={root / 'etc' / 'preferences'}",
        "-o", f"Dir::Etc::PreferencesParts={root / 'etc' / 'preferences.d'}",
        "-o", f"Dir::State::Lists={root / 'lists'}",
        "-o", f"Dir::Cache::Archives={root / 'archives'}",
        "-o", f"Dir::Cache::pkgcache={root / 'pkgcache.bin'}",
        "-o", f"Dir::Cache::srcpkgcache={root / 'srcpkgcache.bin'}",
        "-o", "APT::Sandbox::User=root",
    ]


def _apt_update() -> list[str]:
    options = _apt_options()
    if not any((CACHE / "apt" / "lists").glob("*Sources*")):
        _run(["apt-get", *options, "update", "-q"])
    return options


def _download(options: list[str], package: str, into: Path) -> Path:
    """`apt-get download` a binary package into `into`; returns the .deb."""
    into.mkdir(parents=True, exist_ok=True)
    existing = sorted(into.glob(f"{package}_*.deb"))
    if existing:
        return existing[-1]
    _run(["apt-get", *options, "download", "-q", package], cwd=into)
    found = sorted(into.glob(f"{package}_*.deb"))
    if not found:
        raise BuildError(f"apt-get download {package} produced no .deb in {into}")
    return found[-1]


def ensure_etcd() -> Path:
    """Debian's etcd-server 3.4, unpacked with dpkg -x (not installed: no service, no system user)."""
    if os.access(ETCD, os.X_OK):
        return ETCD
    started = time.monotonic()
    deb = _download(_apt_update(), "etcd-server", CACHE / "debs")
    if ETCD_ROOT.exists():
        shutil.rmtree(ETCD_ROOT)
    _run(["dpkg", "-x", str(deb), str(ETCD_ROOT)])
    if not os.access(ETCD, os.X_OK):
        raise BuildError(f"{deb} has no usr/bin/etcd")
    record_timing("fetch etcd-server (apt-get download + dpkg -x)", time.monotonic() - started)
    return ETCD


def _unpack_source(options: list[str]) -> Path:
    """`apt-get source --download-only kubernetes` + `dpkg-source -x --skip-debianization`."""
    downloads = CACHE / "source"
    downloads.mkdir(parents=True, exist_ok=True)
    if not list(downloads.glob("kubernetes_*.dsc")):
        _run(["apt-get", *options, "source", "--download-only", "-q", "kubernetes"], cwd=downloads)
    dsc = sorted(downloads.glob("kubernetes_*.dsc"))[-1]
    # bookworm's is 1.20.5+really1.20.2: an upload that went back to 1.20.2.
    if not re.match(rf"kubernetes_(.*really)?{re.escape(VERSION)}-", dsc.name):
        raise BuildError(f"Debian's kubernetes source is {dsc.name}, not {VERSION}: the harness is written for it")
    tree = CACHE / "src"
    if tree.exists():
        shutil.rmtree(tree)
    _run(["dpkg-source", "-x", "--skip-debianization", str(dsc), str(tree)])
    for copied in CACHE.glob("kubernetes_*.orig.tar.*"):  # dpkg-source leaves the tarball beside the tree
        copied.unlink()
    return tree


def _fix_reflect2(options: list[str], tree: Path) -> None:
    """1.20 vendors modern-go/reflect2 1.0.1, which segfaults under Go >= 1.18 on the first custom-resource
    POST (it reads runtime internals that moved). Debian's 1.0.2 works; the Makefile builds with -mod=vendor,
    so its go.mod must go (a vendored module has none)."""
    deb = _download(options, "golang-github-modern-go-reflect2-dev", CACHE / "debs")
    unpacked = CACHE / "reflect2"
    if unpacked.exists():
        shutil.rmtree(unpacked)
    _run(["dpkg", "-x", str(deb), str(unpacked)])
    source = unpacked / "usr" / "share" / "gocode" / "src" / "github.com" / "modern-go" / "reflect2"
    vendored = tree / "vendor" / "github.com" / "modern-go" / "reflect2"
    if not source.is_dir() or not vendored.is_dir():
        raise BuildError(f"reflect2 fix: {source} or {vendored} missing")
    shutil.rmtree(vendored)
    shutil.copytree(source, vendored)
    (vendored / "go.mod").unlink(missing_ok=True)
    (vendored / "go.sum").unlink(missing_ok=True)


def _make(tree: Path, go: Path) -> None:
    gohome = CACHE / "go"
    (gohome / "cache").mkdir(parents=True, exist_ok=True)
    (gohome / "path").mkdir(parents=True, exist_ok=True)
    # hack/lib/golang.sh places each binary with `rsync -pc FILE DIR`; `cp -p` does the same, and saves
    # installing rsync for it.
    shims = gohome / "shims"
    shims.mkdir(parents=True, exist_ok=True)
    (shims / "rsync").write_text('#!/bin/sh\n[ "$1" = "-pc" ] && shift\nexec cp -p "$@"\n')
    (shims / "rsync").chmod(0o755)
    env = {
        "PATH": f"{go.parent}:{shims}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "GOROOT": str(GOROOT),
        "GOPROXY": "off",
        "GOFLAGS": "-mod=vendor",
        "GOCACHE": str(gohome / "cache"),
        "GOPATH": str(gohome / "path"),
        "HOME": str(gohome),
        "LANG": "C",
    }
    for name in BINARIES:
        started = time.monotonic()
        _run(["make", f"WHAT=cmd/{name}"], cwd=tree, env=env)
        record_timing(f"make WHAT=cmd/{name}", time.monotonic() - started)


def _tree_go_cache(tree: Path) -> Path:
    # hack/lib/golang.sh sets GOCACHE=_output/local/go/cache itself, whatever the environment says.
    return tree / "_output" / "local" / "go" / "cache"


def _keep_go_cache(tree: Path) -> None:
    kept = CACHE / "go" / "build-cache"
    if kept.exists():
        shutil.rmtree(kept)
    if _tree_go_cache(tree).is_dir():
        shutil.move(str(_tree_go_cache(tree)), str(kept))


def _restore_go_cache(tree: Path) -> None:
    """A rebuild in a freshly unpacked tree reuses the previous build's Go cache (same paths: cache hits)."""
    kept = CACHE / "go" / "build-cache"
    if kept.is_dir():
        _tree_go_cache(tree).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(kept), str(_tree_go_cache(tree)))


def build(force: bool = False) -> dict[str, str]:
    """kube-apiserver, kube-controller-manager and etcd paths; builds what is missing (once per machine)."""
    with _locked():
        if force:
            for name in BINARIES:
                (BIN / name).unlink(missing_ok=True)
        if not all(os.access(BIN / name, os.X_OK) for name in BINARIES):
            started = time.monotonic()
            go = ensure_go()
            options = _apt_update()
            tree = _unpack_source(options)
            _fix_reflect2(options, tree)
            record_timing("fetch and unpack the kubernetes source", time.monotonic() - started)
            _restore_go_cache(tree)
            _make(tree, go)
            outputs = list((tree / "_output").glob("**/bin"))
            BIN.mkdir(parents=True, exist_ok=True)
            for name in BINARIES:
                built = next((d / name for d in outputs if (d / name).is_file()), None)
                if built is None:
                    raise BuildError(f"make did not produce {name} under {tree / '_output'}; {BUILD_LOG}")
                shutil.copy2(built, BIN / f".{name}.tmp")
                (BIN / f".{name}.tmp").replace(BIN / name)
            _keep_go_cache(tree)
            shutil.rmtree(tree)  # 1.5 GB; the Go build cache (kept aside) makes a rebuild about a minute
            record_timing("build kube-apiserver + kube-controller-manager (total)", time.monotonic() - started)
        ensure_etcd()
    return {"kube-apiserver": str(BIN / "kube-apiserver"),
            "kube-controller-manager": str(BIN / "kube-controller-manager"), "etcd": str(ETCD)}


def main(argv: list[str]) -> int:
    try:
        print(json.dumps(build(force="--force" in argv), indent=2))
    except BuildError as error:
        print(f"build failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
