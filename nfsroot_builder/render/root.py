"""Files inside the nodes' root: fstab, hosts, interfaces, initramfs pieces.

Pure functions, config (+ where things live) -> text. The layouts:

* ``tmpfs``: the read-only NFS root, tmpfs wherever a running system writes.
* ``per-node``: each node's own read-write NFS /var (render.node_dir()),
  mounted by an initramfs script (named in the node's menu: nrb.var=) (an NFS /var in a systemd fstab creates an
  ordering cycle, and systemd drops the mount), /tmp on tmpfs.
* ``overlay``: a tmpfs overlay over the read-only NFS root, made in the initramfs.
* ``seed``: the Kerrighed page's fstab, literally (sysvinit roots only).
"""
from __future__ import annotations

import re

from ..config import Config
from . import Served, header, node_dir

# Where a systemd/Debian system writes at run time. Without these on tmpfs a
# read-only root logs errors (journald, tmpfiles, random-seed) or hangs (dhcp).
TMPFS_DIRS = (
    ("/tmp", "1777"), ("/var/tmp", "1777"), ("/var/log", "0755"), ("/var/lib/systemd", "0755"),
    ("/var/lib/dhcp", "0755"), ("/var/cache", "0755"), ("/var/spool", "0755"),
)
TMPFS_OPTS = "nosuid,nodev"
# The lines of the seed page's fstab (and its mountnfs link) that cannot do
# their job on today's Debian, with the reason; fstab() writes them as
# comments and `check` prints them (preflight.layout_notes).
SEED_LEFT_OUT = {
    "/dev": "the initramfs moves its devtmpfs to /dev and udev fills it per node (udev(7)); "
                "an NFS /dev mounted over it at rcS would hide /dev/pts, /dev/shm and every node "
                "udev made (no /dev/ttyS0 for the serial getty), and all nodes' udev would create "
                "and delete nodes in one shared directory",
    "/var/run": "/var/run is a symlink to /run (base-files, FHS 3.0), which is already "
                      "a tmpfs: a tmpfs mounted there would hide /run/initctl, /run/utmp and the pid "
                      "files of what rcS started",
}
CONF_D = "/etc/initramfs-tools/conf.d/nfsroot-build"
LAYOUT_SCRIPT = "/etc/initramfs-tools/scripts/init-bottom/nfsroot-build-layout"
LAYOUT_HOOK = "/etc/initramfs-tools/hooks/nfsroot-build-layout"


def fstab(cfg: Config, served: Served) -> str:
    """The root's /etc/fstab for its layout. / itself is absent: the
    initramfs mounts it (read-only unless the kernel line says rw)."""
    layout = cfg.root.layout
    out = [header(cfg).rstrip("\n"), f"# layout {layout!r}: / is the NFS root, mounted by the initramfs."]
    if layout == "tmpfs":
        out += [f"tmpfs {d} tmpfs {TMPFS_OPTS},mode={m} 0 0" for d, m in TMPFS_DIRS]
    elif layout == "per-node":
        out.append("# /var is this node's own NFS directory, mounted by the initramfs (nrb.var= in")
        out.append(f"# its menu, {LAYOUT_SCRIPT}): in fstab it would make a systemd ordering cycle.")
        out.append(f"tmpfs /tmp tmpfs {TMPFS_OPTS},mode=1777 0 0")
    elif layout == "overlay":
        out.append("# Everything is writable: a tmpfs overlay made by the initramfs, lost at reboot.")
    else:  # seed: the page's fstab, minus its swap line (/dev/hda: diskless nodes have no disk).
        root = served.path(cfg.root.path)
        srv = cfg.server.address
        out += ["none /proc proc defaults 0 0", "none /sys sysfs defaults 0 0"]
        out += [f"# Left out: /dev ({SEED_LEFT_OUT['/dev']}).", f"# {srv}:{root}/dev /dev nfs rw,hard,nolock 0 0"]
        out += [f"{srv}:{root}/{d} /{d} nfs rw,hard,nolock 0 0" for d in cfg.root.writable_dirs]
        out += [f"# Left out: /var/run ({SEED_LEFT_OUT['/var/run']}).", "# none /var/run tmpfs defaults 0 0"]
    return "\n".join(out) + "\n"


