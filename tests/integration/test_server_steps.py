"""The server half, for real: the CLI as a subprocess writing under a staging
prefix, dhcpd's own parser, a failing command, kill -9, the run lock."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import example_text, nfsroot_build, require, snapshot, status

SERVER_STEPS = ["--to", "nfs-exports"]
ADMIN_EXPORTS = "# the admin's own\n/home  10.1.0.0/16(rw,sync,no_subtree_check)\n"
ADMIN_DHCPD = 'option domain-name "admin.example";\nsubnet 10.9.0.0 netmask 255.255.0.0 { }\n'


@pytest.fixture
def cluster(tmp_path):
    require(os.path.exists("/usr/sbin/dhcpd"), "isc-dhcp-server is not installed")
    cfg = tmp_path / "cluster.toml"
    cfg.write_text(example_text("seed"))
    return cfg, tmp_path / "stage"


def fake_tool(tmp_path: Path, name: str, script: str) -> dict:
    """A PATH entry with a fake `name` in front of the real one."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir(exist_ok=True)
    tool = bindir / name
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(0o755)
    return {"PATH": f"{bindir}:{os.environ['PATH']}"}


def test_real_server_config_under_prefix(cluster):
    cfg, stage = cluster
    (stage / "etc/dhcp").mkdir(parents=True)
    (stage / "etc/dhcp/dhcpd.conf").write_text(ADMIN_DHCPD)
    (stage / "etc/exports").write_text(ADMIN_EXPORTS)
    res = nfsroot_build("all", "-c", cfg, "--prefix", stage, *SERVER_STEPS, check=True)
    dhcpd_conf = stage / "etc/dhcp/dhcpd.conf"
    # The real parser accepts what we wrote, and the admin's lines come first, untouched.
    subprocess.run(["dhcpd", "-t", "-q", "-4", "-cf", dhcpd_conf], check=True)
    assert dhcpd_conf.read_text().startswith(ADMIN_DHCPD)
    assert "host ssi3 { hardware ethernet 52:54:00:00:00:03; fixed-address 192.168.0.103; }" in dhcpd_conf.read_text()
    assert f'TFTP_DIRECTORY="{stage}/srv/tftp"' in (stage / "etc/default/tftpd-hpa").read_text()
    exports = (stage / "etc/exports.d/nfsroot-build-kerrighed.exports").read_text()
    assert f"{stage}/NFSROOT/kerrighed 192.168.0.0/24(ro,async,no_root_squash,no_subtree_check)" in exports
    assert (stage / "etc/exports").read_bytes() == ADMIN_EXPORTS.encode()
    assert "changed: tftp-server, dhcp-server, nfs-exports" in res.stderr
    # The log of the step holds the validation command.
    assert "dhcpd -t -4 -cf" in (stage / "var/lib/nfsroot-build/kerrighed/logs/last/dhcp-server.log").read_text()
    before = snapshot(stage / "etc")
    res = nfsroot_build("all", "-c", cfg, "--prefix", stage, *SERVER_STEPS, check=True)
    assert "nothing changed" in res.stderr
    assert snapshot(stage / "etc") == before


def test_failing_command_then_resume(cluster, tmp_path):
    cfg, stage = cluster
    env = fake_tool(tmp_path, "dhcpd", 'echo "Internet Systems Consortium DHCP Server 4.4.3"\n'
                    'echo "dhcpd.conf line 9: semicolon expected." >&2\nexit 1\n')
    res = nfsroot_build("all", "-c", cfg, "--prefix", stage, *SERVER_STEPS, env=env)
    assert res.returncode == 1
    assert "step 'dhcp-server' failed" in res.stderr
    assert "dhcpd -t -4 -cf" in res.stderr and "dhcpd.conf line 9: semicolon expected." in res.stderr
    assert "Internet Systems Consortium" not in res.stderr   # dhcpd's reason, not its banner
    assert "Traceback" not in res.stderr
    assert not (stage / "etc/dhcp/dhcpd.conf").exists()   # the checker vetoed it
    st = status(cfg, stage)
    assert st["tftp-server"]["status"] == "done" and st["dhcp-server"]["status"] == "failed"
    res = nfsroot_build("all", "-c", cfg, "--prefix", stage, "--resume", *SERVER_STEPS, check=True)
    assert "2 skipped as done" in res.stderr
    st = status(cfg, stage)
    assert st["dhcp-server"]["status"] == st["nfs-exports"]["status"] == "done"


def test_kill_9_mid_step_and_the_lock(cluster, tmp_path):
    cfg, stage = cluster
    env = fake_tool(tmp_path, "dhcpd", "sleep 60\n")
    run = subprocess.Popen([sys.executable, "-m", "nfsroot_builder", "all", "-c", str(cfg), "--prefix",
                            str(stage), *SERVER_STEPS], env={**os.environ, **env},
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    state_file = stage / "var/lib/nfsroot-build/kerrighed/state.json"
    try:
        for _ in range(300):
            if state_file.exists() and json.loads(state_file.read_text())["steps"].get(
                    "dhcp-server", {}).get("status") == "running":
                break
            time.sleep(0.1)
        else:
            pytest.fail("the run never reached dhcp-server")
        # A second run while the first holds the lock: exit 3, nothing touched.
        before = snapshot(stage)
        res = nfsroot_build("all", "-c", cfg, "--prefix", stage, *SERVER_STEPS)
        assert res.returncode == 3 and "another nfsroot-build run" in res.stderr
        assert snapshot(stage) == before
        os.killpg(run.pid, signal.SIGKILL)   # the run and its fake dhcpd, which we started
        run.wait(timeout=10)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    json.loads(state_file.read_text())   # still readable
    st = status(cfg, stage)
    assert st["dhcp-server"]["status"] == "interrupted"
    res = nfsroot_build("all", "-c", cfg, "--prefix", stage, "--resume", *SERVER_STEPS, check=True)
    assert status(cfg, stage)["dhcp-server"]["status"] == "done"


def test_config_change_makes_dependants_stale(cluster):
    cfg, stage = cluster
    nfsroot_build("all", "-c", cfg, "--prefix", stage, *SERVER_STEPS, check=True)
    cfg.write_text(cfg.read_text().replace('ip = "192.168.0.104"', 'ip = "192.168.0.144"'))
    st = status(cfg, stage)
    assert st["dhcp-server"]["status"] == "stale" and st["dhcp-server"]["why"] == "config changed: nodes"
    assert st["tftp-server"]["status"] == st["nfs-exports"]["status"] == "done"
    res = nfsroot_build("all", "-c", cfg, "--prefix", stage, "--resume", *SERVER_STEPS, check=True)
    assert "changed: dhcp-server" in res.stderr
    assert "fixed-address 192.168.0.144" in (stage / "etc/dhcp/dhcpd.conf").read_text()
