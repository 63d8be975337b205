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
