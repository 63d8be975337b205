"""PXELINUX (boot.loader = "pxelinux"): a BIOS node through lpxelinux.0 and
a UEFI node through syslinux.efi, at once, each with its own
pxelinux.cfg/01-<mac>, on the shared mm root (switched from GRUB for this
test, put back afterwards)."""
from __future__ import annotations

import re

from test_boot_uefi import N2_UEFI, console

from helpers import nfsroot_build
from test_lab_boot import boot_all_from_nfs, edit_config, lab_up  # noqa: F401 (fixtures)

MACS = ("52-54-00-12-35-01", "52-54-00-12-35-02")


def test_bios_and_uefi_nodes_boot_through_pxelinux(mm, lab_up, edit_config):  # noqa: F811
    edit_config(mm, 'loader = "grub"', 'loader = "pxelinux"')
    edit_config(mm, *N2_UEFI)
    nfsroot_build("all", "-c", mm.cfg, "--prefix", mm.stage, "--resume", check=True)
    dhcpd = (mm.stage / "etc/dhcp/dhcpd.conf").read_text()
    assert 'filename "lpxelinux.0"' in dhcpd
    for name in ("lpxelinux.0", "ldlinux.c32", "syslinux.efi", "ldlinux.e64", "pxelinux.cfg/default"):
        assert (mm.tftp / name).is_file(), name
    for mac in MACS:
        menu = (mm.tftp / f"pxelinux.cfg/01-{mac}").read_text()
        assert "APPEND root=/dev/nfs nfsroot=192.168.0.1:" in menu and "INITRD /" in menu
    lab_up(mm)
    boot_all_from_nfs(mm, "n1", "n2")
    # n1: SeaBIOS's iPXE fetched lpxelinux.0; n2: OVMF's PXE client loaded
    # syslinux.efi (option 93); each said which menu it took (its SAY line).
    # The firmware's serial console puts cursor escapes where the screen wraps.
    bios, uefi = (re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", console(mm, node)) for node in ("n1", "n2"))
    assert "Filename: lpxelinux.0" in bios and "PXELINUX 6.04 lwIP" in bios
    assert "NBP filename is syslinux.efi" in uefi
    for text in (bios, uefi):
        assert f"nfsroot-build: booting /mm/vmlinuz-{mm.kernel()}" in text
