"""`undo`: put the server back as it was before the first run.

The state's "files" record (written by FileOps) says what the tool did to
each path: "owned" (created it: remove it), "block" (added a managed block
to someone else's file: remove the block, and where the admin's bytes are
unchanged, restore them exactly from the backup), "replaced" (rewrote a file
that was there before: restore the backup's bytes, mode, owner and group),
"shared" (a file another build wrote that this one uses: remove it),
"dir" (created it: remove it if nothing else lives there), "glob" (a file
per node: remove every file the pattern matches that carries the tool's
marker). A whole file another build's record has too stays (builds side
by side share the loader files of one TFTP root: sidebyside.py); a managed
block is always the build's own. What the tool made and undo keeps because
something else still lives there (a directory holding another build's
files, a file it made that holds another build's block) is recorded as left
(State.left_by_undo): the undo of whichever build comes later removes it
once it is empty, and never a directory or file no build's record says the
tool made. Everything goes through ctx.files and
ctx.runner, so `undo --dry-run` prints the diffs and commands and changes
nothing. The built root is left alone unless --purge-root.
"""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import pathguard, services, sidebyside
from .context import Context
from .errors import NfsrootError
from .files import BEGIN, read_head, with_block
from .procs import mounts_under
from .render import base_root_path

KINDS = ("owned", "block", "replaced", "shared", "dir", "glob")
# Steps whose results live in the root (kept without --purge-root) or are not
# files at all (packages): their records stay; every other step re-runs.
KEEP_STEPS = {"server-packages", "bootstrap", "root-password", "initramfs-config", "root-packages", "fstab",
              "mountnfs", "hosts", "hostname", "node-network", "initramfs"}
# Server file -> the daemon that reads it (restarted after undo).
SERVICES = (("/etc/dhcp/", "isc-dhcp-server"), ("/etc/default/isc-dhcp-server", "isc-dhcp-server"),
            ("/etc/kea/", "kea-dhcp4-server"), ("/etc/default/kea-dhcp4-server", "kea-dhcp4-server"),
            ("/etc/systemd/system/kea-dhcp4-server.service.d/", "kea-dhcp4-server"), ("/etc/dnsmasq.d/", "dnsmasq"),
            ("/etc/default/tftpd-hpa", "tftpd-hpa"), ("/etc/ganesha/", "nfs-ganesha"),
            ("/etc/default/nfs-kernel-server", "nfs-kernel-server"), ("/etc/nfs.conf", "nfs-kernel-server"))


@dataclass
class UndoReport:
    done: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)


def _comment_of(text: str, build: str | None = None) -> str | None:
    """The comment sign of a managed block: build's (named in its markers,
    or an unnamed one an older version wrote: the record that sends undo
    here is the build's), or with build None any build's."""
    names = (rf" {re.escape(build)}", "") if build else (r"(?: \S+)?",)
    for name in names:
        if m := re.search(rf"^(\S+) {re.escape(BEGIN)}{name}$", text, re.MULTILINE):
            return m.group(1)
    return None


def _service_for(ctx: Context, path: str) -> str | None:
    rel = "/" + str(Path(path).relative_to(ctx.prefix)) if Path(path).is_relative_to(ctx.prefix) else path
    if rel == ctx.config.dhcp.config_file:
        return "isc-dhcp-server"
    for prefix, service in SERVICES:
        if rel == prefix or rel.startswith(prefix):
            return service
    return None


