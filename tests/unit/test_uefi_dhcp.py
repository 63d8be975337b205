"""Option 93 (client system architecture, RFC 4578) in each DHCP kind's config."""
from __future__ import annotations

from nfsroot_builder import config as config_mod
from nfsroot_builder.render import Served
from nfsroot_builder.render.server import dhcpd_block, dnsmasq_dropin, kea_config, kea_json

from helpers import example_text


def cfg(loader: str):
    return config_mod.parse(example_text("lab").replace('loader = "grub"', f'loader = "{loader}"'))


def test_dhcpd_compares_option_93_as_two_bytes():
    # `= 7` is the one byte 07 to dhcpd and never matched a UEFI client's 00:07.
    for loader, efi in (("grub", "boot/grub/x86_64-efi/core.efi"), ("ipxe", "ipxe.efi")):
        block = dhcpd_block(cfg(loader), Served("/"))
        assert "option nfsroot-build-client-arch = 00:07 or option nfsroot-build-client-arch = 00:09 {" in block
        assert "client-arch = 7" not in block and "client-arch = 9" not in block
        assert f'    filename "{efi}";' in block


def test_kea_and_dnsmasq_match_both_uefi_x64_codes():
    classes = {c["name"]: c for c in kea_json(kea_config(cfg("grub"), Served("/")))["Dhcp4"]["client-classes"]}
    assert classes["nfsroot-build-uefi"]["test"] == "(option[93].hex == 0x0007 or option[93].hex == 0x0009)"
    assert classes["nfsroot-build-uefi"]["boot-file-name"] == "boot/grub/x86_64-efi/core.efi"
    drop_in = dnsmasq_dropin(cfg("ipxe"), Served("/"))
    assert "dhcp-match=set:nrb-efi64,option:client-arch,7" in drop_in
    assert "dhcp-match=set:nrb-efi64,option:client-arch,9" in drop_in


def test_a_nodes_firmware_changes_no_dhcp_config():
    text = example_text("lab")
    uefi = config_mod.parse(text.replace('ip = "192.168.0.102"\n', 'ip = "192.168.0.102"\nfirmware = "uefi"\n'))
    bios = config_mod.parse(text)
    assert dhcpd_block(uefi, Served("/")) == dhcpd_block(bios, Served("/"))