def mount_points(cfg: Config) -> dict[str, int]:
    """Directories fstab mounts on: they must exist in the root, because on a
    read-only root nobody can create them at boot (a missing /var/lib/dhcp
    fails its mount and sends systemd to emergency mode)."""
    if cfg.root.layout == "tmpfs":
        return {d: int(m, 8) for d, m in TMPFS_DIRS}
    if cfg.root.layout == "per-node":
        return {"/tmp": 0o1777}
    return {}


def rcs_default(cfg: Config) -> str:
    """/etc/default/rcS of a sysvinit root: NFS mounts made at boot by
    initscripts' mountnfs.sh, not waited for.

    With the default ASYNCMOUNTNFS=yes, mountnfs.sh only waits for ifupdown's
    if-up.d/mountnfs hook to mount them, and ifupdown never brings up the
    NIC the kernel configured; with "no" it calls that hook itself
    (FROMINITD=yes), which runs `mount -a -t nfs` (rcS(5)).

    When every node mounts the same /tmp (layout "seed"), TMPTIME=infinite:
    initscripts' bootclean (/lib/init/bootclean.sh, clean_tmp) would
    otherwise let each booting node delete the files of the nodes already
    running, and two nodes booting at once race on its flag file (one gets
    "bootclean: Failure creating '/tmp/.clean'", seen in the lab). With
    "infinite" clean_tmp returns before it touches the flag file."""
    text = (header(cfg) + "# Default settings for the scripts in /etc/rcS.d/ (rcS(5)).\n"
            "# The boot NIC is configured by the kernel (ip=dhcp), not by ifupdown: mount\n"
            "# the NFS file systems of fstab from mountnfs.sh instead of waiting for the\n"
            "# if-up.d hook that only ifupdown would run.\n"
            "ASYNCMOUNTNFS=no\n")
    if "tmp" in cfg.root.writable_dirs:
        text += ("# /tmp is one NFS directory shared by every node: a booting node must not\n"
                 "# clean it under the running ones (bootclean's clean_tmp).\n"
                 "TMPTIME=infinite\n")
    return text


def nfs_common_default(cfg: Config) -> str:
    """/etc/default/nfs-common of a sysvinit root: no rpc.statd. The nodes
    mount nolock (the root, and fstab's lines), so no lock manager needs it,
    and at rcS time it would fail to write its state to /var/lib/nfs on the
    read-only root (nfs-common's init script starts it before mountnfs.sh)."""
    return (header(cfg) + "# Defaults for nfs-common's init script (statd(8), idmapd, gssd).\n"
            "# No statd: every NFS mount of the nodes is nolock.\n"
            "NEED_STATD=no\nNEED_IDMAPD=\nNEED_GSSD=\n")


def idmapd_conf(cfg: Config) -> str:
    """/etc/idmapd.conf of a sysvinit root: the NFSv4 ID-mapping domain, named.

    Without a Domain, libnfsidmap (rpc.idmapd at rcS, and nfsidmap(8) at
    each of the kernel's ID upcalls for fstab's NFSv4 mounts) first asks the
    node's DNS servers for the _nfsv4idmapdomain TXT record (rpc.idmapd(8))
    and only then takes the domain of the host's name. Where those servers
    do not answer, every lookup waits out the resolver's timeouts: about
    20 s each with two name servers (resolv.conf(5): timeout 5 s, 2
    attempts); a lab node spent about 80 s of its boot so. The domain
    named here is the one it would derive: network.domain, the domain of
    the names in /etc/hosts; "localdomain", libnfsidmap's own default,
    when there is none."""
    return (header(cfg) + "# NFSv4 ID mapping (idmapd.conf(5)). A Domain spares every lookup the DNS\n"
            "# query for the _nfsv4idmapdomain TXT record (rpc.idmapd(8)).\n"
            f"[General]\nDomain = {cfg.network.domain or 'localdomain'}\n\n"
            "[Mapping]\nNobody-User = nobody\nNobody-Group = nogroup\n")


def serial_consoles(cfg: Config) -> list[tuple[str, str]]:
    """(tty, speed) of every console=ttyS... on the kernel line."""
    out = []
    for arg in cfg.boot.kernel_args:
        m = re.fullmatch(r"console=(ttyS\d+)(?:,(\d+)\S*)?", arg)
        if m:
            out.append((m.group(1), m.group(2) or "9600"))
    return out