class _Undo:
    def __init__(self, ctx: Context, report: UndoReport):
        self.ctx, self.files, self.report = ctx, ctx.files, report
        self.gone: set[str] = set()        # removed (for real, or in the dry-run's imagination)
        self.touched: list[str] = []
        self.records: dict[str, dict] = {}
        self._others: dict | None = None
        self.left: dict[str, str] = {}     # what this undo keeps that the tool made (State.left_by_undo)

    def others(self) -> dict:
        if self._others is None:
            self._others = sidebyside.other_states(self.ctx)
        return self._others

    def left_before(self) -> tuple[dict[str, str], dict[str, str]]:
        """(this build's, every build's) records of what an earlier undo kept
        although the tool made it: path -> "dir" | "owned"."""
        own = {p: k for p, k in self.ctx.state.left_by_undo().items() if not self._check_record(p, {"kind": k})}
        every = dict(own)
        for state in self.others().values():
            every.update({p: k for p, k in state.left_by_undo().items()
                          if p not in every and not self._check_record(p, {"kind": k})})
        return own, every

    def used_by_others(self, p: Path) -> bool:
        """A whole file another build's undo record has too (a loader file of
        a TFTP root both serve): it stays while that build does."""
        users = [name for name, state in self.others().items() if str(p) in state.undo]
        if users:
            self.report.done.append(f"kept {p}: build {', '.join(users)} uses it too")
        return bool(users)

    def _check_record(self, path: str, rec) -> str | None:
        """A record that would make undo touch something it must not: refuse it."""
        ctx = self.ctx
        if not isinstance(rec, dict) or rec.get("kind") not in KINDS:
            return f"{path}: unknown record {rec!r} in the state"
        p = Path(path)
        if not p.is_absolute() or ".." in p.parts:
            return f"{path}: not an absolute path"
        if ctx.staging and not p.is_relative_to(ctx.prefix):
            return f"{path}: outside the staging prefix {ctx.prefix}"
        backup = rec.get("backup")
        if backup and not Path(backup).is_relative_to(ctx.state_dir / "backup"):
            return f"{path}: its backup {backup} is not in {ctx.state_dir / 'backup'}"
        return None

    def remove(self, p: Path) -> None:
        if self.files.ensure_absent(p):
            self.report.done.append(f"removed {p}")
            self.touched.append(str(p))
        self.gone.add(str(p))

    def without_block(self, p: Path, rec: dict, owned: bool) -> None:
        # Bytes, not read_text(): universal newlines would turn CRLF into LF.
        text = p.read_bytes().decode(errors="surrogateescape")
        build = self.ctx.config.name
        comment = _comment_of(text, build)
        if comment is None:
            if owned and _comment_of(text) is None:
                self.remove(p)
            else:   # another build's block stays, and so does the file
                self.report.done.append(f"{p}: no managed block of {build} left")
                self.keep_made(p, "owned" if owned else None)
            return
        try:
            new = with_block(text, None, comment, build, legacy=True)
        except ValueError as e:
            self.report.problems.append(f"{p}: {e}; remove the block by hand")
            return
        backup = Path(rec["backup"]) if rec.get("backup") else None
        if backup and backup.is_file():
            # with_block() added a newline before the block when the admin's
            # last line had none: give back their exact bytes.
            orig = backup.read_bytes()
            raw = new.encode(errors="surrogateescape")
            if raw == orig + b"\n" and not orig.endswith(b"\n"):
                new = orig
        if owned and not new.strip():
            self.remove(p)
            return
        if isinstance(new, bytes):
            new = new.decode(errors="surrogateescape")
        data = new.encode(errors="surrogateescape")
        try:
            new = data.decode()   # text: the dry-run shows a diff
        except UnicodeDecodeError:
            new = data
        st = p.stat()   # ensure_file keeps owner and group; the mode stays too
        if self.files.ensure_file(p, new, st.st_mode & 0o7777):
            self.report.done.append(f"removed the managed block from {p}")
            self.touched.append(str(p))
        self.keep_made(p, "owned" if owned else None)

    def keep_made(self, p: Path, kind: str | None) -> None:
        """p, which the tool made (kind "dir" | "owned"; None: not made by
        it), stays: left for a later undo to remove once it is empty."""
        if kind:
            self.left[str(p)] = kind

    def restore(self, p: Path, rec: dict) -> None:
        backup = Path(rec["backup"]) if rec.get("backup") else None
        if not backup or not backup.is_file():
            self.report.problems.append(f"{p}: the backup of the original ({backup}) is missing; "
                                        "left as it is")
            return
        st = backup.stat()   # the backup keeps the original's mode, owner and group (FileOps._backup)
        if self.files.ensure_file(p, backup.read_bytes(), st.st_mode & 0o7777, owner=(st.st_uid, st.st_gid)):
            self.report.done.append(f"restored {p} from {backup}")
            self.touched.append(str(p))

    def remove_matching(self, key: str, rec: dict) -> None:
        """A glob record: the files its pattern matches that carry the marker
        (the header the tool writes), except those with records of their own."""
        directory, _, pattern = key.rpartition("/")
        marker = str(rec.get("marker") or "").encode()
        if not marker:
            self.report.problems.append(f"{key}: a glob record without a marker; left as it is")
            return
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except FileNotFoundError:
            return
        head: dict[int, bytes] = {}
        for e in entries:
            if not e.is_file(follow_symlinks=False) or not fnmatch.fnmatchcase(e.name, pattern) \
                    or e.path in self.records:
                continue
            if e.inode() not in head:
                head[e.inode()] = read_head(e.path)
            if marker in head[e.inode()]:
                self.remove(Path(e.path))

    def remove_dir(self, p: Path) -> bool:
        """Remove p if nothing but what undo removed lived there; True if it stays."""
        if not p.is_dir() or p.is_symlink():
            return False
        left = [c for c in p.iterdir() if str(c) not in self.gone]
        if left:
            self.report.done.append(f"kept {p}: it holds {len(left)} file(s) the tool did not write, "
                                    f"e.g. {left[0].name}")
            return True
        self.remove(p)
        return False

    def run(self) -> None:
        records = dict(self.ctx.state.files)
        good = {}
        for path, rec in records.items():
            if self.ctx.staging and isinstance(rec, dict) and rec.get("kind") == "dir" \
                    and not Path(path).is_relative_to(self.ctx.prefix):
                # Older states recorded the shared package cache a staged build made.
                self.report.done.append(f"left {path}: outside the staging prefix {self.ctx.prefix}")
                continue
            if (why := self._check_record(path, rec)):
                self.report.problems.append(why)
            else:
                good[path] = rec
        self.records = good
        own_left, made = self.left_before()
        for path, rec in sorted(good.items()):
            p, kind = Path(path), rec["kind"]
            if kind == "dir":
                continue
            if kind == "glob":
                self.remove_matching(path, rec)
                continue
            if kind == "block":
                if p.exists():
                    # A file another build made for its block (and left when
                    # it went): with this block gone too, the file goes.
                    self.without_block(p, rec, owned=made.get(path) == "owned")
                continue
            if kind == "owned" and p.is_file() and not p.is_symlink() \
                    and _comment_of(p.read_text(errors="replace")):
                self.without_block(p, rec, owned=True)
                continue
            if not p.exists() and not p.is_symlink() and kind != "replaced":
                continue
            if self.used_by_others(p):
                self.keep_made(p, "owned" if kind == "owned" else None)
                continue
            if kind == "replaced" and made.get(path) == "owned":
                # What it replaced was the file another build made (doctor's
                # nfs.conf.d drop-in, one for all builds) and left to this
                # one when it went: nobody's original to restore.
                self.remove(p)
            elif kind == "replaced":
                self.restore(p, rec)
            else:
                self.remove(p)
        # What an earlier undo of this build left, and that is still there,
        # stays recorded (another build's undo may need it).
        for path, kind in own_left.items():
            if kind == "owned" and path not in self.gone and path not in self.left and Path(path).is_file():
                self.left[path] = kind
        # This build's directories, and those the tool made that an earlier
        # undo (of any build) left: deepest first, so a parent sees its
        # children gone.
        mine = {p for p, r in good.items() if r["kind"] == "dir"} | {p for p, k in own_left.items() if k == "dir"}
        dirs = mine | {p for p, k in made.items() if k == "dir"}
        for path in sorted(dirs, key=lambda s: (s.count("/"), s), reverse=True):
            if self.remove_dir(Path(path)) and path in mine:
                self.left[path] = "dir"


