"""The node inventory from the command line on a real build (the shared `mm`
root, root_builds.py): 16 nodes added from a MAC file re-run only the steps
that hold the nodes. The config is put back afterwards by test_lab_boot's
edit_config fixture (with `all --resume`), for the tests after this one."""
from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

# test_lab_boot's edit_config fixture, shared (pytest finds fixtures among a
# module's names); its directory is on sys.path only when e2e is collected too.
sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
import test_lab_boot  # noqa: E402
from helpers import nfsroot_build  # noqa: E402

edit_config = test_lab_boot.edit_config

MACS = [f"52:54:00:12:36:{i:02x}" for i in range(1, 17)]
COMMENT = "# the root the nodes boot (a comment `node add` must keep)\n"


def test_add_16_nodes_from_a_mac_file_reruns_only_dhcp_hosts_and_menus(mm, edit_config, tmp_path):
    nfsroot_build("all", "-c", mm.cfg, "--prefix", mm.stage, "--resume", check=True)   # done, whatever ran before
    edit_config(mm, "[root]\n", COMMENT + "[root]\n")
    before = mm.cfg.read_text()
    macs = tmp_path / "macs.txt"
    macs.write_text("# rack 3, top to bottom\n" + "".join(f"{m}\n" for m in MACS))
    started = mm.state["steps"]["services"]["finished"]

    res = nfsroot_build("node", "add", "n[01-16]", "--macs", macs, "-c", mm.cfg, "--prefix", mm.stage, "--apply",
                        check=True)
    assert "added 16 nodes (n01 ... n16), 192.168.0.2 ... 192.168.0.17" in res.stdout, res.stdout
    planned = [line.split(":")[0].strip() for line in res.stdout.splitlines() if line.startswith("  ")]
    assert planned == ["dhcp-server", "hosts", "node-menus"], res.stdout
    text = mm.cfg.read_text()
    assert text.startswith(before) and COMMENT in text
    # Which steps ran: their records in the state, finished after the last run's end.
    ran = sorted(name for name, rec in mm.state["steps"].items()
                 if datetime.fromisoformat(rec["finished"]) > datetime.fromisoformat(started))
    # services: restarts what dhcp-server changed (under a staging prefix it only says so).
    assert ran == ["dhcp-server", "hosts", "node-menus", "services"], (ran, res.stderr)
    assert "4 step(s) ran, 15 skipped as done" in res.stderr, res.stderr

    nodes = json.loads(nfsroot_build("node", "list", "-c", mm.cfg, "--json", check=True).stdout)
    assert [(n["name"], n["mac"], n["ip"]) for n in nodes[2:]] == \
        [(f"n{i:02d}", MACS[i - 1], f"192.168.0.{i + 1}") for i in range(1, 17)]
    dhcpd = (mm.stage / "etc/dhcp/dhcpd.conf").read_text()
    assert all(m in dhcpd for m in MACS) and "192.168.0.17" in dhcpd
    versions = mm.state["versions"]
    current = versions["list"][str(versions["current"])]["path"]   # earlier tests may have made a v2
    assert "192.168.0.17 n16.test.nfsroot n16" in (mm.stage / current.lstrip("/") / "etc/hosts").read_text()
    assert (mm.tftp / "boot/grub/grub.cfg-01-52-54-00-12-36-10").exists()

    # A MAC in use: exit 2, the file byte for byte as it was.
    after = mm.cfg.read_bytes()
    res = nfsroot_build("node", "add", "n17", "--mac", MACS[0], "-c", mm.cfg, "--prefix", mm.stage)
    assert res.returncode == 2 and "duplicate mac '52:54:00:12:36:01'" in res.stderr, res.stderr
    assert mm.cfg.read_bytes() == after
