"""UEFI nodes (node.firmware = "uefi") boot in the lab under OVMF, beside
BIOS nodes, from one DHCP config that picks the loader by the client's
architecture (DHCP option 93).

The tests use the shared `mm` root (root_builds.py) and change only its
config: a node's firmware changes no file (the DHCP config already answers
both kinds), the loader and DHCP server do.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from nfsroot_builder.lab.nodes import OVMF_CODE, OVMF_VARS

import test_lab_boot
from helpers import nfsroot_build, require
from test_lab_boot import assert_nfs_root, boot, boot_all_from_nfs, lab_procs, report_times, use_dhcp_server

# test_lab_boot's fixtures, shared: pytest finds fixtures among a module's names.
lab_up = test_lab_boot.lab_up
edit_config = test_lab_boot.edit_config


@pytest.fixture(autouse=True)
def _ovmf():
    require(Path(OVMF_CODE).is_file() and Path(OVMF_VARS).is_file(), "OVMF not installed (package ovmf)")


N2_UEFI = ('mac = "52:54:00:12:35:02"\nip = "192.168.0.102"\n',
           'mac = "52:54:00:12:35:02"\nip = "192.168.0.102"\nfirmware = "uefi"\n')


def console(build, node: str) -> str:
    """The node's serial console of its last boot, carriage returns dropped."""
    path = build.stage / f"var/lib/nfsroot-build/{build.name}/lab/consoles/{node}.log"
    return path.read_text(errors="replace").replace("\r", "")


def test_bios_and_uefi_nodes_with_grub_from_one_dhcpd_config(mm, lab_up, edit_config):
    """n1 BIOS (SeaBIOS + iPXE ROM -> core.0), n2 UEFI (OVMF -> core.efi), at
    once, ISC dhcpd. The firmware is lab-only: the build has nothing to do.
    Also the lab's plainest path, two nodes at once with GRUB from dhcpd and
    layout tmpfs (n1 BIOS as test_lab_boot booted it), and a changed MAC
    (n2's): only dhcp-server and node-menus rerun, and the node boots with it."""
    edit_config(mm, *N2_UEFI)
    res = nfsroot_build("all", "-c", mm.cfg, "--prefix", mm.stage, "--resume", check=True)
    assert "nothing changed" in res.stderr, res.stderr
    edit_config(mm, 'mac = "52:54:00:12:35:02"', 'mac = "52:54:00:12:35:99"')
    st = {s["step"]: s for s in json.loads(nfsroot_build("status", "-c", mm.cfg, "--prefix", mm.stage,
                                                          "--json", check=True).stdout)["steps"]}
    stale = sorted(name for name, s in st.items() if s["status"] != "done")
    assert stale == ["dhcp-server", "node-menus"], st
    res = nfsroot_build("all", "-c", mm.cfg, "--prefix", mm.stage, "--resume", check=True)
    assert "3 step(s) ran, 19 skipped as done; changed: dhcp-server, node-menus, services" in res.stderr, res.stderr
    assert "52:54:00:12:35:99" in (mm.stage / "etc/dhcp/dhcpd.conf").read_text()
    assert (mm.tftp / "boot/grub/grub.cfg-01-52-54-00-12-35-99").exists()
    lab_up(mm)
    res, results = boot(mm, "n1", "n2")
    report_times(res)
    assert set(results) == {"n1", "n2"}, res.stderr
    for r in results.values():
        assert_nfs_root(mm, r)
        assert r["facts"]["var"] == "none"     # layout tmpfs: /var is on the root, its subtrees tmpfs
    assert res.returncode == 0
    assert "pass n1: login after" in res.stderr and "pass n2: login after" in res.stderr
    # What each firmware was given: SeaBIOS's iPXE ROM prints the DHCP
    # filename, OVMF's PXE client the NBP (network boot program) it loaded.
    assert "Filename: boot/grub/i386-pc/core.0" in console(mm, "n1")
    assert "NBP filename is boot/grub/x86_64-efi/core.efi" in console(mm, "n2")
    assert "UEFI PXEv4" not in console(mm, "n1") and "iPXE" not in console(mm, "n2").split("Welcome to GRUB")[0]


def test_bios_and_uefi_nodes_with_ipxe_from_dnsmasq(mm, lab_up, edit_config):
    """dnsmasq alone (no dhcpd), iPXE: n2 UEFI, whose OVMF PXE gets ipxe.efi
    by option 93 and iPXE then its script by user-class; n1 BIOS, whose ROM's
    iPXE gets the script at once. At once."""
    use_dhcp_server(mm, edit_config, "dnsmasq", "dnsmasq")
    edit_config(mm, 'loader = "grub"', 'loader = "ipxe"')
    edit_config(mm, *N2_UEFI)
    res = nfsroot_build("all", "-c", mm.cfg, "--prefix", mm.stage, "--resume", check=True)
    assert "changed: dhcp-server, boot-loader, node-menus" in res.stderr, res.stderr
    lab_up(mm)
    assert "dnsmasq" in lab_procs(mm) and "dhcpd" not in lab_procs(mm)
    boot_all_from_nfs(mm, "n1", "n2")
    bios, uefi = console(mm, "n1"), console(mm, "n2")
    assert "NBP filename is ipxe.efi" in uefi and "Filename: ipxe/boot.ipxe" in uefi
    assert "Filename: ipxe/boot.ipxe" in bios and "NBP filename" not in bios


def test_bios_and_uefi_with_ipxe_from_dnsmasq_proxy(mm, lab_up, edit_config):
    """proxyDHCP beside the site's DHCP server (the lab's stand-in: dhcpd with
    addresses and names only) on one segment serves a UEFI node too: OVMF's
    PXE client takes the address from the site's server and ipxe.efi from
    the proxy. n1 BIOS, n2 UEFI, at once."""
    use_dhcp_server(mm, edit_config, "dnsmasq-proxy", "dnsmasq")
    edit_config(mm, 'loader = "grub"', 'loader = "ipxe"')
    edit_config(mm, *N2_UEFI)
    nfsroot_build("all", "-c", mm.cfg, "--prefix", mm.stage, "--resume", check=True)
    lab_up(mm)
    assert {"site-dhcpd", "dnsmasq"} <= lab_procs(mm)
    boot_all_from_nfs(mm, "n1", "n2")
    text = console(mm, "n2")
    assert "NBP filename is ipxe.efi" in text and "Filename: ipxe/boot.ipxe" in text
    site_log = (mm.stage / "var/lib/nfsroot-build/mm/lab/logs/site-dhcpd.log").read_text()
    proxy_log = (mm.stage / "var/lib/nfsroot-build/mm/lab/logs/dnsmasq.log").read_text()
    assert "DHCPACK on 192.168.0.101 to 52:54:00:12:35:01" in site_log
    assert "DHCPACK on 192.168.0.102 to 52:54:00:12:35:02" in site_log
    assert "proxy" in proxy_log and "ipxe/boot.ipxe" in proxy_log

