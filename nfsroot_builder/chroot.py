"""The chroot session: what the seed did by hand after `chroot /NFSROOT/...`,
undone whatever happens.

Inside ``with session(ctx) as ch:`` the root has proc (the seed's `mount -t
proc none /proc`), sysfs and a private devpts mounted, the build's .deb
cache lease (debcache) bound on /var/cache/apt/archives, a policy-rc.d that
forbids starting daemons, and the build host's resolv.conf in place of the
root's. Commands run contained (procs.CONTAIN): they and all they start die
with this run, even when it is SIGKILLed. On the way out - success,
failure, Ctrl-C or SIGTERM (session.signals_raise turns it into
Interrupted) - the processes still running in the root are stopped and
everything is undone in reverse order, with signals held off so a second
Ctrl-C cannot cut the cleanup short.

Each change is written ahead into etc/nfsroot-build/chroot-session.json in
the root before it is made, so a run that was SIGKILLed in the middle
leaves a record of what to undo: recover() (run by every locked run before
its first step, and by the next session) stops processes left in the root,
unmounts what is mounted under it and undoes what the record lists;
leftovers() reports the same without touching anything, for the steps'
verify() (`status` shows them stale).
"""
from __future__ import annotations

import base64
import contextlib
import json
import signal
from collections.abc import Iterator
from pathlib import Path

from . import debcache, pathguard, procs
from .context import Context
from .procs import mounts_under
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


SESSION_RECORD = "etc/nfsroot-build/chroot-session.json"
POLICY = "usr/sbin/policy-rc.d"
RESOLV = "etc/resolv.conf"


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP wait until the block is done (a clean-up
    that a second Ctrl-C cut short would leave mounts behind)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def stop_processes(ctx: Context, root: Path) -> None:
    """Stop what runs chrooted in root (a maintainer script that outlived a
    killed apt-get would keep the mounts busy and dpkg's lock held). Waits
    for them to be gone: one killed in the middle of dpkg's writes goes only
    when they are done."""
    pathguard.refuse_host_root(root, "stop every process")
    ctx.runner.stop(procs.processes_under(root), why=f"processes left in {root}", kill_wait=120.0)


def unmount_all(ctx: Context, root: Path) -> None:
    pathguard.refuse_host_root(root, "unmount everything")
    for point in mounts_under(root):
        if not ctx.runner.run(["umount", point], check=False).ok:
            ctx.runner.run(["umount", "--lazy", point], check=False)


def _read_record(root: Path) -> dict | None:
    try:
        record = json.loads((root / SESSION_RECORD).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}   # torn or unreadable: still a session that did not finish
    return record if isinstance(record, dict) else {}


def _ours(policy: Path) -> bool:
    """policy-rc.d as a session writes it (an admin's own is left alone)."""
    try:
        return policy.read_text() == POLICY_RC_D
    except OSError:
        return False


def session_interrupted(ctx: Context) -> bool:
    """A chroot session's write-ahead record is still in the root: its run was killed."""
    return _read_record(ctx.root) is not None


def leftovers(ctx: Context) -> list[str]:
    """What an interrupted chroot session left in the root. Reads only."""
    root = ctx.root
    found = []
    if mounted := mounts_under(root):
        found.append("mounted under the root: " + ", ".join(mounted[:4]))
    if _read_record(root) is not None:
        found.append(f"an interrupted chroot session left /{SESSION_RECORD}")
    if _ours(root / POLICY):
        found.append(f"/{POLICY} of a chroot session is still in the root")
    return found


def recover(ctx: Context) -> list[str]:
    """Undo what an interrupted run left in the root; returns what was done.

    Only under the run's lock (session.locked): then no other run owns the
    processes and mounts found here.
    """
    root = ctx.root
    if not root.is_dir():
        return []
    done = []
    if pids := procs.processes_under(root):
        stop_processes(ctx, root)
        done.append(f"stopped {len(pids)} process(es) left in the root")
    if mounted := mounts_under(root):
        unmount_all(ctx, root)
        done.append(f"unmounted {len(mounted)} mount(s) under the root")
    record = _read_record(root)
    if record is not None or _ours(root / POLICY):
        record = record or {"policy-rc.d": True}
        if record.get("policy-rc.d") and _ours(root / POLICY):
            ctx.files.ensure_absent(root / POLICY)
            done.append(f"removed /{POLICY}")
        if isinstance(resolv := record.get("resolv.conf"), dict):
            original = resolv.get("original")
            if original is None:
                ctx.files.ensure_absent(root / RESOLV)
            else:
                ctx.files.ensure_file(root / RESOLV, base64.b64decode(original), resolv.get("mode", 0o644))
            done.append(f"put the root's /{RESOLV} back")
        ctx.files.ensure_absent(root / SESSION_RECORD)
    return done


