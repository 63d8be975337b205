"""The lab's firmware per node (node.firmware): SeaBIOS + iPXE ROM, or OVMF."""
from __future__ import annotations

import pytest

from nfsroot_builder import config as config_mod
from nfsroot_builder.errors import ConfigError, UsageError
from nfsroot_builder.lab.nodes import OVMF_CODE, OVMF_VARS, VIRTIO_ROM, firmware, qemu_argv

from helpers import example_text


def test_bios_is_qemus_default_with_ipxe_rom(tmp_path):
    fw = firmware("bios", tmp_path / "v.fd")
    argv = qemu_argv("lab1", "52:54:00:12:34:01", "nrb-tap0", tmp_path / "c.log", "tcg", fw)
    assert "-drive" not in argv and fw.vars_template is None
    assert f"romfile={VIRTIO_ROM},bootindex=1" in " ".join(argv)


def test_uefi_is_ovmf_with_a_per_node_vars_copy_and_no_rom(tmp_path):
    vars_file = tmp_path / "lab2.vars.fd"
    fw = firmware("uefi", vars_file)
    argv = qemu_argv("lab2", "52:54:00:12:34:02", "nrb-tap1", tmp_path / "c.log", "tcg", fw)
    text = " ".join(argv)
    assert f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}" in text
    assert f"if=pflash,format=raw,unit=1,file={vars_file}" in text
    assert fw.vars_template == OVMF_VARS
    # OVMF's own virtio driver and PXE: no iPXE ROM on the NIC; IPv4 PXE only.
    assert "romfile=,bootindex=1" in text
    assert "name=opt/org.tianocore/IPv6PXESupport,string=no" in text
    assert "user" not in argv and "-nic" not in argv


def test_unknown_firmware_is_refused(tmp_path):
    with pytest.raises(UsageError, match="no firmware 'coreboot'"):
        firmware("coreboot", tmp_path / "v.fd")


def test_node_firmware_defaults_to_bios_and_is_validated():
    text = example_text("lab")
    assert {n.firmware for n in config_mod.parse(text).nodes} == {"bios"}
    uefi = text.replace('ip = "192.168.0.102"\n', 'ip = "192.168.0.102"\nfirmware = "uefi"\n')
    assert [n.firmware for n in config_mod.parse(uefi).nodes] == ["bios", "uefi"]
    with pytest.raises(ConfigError) as e:
        config_mod.parse(uefi.replace('firmware = "uefi"', 'firmware = "efi"'))
    assert "node[1].firmware" in str(e.value)


def test_ovmf_falling_into_its_shell_fails_the_node_at_once():
    from nfsroot_builder.lab.nodes import FATAL
    assert FATAL.search("BdsDxe: No bootable option or device was found.")
    assert FATAL.search("UEFI Interactive Shell v2.2")
    # Seen when dhcpd gave OVMF the BIOS loader (option 93 compared as one byte).
    failed = FATAL.search('  NBP file downloaded successfully.\nBdsDxe: failed to load Boot0001 '
                          '"UEFI PXEv4 (MAC:525400123402)" from PciRoot(0x0): Not Found\n')
    assert failed and failed.group(0).endswith("Not Found")
    assert not FATAL.search(">>Start PXE over IPv4.\n  Station IP address is 192.168.0.102")


def test_grub_efi_behind_proxy_dhcp_is_refused_and_fails_fast_in_the_lab():
    from nfsroot_builder.lab.nodes import FATAL
    text = example_text("lab").replace('ip = "192.168.0.102"\n', 'ip = "192.168.0.102"\nfirmware = "uefi"\n')
    proxy = text.replace("[nfs]", '[dhcp]\nserver = "dnsmasq-proxy"\n\n[nfs]')
    with pytest.raises(ConfigError) as e:
        config_mod.parse(proxy)
    assert 'cannot boot UEFI nodes (lab2)' in str(e.value) and 'boot.loader = "ipxe"' in str(e.value)
    config_mod.parse(proxy.replace('loader = "grub"', 'loader = "ipxe"'))       # iPXE: booted in the lab
    config_mod.parse(proxy.replace('firmware = "uefi"\n', ""))                   # BIOS nodes: booted too
    # What the lab saw when it booted core.efi behind dnsmasq-proxy.
    assert FATAL.search("Welcome to GRUB!\nerror: variable `root' isn't set.\ngrub rescue> ")
