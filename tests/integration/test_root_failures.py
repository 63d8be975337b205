"""The root steps before anything is built: a package typo fails before
anything is downloaded, and the dry-run shows every command, chroot ones too."""
from __future__ import annotations

import hashlib

from test_root_build import HASH, config

from helpers import nfsroot_build


def test_unknown_package_fails_naming_it_before_downloading(tmp_path):
    cfg = tmp_path / "typo.toml"
    cfg.write_text(config("typo", bootstrapper="mmdebstrap", layout="tmpfs", loader="grub",
                          packages=["iproute2", "nfs-commn"]))
    stage = tmp_path / "stage"
    # How fast it fails: bench/ ("unknown package", a target there), not a timed assertion here.
    res = nfsroot_build("all", "-c", cfg, "--prefix", stage)
    assert res.returncode == 1
    # The preflight, before the first step: nothing of the server or the root was touched.
    assert "preflight failed" in res.stderr and "nfs-commn" in res.stderr and "iproute2" not in res.stderr
    assert not (stage / "etc").exists() and not (stage / "srv").exists()
    assert not (stage / "var/lib/nfsroot-build/typo/logs").exists()   # no step ran


def test_dry_run_lists_every_command_including_chroot_ones(tmp_path):
    cfg = tmp_path / "dry.toml"
    cfg.write_text(config("dry", bootstrapper="debootstrap", layout="per-node", loader="grub"))
    stage = tmp_path / "stage"
    res = nfsroot_build("all", "-c", cfg, "--prefix", stage, "--dry-run", check=True)
    out = res.stdout
    root = f"{stage}/srv/nfsroot/dry"
    chroot = f"$ chroot {root} /usr/bin/env -i "
    lease = hashlib.sha256(root.encode()).hexdigest()[:16]   # debcache.lease_dir
    for expected in [
        f"$ debootstrap --variant=minbase --arch=amd64 --components=main "
        f"--cache-dir=/var/cache/nfsroot-build/leases/{lease} "
        f"--keyring={stage}/var/lib/nfsroot-build/dry/debootstrap-keyring.gpg trixie {root} ",
        f"$ mount -t proc proc {root}/proc",
        f"$ mount --bind /var/cache/nfsroot-build/leases/{lease} {root}/var/cache/apt/archives",
        "chpasswd -e <<< <redacted>",
        "apt-get install -y --no-install-recommends",
        "lsinitramfs '/boot/initrd.img-<kernel-version>'",
        f"$ umount {root}/proc",
        f"$ cp -a --one-file-system {root}/var/. {stage}/srv/nfsroot/dry.nodes/n1/",
        "$ grub-mknetdir",
        f"+++ {stage}/srv/tftp/dry/boot/grub/grub.cfg-01-52-54-00-12-35-01",
    ]:
        assert expected in out, expected
    assert out.count(chroot) >= 5
    # Kernels install with INITRD=No: the initramfs step makes the one initrd,
    # in the plan as in the real run (test_dry_run_exact.py).
    assert "update-initramfs -u -k '<kernel-version>'" in out
    assert HASH not in out and HASH[:12] not in out
    assert not (stage / "srv").exists()
