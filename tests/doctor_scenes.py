"""Broken situations for the doctor, one per check, built under a staging
prefix after the server steps ran. Shared by the unit tests (fake runner,
in-process) and the integration tests (the real CLI, real dhcpd -t, real
mknod and zstd)."""
from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nfsroot_builder.render.root import POLICY_RC_D

from helpers import example_text

KERNEL = "6.1.0-99-amd64"
OLD_KERNEL = "6.1.0-9-amd64"
NFS_INITRD = ["scripts", "scripts/nfs", "usr/lib/klibc/bin/nfsmount", "usr/lib/modules",
              f"usr/lib/modules/{KERNEL}/kernel/fs/nfs/nfs.ko", "conf/initramfs.conf"]
LOCAL_INITRD = ["scripts", "scripts/local", "usr/lib/klibc/bin/nfsmount",
                f"usr/lib/modules/{KERNEL}/kernel/fs/ext4/ext4.ko"]


def newc(names: list[str]) -> bytes:
    """An uncompressed newc cpio archive of empty files (what an initramfs is)."""
    out = b""
    for ino, name in enumerate(names + ["TRAILER!!!"], 1):
        raw = name.encode() + b"\0"
        mode = 0o100644 if name != "TRAILER!!!" else 0
        fields = [ino, mode, 0, 0, 1, 0, 0, 0, 0, 0, 0, len(raw), 0]
        hdr = b"070701" + b"".join(b"%08X" % f for f in fields) + raw
        out += hdr + b"\0" * (-len(hdr) % 4)
    return out + b"\0" * (-len(out) % 512)


def initrd(names: list[str], early: bool = True) -> bytes:
    """Debian's shape: an uncompressed early (microcode) archive, then a compressed main one."""
    head = newc(["kernel", "kernel/x86", "kernel/x86/microcode"]) if early else b""
    return head + gzip.compress(newc(names))


@dataclass
class Scene:
    check: str
    words: str                         # in the failure's reason
    build: Callable[[Path, str], None]  # (stage, root path in the config) -> None
    manual: bool = False
    config_edit: Callable[[str], str] | None = None
    status: str = "fail"


