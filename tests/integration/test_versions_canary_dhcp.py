"""A canary's root-path from the real DHCP daemons (issue 10): after `root
switch v1 --nodes ssi1` with v2 current, the file the CLI wrote for each
dhcp.server kind passes the daemon's own checker, and the daemon, started on
it in a network namespace the test makes, sends ssi1 v1's root-path and ssi2
v2's. The versions are records only (no trees): the DHCP side needs none."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from test_dhcp_servers import KIND_FILE, TOOL, daemon_accepts, seed_with
from test_dhcp_uefi import PROBE, segment, start_daemon  # noqa: F401 (segment: a fixture)

from nfsroot_builder import config as config_mod
from nfsroot_builder import versions
from nfsroot_builder.procs import stop
from nfsroot_builder.state import State

from helpers import nfsroot_build, require

MACS = {"ssi1": "52:54:00:00:00:01", "ssi2": "52:54:00:00:00:02"}


def two_versions(cfg, stage) -> None:
    """v1 and v2 finished (v2 current), as a build would have recorded them."""
    state = State(stage / "var/lib/nfsroot-build" / cfg.name / "state.json")
    for vid in (1, 2):
        tftp = versions.tftp_dir_of(cfg.name, vid)
        state.set_version(vid, path=versions.path_of(cfg.root.path, vid), status="ready", created=f"t{vid}",
                          digest=versions.root_digest(cfg), identity=versions.bootstrap_identity(cfg),
                          clone_from=None, tftp_dir=tftp, kernel="6.12.0-1-amd64",
                          kernel_path=f"/{tftp}/vmlinuz-6.12.0-1-amd64", initrd_path=f"/{tftp}/initrd.img-6.12.0-1-amd64")
        state.set_current(vid)
    state.save()


def ask(ns: str, mac: str) -> dict:
    res = subprocess.run(["ip", "netns", "exec", ns, sys.executable, str(PROBE), "cli0", mac, "7"],
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(res.stdout)


def daemon_answers(segment, kind: str, stage, tmp_path) -> tuple[dict, str]:  # noqa: F811
    """Each node's DHCP answer (MACS) from the daemon started on the files
    under stage in the segment's server namespace; and the daemon's log tail."""
    server_ns, client_ns = segment
    daemon = start_daemon(server_ns, kind, stage, tmp_path)
    try:
        answers = {node: ask(client_ns, mac) for node, mac in MACS.items()}
    finally:
        stop([daemon.pid], grace=5, alive=lambda pid: daemon.poll() is None)
    return answers, (tmp_path / "daemon.log").read_text(errors="replace")[-2000:]


@pytest.mark.parametrize("kind", ["isc-dhcp-server", "kea", "dnsmasq"])
def test_a_canary_gets_its_versions_root_path_from_the_daemon(tmp_path, segment, kind):  # noqa: F811
    require(shutil.which(TOOL[kind]) is not None, f"{TOOL[kind]} not installed")
    cfg_path, stage = tmp_path / "cluster.toml", tmp_path / "stage"
    cfg_path.write_text(seed_with(kind))
    cfg = config_mod.parse(cfg_path.read_text())
    two_versions(cfg, stage)
    res = nfsroot_build("root", "switch", "v1", "--nodes", "ssi1", "-c", cfg_path, "--prefix", stage, check=True)
    assert "ssi1 boot v1 next; the others v2" in res.stderr, res.stderr
    checked = daemon_accepts(kind, stage / KIND_FILE[kind], tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    answers, log = daemon_answers(segment, kind, stage, tmp_path)
    v1, v2 = (f"192.168.0.1:{stage}{versions.path_of(cfg.root.path, vid)}" for vid in (1, 2))
    assert answers["ssi1"]["root_path"] == v1, (answers, log)
    assert answers["ssi2"]["root_path"] == v2, (answers, log)
    assert answers["ssi1"]["yiaddr"] == "192.168.0.101" and answers["ssi2"]["yiaddr"] == "192.168.0.102", answers
    # Every node back on v2: the canary's own root-path is gone from the file.
    nfsroot_build("root", "switch", "v2", "-c", cfg_path, "--prefix", stage, check=True)
    assert f"{stage}{versions.path_of(cfg.root.path, 1)}\"" not in (stage / KIND_FILE[kind]).read_text()
