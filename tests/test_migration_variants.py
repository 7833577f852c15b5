"""The migration on real deployments' variants, through the CLI against the simulator: nodes in several
availability zones, old finished pods, paused pools and upgrades, large pools, a multus update that
keeps its generation, a KUBECONFIG of several files, nodes rebooted again by name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from tests.test_migration import FAST, SMALL, kuryr, text


# -- KUBECONFIG with several files ------------------------------------------------------------------
def test_a_kubeconfig_list_is_merged_as_kubectl_merges_it(make_sim: Any, tmp_path: Path) -> None:
    # The admin's cluster and credentials live in one file, the context they use in another
    # (`KUBECONFIG=~/.kube/clusters:~/.kube/contexts`); a third file in the list does not exist.
    sim = make_sim(generate=SMALL, delays=FAST)
    whole = yaml.safe_load(Path(sim.env["KUBECONFIG"]).read_text())
    credentials = tmp_path / "clusters"
    credentials.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "clusters": whole["clusters"],
                                           "users": whole["users"], "contexts": []}))
    contexts = tmp_path / "contexts"
    # A context of the same name in a later file never replaces the first file's (kubectl: first wins),
    # nor does a later file's current-context replace the first one that is set.
    contexts.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [],
                                        "contexts": whole["contexts"], "current-context": "sim"}))
    decoy = tmp_path / "decoy"
    decoy.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config",
                                     "clusters": [{"name": "sim", "cluster": {"server": "http://127.0.0.1:9"}},
                                                  {"name": "decoy", "cluster": {"server": "http://127.0.0.1:9"}}],
                                     "users": [], "contexts": [{"name": "elsewhere", "context": {
                                         "cluster": "decoy", "user": "sim-admin"}}],
                                     "current-context": "elsewhere"}))
    listed = os.pathsep.join([str(credentials), str(contexts), str(tmp_path / "missing"), str(decoy)])
    result = kuryr(sim, tmp_path / "run", "status", "--kubeconfig", listed)
    assert result.exit_code == 0, text(result)
    assert sim.store.infra_id in result.output
    # Through the environment, as an admin exports it.
    args = ["--os-cloud", "sim", "--run-dir", str(tmp_path / "run"), "--poll-interval", "0.02"]
    from click.testing import CliRunner

    from kuryr_cleanup.cli import cli

    env = {"OS_CLIENT_CONFIG_FILE": sim.env["OS_CLIENT_CONFIG_FILE"], "KUBECONFIG": listed}
    by_env = CliRunner().invoke(cli, ["status", *args], env=env, catch_exceptions=False)
    assert by_env.exit_code == 0, by_env.output
    none = CliRunner().invoke(cli, ["status", *args], env={**env, "KUBECONFIG": str(tmp_path / "missing")})
    assert none.exit_code == 2 and "cannot read kubeconfig" in none.output + (none.stderr or "")

