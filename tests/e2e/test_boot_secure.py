"""Secure Boot on: UEFI nodes whose firmware enforces it (OVMF's Secure Boot
build with Microsoft's keys enrolled) boot Debian's signed chain that
`boot.secure_boot = true` serves: shim -> signed netboot GRUB -> the root's
signed kernel, with the root over NFS.

Runs on the shared mmdebstrap root (root_builds.py), switched to
secure_boot and UEFI nodes for this test and put back afterwards.
"""
from __future__ import annotations

import hashlib

from integration.test_dry_run_exact import differences, log_dir, performed, planned

from nfsroot_builder.signed_boot import pe_signed

from helpers import nfsroot_build
from test_lab_boot import assert_nfs_root, boot, edit_config, lab_up, report_times  # noqa: F401 (fixtures)


def test_secure_boot_two_uefi_nodes(mm, lab_up, edit_config):  # noqa: F811 (the imported fixtures)
    edit_config(mm, 'ip = "192.168.0.10', 'firmware = "uefi"\nip = "192.168.0.10')
    edit_config(mm, "timeout = 0\n", "timeout = 0\nsecure_boot = true\n")
    args = ("all", "-c", mm.cfg, "--prefix", mm.stage, "--resume")
    plan = planned(nfsroot_build(*args, "--dry-run", check=True).stdout)
    res = nfsroot_build(*args, check=True)
    assert "boot-loader" in plan and "dhcp-server" in plan, plan
    # The dry-run named every file the real run wrote, the signed loaders included.
    assert not differences(plan, performed(log_dir(mm.stage / "var/lib/nfsroot-build/mm"), list(plan))), \
        differences(plan, performed(log_dir(mm.stage / "var/lib/nfsroot-build/mm"), list(plan)))
    assert "# write " + str(mm.tftp / "boot/shim/shimx64.efi") in "\n".join(plan["boot-loader"])
    shim, grub = mm.tftp / "boot/shim/shimx64.efi", mm.tftp / "boot/shim/grubx64.efi"
    assert pe_signed(shim) and pe_signed(grub) and pe_signed(mm.root / f"boot/vmlinuz-{mm.kernel()}")
    # What the state recorded is what is served (from the suite's .debs in the cache).
    signed = mm.state["steps"]["boot-loader"]["outputs"]["signed_sha256"]
    assert signed == {"boot/shim/shimx64.efi": hashlib.sha256(shim.read_bytes()).hexdigest(),
                      "boot/shim/grubx64.efi": hashlib.sha256(grub.read_bytes()).hexdigest()}
    assert 'filename "boot/shim/shimx64.efi"' in (mm.stage / "etc/dhcp/dhcpd.conf").read_text(), res.stderr

    lab_up(mm)
    res, results = boot(mm, "n1", "n2")
    report_times(res)
    assert set(results) == {"n1", "n2"}, res.stderr
    for r in results.values():
        assert_nfs_root(mm, r)
        # Read from the firmware's SecureBoot variable, not only the kernel's message.
        assert r["facts"]["secureboot"] == "on" and r["facts"]["sbfrom"] == "efivar", r["facts"]
        console = open(r["serial_log"], errors="replace").read()
        # The chain as the firmware and the kernel saw it.
        assert "NBP filename is boot/shim/shimx64.efi" in console
        assert "Fetching Netboot Image boot/shim/grubx64.efi" in console      # shim, loading GRUB
        assert "EFI stub: UEFI Secure Boot is enabled." in console
    assert res.returncode == 0