def version_trees(ctx: Context) -> list[Path]:
    """Every root version's tree and TFTP directory (docs/versions.md), the
    run's own root first; a half-copied clone (<tree>.part) too."""
    trees = [ctx.root]
    for rec in ctx.state.versions().values():
        tree = ctx.host(rec["path"])
        for t in (tree, tree.with_name(tree.name + ".part")):
            if t not in trees:
                trees.append(t)
        if rec.get("tftp_dir") and rec["tftp_dir"] != ctx.config.name:
            trees.append(ctx.tftp_root / rec["tftp_dir"])
    return trees


def undo(ctx: Context, purge_root: bool = False) -> UndoReport:
    report = UndoReport()
    trees = version_trees(ctx) if purge_root else []
    for tree in trees:
        if mounted := mounts_under(tree):
            raise NfsrootError(f"refusing --purge-root: something is mounted under {tree}: "
                               f"{', '.join(mounted[:5])}; unmount it first (umount -R {mounted[0]})")
        if tree.exists() and not str(tree).startswith(str(ctx.tftp_root) + "/"):
            pathguard.require_removable(tree, ctx.config.name)   # only a root this build marked
    u = _Undo(ctx, report)
    u.run()
    # Restart the daemons whose files changed (skipped under a staging prefix).
    wanted = sorted({s for p in u.touched if (s := _service_for(ctx, p))})
    if ctx.config.nfs.server == "kernel" and any("/etc/exports" in p for p in u.touched) and not ctx.staging:
        ctx.runner.run(["exportfs", "-ra"])
    before = ctx.state.services_before
    for service in wanted:
        was = before.get(service, "active")
        try:
            if was == "active":
                services.restart(ctx, service)
                if not ctx.staging:
                    report.restarted.append(service)
            else:
                # Not running before the build: its own config may not even
                # start it (a fresh dhcpd has no subnet); put it back, stopped.
                services.control(ctx, service, "stop")
                if not ctx.staging:
                    report.done.append(f"stopped {service}: it was {was} before nfsroot-build first restarted it")
        except NfsrootError as e:
            action = "restart" if was == "active" else "stop"
            report.problems.append(f"{action} of {service} failed: {str(e).splitlines()[0]}")
    if purge_root:
        for tree in trees:   # every version of the root (docs/versions.md)
            if ctx.files.ensure_absent(tree):
                report.done.append(f"removed the root {tree}" if tree == ctx.root else f"removed {tree}")
        nodes = ctx.host(base_root_path(ctx.config.root.path) + ".nodes")
        if ctx.files.ensure_absent(nodes):
            report.done.append(f"removed the nodes' own directories {nodes}")
    _forget(ctx, report, purge_root, u)
    return report


def _forget(ctx: Context, report: UndoReport, purge_root: bool, u: _Undo) -> None:
    """The state after undo: nothing recorded as ours but what was left for
    another build's undo (State.left_by_undo). With --purge-root the whole
    state dir goes (but the lock, held until the command ends), unless
    something was left and another build is there to remove it later: then
    a state holding only that stays."""
    if report.problems:
        return   # keep every record: a second undo can finish the job
    ctx.state.set_left_by_undo(u.left)
    if purge_root:
        keep = bool(u.left) and bool(u.others())
        if ctx.state_dir.is_dir():
            for child in sorted(ctx.state_dir.iterdir()):
                if child.name not in ("lock", "lock.pid") and not (keep and child == ctx.state.path):
                    ctx.files.ensure_absent(child)
        if keep:
            ctx.state.keep_only_left_by_undo()
            ctx.state.save()
        return
    ctx.files.ensure_absent(ctx.state_dir / "backup")
    ctx.state.forget_undone(KEEP_STEPS)
    ctx.state.save()
