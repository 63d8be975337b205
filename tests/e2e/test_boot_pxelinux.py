"""PXELINUX (boot.loader = "pxelinux"): two BIOS nodes boot through
lpxelinux.0 and their own pxelinux.cfg/01-<mac>, on the shared mm root
(switched from GRUB for this test, put back afterwards)."""
from __future__ import annotations

import re

from helpers import nfsroot_build
from test_lab_boot import boot_all_from_nfs, edit_config, lab_up  # noqa: F401 (fixtures)

MACS = ("52-54-00-12-35-01", "52-54-00-12-35-02")


def test_two_bios_nodes_boot_through_pxelinux(mm, lab_up, edit_config):  # noqa: F811
    edit_config(mm, 'loader = "grub"', 'loader = "pxelinux"')
    nfsroot_build("all", "-c", mm.cfg, "--prefix", mm.stage, "--resume", check=True)
    dhcpd = (mm.stage / "etc/dhcp/dhcpd.conf").read_text()
    assert 'filename "lpxelinux.0"' in dhcpd
    for name in ("lpxelinux.0", "ldlinux.c32", "pxelinux.cfg/default"):
        assert (mm.tftp / name).is_file(), name
    for mac in MACS:
        menu = (mm.tftp / f"pxelinux.cfg/01-{mac}").read_text()
        assert "APPEND root=/dev/nfs nfsroot=192.168.0.1:" in menu and "INITRD /" in menu
    lab_up(mm)
    boot_all_from_nfs(mm, "n1", "n2")
    # iPXE fetched lpxelinux.0, which said which menu it took (its SAY line).
    # SeaBIOS's serial console puts cursor escapes where the screen wraps.
    consoles = mm.stage / "var/lib/nfsroot-build/mm/lab/consoles"
    for node in ("n1", "n2"):
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", (consoles / f"{node}.log").read_text(errors="replace"))
        assert "Filename: lpxelinux.0" in text and "PXELINUX 6.04 lwIP" in text
        assert f"nfsroot-build: booting /mm/vmlinuz-{mm.kernel()}" in text
