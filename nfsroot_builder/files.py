"""Every file change goes through here: render -> compare -> (dry-run: diff)
-> validate with the daemon's own checker -> atomic replace.

Files the tool owns are written whole. Files it does not own (an admin's
/etc/exports, dhcpd.conf, /etc/default/*) only ever get a *managed block*
between marker lines; every byte outside the block is kept. The first time
a pre-existing file is changed, a pristine copy goes to the backup dir so
``undo`` can restore it.
"""
from __future__ import annotations

import difflib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BEGIN = "BEGIN nfsroot-build managed block"
END = "END nfsroot-build managed block"
DIFF_LIMIT = 400   # lines of diff shown per file in the transcript
FSYNC_EACH = 64    # files a step writes with one fsync each; more are flushed together

Validator = Callable[[Path], None]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write(path: Path, data: bytes, mode: int, fsync: bool = True) -> None:
    """Write via a temp file in the same directory, fsync, rename.

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


def split_block(text: str, comment: str) -> tuple[str, str | None, str]:
    """(before, block body or None, after) of a file's managed block."""
    begin, end = f"{comment} {BEGIN}\n", f"{comment} {END}\n"
    i = text.find(begin)
    if i < 0:
        return text, None, ""
    j = text.find(end, i)
    if j < 0:
        raise ValueError(f"managed block begins but never ends ('{comment} {END}' missing)")
    return text[:i], text[i + len(begin):j], text[j + len(end):]


def with_block(text: str, body: str | None, comment: str) -> str:
    """text with its managed block replaced by body (None removes it)."""
    before, _old, after = split_block(text, comment)
    if body is None:
        return before + after
    if body and not body.endswith("\n"):
        body += "\n"
    if before and not before.endswith("\n"):
        before += "\n"
    return f"{before}{comment} {BEGIN}\n{body}{comment} {END}\n{after}"


