"""Steps that only write files in the root: each declares what the files
must be, and verify/run/fingerprint follow from that."""
from __future__ import annotations

import os

from ..context import Context
from ..render import root as R
from .base import Step, StepResult, digest
from .root_packages import REMOTE_FS, REMOTE_FS_WANT

# path in the root -> ("file", content, mode) | ("link", target) | ("absent",) | ("dir", mode)
Want = dict[str, tuple]


class RootFileStep(Step):
    needs = ("bootstrap", "root-packages")

    def wanted(self, ctx: Context) -> Want:
        raise NotImplementedError

    def fingerprint(self, ctx: Context) -> dict:
        return {"files": digest(self.wanted(ctx))}

    def verify(self, ctx: Context) -> list[str]:
        bad = []
        for rel, want in self.wanted(ctx).items():
            p = ctx.root / rel.lstrip("/")
            if want[0] == "absent":
                ok = not p.exists() and not p.is_symlink()
            elif want[0] == "link":
                ok = p.is_symlink() and os.readlink(p) == want[1]
            elif want[0] == "dir":
                ok = p.is_dir()
            else:
                ok = p.is_file() and not p.is_symlink() and p.read_text() == want[1] \
                    and (p.stat().st_mode & 0o7777) == want[2]
            if not ok:
                bad.append(rel)
        return [f"not as configured: {' '.join(bad)}"] if bad else []

    def run(self, ctx: Context) -> StepResult:
        changed = False
        for rel, want in self.wanted(ctx).items():
            p = ctx.root / rel.lstrip("/")
            if want[0] == "absent":
                changed |= ctx.files.ensure_absent(p)
                continue
            if want[0] == "dir":
                if not ctx.files.is_dir(p):   # an existing one keeps its mode (the package's)
                    changed |= ctx.files.ensure_dir(p, want[1])
                continue
            if p.is_symlink() and want[0] == "file":
                changed |= ctx.files.ensure_absent(p)   # never write through a link
            if want[0] == "link":
                changed |= ctx.files.ensure_symlink(p, want[1])
            else:
                changed |= ctx.files.ensure_file(p, want[1], want[2])
        return StepResult(changed=changed)


class Fstab(RootFileStep):
    """Write the root's /etc/fstab for root.layout (tmpfs, per-node, overlay or the seed's).

    No line for / : the initramfs mounts the NFS root, read-only. "tmpfs"
    puts tmpfs on /tmp, /var/tmp, /var/log, /var/lib/systemd, /var/lib/dhcp,
    /var/cache and /var/spool; "per-node" only /tmp (its /var is mounted by
    the initramfs: an NFS /var in a systemd fstab makes an ordering cycle
    and systemd drops the mount); "overlay" nothing (all is writable);
    "seed" the Kerrighed page's fstab for sysvinit roots: NFS /var, /tmp
    and /root (rw,hard,nolock), without its swap on /dev/hda; its NFS /dev
    and tmpfs /var/run lines stay as comments with the reason (devtmpfs and
    udev own /dev today; /var/run is a link to the /run tmpfs), and `check`
    says so. Missing mount points are created: a read-only root cannot get
    them at boot.
    """
    name = "fstab"

    def wanted(self, ctx: Context) -> Want:
        dirs = {d: ("dir", mode) for d, mode in R.mount_points(ctx.config).items()}
        return {**dirs, "/etc/fstab": ("file", R.fstab(ctx.config, ctx.served), 0o644)}


class Hosts(RootFileStep):
    """Write the root's /etc/hosts: localhost, the server and every node (the seed's list).

    With network.domain each name also gets its FQDN (ssi1.mycluster.home ssi1).
    """
    name = "hosts"

    def wanted(self, ctx: Context) -> Want:
        return {"/etc/hosts": ("file", R.hosts(ctx.config), 0o644)}


SEED_MOUNTNFS_LINK = "/etc/rcS.d/S35mountnfs"
SERIAL_TAB = "/etc/inittab.d/nfsroot-build-serial.tab"
# Why the seed's link no longer mounts anything (`check` prints it with layout "seed").
MOUNTNFS_NOTE = (f"the page's {SEED_MOUNTNFS_LINK} -> ../network/if-up.d/mountnfs is made but mounts "
                 "nothing today: initscripts' hook mounts only when ifupdown runs it (ADDRFAM set) or "
                 "when called with FROMINITD=yes, and sysv-rc starts rcS.d in the order insserv wrote to "
                 "/etc/init.d/.depend.boot, which does not list the link; /etc/default/rcS gets "
                 "ASYNCMOUNTNFS=no instead, so initscripts' own mountnfs.sh calls that hook with "
                 "FROMINITD=yes and it mounts fstab's NFS lines")


