"""The seed page, literally (issue 12, point 5): `init --example seed` with
layout "seed" and init "sysvinit", built with debootstrap (the shared
`seed_sysv` build of tests/root_builds.py: suite trixie, because sid's
Release file on this mirror has expired; the serial console last on the
kernel line), boots in the lab: two nodes at once, each judged by the lab
(login prompt, the sysvinit report line: mounts, runlevel, no failed init
script on the console), and the fstab's NFS /var, /tmp and /root mounted by
the mountnfs hook at rcS time from the server's paths.
"""
from __future__ import annotations

import test_lab_boot
from helpers import nfsroot_build
from test_lab_boot import SERVER, assert_nfs_root, boot, report_times

lab_up = test_lab_boot.lab_up   # the fixture: lab up, and down afterwards whatever happened


def test_check_says_which_part_of_the_seed_layout_is_left_out_and_why(seed_sysv):
    res = nfsroot_build("check", "-c", seed_sysv.cfg, "--prefix", seed_sysv.stage)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout + res.stderr
    assert 'root.layout = "seed": /dev is not mounted by fstab: the initramfs moves its devtmpfs' in out
    assert 'root.layout = "seed": /var/run is not mounted by fstab: /var/run is a symlink to /run' in out
    assert 'root.layout = "seed": the page\'s /etc/rcS.d/S35mountnfs' in out


def test_seed_layout_sysvinit_two_nodes(seed_sysv, lab_up):
    root = seed_sysv.root
    fstab = (root / "etc/fstab").read_text()
    nfs_lines = [line.split() for line in fstab.splitlines() if line and not line.startswith("#")
                 and line.split()[2] == "nfs"]
    assert [(src, point) for src, point, *_ in nfs_lines] == \
        [(f"{SERVER}:{root}/{d}", f"/{d}") for d in ("var", "tmp", "root")]
    lab_up(seed_sysv)
    res, results = boot(seed_sysv, "ssi1", "ssi2")
    report_times(res)
    assert set(results) == {"ssi1", "ssi2"}, res.stderr
    for r in results.values():
        # hostname from DHCP, / from our NFS server, no failed init script.
        assert_nfs_root(seed_sysv, r)
        facts = r["facts"]
        assert facts["runlevel"] == "N,2", facts
        # What fstab says, mounted (by if-up.d/mountnfs, called from mountnfs.sh);
        # fstab's type "nfs" lets mount.nfs(8) negotiate version 4 with Ganesha.
        for d, key in (("var", "var"), ("tmp", "tmp"), ("root", "roothome")):
            assert facts[key] in (f"nfs,{SERVER}:{root}/{d}", f"nfs4,{SERVER}:{root}/{d}"), facts
        # The page's NFS /dev is left out: devtmpfs, as the initramfs moved it.
        assert facts["dev"].startswith("devtmpfs,"), facts
        assert facts["mountnfs"] == "../network/if-up.d/mountnfs", facts
    assert res.returncode == 0