@dataclass
class FileOps:
    dry_run: bool = False
    emit: Callable[[str], None] = print
    backup_dir: Path | None = None
    # path -> {"kind": "owned" | "block", "backup": str | None}; persisted in the state
    record: dict = field(default_factory=dict)
    changed_paths: list[str] = field(default_factory=list)
    # Trees whose files are not recorded for undo (the built root: --purge-root removes it whole).
    untracked: list[Path] = field(default_factory=list)
    # Between begin_batch() and end_batch() (the pipeline: one step), whole
    # files the tool writes (ensure_file) beyond the first FSYNC_EACH are not
    # fsynced one by one: end_batch() flushes them with one syncfs before the
    # step can be recorded as done. (A menu per node: 10,000 fsyncs took 20 s.)
    # Managed blocks in files an admin owns are always fsynced before they
    # replace the original.
    _batch: bool = field(default=False, repr=False)
    _batch_writes: int = field(default=0, repr=False)
    _unsynced: set = field(default_factory=set, repr=False)
    # The step's log (the pipeline sets it in a real run): one `# <op> <path>`
    # line per change, the same line a dry-run prints, so that the two can be
    # compared (tests/integration/test_dry_run_exact.py).
    log: Callable[[str], None] | None = field(default=None, repr=False)
    # Dry-run only: path -> ("file", bytes, mode) | ("dir", None, mode) |
    # ("absent", None, 0), what the disk would hold after the changes already
    # announced, or after a command a step said made it (expect()): a later
    # step then plans against that, not against the untouched disk.
    _pretend: dict = field(default_factory=dict, repr=False)

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
        return self._pretend.get(str(path)) if self.dry_run else None

    def exists(self, path: Path) -> bool:
        """Does path exist (a dry-run: after the changes it announced)?"""
        p = self._pretended(path)
        return p[0] != "absent" if p else (Path(path).exists() or Path(path).is_symlink())

    def is_dir(self, path: Path) -> bool:
        p = self._pretended(path)
        return p[0] == "dir" if p else Path(path).is_dir()

    def read(self, path: Path) -> bytes | None:
        """The bytes of path, None if absent (a dry-run: as planned so far)."""
        return self._read(Path(path))

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

    def _diff(self, path: Path, old: str | None, new: str | None) -> None:
        a = (old or "").splitlines(keepends=True)
        b = (new or "").splitlines(keepends=True)
        lines = list(difflib.unified_diff(a, b, "/dev/null" if old is None else str(path),
                                          "/dev/null" if new is None else str(path)))
        for line in lines[:DIFF_LIMIT]:
            self.emit(line.rstrip("\n"))
        if len(lines) > DIFF_LIMIT:
            self.emit(f"... ({len(lines) - DIFF_LIMIT} more diff lines)")

    def _backup(self, path: Path) -> str | None:
        """Keep the pristine original the first time we change a file we don't own."""
        key = str(path)
        if key in self.record or not path.exists() or self.backup_dir is None \
                or self._is_untracked(path):
            return self.record.get(key, {}).get("backup")
        dest = self.backup_dir / key.lstrip("/")
        if not self.dry_run:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
        return str(dest)

    def _is_untracked(self, path: Path) -> bool:
        # String prefixes: Path.is_relative_to per file cost 1 s for 10,000 menus.
        s = str(path)
        return any(s == u or s.startswith(u.rstrip("/") + "/") for u in map(str, self.untracked))

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
        if not self._is_untracked(path):
            prev = self.record.get(str(path), {})
            self.record[str(path)] = {"kind": prev.get("kind", kind), "backup": prev.get("backup", backup)}

    def _read(self, path: Path) -> bytes | None:
        p = self._pretended(path)
        if p:
            return p[1] if p[0] == "file" else None
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            # A directory where the file belongs holds no content (a dry-run
            # plans its removal before the write; a real run has removed it).
            return None

    # -- operations ----------------------------------------------------------
    def ensure_file(self, path: Path, content: str | bytes, mode: int = 0o644,
                    validate: Validator | None = None) -> bool:
        """Make path hold exactly content with mode. Returns True if it changed."""
        path = Path(path)
        data = content.encode() if isinstance(content, str) else content
        old = self._read(path)
        same_mode = old is not None and self.mode(path) == mode
        if old == data and same_mode:
            return False
        line = f"# chmod {mode:o} {path}" if old == data else f"# write {path} ({len(data)} bytes, mode {mode:o})"
        if self.dry_run:
            self._change(path, line, ("file", data, mode))
            if old != data and isinstance(content, str):
                self._diff(path, None if old is None else old.decode(errors="replace"), content)
            if validate:
                self.emit(f"# validate {path} with {getattr(validate, 'shown', 'its checker')}")
            return True
        if validate and old != data:
            self._validate(path, data, mode, validate)
        # A file that was there before us (an admin's, or a package's conffile)
        # is backed up once, so undo can put it back.
        backup = self._backup(path) if old is not None else None
        defer = self._batch and self._batch_writes >= FSYNC_EACH
        self._batch_writes += self._batch
        atomic_write(path, data, mode, fsync=not defer)
        if defer:
            self._unsynced.add(str(path.parent))
        self._note(path, "replaced" if old is not None else "owned", backup, line)
        return True

    def _validate(self, path: Path, data: bytes, mode: int, validate: Validator) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
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
        """Own only the lines between our markers in a file someone else owns.

        body=None removes the block (and the file, if we created it and it is
        now empty).
        """
        path = Path(path)
        old = self._read(path)
        text = old.decode() if old is not None else ""
        new = with_block(text, body, comment)
        if old is not None and new == text:
            return False
        if old is None and body is None:
            return False
        mode = self.mode(path) if old is not None else mode
        line = f"# write {path} ({len(new.encode())} bytes, mode {mode:o})"
        if self.dry_run:
            self._change(path, line, ("file", new.encode(), mode))
            self._diff(path, None if old is None else text, new)
            if validate:
                self.emit(f"# validate {path} with {getattr(validate, 'shown', 'its checker')}")
            return True
        if validate:
            self._validate(path, new.encode(), mode, validate)
        backup = self._backup(path)
        atomic_write(path, new.encode(), mode)
        self._note(path, "block" if old is not None else "owned", backup, line)
        return True

    def ensure_dir(self, path: Path, mode: int = 0o755) -> bool:
        path = Path(path)
        if self.is_dir(path) and self.mode(path) == mode:
            return False
        line = f"# mkdir -p -m {mode:o} {path}"
        if self.dry_run:
            self._change(path, line, ("dir", None, mode))
            return True
        existed = path.is_dir()
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, mode)
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
        path.parent.mkdir(parents=True, exist_ok=True)
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
        else:
            path.unlink()
        self._change(path, f"# rm {path}", ())
        # A file the tool created and now removed leaves undo nothing to do
        # (undo skips a missing "owned" file): drop it from the record, or the
        # state grows with every node ever removed (a menu each) and is
        # rewritten whole after every step.
        rec = self.record.get(str(path))
        if rec and rec.get("kind") == "owned" and not rec.get("backup"):
            del self.record[str(path)]
        return True

    def ensure_mode(self, path: Path, mode: int) -> bool:
        """chmod only. Not recorded for undo: a mode is repaired, not owned."""
        path = Path(path)
        if self.mode(path) == mode:
            return False
        if not self.dry_run:
            os.chmod(path, mode)
        old = self._pretended(path) or (("dir", None) if path.is_dir() else ("file", self._read(path)))
        self._change(path, f"# chmod {mode:o} {path}", (old[0], old[1], mode))
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
        dst.parent.mkdir(parents=True, exist_ok=True)
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