def serial_gettys(cfg: Config) -> str | None:
    """An inittab(5) drop-in (/etc/inittab.d/*.tab, read by sysvinit 3) with
    a getty on each serial console, as systemd-getty-generator(8) gives a
    systemd root by itself; None when the kernel line names none."""
    consoles = serial_consoles(cfg)
    if not consoles:
        return None
    lines = [f"T{tty[4:]}:2345:respawn:/sbin/getty -L {speed} {tty} vt100" for tty, speed in consoles]
    return header(cfg) + "\n".join(lines) + "\n"


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
            "auto lo\niface lo inet loopback\n"
            "source /etc/network/interfaces.d/*\n")


def resolv_conf(cfg: Config) -> str:
    """The nodes' resolv.conf(5) from network.dns_servers and network.domain:
    the root is read-only and nothing on a node rewrites it."""
    out = [header(cfg).rstrip("\n")]
    if cfg.network.domain:
        out.append(f"search {cfg.network.domain}")
    out += [f"nameserver {ip}" for ip in cfg.network.dns_servers]
    if not cfg.network.dns_servers:
        out.append("# no network.dns_servers in the cluster config: no name server")
    return "\n".join(out) + "\n"


def initramfs_conf(cfg: Config) -> str:
    """initramfs.conf(5) drop-in: mount the root over NFS, with NIC drivers."""
    return header(cfg) + "BOOT=nfs\nMODULES=netboot\n"


def layout_script(cfg: Config) -> str:
    """The initramfs script of the writable layouts, driven by the kernel line.

    Installed in every root, it does nothing unless the node's menu says
    ``nrb.layout=overlay`` or ``nrb.layout=per-node nrb.var=SERVER:/dir``:
    the initrd then does not change when a node or the layout changes, and
    the node's own /var is named in its own menu. It runs from init-bottom,
    after the NFS root is on ${rootmnt} and before switch_root (proven in the
    lab prototype, /work/lab-notes).
    """
    return f"""#!/bin/sh
{header(cfg)}# initramfs-tools(7) init-bottom script of nfsroot-build's writable layouts.
#   nrb.layout=overlay                    tmpfs overlay over the read-only NFS root
#   nrb.layout=per-node nrb.var=SRV:/dir  the node's own read-write NFS /var (not from
#                                         fstab: an NFS /var there is a systemd ordering cycle)
PREREQ=""
prereqs() {{ echo "$PREREQ"; }}
case "$1" in prereqs) prereqs; exit 0 ;; esac
. /scripts/functions

layout="" nrbvar=""
for x in $(cat /proc/cmdline); do
	case "$x" in
	nrb.layout=*) layout="${{x#nrb.layout=}}" ;;
	nrb.var=*) nrbvar="${{x#nrb.var=}}" ;;
	esac
done

case "$layout" in
overlay)
	log_begin_msg "nfsroot-build: tmpfs overlay over the read-only NFS root"
	modprobe -q overlay || true
	# init moves /run into the real root after init-bottom, these mounts included.
	mkdir -p /run/nrb/ro /run/nrb/rw
	mount -t tmpfs -o mode=0755 tmpfs /run/nrb/rw || panic "nfsroot-build: tmpfs failed"
	mkdir -p /run/nrb/rw/upper /run/nrb/rw/work
	mount -n -o move "${{rootmnt}}" /run/nrb/ro || panic "nfsroot-build: cannot move the NFS root"
	if ! mount -t overlay -o lowerdir=/run/nrb/ro,upperdir=/run/nrb/rw/upper,workdir=/run/nrb/rw/work \
		overlay "${{rootmnt}}"; then
		mount -n -o move /run/nrb/ro "${{rootmnt}}"
		panic "nfsroot-build: overlay mount failed"
	fi
	log_end_msg
	;;
per-node)
	[ -n "$nrbvar" ] || panic "nfsroot-build: nrb.layout=per-node needs nrb.var=SERVER:/dir"
	log_begin_msg "nfsroot-build: mounting this node's /var from ${{nrbvar%%,*}}"
	# nolock: no rpc.statd in the initramfs (the root is mounted the same way).
	opts="nolock,rw,tcp,v3"
	case "$nrbvar" in *,*) opts="$opts,${{nrbvar#*,}}" ;; esac
	nfsmount -o "$opts" "${{nrbvar%%,*}}" "${{rootmnt}}/var" || panic "nfsroot-build: per-node /var mount failed"
	# A machine-id of its own that survives reboots, kept in the node's /var
	# (else a new transient one each boot, and a new journal directory). Left
	# empty, systemd writes a new id into it on the first boot (machine-id(5));
	# no tr here: the initramfs has no busybox.
	mid="${{rootmnt}}/var/lib/nrb/machine-id"
	if [ ! -e "$mid" ]; then
		mkdir -p "${{rootmnt}}/var/lib/nrb"
		: > "$mid"
	fi
	mount -o bind "$mid" "${{rootmnt}}/etc/machine-id" || true
	log_end_msg
	;;
esac
exit 0
"""


