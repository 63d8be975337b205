"""Virtual diskless nodes boot from what nfsroot-build made.

The e2e tests boot the two roots the integration tests build once per
session (root_builds.py): `mm` (mmdebstrap, layout tmpfs, GRUB) and `deb`
(debootstrap, layout per-node, iPXE); this file holds the helpers they share
and the Kea and overlay boots of `mm`. Each boot is judged by the lab itself:
'<node> login:' on the serial console, and the report unit's facts line
(root filesystem and source, /var, failed units).

Paths booted here once are not booted again: two BIOS nodes with GRUB from
dhcpd (layout tmpfs), a BIOS node with iPXE from dnsmasq and two with iPXE
from dnsmasq-proxy beside a site DHCP server are asserted on the BIOS node
of test_boot_uefi.py's tests, which boot a UEFI node beside it through the
same DHCP server and loader; a node whose MAC changed (only dhcp-server and
node-menus rerun) is that file's UEFI node with GRUB from dhcpd; the `deb`
build's per-node /var with iPXE from dhcpd is asserted on n2 of
test_boot_site_files.py, which boots n1 beside it (each of those was a boot
of its own, ~50 s).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from helpers import nfsroot_build, require

SERVER = "192.168.0.1"


def lab(build, *args, check=True, timeout=900):
    return nfsroot_build("lab", *args, "-c", build.cfg, "--prefix", build.stage, check=check, timeout=timeout)


def boot(build, *nodes):
    res = lab(build, "boot", *nodes, "--json", "--timeout", "480", check=False)
    results = {r["name"]: r for r in json.loads(res.stdout)} if res.stdout.strip() else {}
    return res, results


def namespaces() -> list[str]:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()


@pytest.fixture
def edit_config():
    """Change a shared build's config for one test; put it back (and the build
    with it, `all --resume`) afterwards, since other tests read the same root."""
    saved = []

    def edit(build, old, new):
        text = build.cfg.read_text()
        assert old in text
        saved.append((build, text))
        build.cfg.write_text(text.replace(old, new))
    yield edit
    for build, text in reversed(saved):
        build.cfg.write_text(text)
        nfsroot_build("all", "-c", build.cfg, "--prefix", build.stage, "--resume", check=True)


@pytest.fixture
def lab_up(request):
    """lab up for a build; lab down afterwards, whatever happened."""
    started = []

    def up(build):
        lab(build, "up")
        started.append(build)
        return build
    yield up
    for build in started:
        st = json.loads(lab(build, "status", "--json").stdout)
        procs = st["procs"]
        lab(build, "down")
        assert st["namespace"] not in namespaces()
        for p in procs:
            assert not os.path.exists(f"/proc/{p['pid']}/exe") or \
                os.path.basename(os.readlink(f"/proc/{p['pid']}/exe")) != os.path.basename(p["exe"])


def assert_nfs_root(build, r):
    assert r["ok"], f"{r['name']}: {r['problem']}\n" + "\n".join(r["tail"])
    assert r["hostname"] == r["name"]
    assert r["facts"]["root"] in (f"nfs,{SERVER}:{build.root}", f"nfs4,{SERVER}:{build.root}")
    assert r["facts"]["failed"] == "none"


def test_overlay_layout(mm, lab_up, edit_config):
    edit_config(mm, 'layout = "tmpfs"', 'layout = "overlay"')
    nfsroot_build("all", "-c", mm.cfg, "--prefix", mm.stage, "--resume", check=True)
    lab_up(mm)
    res, results = boot(mm, "n1")
    r = results["n1"]
    assert r["ok"], f"{r['problem']}\n" + "\n".join(r["tail"])
    assert r["facts"]["root"].startswith("overlay,"), r["facts"]
    assert r["facts"]["failed"] == "none"


def use_dhcp_server(build, edit_config, kind: str, tool: str) -> None:
    """Switch a shared build to another dhcp.server (put back afterwards by edit_config)."""
    require(shutil.which(tool) is not None, f"{tool} not installed")
    edit_config(build, '[nfs]\nserver = "ganesha"', f'[dhcp]\nserver = "{kind}"\n[nfs]\nserver = "ganesha"')
    res = nfsroot_build("all", "-c", build.cfg, "--prefix", build.stage, "--resume", check=True)
    assert "changed: dhcp-server, services" in res.stderr, res.stderr
    # Only the chosen kind's file is left: dhcpd's block went with the switch
    # (and the file with it: the tool had made it for its block alone).
    dhcpd_conf = build.stage / "etc/dhcp/dhcpd.conf"
    assert not dhcpd_conf.exists() or "host n1" not in dhcpd_conf.read_text()


def report_times(res) -> None:
    """The per-node boot times for the run's record (pytest -rP shows them)."""
    print("\n".join(line.strip() for line in res.stderr.splitlines() if "login after" in line))


def boot_all_from_nfs(build, *nodes) -> None:
    """Boot nodes at once; each must reach login with its root from our NFS server."""
    res, results = boot(build, *nodes)
    report_times(res)
    assert set(results) == set(nodes), res.stderr
    for r in results.values():
        assert_nfs_root(build, r)
    assert res.returncode == 0


def lab_procs(build) -> set[str]:
    return {p["name"] for p in json.loads(lab(build, "status", "--json").stdout)["procs"]}


def test_kea_two_nodes_grub(mm, lab_up, edit_config):
    use_dhcp_server(mm, edit_config, "kea", "kea-dhcp4")
    lab_up(mm)
    assert "kea-dhcp4" in lab_procs(mm) and "dhcpd" not in lab_procs(mm)
    boot_all_from_nfs(mm, "n1", "n2")
