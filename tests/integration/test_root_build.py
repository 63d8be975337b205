"""The root half, for real: two Debian trixie roots built through the CLI
under staging prefixes, one with mmdebstrap (layout tmpfs, GRUB), one with
debootstrap (layout per-node, iPXE) that is stopped with SIGTERM in the
middle of root-packages and finished with `all --resume`.

Each root is built once per session (they take a minute or two each) and
many things are asserted on it. Timings and sizes go to
<basetemp>/root-build-figures.json.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

from debian.deb822 import Deb822

from helpers import nfsroot_build
from root_builds import BASE, HASH, NODES, Build, config, mounts_under, record


def test_sigterm_during_root_packages_leaves_nothing_mounted_and_resume_finishes(deb):
    s = deb.figures["sigterm"]
    assert s["returncode"] == 130, s["stderr"]
    # The signal came while root-packages ran apt-get install: that step, and only
    # it, was interrupted; the steps before it are done, none after it started.
    assert list(s["unfinished"]) == ["root-packages"], s
    status, error = s["unfinished"]["root-packages"]
    assert status in ("running", "failed") and "SIGTERM" in (error or "SIGTERM"), s["unfinished"]
    assert "step 'root-packages'" in s["stderr"], s["stderr"]
    steps = list(s["status"])
    before = steps[:steps.index("root-packages")]
    assert s["status"]["root-packages"] in ("interrupted", "failed"), s["status"]
    assert sorted(s["done"]) == sorted(before), s
    assert all(s["status"][x] == "done" for x in before), s["status"]
    assert s["mounts_after"] == [] and not s["policy_rc_d_after"]
    assert all(step["status"] == "done" for step in deb.state["steps"].values())


def test_nothing_stays_mounted(build):
    assert mounts_under(build.stage) == []
    assert not (build.root / "usr/sbin/policy-rc.d").exists()


def test_packages_are_installed(build):
    status = {}
    with open(build.root / "var/lib/dpkg/status") as f:
        for para in Deb822.iter_paragraphs(f):
            status[para["Package"]] = para["Status"]
    for pkg in BASE + ["iproute2"]:
        assert status.get(pkg) == "install ok installed", pkg
    assert not [p for p, s in status.items() if s != "install ok installed" and not s.endswith("not-installed")]


def test_root_password_hash_is_set(build):
    root_line = next(line for line in (build.root / "etc/shadow").read_text().splitlines() if line.startswith("root:"))
    assert root_line.split(":")[1] == HASH
    # ... and nowhere in the state or the logs.
    sdir = build.stage / f"var/lib/nfsroot-build/{build.name}"
    for p in [sdir / "state.json", *sorted((sdir / "logs").glob("*/*.log"))]:
        assert "h11iU6PTvJRLyy7" not in p.read_text(errors="replace"), p


def test_identity_and_network_files(build):
    assert not (build.root / "etc/hostname").exists()
    mid = build.root / "etc/machine-id"
    assert mid.read_text() == ""
    hosts = (build.root / "etc/hosts").read_text()
    assert "192.168.0.1 server.test.nfsroot server" in hosts
    assert "192.168.0.102 n2.test.nfsroot n2" in hosts
    ifaces = [line for line in (build.root / "etc/network/interfaces").read_text().splitlines()
              if line and not line.startswith("#")]
    assert ifaces == ["auto lo", "iface lo inet loopback", "source /etc/network/interfaces.d/*"]
    assert (build.root / "etc/systemd/system/multi-user.target.wants/remote-fs.target").is_symlink()
    assert "search test.nfsroot\n" in (build.root / "etc/resolv.conf").read_text()
    # apt's lists and caches are not shipped to the nodes.
    assert not list((build.root / "var/lib/apt/lists").glob("*Packages*"))
    assert not list((build.root / "var/cache/apt").glob("*.bin"))


def test_fstab_per_layout(mm, deb):
    tmpfs = [line.split()[1] for line in (mm.root / "etc/fstab").read_text().splitlines()
             if line and not line.startswith("#")]
    assert tmpfs == ["/tmp", "/var/tmp", "/var/log", "/var/lib/systemd", "/var/lib/dhcp", "/var/cache", "/var/spool"]
    per_node = [line for line in (deb.root / "etc/fstab").read_text().splitlines() if line and not line.startswith("#")]
    assert per_node == ["tmpfs /tmp tmpfs nosuid,nodev,mode=1777 0 0"]
    # Each node's /var: a seeded copy of the root's, on the server.
    for node, _, _ in NODES:
        assert (deb.stage / f"srv/nfsroot/deb.nodes/{node}/lib/dpkg/status").exists()


def lsinitramfs(build: Build) -> set[str]:
    res = subprocess.run(["chroot", build.root, "lsinitramfs", f"/boot/initrd.img-{build.kernel()}"],
                         capture_output=True, text=True, check=True)
    return set(res.stdout.split())


def test_initrd_boots_from_nfs(build):
    names = lsinitramfs(build)
    assert {"scripts/nfs", "conf/conf.d/nfsroot-build"} <= names
    assert any(n.endswith("bin/nfsmount") for n in names)
    conf = (build.root / "etc/initramfs-tools/conf.d/nfsroot-build").read_text()
    assert "BOOT=nfs" in conf and "MODULES=netboot" in conf
    assert "scripts/init-bottom/nfsroot-build-layout" in names
    assert any(n.endswith("/fs/overlayfs/overlay.ko.xz") for n in names)


def test_kernel_and_initrd_readable_in_tftp_root(build):
    kernel = build.kernel()
    for name in (f"vmlinuz-{kernel}", f"initrd.img-{kernel}"):
        p = build.tftp / build.name / name
        assert p.stat().st_mode & 0o004, f"{p} is not world-readable (tftpd runs as user tftp)"
        assert p.read_bytes() == (build.root / "boot" / name).read_bytes()


def test_one_menu_per_node_with_the_kernel_line(build):
    kernel = build.kernel()
    base = f"root=/dev/nfs nfsroot=192.168.0.1:{build.root},tcp,v3 ip=dhcp ro console=ttyS0,115200n8"
    for node, mac, _ in NODES:
        dashed = mac.replace(":", "-")
        menu = build.tftp / (f"boot/grub/grub.cfg-01-{dashed}" if build.name == "mm" else f"ipxe/{dashed}.ipxe")
        text = menu.read_text()
        want = base
        if build.name == "deb":   # per-node: the node's own /var, mounted by the initramfs
            want = base.replace(" console=", f" nrb.layout=per-node nrb.var=192.168.0.1:"
                                              f"{build.stage}/srv/nfsroot/deb.nodes/{node} console=")
        assert want in text
        assert f"/{build.name}/vmlinuz-{kernel}" in text and f"/{build.name}/initrd.img-{kernel}" in text
    if build.name == "mm":
        assert (build.tftp / "boot/grub/i386-pc/core.0").exists()
        assert (build.tftp / "boot/grub/x86_64-efi/core.efi").exists()
    else:
        assert {"undionly.kpxe", "ipxe.efi"} <= {p.name for p in build.tftp.iterdir()}
        assert (build.tftp / "ipxe/boot.ipxe").exists()


def tree(path: Path) -> dict:
    return {str(p): (p.lstat().st_mtime_ns, p.lstat().st_size) for p in path.rglob("*")}


def test_resume_on_a_finished_build_changes_nothing(build, tmp_path_factory):
    # How fast: bench/ ("no-op resume", a target there), not a timed assertion here.
    before = tree(build.stage / "srv")
    times = []
    for _ in range(3):
        t0 = time.monotonic()
        res = nfsroot_build("all", "-c", build.cfg, "--prefix", build.stage, "--resume", check=True)
        times.append(time.monotonic() - t0)
        assert "0 step(s) ran" in res.stderr and "nothing changed" in res.stderr
    assert tree(build.stage / "srv") == before
    build.figures["resume_seconds"] = [round(t, 2) for t in times]
    record(tmp_path_factory, f"{build.name}-resume", {"seconds": build.figures["resume_seconds"]})


def broken_deb(tmp: Path) -> Path:
    """A package whose preinst fails: dpkg aborts its install inside the chroot."""
    pkg = tmp / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN/control").write_text(
        "Package: nfsroot-build-test-broken\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: test <test@example.org>\nDescription: fails on purpose\n")
    (pkg / "DEBIAN/preinst").write_text("#!/bin/sh\necho 'broken on purpose' >&2\nexit 1\n")
    (pkg / "DEBIAN/preinst").chmod(0o755)
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", pkg, tmp / "broken.deb"],
                   check=True, capture_output=True)
    return tmp / "broken.deb"


def test_failing_command_in_the_chroot_leaves_nothing_mounted(mm, tmp_path):
    cfg = tmp_path / "broken.toml"
    cfg.write_text(config("mm", bootstrapper="mmdebstrap", layout="tmpfs", loader="grub",
                          local_debs=[str(broken_deb(tmp_path))]))
    # Its own state dir: the finished build's state stays as it is.
    res = nfsroot_build("run", "root-packages", "-c", cfg, "--prefix", mm.stage, "--state-dir", tmp_path / "state")
    assert res.returncode == 1, res.stderr
    assert "apt-get install" in res.stderr and "broken on purpose" in (tmp_path / "state/logs/last/root-packages.log").read_text()
    assert mounts_under(mm.stage) == []
    assert not (mm.root / "usr/sbin/policy-rc.d").exists()
    assert not (mm.root / "var/cache/nfsroot-build/local-debs").exists()
