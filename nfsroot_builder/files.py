"""Every file change goes through here: render -> compare -> (dry-run: diff)
-> validate with the daemon's own checker -> atomic replace.

Files the tool owns are written whole. Files it does not own (an admin's
/etc/exports, dhcpd.conf, /etc/default/*) only ever get a *managed block*
between marker lines; every byte outside the block is kept. The first time
a pre-existing file is changed, a pristine copy goes to the backup dir so
``undo`` can restore it.
"""
from __future__ import annotations

import contextlib
import difflib
import errno
import fcntl
import fnmatch
import hashlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

BEGIN = "BEGIN nfsroot-build managed block"
END = "END nfsroot-build managed block"
DIFF_LIMIT = 400   # lines of diff shown per file in the transcript
FSYNC_EACH = 64    # files a step writes with one fsync each; more are flushed together
MARKER_BYTES = 512  # where a file the tool wrote carries its marker (the header, after a #!ipxe line)

Validator = Callable[[Path], None]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write(path: Path, data: bytes, mode: int, fsync: bool = True,
                 owner: tuple[int, int] | None = None) -> None:
    """Write via a temp file in the same directory, fsync, rename.

    owner (uid, gid): the new file gets them before it replaces the old one
    (a new inode belongs to whoever writes it: an admin's root:adm file would
    come back root:root).

    fsync=False leaves the flush to the caller (FileOps.end_batch: one
    syncfs for a step's many files instead of one fsync each). The temp file
    is .<name>.<pid>.tmp (mkstemp's random name if that exists): a menu per
    node makes this the inner loop of a 10,000-node run.
    """
    parent = path.parent
    tmp = f"{parent}/.{path.name}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, 0o600)
    except FileNotFoundError:
        parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, flags, 0o600)
    except FileExistsError:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.")
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if owner is not None:
                st = os.fstat(fd)
                if (st.st_uid, st.st_gid) != owner:
                    os.fchown(fd, *owner)
            if fsync:
                os.fsync(fd)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _syncfs(directory: str) -> bool:
    """syncfs(2) on the file system holding directory; False if unavailable."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except (OSError, AttributeError):
        return False
    try:
        return getattr(libc, "syncfs", None) is not None and libc.syncfs(fd) == 0
    finally:
        os.close(fd)


@contextlib.contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """flock(2) on directory, or on its nearest existing parent (the file's
    directory may not exist yet); waits for the holder."""
    directory = Path(directory)
    while not directory.is_dir():
        directory = directory.parent
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)   # closing the last descriptor releases the lock


class UndoRecord:
    """What the tool did to each server path, for undo: path -> {"kind", "backup"}.

    kind: "owned" (created it), "block" (added a managed block to someone
    else's file), "replaced" (rewrote a file that was there: "backup" holds
    the original), "shared" (uses a file another build wrote: FileOps.share),
    "dir" (created the directory), "glob" (the key is
    <dir>/<pattern>: every file there matching the pattern that carries
    "marker" is the tool's). A glob stands for a file per node (boot menus),
    so the record, and the state that saves it, does not grow with the node
    count. The State owns and saves it; FileOps notes every change into it.
    """

    def __init__(self, entries: dict | None = None):
        self._entries: dict = {}
        self._globs: dict[str, list[tuple[str, str]]] = {}
        self.replace(entries or {})

    def replace(self, entries: dict) -> None:
        self._entries = dict(entries)
        self._globs = {}
        for key, rec in self._entries.items():
            if isinstance(rec, dict) and rec.get("kind") == "glob":
                directory, _, pattern = key.rpartition("/")
                self._globs.setdefault(directory, []).append((pattern, str(rec.get("marker", ""))))

    def entries_view(self) -> MappingProxyType:
        return MappingProxyType(self._entries)

    def get(self, path: str) -> dict | None:
        return self._entries.get(path)

    def __contains__(self, path: str) -> bool:
        return path in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def note(self, path: str, kind: str, backup: str | None = None) -> None:
        """Record a change; the first record of a path wins (it says what was there before us)."""
        prev = self._entries.get(path, {})
        self._entries[path] = {"kind": prev.get("kind", kind), "backup": prev.get("backup", backup)}

    def own_pattern(self, directory: str, pattern: str, marker: str) -> None:
        """Files in directory matching pattern and holding marker are the tool's."""
        key = f"{directory.rstrip('/')}/{pattern}"
        if self._entries.get(key) != {"kind": "glob", "backup": None, "marker": marker}:
            self._entries[key] = {"kind": "glob", "backup": None, "marker": marker}
            # A state from before globs lists every menu: the glob stands for them now.
            directory = directory.rstrip("/")
            self._entries = {p: r for p, r in self._entries.items()
                             if not (r.get("kind") == "owned" and not r.get("backup")
                                     and p.rpartition("/")[0] == directory
                                     and fnmatch.fnmatchcase(p.rpartition("/")[2], pattern))}
            self.replace(self._entries)

    def marker_for(self, path: str) -> str | None:
        """The marker of the glob record covering path, if one does."""
        directory, _, name = path.rpartition("/")
        for pattern, marker in self._globs.get(directory, ()):
            if fnmatch.fnmatchcase(name, pattern):
                return marker
        return None

    def forget(self, path: str) -> None:
        self._entries.pop(path, None)

    def clear(self) -> None:
        self.replace({})


def read_head(path: Path | str, size: int = MARKER_BYTES) -> bytes:
    with open(path, "rb") as f:
        return f.read(size)


def differing(directory: Path, expected: dict[str, bytes]) -> list[str]:
    """Names in directory whose bytes are not expected[name] (or that are
    missing). Reads each inode once: names hard-linked to one file (node
    menus with equal content) cost one read, not one each. No side effects."""
    directory = Path(directory)
    try:
        inodes = {e.name: e.inode() for e in os.scandir(directory) if e.is_file(follow_symlinks=False)}
    except FileNotFoundError:
        return sorted(expected)
    content: dict[int, bytes] = {}
    bad = []
    for name, data in expected.items():
        ino = inodes.get(name)
        if ino is None:
            bad.append(name)
            continue
        if ino not in content:
            try:
                with open(directory / name, "rb") as f:
                    content[ino] = f.read()
            except OSError:
                content[ino] = b""
        if content[ino] != data:
            bad.append(name)
    return bad


def block_markers(comment: str, name: str | None) -> tuple[str, str]:
    """The BEGIN and END lines of a build's managed block. Named for the build
    (`# BEGIN nfsroot-build managed block prod`): two builds on one server
    each keep a block of their own in the same dhcpd.conf; without a name,
    the markers 0.1 wrote (one build per server)."""
    suffix = f" {name}" if name else ""
    return f"{comment} {BEGIN}{suffix}\n", f"{comment} {END}{suffix}\n"


def _find_block(text: str, comment: str, name: str | None, legacy: bool) -> tuple[int, int, str] | None:
    """(start of BEGIN, start of END, END line) of the block, or None.

    name None: the first block of any build. legacy: with a name, an
    unnamed (older) block stands in when the named one is absent.
    """
    if name is None:
        m = re.search(rf"^{re.escape(comment)} {re.escape(BEGIN)}((?: \S+)?)\n", text, re.MULTILINE)
        if not m:
            return None
        end = f"{comment} {END}{m.group(1)}\n"
        return m.start(), text.find(end, m.end()), end
    for candidate in ((name, None) if legacy else (name,)):
        begin, end = block_markers(comment, candidate)
        i = text.find(begin)
        if i >= 0:
            return i, text.find(end, i), end
    return None


def split_block(text: str, comment: str, name: str | None = None, *,
                legacy: bool = False) -> tuple[str, str | None, str]:
    """(before, block body or None, after) of a file's managed block: the
    named build's (see block_markers), or with name None the first one."""
    found = _find_block(text, comment, name, legacy)
    if found is None:
        return text, None, ""
    i, j, end = found
    if j < 0:
        raise ValueError(f"managed block begins but never ends ('{end.rstrip()}' missing)")
    begin_len = text.index("\n", i) + 1 - i
    return text[:i], text[i + begin_len:j], text[j + len(end):]


def with_block(text: str, body: str | None, comment: str, name: str | None = None, *,
               legacy: bool = False) -> str:
    """text with the build's managed block replaced by body (None removes it);
    legacy: an unnamed block is taken as this build's (and renamed)."""
    before, _old, after = split_block(text, comment, name, legacy=legacy)
    if body is None:
        return before + after
    if body and not body.endswith("\n"):
        body += "\n"
    if before and not before.endswith("\n"):
        before += "\n"
    begin, end = block_markers(comment, name)
    return f"{before}{begin}{body}{end}{after}"


@dataclass
class FileOps:
    dry_run: bool = False
    emit: Callable[[str], None] = print
    backup_dir: Path | None = None
    # What the tool did to each path, for undo: the State's record (State.undo),
    # saved with it; a FileOps of its own when used alone.
    undo: UndoRecord = field(default_factory=UndoRecord)
    changed_paths: list[str] = field(default_factory=list)
    # Trees whose files are not recorded for undo (the built root: --purge-root removes it whole).
    untracked: list[Path] = field(default_factory=list)
    # The build (config name) whose managed blocks this writes: their markers
    # carry it, so builds side by side keep one block each (block_markers).
    build: str | None = None
    # Between begin_batch() and end_batch() (the pipeline: one step), whole
    # files the tool writes (ensure_file) beyond the first FSYNC_EACH are not
    # fsynced one by one: end_batch() flushes them with one syncfs before the
    # step can be recorded as done. (A menu per node: 10,000 fsyncs took 20 s.)
    # Managed blocks in files an admin owns are always fsynced before they
    # replace the original.
    _batch: bool = field(default=False, repr=False)
    _batch_writes: int = field(default=0, repr=False)
    _unsynced: set = field(default_factory=set, repr=False)
    _dirs: set = field(default_factory=set, repr=False)   # directories known to exist
    # The step's log (the pipeline sets it in a real run): one `# <op> <path>`
    # line per change, the same line a dry-run prints, so that the two can be
    # compared (tests/integration/test_dry_run_exact.py).
    log: Callable[[str], None] | None = field(default=None, repr=False)
    # Dry-run only: path -> ("file", bytes, mode) | ("dir", None, mode) |
    # ("absent", None, 0), what the disk would hold after the changes already
    # announced, or after a command a step said made it (expect()): a later
    # step then plans against that, not against the untouched disk.
    _pretend: dict = field(default_factory=dict, repr=False)
    # Dry-run only: (copy, original) trees a command copied (expect_copy): a
    # path under a copy that the plan has not changed reads as the original's.
    _copies: list = field(default_factory=list, repr=False)

    @property
    def record(self) -> MappingProxyType:
        """The undo record, read-only (path -> {"kind", "backup"})."""
        return self.undo.entries_view()

    # -- helpers -----------------------------------------------------------
    def _change(self, path: Path, line: str, pretend: tuple) -> None:
        """Account for one change: the transcript line (dry-run) or the log line (real run)."""
        self.changed_paths.append(str(path))
        if self.dry_run:
            self._pretend[str(path)] = pretend
            self.emit(line)
        elif self.log and line:
            self.log(line)

    def _pretended(self, path: Path) -> tuple | None:
        if not self.dry_run:
            return None
        key = str(path)
        p = self._pretend.get(key)
        if p is None and self._copies:
            p = self._as_copied(key)
        return p

    def on_disk(self, path: Path) -> Path:
        """Where reading path looks: in a dry-run, a path under a tree a
        command copied (expect_copy) is read from the original; else path.
        For a step that reads a tree itself (dpkg's database, /boot)."""
        if self.dry_run and self._copies:
            key = str(path)
            for copy, original in self._copies:
                if key == copy or key.startswith(copy + "/"):
                    return Path(original + key[len(copy):])
        return Path(path)

    def _as_copied(self, key: str) -> tuple | None:
        """What a path under a copied tree holds: the original's file, link,
        directory, or nothing ("absent"); None when key is under no copy."""
        for copy, original in self._copies:
            if key != copy and not key.startswith(copy + "/"):
                continue
            source = original + key[len(copy):]
            try:
                st = os.lstat(source)
            except (FileNotFoundError, NotADirectoryError):
                return ("absent", None, 0)
            if stat.S_ISLNK(st.st_mode):
                return ("link", os.readlink(source), 0o777)
            if stat.S_ISDIR(st.st_mode):
                return ("dir", None, st.st_mode & 0o7777)
            with open(source, "rb") as f:
                return ("file", f.read(), st.st_mode & 0o7777)
        return None

    def exists(self, path: Path) -> bool:
        """Does path exist (a dry-run: after the changes it announced)?"""
        p = self._pretended(path)
        return p[0] != "absent" if p else (Path(path).exists() or Path(path).is_symlink())

    def is_dir(self, path: Path) -> bool:
        p = self._pretended(path)
        return p[0] == "dir" if p else Path(path).is_dir()

    def read(self, path: Path) -> bytes | None:
        """The bytes of path, None if absent (a dry-run: as planned so far)."""
        return self._read(Path(path))[0]

    def mode(self, path: Path) -> int:
        """The permission bits of path (a dry-run: as planned so far)."""
        p = self._pretended(path)
        return p[2] if p else Path(path).stat().st_mode & 0o7777

    def expect(self, path: Path, content: str | bytes | None = None, mode: int = 0o644, *,
               link: str | None = None) -> None:
        """A command the step just ran made path: a file with content, a
        symlink to link, or (neither) a directory.

        Changes nothing and says nothing: in a dry-run the command did not
        run, so later steps plan as if it had (the bootstrapper's /etc/hostname
        is then removed by the hostname step in both runs alike).
        """
        if self.dry_run and not Path(path).exists() and str(path) not in self._pretend:
            data = content.encode() if isinstance(content, str) else content
            self._pretend[str(path)] = ("link", link, 0o777) if link is not None else \
                ("dir", None, mode) if data is None else ("file", data, mode)

    def expect_copy(self, original: Path, copy: Path) -> None:
        """A command the step just ran copied the tree original to copy (a
        new root version cloned from the current one, versions.py).

        Changes nothing and says nothing: in a dry-run the copy was not made,
        so the later steps' file operations read a path under copy as the
        same path under original (what the real run will find there).
        """
        if self.dry_run and not Path(copy).exists():
            self._copies.append((str(copy).rstrip("/"), str(original).rstrip("/")))

    def _diff(self, path: Path, old: str | None, new: str | None) -> None:
        a = (old or "").splitlines(keepends=True)
        b = (new or "").splitlines(keepends=True)
        lines = list(difflib.unified_diff(a, b, "/dev/null" if old is None else str(path),
                                          "/dev/null" if new is None else str(path)))
        for line in lines[:DIFF_LIMIT]:
            self.emit(line.rstrip("\n"))
        if len(lines) > DIFF_LIMIT:
            self.emit(f"... ({len(lines) - DIFF_LIMIT} more diff lines)")

    def _ours(self, path: Path, old: bytes | None) -> bool:
        """A file a glob record covers and that carries its marker: the tool
        wrote it (a node's menu), so changing it needs no backup."""
        marker = self.undo.marker_for(str(path))
        return bool(marker) and old is not None and marker.encode() in old[:MARKER_BYTES]

    def _backup(self, path: Path, old: bytes | None = None) -> str | None:
        """Keep the pristine original the first time we change a file we don't
        own: its bytes, mode, owner and group (undo gives all four back)."""
        key = str(path)
        if key in self.undo or not path.exists() or self.backup_dir is None \
                or self._is_untracked(path) or self._ours(path, old):
            rec = self.undo.get(key)
            return rec.get("backup") if rec else None
        dest = self.backup_dir / key.lstrip("/")
        if not self.dry_run:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
            st = path.stat()
            os.chown(dest, st.st_uid, st.st_gid)
        return str(dest)

    def _is_untracked(self, path: Path) -> bool:
        # String prefixes: Path.is_relative_to per file cost 1 s for 10,000 menus.
        s = str(path)
        return any(s == u or s.startswith(u.rstrip("/") + "/") for u in map(str, self.untracked))

    def _make_parents(self, path: Path) -> None:
        """Create path's missing parent directories, each recorded ("dir"), so
        undo removes the ones it made (e.g. /srv/tftp) once they are empty."""
        parent = path.parent
        if str(parent) in self._dirs:
            return
        missing = []
        while not parent.is_dir():
            missing.append(parent)
            parent = parent.parent
        for d in reversed(missing):
            d.mkdir(exist_ok=True)
            self._note(d, "dir")
        self._dirs.add(str(path.parent))

    def begin_batch(self) -> None:
        self._batch, self._batch_writes = True, 0

    def end_batch(self) -> None:
        """Make every file written without its own fsync durable: syncfs(2) once
        per file system (os.sync() where syncfs is not available)."""
        self._batch = False
        if not self._unsynced:
            return
        devices: dict[int, str] = {}
        for d in self._unsynced:
            try:
                devices.setdefault(os.stat(d).st_dev, d)
            except FileNotFoundError:
                continue
        self._unsynced.clear()
        for d in devices.values():
            if not _syncfs(d):
                os.sync()
                return

    def _note(self, path: Path, kind: str, backup: str | None = None, line: str = "") -> None:
        self._change(path, line, ())
        key = str(path)
        if self._is_untracked(path):
            return
        # A file a glob record covers (a node's menu) is recorded by the glob,
        # unless it replaced someone else's file (then its backup is recorded).
        if kind == "owned" and key not in self.undo and self.undo.marker_for(key):
            return
        self.undo.note(key, kind, backup)

    def _read(self, path: Path) -> tuple[bytes | None, os.stat_result | None]:
        """(bytes, stat) of path; (None, None) if absent. A dry-run reads what
        it planned so far (no stat then: mode() answers for the mode)."""
        p = self._pretended(path)
        if p:
            return (p[1] if p[0] == "file" else None), None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None, None
        try:
            st = os.fstat(fd)
            with open(fd, "rb", closefd=False) as f:
                return f.read(), st
        except IsADirectoryError:
            # A directory where the file belongs holds no content (a dry-run
            # plans its removal before the write; a real run has removed it).
            return None, None
        finally:
            os.close(fd)

    # -- operations ----------------------------------------------------------
    def ensure_file(self, path: Path, content: str | bytes, mode: int = 0o644,
                    validate: Validator | None = None, owner: tuple[int, int] | None = None) -> bool:
        """Make path hold exactly content with mode. Returns True if it changed.

        owner (uid, gid): None keeps the owner and group of the file it
        replaces (an admin's root:adm file stays root:adm); a new file gets
        the caller's.
        """
        path = Path(path)
        data = content.encode() if isinstance(content, str) else content
        old, st = self._read(path)
        same_mode = old is not None and self.mode(path) == mode
        same_owner = owner is None or (st is not None and (st.st_uid, st.st_gid) == tuple(owner))
        if old == data and same_mode and same_owner:
            return False
        line = f"# write {path} ({len(data)} bytes, mode {mode:o})" if old != data else "\n".join(
            ([] if same_mode else [f"# chmod {mode:o} {path}"]) +
            ([] if same_owner else [f"# chown {owner[0]}:{owner[1]} {path}"]))
        if self.dry_run:
            self._change(path, line, ("file", data, mode))
            if old != data and isinstance(content, str):
                self._diff(path, None if old is None else old.decode(errors="replace"), content)
            if validate:
                self.emit(f"# validate {path} with {getattr(validate, 'shown', 'its checker')}")
            return True
        if old is None:
            self._make_parents(path)
        if validate and old != data:
            self._validate(path, data, mode, validate)
        # A file that was there before us (an admin's, or a package's conffile)
        # is backed up once, so undo can put it back.
        backup = self._backup(path, old) if old is not None else None
        defer = self._batch and self._batch_writes >= FSYNC_EACH
        self._batch_writes += self._batch
        keep = tuple(owner) if owner is not None else ((st.st_uid, st.st_gid) if st is not None else None)
        atomic_write(path, data, mode, fsync=not defer, owner=keep)
        if defer:
            self._unsynced.add(str(path.parent))
        ours = old is None or self._ours(path, old)
        self._note(path, "owned" if ours else "replaced", backup, line)
        return True

    def ensure_files(self, directory: Path, contents: dict[str, str], mode: int = 0o644,
                     pattern: str | None = None, marker: str | None = None) -> bool:
        """ensure_file for many files in one directory (a menu per node), where
        names with equal content share one inode (hard links).

        pattern + marker: every file in directory matching pattern that holds
        marker is the tool's; the undo record keeps that one line instead of a
        line per file. Sharing inodes: 10,000 equal menus are one file's data
        and 10,000 links (link(2) allocates no inode; ext4 without a journal
        scans past recently deleted inodes on every new one: 0.5 ms a file).
        Returns True if anything changed.
        """
        directory = Path(directory)
        if pattern and marker and not self.dry_run:
            self.undo.own_pattern(str(directory), pattern, marker)
        if not self.dry_run:
            self._make_parents(directory / "-")
        if self.dry_run or not directory.is_dir():
            changed = False
            for name, text in contents.items():
                changed |= self.ensure_file(directory / name, text, mode)
            return changed
        existing = {e.name: e.inode() for e in os.scandir(directory) if e.is_file(follow_symlinks=False)}
        groups: dict[bytes, list[str]] = {}
        for name, text in contents.items():
            groups.setdefault(text.encode(), []).append(name)
        seen: dict[int, tuple[bytes, int]] = {}   # inode -> (bytes, mode), read once each

        def holds(name: str, data: bytes) -> bool:
            ino = existing.get(name)
            if ino is None:
                return False
            if ino not in seen:
                old, st = self._read(directory / name)
                seen[ino] = (old or b"", st.st_mode & 0o7777 if st else 0)
            return seen[ino] == (data, mode)

        changed = False
        for data, names in groups.items():
            todo = [name for name in names if not holds(name, data)]
            if not todo:
                continue
            changed = True
            todo_set = set(todo)
            done = [name for name in names if name not in todo_set]
            master = directory / done[0] if done else None
            for name in todo:
                path = directory / name
                if master is not None:
                    try:
                        self._link(master, path, seen[existing[name]][0] if name in existing else None,
                                   f"# write {path} ({len(data)} bytes, mode {mode:o})")
                        continue
                    except OSError as e:
                        # ext4 allows 65,000 links to a file (EMLINK): start another one.
                        if e.errno != errno.EMLINK:
                            raise
                self.ensure_file(path, data, mode)
                master = path
        if not self._batch:
            self.end_batch()   # the links are durable before this returns, outside a step too
        return changed

    def _link(self, master: Path, path: Path, old: bytes | None, line: str) -> None:
        """path becomes another name of master's inode; old: the bytes of the
        file there before (ensure_files read each inode once), None if none.
        That file is backed up (unless it is one of ours) and replaced
        atomically. Two system calls a name (link, rename) when it is ours:
        a switch of 10,000 nodes relinks every menu."""
        ours = old is None or self._ours(path, old)
        if ours:   # nothing to back up: only a record made before (it replaced an admin's file) has one
            backup = (self.undo.get(str(path)) or {}).get("backup")
        else:
            backup = self._backup(path, old)
        if old is not None:
            tmp = path.with_name(f".{path.name}.{os.getpid()}.link")
            try:
                os.link(master, tmp)
            except FileExistsError:   # left by a killed run that had the same pid
                tmp.unlink()
                os.link(master, tmp)
            try:
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        else:
            os.link(master, path)
        self._unsynced.add(str(path.parent))
        self._note(path, "owned" if ours else "replaced", backup, line)

    def prune(self, directory: Path, pattern: str, keep: set[str], marker: str,
              exclude: tuple[str, ...] = ()) -> bool:
        """Remove the files in directory matching pattern that hold marker (the
        tool wrote them) and are not in keep. Reads each inode once."""
        directory = Path(directory)
        try:
            entries = [e for e in os.scandir(directory) if e.is_file(follow_symlinks=False)]
        except FileNotFoundError:
            return False
        head: dict[int, bytes] = {}
        changed = False
        for e in sorted(entries, key=lambda e: e.name):
            if e.name in keep or e.name in exclude or not fnmatch.fnmatchcase(e.name, pattern):
                continue
            if e.inode() not in head:
                head[e.inode()] = read_head(e.path)
            if marker.encode() in head[e.inode()]:
                changed |= self.ensure_absent(Path(e.path))
        return changed

    def _validate(self, path: Path, data: bytes, mode: int, validate: Validator) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.check.")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, mode)
            validate(Path(tmp))
        finally:
            Path(tmp).unlink(missing_ok=True)

    def managed_block(self, path: Path, body: str | None, comment: str = "#", mode: int = 0o644,
                      validate: Validator | None = None) -> bool:
        """_managed_block under a lock on the file's directory: builds side by
        side may run at once, and each reads the file, changes its own block
        and replaces the file; the lock makes that one step, so neither
        build's block is lost. (The directory, not the file: the file is
        replaced by rename, and a lock on its old inode would guard nothing.)
        A missing directory is made first, under its nearest existing
        parent's lock: else a run that found it missing (and locked the
        parent) and a run that came after it was made (and locked it) would
        edit the file at once, and one block was lost in a test that ran
        both builds at the same time."""
        if self.dry_run:
            return self._managed_block(path, body, comment, mode, validate)
        directory = Path(path).parent
        if body is not None and not directory.is_dir():
            with directory_lock(directory):
                self._make_parents(Path(path))
        with directory_lock(directory):
            return self._managed_block(path, body, comment, mode, validate)

    def _managed_block(self, path: Path, body: str | None, comment: str = "#", mode: int = 0o644,
                       validate: Validator | None = None) -> bool:
        """Own only the lines between our markers in a file someone else owns.

        body=None removes the block (and the file, if we created it and it is
        now empty). Every byte outside the block is kept (CRLF lines too), and
        so are the file's mode, owner and group. The block is this build's
        own (self.build names it in the markers): another build's block in
        the same file is outside it. A block without a name (written by an
        older version, one build per server) is adopted, renamed in place,
        when this build's undo record has the file: that record undoes it.
        """
        path = Path(path)
        old, st = self._read(path)
        # surrogateescape: bytes that are not UTF-8 come back exactly.
        text = old.decode(errors="surrogateescape") if old is not None else ""
        rec = self.undo.get(str(path))
        new = with_block(text, body, comment, self.build, legacy=rec is not None)
        if old is not None and new == text:
            return False
        if old is None and body is None:
            return False
        if body is None and not new.strip() and rec and rec.get("kind") == "owned" and not rec.get("backup"):
            # The tool made this file for its block alone: with the block gone, so is the file.
            return self.ensure_absent(path)
        mode = self.mode(path) if old is not None else mode
        data = new.encode(errors="surrogateescape")
        line = f"# write {path} ({len(data)} bytes, mode {mode:o})"
        if self.dry_run:
            self._change(path, line, ("file", data, mode))
            self._diff(path, None if old is None else text, new)
            if validate:
                self.emit(f"# validate {path} with {getattr(validate, 'shown', 'its checker')}")
            return True
        if old is None:
            self._make_parents(path)
        if validate:
            self._validate(path, data, mode, validate)
        backup = self._backup(path, old)
        atomic_write(path, data, mode, owner=(st.st_uid, st.st_gid) if st is not None else None)
        self._note(path, "block" if old is not None else "owned", backup, line)
        return True

    def share(self, path: Path) -> None:
        """path is a file this build uses that another build may have written
        (a loader file in a TFTP root builds share): recorded for undo as
        "shared" unless this build's record has it already. Undo removes it
        only when no other build's record has it (sidebyside.shared_users)."""
        key = str(path)
        if not self.dry_run and key not in self.undo and not self._is_untracked(Path(path)):
            self.undo.note(key, "shared")

    def ensure_dir(self, path: Path, mode: int = 0o755) -> bool:
        path = Path(path)
        if self.is_dir(path) and self.mode(path) == mode:
            return False
        line = f"# mkdir -p -m {mode:o} {path}"
        if self.dry_run:
            # mkdir -p makes the missing parents too: later plans see them
            # (file_repositories removes the highest one it made again).
            parent = path.parent
            while parent != parent.parent and not self.is_dir(parent):
                self._pretend[str(parent)] = ("dir", None, 0o755)
                parent = parent.parent
            self._change(path, line, ("dir", None, mode))
            return True
        existed = path.is_dir()
        if not existed:
            self._make_parents(path)
            path.mkdir(exist_ok=True)
        os.chmod(path, mode)
        self._dirs.add(str(path))
        if not existed:
            self._note(path, "dir", line=line)
        else:
            self._change(path, f"# chmod {mode:o} {path}", ())
        return True

    def ensure_symlink(self, path: Path, target: str) -> bool:
        path = Path(path)
        p = self._pretended(path)
        if (p[0] == "link" and p[1] == target) if p else (path.is_symlink() and os.readlink(path) == target):
            return False
        line = f"# ln -sfn {target} {path}"
        if self.dry_run:
            self._change(path, line, ("link", target, 0o777))
            return True
        self._make_parents(path)
        tmp = path.with_name(f".{path.name}.nfsroot-build-link")
        tmp.unlink(missing_ok=True)
        os.symlink(target, tmp)
        os.replace(tmp, path)
        self._note(path, "owned", line=line)
        return True

    def ensure_absent(self, path: Path) -> bool:
        path = Path(path)
        if not self.exists(path):
            return False
        if self.dry_run:
            self._change(path, f"# rm {path}", ("absent", None, 0))
            return True
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
            self._dirs.discard(str(path))
        else:
            path.unlink()
        self._change(path, f"# rm {path}", ())
        # A file the tool created and now removed leaves undo nothing to do
        # (undo skips a missing "owned" file): drop it from the record, or the
        # state grows with every node ever removed (a menu each) and is
        # rewritten whole after every step.
        rec = self.undo.get(str(path))
        if rec and rec.get("kind") == "owned" and not rec.get("backup"):
            self.undo.forget(str(path))
        return True

    def ensure_mode(self, path: Path, mode: int) -> bool:
        """chmod only. Not recorded for undo: a mode is repaired, not owned."""
        path = Path(path)
        if self.mode(path) == mode:
            return False
        if not self.dry_run:
            os.chmod(path, mode)
        old = self._pretended(path) or (("dir", None) if path.is_dir() else ("file", self._read(path)[0]))
        self._change(path, f"# chmod {mode:o} {path}", (old[0], old[1], mode))
        return True

    def ensure_owner(self, path: Path, owner: tuple[int, int]) -> bool:
        """lchown only (a symlink itself, never its target). A path the plan
        makes (a dry-run) belongs to whoever runs it, as a real mkdir's does.
        Not recorded for undo, like ensure_mode."""
        path = Path(path)
        p = self._pretended(path)
        if p:
            have = (os.geteuid(), os.getegid())
        else:
            st = os.lstat(path)
            have = (st.st_uid, st.st_gid)
        if have == tuple(owner):
            return False
        if not self.dry_run:
            os.lchown(path, *owner)
        old = p or (("link", os.readlink(path), 0o777) if path.is_symlink() else
                    ("dir", None, self.mode(path)) if path.is_dir() else
                    ("file", self._read(path)[0], self.mode(path)))
        self._change(path, f"# chown -h {owner[0]}:{owner[1]} {path}", old)
        return True

    def move_into_place(self, made: Path, dst: Path, mode: int = 0o644) -> bool:
        """A command the step just ran wrote made (beside dst, same file
        system): give it mode and rename it over dst, recorded as the tool's.
        For files too big to hold in memory or to copy again (a root image).
        In a dry-run the command did not run: only the change is shown."""
        made, dst = Path(made), Path(dst)
        line = f"# install -m {mode:o} {made} {dst}"
        if self.dry_run:
            self._change(dst, line, ("file", None, mode))
            return True
        os.chmod(made, mode)
        os.replace(made, dst)
        self._note(dst, "owned", line=line)
        return True

    def copy_file(self, src: Path, dst: Path, mode: int = 0o644) -> bool:
        """Copy a (binary) file if content or mode differ; compares by hash."""
        src, dst = Path(src), Path(dst)
        if dst.exists() and src.exists() and (dst.stat().st_mode & 0o7777) == mode \
                and dst.stat().st_size == src.stat().st_size and sha256_file(src) == sha256_file(dst):
            return False
        line = f"# install -m {mode:o} {src} {dst}"
        if self.dry_run:
            self._change(dst, line, ("file", None, mode))
            return True
        self._make_parents(dst)
        fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.")
        os.close(fd)
        try:
            shutil.copyfile(src, tmp)
            os.chmod(tmp, mode)
            os.replace(tmp, dst)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._note(dst, "owned", line=line)
        return True