def _w(path: Path, text: str | bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    os.chmod(path, mode)


def root_of(stage: Path, root: str) -> Path:
    return stage / root.lstrip("/")


def seed_layout(text: str) -> str:
    return text.replace('layout = "tmpfs"', 'layout = "seed"').replace('init = "systemd"', 'init = "sysvinit"')


def _writable(stage, root):
    # The seed's first layout: a writable tree exported read-only (the page's
    # /dev, whose NFS mount is left out today: its /var), so nodes hang.
    dropin = stage / "etc/exports.d/nfsroot-build-kerrighed.exports"
    r = stage / root.lstrip("/")
    _w(dropin, f"{r} 192.168.0.0/24(ro,async,no_root_squash,no_subtree_check)\n"
               f"{r}/dev 192.168.0.0/24(ro,sync,no_root_squash,no_subtree_check)\n"
               f"{r}/var 192.168.0.0/24(ro,sync,no_root_squash,no_subtree_check)\n")


def _interfaces(stage, root):
    _w(root_of(stage, root) / "etc/network/interfaces",
       "source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n\n"
       "auto eth0\niface eth0 inet dhcp\n  hostname node\n")


def _udev(stage, root):
    r = root_of(stage, root)
    _w(r / "etc/udev/rules.d/70-persistent-net.rules",
       '# generated\nSUBSYSTEM=="net", ACTION=="add", ATTR{address}=="52:54:00:00:00:01", NAME="eth0"\n'
       'SUBSYSTEM=="net", ACTION=="add", ATTR{address}=="52:54:00:00:00:02", NAME="eth1"\n')
    _w(r / "lib/udev/rules.d/75-persistent-net-generator.rules", "# the old generator\n")


def _nfs_state(stage, root):
    d = stage / "var/lib/nfs"
    _w(d / "etab", "", 0o600)
    (d / "state").mkdir(parents=True)
    _w(d / "xtab", "", 0o644)


def _exports_admin(stage, root):
    # The seed's own "corrected" line, space and all, plus its wildcard IP.
    _w(stage / "etc/exports", "# the admin's own\n/home 10.1.0.0/16(rw,sync,no_subtree_check)\n"
       "/NFSROOT/kerrighed 192.168.1.* (ro,async,no_root_squash,no_subtree_check)\n")


def _exports_ours(stage, root):
    dropin = stage / "etc/exports.d/nfsroot-build-kerrighed.exports"
    r = stage / root.lstrip("/")
    _w(dropin, f"{r} 192.168.0.0/24 (ro,async,no_root_squash,no_subtree_check)\n")


def _hostname(stage, root):
    _w(root_of(stage, root) / "etc/hostname", "buildhost\n")


def _policy_left(stage, root):
    # What 0.1 left in 7 of 7 kills during root-packages.
    _w(root_of(stage, root) / "usr/sbin/policy-rc.d", POLICY_RC_D, 0o755)


def _tftp_mode(stage, root):
    _w(stage / "srv/tftp/kerrighed" / f"initrd.img-{KERNEL}", initrd(NFS_INITRD), 0o600)


def _initrd_local(stage, root):
    _w(stage / "srv/tftp/kerrighed" / f"initrd.img-{KERNEL}", initrd(LOCAL_INITRD))


def _kernel_old(stage, root):
    r = root_of(stage, root)
    _w(r / "boot" / f"vmlinuz-{OLD_KERNEL}", b"old kernel")
    _w(r / "boot" / f"vmlinuz-{KERNEL}", b"new kernel")
    _w(r / "boot" / f"initrd.img-{KERNEL}", initrd(NFS_INITRD))
    _w(r / "etc/os-release", "ID=debian\n")
    _w(stage / "srv/tftp/kerrighed" / f"vmlinuz-{OLD_KERNEL}", b"old kernel")


def _dhcpd_ours_broken(stage, root):
    conf = stage / "etc/dhcp/dhcpd.conf"
    conf.write_text(conf.read_text().replace("  deny unknown-clients;\n", "  deny unknown-clients\n"))


def _dhcpd_admin_broken(stage, root):
    conf = stage / "etc/dhcp/dhcpd.conf"
    conf.write_text("subnet 10.9.0.0 netmask 255.255.0.0 {\n  option routers 10.9.0.1\n}\n" + conf.read_text())


def _dhcp_nodes(stage, root):
    conf = stage / "etc/dhcp/dhcpd.conf"
    conf.write_text(conf.read_text().replace("52:54:00:00:00:03", "52:54:00:00:00:33"))


def _use_kea(text: str) -> str:
    return text.replace('server = "isc-dhcp-server"', 'server = "kea"')


def _kea_edited(stage, root):
    # A reservation changed by hand: Kea still parses it, the build differs.
    conf = stage / "etc/kea/kea-dhcp4-nfsroot-build.conf"
    conf.write_text(conf.read_text().replace("52:54:00:00:00:03", "52:54:00:00:00:33"))


def _use_http(text: str) -> str:
    return text.replace('loader = "grub"', 'loader = "grub"\ntransport = "http"')


def _use_image(text: str) -> str:
    return _use_http(text).replace('layout = "tmpfs"', 'layout = "tmpfs"\nserve = "image"', 1)


def _image_by_hand(stage, root):
    # A squashfs put where nginx serves v1's image, which no run of the build packed.
    _w(stage / "srv/tftp/kerrighed/filesystem.squashfs", b"hsqs" + b"\0" * 92)


def _nginx_edited(stage, root):
    conf = stage / "etc/nginx/conf.d/nfsroot-build-kerrighed.conf"
    conf.write_text(conf.read_text().replace("listen 192.168.0.1:80;", "listen 192.168.0.1:8080;"))


def _collision(stage, root):
    conf = stage / "etc/dhcp/dhcpd.conf"
    conf.write_text("host printer { hardware ethernet 52:54:00:00:00:02; fixed-address 192.168.0.250; }\n"
                    + conf.read_text())
    _w(stage / "etc/hosts", "127.0.0.1 localhost\n192.168.0.101 fileserver\n")


def _other_build(stage, root):
    """Another build beside this one whose config gives its node ssi2's MAC."""
    other = stage / "other.toml"
    _w(other, example_text("seed").replace('name = "kerrighed"', 'name = "other"')
       .replace("/NFSROOT/kerrighed", "/NFSROOT/other").replace("192.168.0.", "192.168.7.")
       .replace('"ssi', '"oth').replace("52:54:00:00:00:0", "52:54:00:00:07:0").replace("52:54:00:00:07:01", "52:54:00:00:00:02"))
    _w(stage / "var/lib/nfsroot-build/other/state.json",
       json.dumps({"version": 1, "steps": {"dhcp-server": {"status": "done", "outputs": {"config": str(other)}}},
                   "files": {}, "pending_restarts": []}))


def _world(stage, root):
    _w(stage / "etc/exports", "/srv/data *(rw,sync,no_root_squash,no_subtree_check)\n")


def _world_ours(stage, root):
    dropin = stage / "etc/exports.d/nfsroot-build-kerrighed.exports"
    dropin.write_text(dropin.read_text().replace("192.168.0.0/24(", "*("))


def _threads(stage, root):
    # The package's default is 8; the config asks for 4.
    _w(stage / "etc/default/nfs-kernel-server", "# the package's\nRPCNFSDCOUNT=2\nRPCMOUNTDOPTS=\"--manage-gids\"\n")


def _more_threads(text: str) -> str:
    return text.replace('clients = ""', 'clients = ""\nthreads = 4')


def _with_login_group(text: str) -> str:
    return text.replace("\n[[node]]", '\n[[group]]\nname = "login"\nroot.packages = ["less"]\n\n[[node]]', 1)


def _group_root_gone(stage, root):
    """The login group's root is current in its state, but its tree was removed by hand."""
    key = (root.strip("/") + "-login").replace("/", "-").lower()
    _w(stage / f"var/lib/nfsroot-build/kerrighed/roots/{key}/state.json",
       json.dumps({"version": 1, "steps": {}, "files": {},
                   "versions": {"current": 1, "list": {"1": {"path": f"{root}-login", "status": "ready",
                                                             "kernel_path": "/x/vmlinuz-6.1.0-9-amd64",
                                                             "initrd_path": "/x/initrd.img-6.1.0-9-amd64"}}}}))


SCENES = [
    Scene("writable-exports", "exported read-only to 192.168.0.0/24", _writable, config_edit=seed_layout),
    Scene("root-interfaces", "eth0", _interfaces),
    Scene("root-udev-net", "70-persistent-net.rules names cards by MAC", _udev),
    Scene("nfs-state-files", "etab has mode 600", _nfs_state),
    Scene("exports-syntax", "wildcards are not allowed in IP addresses", _exports_admin, manual=True),
    Scene("exports-syntax", "exports /tmp", _exports_ours),
    Scene("root-hostname", "'buildhost'", _hostname),
    Scene("chroot-leftovers", "policy-rc.d of a chroot session", _policy_left),
    Scene("tftp-readable", "not readable by the TFTP user tftp", _tftp_mode),
    Scene("initrd-nfs", "has no scripts/nfs", _initrd_local, manual=True),
    Scene("tftp-kernel", f"newest kernel is {KERNEL}", _kernel_old),
    Scene("root-image", "no record of being packed by this build", _image_by_hand, manual=True,
          config_edit=_use_image),
    Scene("dhcpd-syntax", "dhcpd -t rejects", _dhcpd_ours_broken),
    Scene("dhcpd-syntax", "dhcpd -t rejects", _dhcpd_admin_broken, manual=True),
    Scene("dhcp-nodes", "the config says MAC 52:54:00:00:00:03", _dhcp_nodes),
    Scene("dhcp-config", "differs from what the config makes", _kea_edited, config_edit=_use_kea),
    Scene("http-server", "differs from what the config makes", _nginx_edited, config_edit=_use_http),
    Scene("host-collisions", "same MAC as node ssi2", _collision, manual=True),
    Scene("other-builds", "node.mac 52:54:00:00:00:02: node ssi2 of build kerrighed and node oth1 of build other",
          _other_build, manual=True),
    Scene("world-no-root-squash", "exported to '*' with no_root_squash", _world, manual=True),
    Scene("world-no-root-squash", "exported to '*' with no_root_squash", _world_ours),
    Scene("group-roots", "a group root is not built or not published", _group_root_gone,
          config_edit=_with_login_group, manual=True),
    Scene("nfs-threads", "2 nfsd threads", _threads, config_edit=_more_threads, status="warn"),
]


def scene_id(s: Scene) -> str:
    return f"{s.check}-{s.build.__name__.strip('_')}"