class Mountnfs(RootFileStep):
    """Make the NFS mounts of fstab happen at boot although the network is already up.

    sysvinit: the seed's `ln -sf ../network/if-up.d/mountnfs
    /etc/rcS.d/S35mountnfs` (ifupdown never runs the if-up.d hooks for an
    interface the kernel configured). On today's Debian that link alone
    mounts nothing (the hook acts only for ifupdown or with FROMINITD=yes,
    and sysv-rc starts rcS.d in insserv's order, which lacks the link), so
    /etc/default/rcS also gets ASYNCMOUNTNFS=no: initscripts' mountnfs.sh
    then runs the same hook itself (rcS(5)); with layout "seed", whose /tmp
    is one NFS directory for every node, TMPTIME=infinite too, so a booting
    node's bootclean does not delete the running nodes' files (and two
    nodes booting at once do not race on /tmp/.clean). A sysvinit root also gets a
    getty on each serial console of boot.kernel_args
    (/etc/inittab.d/nfsroot-build-serial.tab), as systemd starts one itself;
    no rpc.statd (NEED_STATD=no in /etc/default/nfs-common: the mounts are
    nolock, and statd cannot write the read-only root before /var is
    mounted); /etc/idmapd.conf with the NFSv4 ID-mapping Domain
    (network.domain), so libnfsidmap does not ask the name servers for it
    at every ID upcall (about 20 s each where they do not answer); and
    /etc/mtab as the link to /proc/mounts that initscripts
    would otherwise try to make on the read-only root.

    systemd needs no hook: its fstab-generator turns every NFS line into a
    mount unit pulled in by remote-fs.target (systemd.mount(5)); this step
    makes sure that target is enabled (multi-user.target.wants/remote-fs.target).
    """
    name = "mountnfs"

    def wanted(self, ctx: Context) -> Want:
        if ctx.config.root.init == "sysvinit":
            gettys = R.serial_gettys(ctx.config)
            tab = {"/etc/inittab.d": ("dir", 0o755), SERIAL_TAB: ("file", gettys, 0o644)} if gettys \
                else {SERIAL_TAB: ("absent",)}
            return {SEED_MOUNTNFS_LINK: ("link", "../network/if-up.d/mountnfs"),
                    "/etc/default/rcS": ("file", R.rcs_default(ctx.config), 0o644),
                    "/etc/default/nfs-common": ("file", R.nfs_common_default(ctx.config), 0o644),
                    "/etc/idmapd.conf": ("file", R.idmapd_conf(ctx.config), 0o644),
                    # initscripts' mtab_migrate (lib/init/mount-functions.sh) wants exactly
                    # this link; it cannot make it on a read-only root.
                    "/etc/mtab": ("link", "/proc/mounts"), **tab}
        return {"/" + REMOTE_FS_WANT: ("link", REMOTE_FS)}


class Hostname(RootFileStep):
    """Let every node take its own identity: no /etc/hostname, an empty /etc/machine-id.

    The seed installed nfsbooted to name each node from its IP. Today the
    initramfs' ipconfig sets the host name DHCP sends (dhcpd's
    use-host-decl-names), and systemd keeps it when /etc/hostname is absent
    (hostname(5)); the bootstrappers copy the build host's /etc/hostname,
    so it is removed. /etc/machine-id must exist and be empty: on a
    read-only root systemd then mounts a fresh id from /run over it
    (machine-id(5)); a filled one would give every node the same id. With
    layout "per-node" the initramfs binds a stable id kept in the node's own
    /var over it.
    """
    name = "hostname"

    def wanted(self, ctx: Context) -> Want:
        return {"/etc/hostname": ("absent",), "/etc/machine-id": ("file", "", 0o444),
                "/var/lib/dbus/machine-id": ("absent",)}


class NodeNetwork(RootFileStep):
    """Keep userspace off the boot NIC and stop per-card interface numbering.

    The seed's two problems. The NIC carries the root filesystem and was
    configured by the initramfs (ip=dhcp): /etc/network/interfaces gets only
    the loopback, so ifupdown (if installed) never reconfigures it. The old
    udev persistent-net generator numbered every card ever seen
    eth0..ethN in the shared /etc; it is gone from udev, and names now come
    from the hardware path (systemd.net-naming-scheme(7)), the same on
    identical nodes. Any 70-persistent-net.rules left in /etc is removed.
    /etc/resolv.conf (the bootstrappers copy the build host's) is written
    from network.dns_servers and network.domain.
    """
    name = "node-network"

    def wanted(self, ctx: Context) -> Want:
        return {"/etc/network/interfaces": ("file", R.interfaces(ctx.config), 0o644),
                "/etc/resolv.conf": ("file", R.resolv_conf(ctx.config), 0o644),
                "/etc/udev/rules.d/70-persistent-net.rules": ("absent",),
                "/etc/udev/rules.d/75-persistent-net-generator.rules": ("absent",)}
