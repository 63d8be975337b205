"""`undo`: put the server back as it was before the first run.

The state's "files" record (written by FileOps) says what the tool did to
each path: "owned" (created it: remove it), "block" (added a managed block
to someone else's file: remove the block, and where the admin's bytes are
unchanged, restore them exactly from the backup), "replaced" (rewrote a file
that was there before: restore the backup), "dir" (created it: remove it if
nothing else lives there). Everything goes through ctx.files and
ctx.runner, so `undo --dry-run` prints the diffs and commands and changes
nothing. The built root is left alone unless --purge-root.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from . import pathguard, services
from .context import Context
from .errors import NfsrootError
from .files import BEGIN, with_block

KINDS = ("owned", "block", "replaced", "dir")
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


def _unescape(field_: str) -> str:
    # /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo (proc(5)).
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field_)


def mounts_under(path: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> list[str]:
    path = Path(path).absolute()
    try:
        lines = mountinfo.read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        parts = line.split()
        if len(parts) > 4:
            mp = Path(_unescape(parts[4]))
            if mp == path or mp.is_relative_to(path):
                found.append(str(mp))
    return found


def _comment_of(text: str) -> str | None:
    m = re.search(rf"^(\S+) {re.escape(BEGIN)}$", text, re.MULTILINE)
    return m.group(1) if m else None


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
        text = p.read_text()
        comment = _comment_of(text)
        if comment is None:
            if owned:
                self.remove(p)
            else:
                self.report.done.append(f"{p}: no managed block left")
            return
        try:
            new = with_block(text, None, comment)
        except ValueError as e:
            self.report.problems.append(f"{p}: {e}; remove the block by hand")
            return
        backup = Path(rec["backup"]) if rec.get("backup") else None
        if backup and backup.is_file():
            # with_block() added a newline before the block when the admin's
            # last line had none: give back their exact bytes.
            orig = backup.read_bytes()
            if new.encode() == orig + b"\n" and not orig.endswith(b"\n"):
                new = orig.decode()
        if owned and not new.strip():
            self.remove(p)
            return
        if self.files.ensure_file(p, new, p.stat().st_mode & 0o7777):
            self.report.done.append(f"removed the managed block from {p}")
            self.touched.append(str(p))

    def restore(self, p: Path, rec: dict) -> None:
        backup = Path(rec["backup"]) if rec.get("backup") else None
        if not backup or not backup.is_file():
            self.report.problems.append(f"{p}: the backup of the original ({backup}) is missing; "
                                        "left as it is")
            return
        if self.files.ensure_file(p, backup.read_bytes(), backup.stat().st_mode & 0o7777):
            self.report.done.append(f"restored {p} from {backup}")
            self.touched.append(str(p))

    def remove_dir(self, p: Path) -> None:
        if not p.is_dir() or p.is_symlink():
            return
        left = [c for c in p.iterdir() if str(c) not in self.gone]
        if left:
            self.report.done.append(f"kept {p}: it holds {len(left)} file(s) the tool did not write, "
                                    f"e.g. {left[0].name}")
            return
        self.remove(p)

    def run(self) -> None:
        records = dict(self.ctx.state.files)
        good = {}
        for path, rec in records.items():
            if (why := self._check_record(path, rec)):
                self.report.problems.append(why)
            else:
                good[path] = rec
        for path, rec in sorted(good.items()):
            p, kind = Path(path), rec["kind"]
            if kind == "dir":
                continue
            if not p.exists() and not p.is_symlink():
                if kind == "replaced":
                    self.restore(p, rec)
                continue
            if kind == "replaced":
                self.restore(p, rec)
            elif kind == "block":
                self.without_block(p, rec, owned=False)
            elif p.is_file() and not p.is_symlink() and _comment_of(p.read_text(errors="replace")):
                self.without_block(p, rec, owned=True)
            else:
                self.remove(p)
        # Deepest first, so a parent sees its children gone.
        for path in sorted((p for p, r in good.items() if r["kind"] == "dir"),
                           key=lambda s: s.count("/"), reverse=True):
            self.remove_dir(Path(path))


def undo(ctx: Context, purge_root: bool = False) -> UndoReport:
    report = UndoReport()
    if purge_root and (mounted := mounts_under(ctx.root)):
        raise NfsrootError(f"refusing --purge-root: something is mounted under {ctx.root}: "
                           f"{', '.join(mounted[:5])}; unmount it first (umount -R {mounted[0]})")
    if purge_root and ctx.root.exists():
        pathguard.require_removable(ctx.root, ctx.config.name)   # only a root this build marked
    u = _Undo(ctx, report)
    u.run()
    # Restart the daemons whose files changed (skipped under a staging prefix).
    wanted = sorted({s for p in u.touched if (s := _service_for(ctx, p))})
    if ctx.config.nfs.server == "kernel" and any("/etc/exports" in p for p in u.touched) and not ctx.staging:
        ctx.runner.run(["exportfs", "-ra"])
    for service in wanted:
        try:
            services.restart(ctx, service)
            if not ctx.staging:
                report.restarted.append(service)
        except NfsrootError as e:
            report.problems.append(f"restart of {service} failed: {str(e).splitlines()[0]}")
    if purge_root:
        if ctx.files.ensure_absent(ctx.root):
            report.done.append(f"removed the root {ctx.root}")
        nodes = ctx.host(ctx.config.root.path + ".nodes")
        if ctx.files.ensure_absent(nodes):
            report.done.append(f"removed the nodes' own directories {nodes}")
    _forget(ctx, report, purge_root)
    return report


def _forget(ctx: Context, report: UndoReport, purge_root: bool) -> None:
    """The state after undo: nothing recorded as ours. With --purge-root the
    whole state dir goes (but the lock, held until the command ends)."""
    if report.problems:
        return   # keep every record: a second undo can finish the job
    if purge_root:
        if ctx.state_dir.is_dir():
            for child in sorted(ctx.state_dir.iterdir()):
                if child.name not in ("lock", "lock.pid"):
                    ctx.files.ensure_absent(child)
        return
    ctx.files.ensure_absent(ctx.state_dir / "backup")
    data = ctx.state.data
    data["files"] = {}
    data["pending_restarts"] = []
    data["steps"] = {k: v for k, v in data["steps"].items() if k in KEEP_STEPS}
    ctx.files.record = {}
    ctx.state.save()
