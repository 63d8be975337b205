"""The chroot session: what the seed did by hand after `chroot /NFSROOT/...`,
undone whatever happens.

Inside ``with session(ctx) as ch:`` the root has proc (the seed's `mount -t
proc none /proc`), sysfs and a private devpts mounted, the .deb cache bound
on /var/cache/apt/archives, a policy-rc.d that forbids starting daemons, and
the build host's resolv.conf in place of the root's. On the way out - success, failure,
Ctrl-C or SIGTERM (session.signals_raise turns it into Interrupted) - the
processes still running in the root are stopped (a maintainer script that
outlived a killed apt-get would keep the mounts busy) and everything is
undone in reverse order, with signals held off so a second Ctrl-C cannot cut
the cleanup short. A last sweep of /proc/mounts unmounts anything left under
the root (also what a SIGKILLed earlier run left behind, at the start).
"""
from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from .context import Context
from .render.root import POLICY_RC_D

CHROOT_ENV = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LC_ALL=C.UTF-8",
              "DEBIAN_FRONTEND=noninteractive", "DEBCONF_NONINTERACTIVE_SEEN=true"]
HELD = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
# While the root is built: no initrd per kernel install (the initramfs-tools
# kernel hook exits on INITRD=No, /etc/kernel/postinst.d/initramfs-tools):
# the initramfs step makes the one initrd at the end, after the config is in.
BUILD_ENV = ["INITRD=No"]
# dpkg(1) --force-unsafe-io: no fsync per unpacked file (thousands of kernel
# modules); the step syncs the root's file system once instead (sync_root).
DPKG_UNSAFE_IO = "--force-unsafe-io"


def sync_root(ctx: Context) -> None:
    """Flush what a build wrote with unsafe I/O before the step says done:
    syncfs(2) of the root's file system (sync(1) --file-system)."""
    ctx.runner.run(["sync", "--file-system", str(ctx.root)])


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below root, deepest first (from /proc/mounts)."""
    root_s = str(Path(root).resolve())
    found = []
    with open("/proc/mounts") as f:
        for line in f:
            # fstab(5) octal escapes: a space in a path is \040.
            point = line.split()[1].encode().decode("unicode_escape")
            if point == root_s or point.startswith(root_s + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def _processes_in(root: Path) -> list[int]:
    root_s = str(Path(root).resolve())
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "root") == root_s:
                    pids.append(int(entry.name))
            except OSError:   # gone, or a kernel thread
                continue
    return pids


def stop_processes(root: Path, grace: float = 10.0) -> None:
    """SIGTERM then SIGKILL every process whose root directory is root."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        pids = _processes_in(root)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while pids and _processes_in(root) and time.monotonic() < deadline:
            time.sleep(0.1)


def unmount_all(ctx: Context, root: Path) -> None:
    for point in mounts_under(root):
        if not ctx.runner.run(["umount", point], check=False).ok:
            ctx.runner.run(["umount", "--lazy", point], check=False)


class Chroot:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.root = ctx.root

    def argv(self, argv: list[str]) -> list[str]:
        # env -i: nothing of the caller's environment (TMPDIR, LANG, ...) leaks in.
        return ["chroot", str(self.root), "/usr/bin/env", "-i", *CHROOT_ENV, *argv]

    def run(self, argv: list[str], **kw):
        return self.ctx.runner.run(self.argv(argv), **kw)


@contextlib.contextmanager
def session(ctx: Context, *, apt_cache: bool = False) -> Iterator[Chroot]:
    root = ctx.root
    undo: list = []
    temporary: list[str] = []   # files made and removed again: not a change of the root
    really_mounted = False
    unmount_all(ctx, root)   # leftovers of a run that was SIGKILLed
    try:
        mounts = [(["-t", "proc", "proc"], "proc"), (["-t", "sysfs", "sysfs"], "sys"),
                  (["-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=620", "devpts"], "dev/pts")]
        if apt_cache:
            ctx.files.ensure_dir(ctx.apt_cache / "partial", 0o755)
            mounts.append((["--bind", str(ctx.apt_cache)], "var/cache/apt/archives"))
        for args, where in mounts:
            point = root / where
            if not point.is_dir():
                ctx.files.ensure_dir(point, 0o755)
            res = ctx.runner.run(["mount", *args, str(point)])
            really_mounted |= not res.dry
            undo.append(lambda p=point: ctx.runner.run(["umount", str(p)], check=False))
        policy = root / "usr/sbin/policy-rc.d"
        if not policy.exists() and ctx.files.ensure_file(policy, POLICY_RC_D, 0o755):
            temporary.append(str(policy))
            undo.append(lambda: ctx.files.ensure_absent(policy))
        resolv = root / "etc/resolv.conf"
        host_resolv = Path("/etc/resolv.conf")
        if not resolv.is_symlink() and host_resolv.exists():
            # apt needs the build host's resolver; the root's own (node-network
            # writes the cluster's) comes back afterwards.
            original = resolv.read_bytes() if resolv.exists() else None
            mode = resolv.stat().st_mode & 0o7777 if original is not None else 0o644
            if ctx.files.ensure_file(resolv, host_resolv.read_bytes(), mode):
                temporary.append(str(resolv))
                undo.append(lambda: ctx.files.ensure_absent(resolv) if original is None
                            else ctx.files.ensure_file(resolv, original, mode))
        yield Chroot(ctx)
    finally:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
        try:
            if really_mounted:
                stop_processes(root)
            for action in reversed(undo):
                with contextlib.suppress(Exception):
                    action()
            if really_mounted:
                unmount_all(ctx, root)
            ctx.files.changed_paths[:] = [p for p in ctx.files.changed_paths if p not in temporary]
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