def layout_hook(cfg: Config) -> str:
    """initramfs hook: MODULES=netboot does not pull in fs/overlayfs."""
    return f"""#!/bin/sh
{header(cfg)}PREREQ=""
prereqs() {{ echo "$PREREQ"; }}
case "$1" in prereqs) prereqs; exit 0 ;; esac
. /usr/share/initramfs-tools/hook-functions
manual_add_modules overlay
"""


def layout_cmdline(cfg: Config, served: Served, node: str) -> list[str]:
    """The kernel arguments that select the layout in layout_script()."""
    if cfg.root.layout == "overlay":
        return ["nrb.layout=overlay"]
    if cfg.root.layout == "per-node":
        return ["nrb.layout=per-node", f"nrb.var={cfg.server.address}:{node_dir(cfg, served, node)}"]
    return []


def initrd_must_contain(cfg: Config) -> list[str]:
    """Regexes over lsinitramfs' listing proving the initrd boots this layout
    (and, with root.serve = "image", live-boot's fetch into RAM: its boot
    script, busybox's wget, squashfs and loop)."""
    must = [r"scripts/nfs", r"conf/conf\.d/nfsroot-build", r"(usr/)?bin/nfsmount",
            r"scripts/init-bottom/nfsroot-build-layout",
            r"(usr/)?lib/modules/.*/fs/overlayfs/overlay\.ko(\.[a-z]+)?"]
    if cfg.root.serve == "image":
        must += [r"scripts/live", r"(usr/)?bin/busybox", r"(usr/)?lib/modules/.*/fs/squashfs/squashfs\.ko(\.[a-z]+)?"]
    return must


# root.serve = "image": the version's root as one file, next to its kernel and
# initrd in the TFTP root (nginx serves that tree; steps/image.py packs it).
ROOT_IMAGE = "filesystem.squashfs"
# What live-boot and busybox add to the root so that its initrd can fetch the image.
IMAGE_MODE_PACKAGES = ("live-boot", "live-boot-initramfs-tools", "busybox")


def root_image_url(cfg: Config, kernel_tftp_path: str) -> str:
    """http://<server>/<version's TFTP dir>/filesystem.squashfs: beside the
    kernel the menu boots, so a node switched to another version fetches that
    version's image."""
    return f"http://{cfg.server.address}{kernel_tftp_path.rsplit('/', 1)[0]}/{ROOT_IMAGE}"


def image_cmdline(url: str) -> list[str]:
    """The kernel arguments of RAM-image mode: live-boot's initramfs script
    (boot=live selects /scripts/live, overriding conf.d's BOOT=nfs) downloads
    fetch=<url> into a ramfs with wget, loop-mounts the squashfs and puts a
    tmpfs overlay on it as / (live-boot(7), "fetch=URL"). No ip=: live-boot
    reads ip= as static interface stanzas, and does DHCP by itself (klibc
    ipconfig) when it fetches; its /etc/hostname comes from that DHCP answer."""
    return ["boot=live", f"fetch={url}"]


POLICY_RC_D = """#!/bin/sh
# nfsroot-build: no daemon may start inside the build chroot (invoke-rc.d(8),
# /usr/share/doc/init-system-helpers/README.policy-rc.d). Removed after the run.
exit 101
"""