class Chroot:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.root = ctx.root

    def argv(self, argv: list[str]) -> list[str]:
        # env -i: nothing of the caller's environment (TMPDIR, LANG, ...) leaks in.
        return ["chroot", str(self.root), "/usr/bin/env", "-i", *CHROOT_ENV, *argv]

    def run(self, argv: list[str], **kw):
        return self.ctx.runner.run(self.argv(argv), contained=True, **kw)


@contextlib.contextmanager
def session(ctx: Context, *, apt_cache: bool = False) -> Iterator[Chroot]:
    root = ctx.root
    undo: list = []
    temporary: list[str] = []   # files made and removed again: not a change of the root
    really_mounted = False
    recover(ctx)   # leftovers of a run that was SIGKILLed
    record: dict = {}
    record_path = root / SESSION_RECORD

    def write_ahead(**change) -> None:
        # Before the change is made: a SIGKILL right after it leaves the record.
        record.update(change)
        ctx.files.ensure_file(record_path, json.dumps(record, sort_keys=True) + "\n", 0o600)
        if str(record_path) not in temporary:
            temporary.append(str(record_path))

    with contextlib.ExitStack() as stack:
        try:
            mounts = [(["-t", "proc", "proc"], "proc"), (["-t", "sysfs", "sysfs"], "sys"),
                      (["-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=620", "devpts"], "dev/pts")]
            if apt_cache:
                lease = stack.enter_context(debcache.lease(ctx))
                mounts.append((["--bind", str(lease)], "var/cache/apt/archives"))
            write_ahead(mounts=[where for _args, where in mounts])
            for args, where in mounts:
                # Every bootstrapped root has these mount points (and a dry-run of
                # a fresh build cannot see them yet): no mkdir, here or planned.
                point = root / where
                res = ctx.runner.run(["mount", *args, str(point)])
                really_mounted |= not res.dry
                undo.append(lambda p=point: ctx.runner.run(["umount", str(p)], check=False))
            # ctx.files' view, not the disk's: a dry-run then plans the removal too.
            policy = root / POLICY
            if not ctx.files.exists(policy):
                write_ahead(**{"policy-rc.d": True})
                if ctx.files.ensure_file(policy, POLICY_RC_D, 0o755):
                    temporary.append(str(policy))
                    undo.append(lambda: ctx.files.ensure_absent(policy))
            resolv = root / RESOLV
            host_resolv = Path("/etc/resolv.conf")
            if not resolv.is_symlink() and host_resolv.exists():
                # apt needs the build host's resolver; the root's own (node-network
                # writes the cluster's) comes back afterwards.
                original = ctx.files.read(resolv)
                mode = ctx.files.mode(resolv) if original is not None else 0o644
                if original != host_resolv.read_bytes():
                    write_ahead(**{"resolv.conf": {
                        "original": None if original is None else base64.b64encode(original).decode(),
                        "mode": mode}})
                if ctx.files.ensure_file(resolv, host_resolv.read_bytes(), mode):
                    temporary.append(str(resolv))
                    undo.append(lambda: ctx.files.ensure_absent(resolv) if original is None
                                else ctx.files.ensure_file(resolv, original, mode))
            yield Chroot(ctx)
        finally:
            with signals_held():
                if really_mounted:
                    stop_processes(ctx, root)
                for action in reversed(undo):
                    with contextlib.suppress(Exception):
                        action()
                if really_mounted:
                    unmount_all(ctx, root)
                if record:
                    ctx.files.ensure_absent(record_path)
                ctx.files.changed_paths[:] = [p for p in ctx.files.changed_paths if p not in temporary]
