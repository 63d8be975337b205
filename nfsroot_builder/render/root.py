"""Files inside the nodes' root: fstab, hosts, interfaces, initramfs pieces.

Pure functions, config (+ where things live) -> text. The layouts:

* ``tmpfs``: the read-only NFS root, tmpfs wherever a running system writes.
* ``per-node``: each node's own read-write NFS /var (render.node_dir()),
  mounted by an initramfs script (an NFS /var in a systemd fstab creates an
  ordering cycle, and systemd drops the mount), /tmp on tmpfs.
* ``overlay``: a tmpfs overlay over the read-only NFS root, made in the initramfs.
* ``seed``: the Kerrighed page's fstab, literally (sysvinit roots only).
"""
from __future__ import annotations

from ..config import Config
from . import Served, header, node_dir

# Where a systemd/Debian system writes at run time. Without these on tmpfs a
# read-only root logs errors (journald, tmpfiles, random-seed) or hangs (dhcp).
TMPFS_DIRS = (
    ("/tmp", "1777"), ("/var/tmp", "1777"), ("/var/log", "0755"), ("/var/lib/systemd", "0755"),
    ("/var/lib/dhcp", "0755"), ("/var/cache", "0755"), ("/var/spool", "0755"),
)
TMPFS_OPTS = "nosuid,nodev"
CONF_D = "/etc/initramfs-tools/conf.d/nfsroot-build"
LAYOUT_SCRIPT = "/etc/initramfs-tools/scripts/nfs-bottom/nfsroot-build-layout"
LAYOUT_HOOK = "/etc/initramfs-tools/hooks/nfsroot-build-layout"


def fstab(cfg: Config, served: Served) -> str:
    """The root's /etc/fstab for its layout. / itself is absent: the
    initramfs mounts it (read-only unless the kernel line says rw)."""
    layout = cfg.root.layout
    out = [header(cfg).rstrip("\n"), f"# layout {layout!r}: / is the NFS root, mounted by the initramfs."]
    if layout == "tmpfs":
        out += [f"tmpfs {d} tmpfs {TMPFS_OPTS},mode={m} 0 0" for d, m in TMPFS_DIRS]
    elif layout == "per-node":
        out.append("# /var is this node's own NFS directory, mounted by the initramfs")
        out.append(f"# ({LAYOUT_SCRIPT}): in fstab it would make a systemd ordering cycle.")
        out.append(f"tmpfs /tmp tmpfs {TMPFS_OPTS},mode=1777 0 0")
    elif layout == "overlay":
        out.append("# Everything is writable: a tmpfs overlay made by the initramfs, lost at reboot.")
    else:  # seed: the page's fstab, minus its swap line (/dev/hda: diskless nodes have no disk).
        root = served.path(cfg.root.path)
        srv = cfg.server.address
        out += ["none /proc proc defaults 0 0", "none /sys sysfs defaults 0 0"]
        out += [f"{srv}:{root}/{d} /{d} nfs rw,hard,nolock 0 0" for d in ("dev", "var", "tmp", "root")]
        out.append("none /var/run tmpfs defaults 0 0")
    return "\n".join(out) + "\n"


def hosts(cfg: Config) -> str:
    """The seed's /etc/hosts: localhost, the server and every node."""
    domain = cfg.network.domain

    def names(short: str) -> str:
        return f"{short}.{domain} {short}" if domain else short

    out = [header(cfg).rstrip("\n"), "127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback", ""]
    out.append(f"{cfg.server.address} {names('server')}")
    out += [f"{n.ip} {names(n.name)}" for n in cfg.nodes]
    return "\n".join(out) + "\n"


def interfaces(cfg: Config) -> str:
    """/etc/network/interfaces with no stanza for the boot NIC (the seed's
    'Turned off, as eth0 is already configured when using NFSROOT')."""
    return (header(cfg) +
            "# The boot NIC was configured by the initramfs (ip=dhcp) and carries the\n"
            "# NFS root: no stanza for it here, an ifdown or a second DHCP client would\n"
            "# cut the root filesystem away.\n"
            "auto lo\niface lo inet loopback\n")


def initramfs_conf(cfg: Config) -> str:
    """initramfs.conf(5) drop-in: mount the root over NFS, with NIC drivers."""
    return header(cfg) + "BOOT=nfs\nMODULES=netboot\n"


_SCRIPT_HEAD = """#!/bin/sh
{header}# initramfs-tools(7) nfs-bottom script: runs after the NFS root is on ${{rootmnt}}.
PREREQ=""
prereqs() {{ echo "$PREREQ"; }}
case "$1" in prereqs) prereqs; exit 0 ;; esac
. /scripts/functions
"""


def layout_script(cfg: Config, served: Served) -> str | None:
    """The initramfs script of the layout, or None when it needs none."""
    head = _SCRIPT_HEAD.format(header=header(cfg))
    if cfg.root.layout == "per-node":
        cases = "\n".join(f"  {n.ip}) dir={node_dir(cfg, served, n.name)} ;;" for n in cfg.nodes)
        return head + f"""# ipconfig wrote the DHCP answer (IPV4ADDR) to /run/net-<device>.conf.
for conf in /run/net-*.conf; do [ -f "$conf" ] && . "$conf"; done
case "$IPV4ADDR" in
{cases}
  *) log_failure_msg "nfsroot-build: no per-node /var for address $IPV4ADDR"; exit 0 ;;
esac
# nolock: no rpc.statd in the initramfs (the root itself is mounted the same way).
nfsmount -o nolock,tcp,v3 {cfg.server.address}:"$dir" "${{rootmnt}}/var" \\
  || panic "nfsroot-build: cannot mount {cfg.server.address}:$dir on /var"
"""
    if cfg.root.layout == "overlay":
        return head + """# /run moves into the real root at the end of init, taking these mounts along.
base=/run/nfsroot-build
mkdir -p "$base/lower" "$base/rw"
mount -t tmpfs -o mode=0755 tmpfs "$base/rw"
mkdir -p "$base/rw/upper" "$base/rw/work"
modprobe overlay
mount -n -o move "${rootmnt}" "$base/lower"
mount -t overlay -o "lowerdir=$base/lower,upperdir=$base/rw/upper,workdir=$base/rw/work" \\
  overlay "${rootmnt}" || panic "nfsroot-build: cannot mount the overlay root"
"""
    return None


def layout_hook(cfg: Config) -> str | None:
    """initramfs hook adding the modules the layout script needs."""
    if cfg.root.layout != "overlay":
        return None
    return f"""#!/bin/sh
{header(cfg)}PREREQ=""
prereqs() {{ echo "$PREREQ"; }}
case "$1" in prereqs) prereqs; exit 0 ;; esac
. /usr/share/initramfs-tools/hook-functions
manual_add_modules overlay
"""


def initrd_must_contain(cfg: Config) -> list[str]:
    """Regexes over lsinitramfs' listing proving the initrd boots this layout."""
    want = [r"scripts/nfs", r"conf/conf\.d/nfsroot-build", r"(usr/)?bin/nfsmount"]
    if cfg.root.layout in ("per-node", "overlay"):
        want.append(r"scripts/nfs-bottom/nfsroot-build-layout")
    if cfg.root.layout == "overlay":
        want.append(r"(usr/)?lib/modules/.*/fs/overlayfs/overlay\.ko(\.[a-z]+)?")
    return want


POLICY_RC_D = """#!/bin/sh
# nfsroot-build: no daemon may start inside the build chroot (invoke-rc.d(8),
# /usr/share/doc/init-system-helpers/README.policy-rc.d). Removed after the run.
exit 101
"""
