"""Checkpoints: one JSON file per build, rewritten atomically after every
step, guarded by an exclusive lock for the whole run.

The state never holds secrets: fingerprints of secret inputs are hashes.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
from datetime import datetime
from pathlib import Path

from .errors import Locked, StateError
from .files import UndoRecord, atomic_write

STATE_VERSION = 1


def now() -> str:
    # Microseconds: "ran after" comparisons between steps must not tie.
    return datetime.now().astimezone().isoformat(timespec="microseconds")


def encode(data: dict) -> str:
    """Indented JSON, except the file record, which is one line: it has an
    entry per file the tool wrote (a menu per node), json's indenting encoder
    is pure Python, and the state is rewritten twice per step (10,000 nodes:
    31 ms -> 9 ms a save)."""
    files = data.get("files")
    rest = {k: v for k, v in data.items() if k != "files"}
    if not isinstance(files, dict) or not rest:
        return json.dumps(data, indent=2, sort_keys=True) + "\n"
    head = json.dumps(rest, indent=2, sort_keys=True)   # ends with "\n}"
    return head[:-2] + ',\n  "files": ' + json.dumps(files, sort_keys=True) + "\n}\n"


class State:
    """The build's checkpoints: steps, pending restarts and the undo record.

    The only owner of what is saved: everything else reads and changes the
    state through these methods (the undo record through ``undo``, which
    FileOps notes every change into).
    """

    def __init__(self, path: Path, data: dict | None = None, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly   # dry-run: the state changes in memory only
        self.undo = UndoRecord()
        self._set(data or {"version": STATE_VERSION, "steps": {}, "pending_restarts": [], "files": {}})

    def _set(self, data: dict) -> None:
        data = dict(data)
        self.undo.replace(data.pop("files", {}))
        data.setdefault("pending_restarts", [])
        self._data = data

    @classmethod
    def load(cls, path: Path, readonly: bool = False) -> State:
        path = Path(path)
        if not path.exists():
            return cls(path, readonly=readonly)
        return cls(path, cls._read(path), readonly)

    @staticmethod
    def _read(path: Path) -> dict:
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError) as e:
            # Never silently reset: the state knows which files are ours (undo).
            raise StateError(f"state file {path} is unreadable or corrupt ({e}); "
                             f"move it away to start over") from None
        if not isinstance(data, dict) or not isinstance(data.get("steps"), dict) \
                or not isinstance(data.get("files", {}), dict):
            raise StateError(f"state file {path} is not an nfsroot-build state; move it away to start over")
        if data.get("version", 0) > STATE_VERSION:
            raise StateError(f"state file {path} was written by a newer nfsroot-build "
                             f"(state version {data['version']} > {STATE_VERSION})")
        return data

    def reload(self) -> None:
        """Read the file again (under the run lock: another run may have
        finished since this one loaded it). The undo record object stays the
        same, so a FileOps bound to it sees the fresh record."""
        if self.path.exists():
            self._set(self._read(self.path))

    def save(self) -> None:
        if self.readonly:
            return
        atomic_write(self.path, encode({**self._data, "files": dict(self.undo.entries_view())}).encode(), 0o600)

    # -- steps ----------------------------------------------------------------
    def step(self, name: str) -> dict:
        return dict(self._data["steps"].get(name, {}))

    def set_step(self, name: str, **fields) -> None:
        self._data["steps"].setdefault(name, {}).update(fields)

    def start_step(self, name: str, **fields) -> None:
        """Mark a step running; the error of its last failed run goes."""
        rec = self._data["steps"].setdefault(name, {})
        rec.pop("error", None)
        rec.update(fields, status="running")

    def outputs(self, name: str) -> dict:
        return self._data["steps"].get(name, {}).get("outputs", {})

    def steps_started(self, since: str = "") -> list[str]:
        """Steps left "running" (a run stopped inside them) or, with since (a
        now() timestamp), started at or after it."""
        return [name for name, rec in self._data["steps"].items()
                if rec.get("status") == "running" or (since and rec.get("started", "") >= since)]

    # -- versions (nfsroot_builder.versions decides; the state keeps) ---------
    def versions(self) -> dict[int, dict]:
        """Version id -> its record (path, status building/ready/failed, created, ...)."""
        return {int(k): dict(v) for k, v in self._data.get("versions", {}).get("list", {}).items()}

    def set_version(self, vid: int, **fields) -> None:
        v = self._data.setdefault("versions", {}).setdefault("list", {})
        v.setdefault(str(vid), {}).update(fields)

    def drop_version(self, vid: int) -> None:
        v = self._data.setdefault("versions", {})
        v.get("list", {}).pop(str(vid), None)
        v["pins"] = {n: p for n, p in v.get("pins", {}).items() if p != vid}
        if v.get("previous") == vid:
            v["previous"] = None

    def current_version(self) -> int | None:
        return self._data.get("versions", {}).get("current")

    def previous_version(self) -> int | None:
        return self._data.get("versions", {}).get("previous")

    def set_current(self, vid: int, previous: int | None = -1) -> None:
        """vid becomes current; the old current becomes previous (or previous= given)."""
        v = self._data.setdefault("versions", {})
        old = v.get("current")
        v["previous"] = (old if old != vid else v.get("previous")) if previous == -1 else previous
        v["current"] = vid

    def pins(self) -> dict[str, int]:
        return dict(self._data.get("versions", {}).get("pins", {}))

    def set_pins(self, pins: dict[str, int]) -> None:
        self._data.setdefault("versions", {})["pins"] = dict(pins)

    # -- replicated boot servers (nfsroot_builder.replicas decides) ------------
    def replicas(self) -> dict[str, dict]:
        """Replica name -> what the last `sync` left there (versions, when)."""
        return {k: dict(v) for k, v in self._data.get("replicas", {}).items()}

    def set_replica(self, name: str, **fields) -> None:
        self._data.setdefault("replicas", {}).setdefault(name, {}).update(fields)

    # -- restarts -------------------------------------------------------------
    @property
    def pending_restarts(self) -> list[str]:
        return list(self._data["pending_restarts"])

    def add_restarts(self, services) -> None:
        self._data["pending_restarts"] = sorted(set(self._data["pending_restarts"]) | set(services))

    def restarted(self, service: str) -> None:
        self._data["pending_restarts"] = [s for s in self._data["pending_restarts"] if s != service]

    @property
    def services_before(self) -> dict[str, str]:
        """service -> what it was ("active", "inactive", "failed", ...) before
        this build first restarted it: undo puts it back to that."""
        return dict(self._data.get("services_before", {}))

    def first_restart(self, service: str, was: str) -> None:
        """Record a service's state before its first restart by this build (kept once)."""
        self._data.setdefault("services_before", {}).setdefault(service, was)

    # -- undo -----------------------------------------------------------------
    @property
    def files(self) -> dict:
        """The undo record as a read-only mapping (path -> record)."""
        return self.undo.entries_view()

    def left_by_undo(self) -> dict[str, str]:
        """Path -> "dir" | "owned": what this build's undo kept although the
        tool made it, because something else still lived there (another
        build's file or block). Any build's later undo removes it once it is
        empty (undo.py)."""
        return dict(self._data.get("left_by_undo", {}))

    def set_left_by_undo(self, left: dict[str, str]) -> None:
        if left:
            self._data["left_by_undo"] = dict(left)
        else:
            self._data.pop("left_by_undo", None)

    def keep_only_left_by_undo(self) -> None:
        """`undo --purge-root` with something left for another build's undo:
        a state that holds nothing else (no step, no file record)."""
        left = self.left_by_undo()
        self._set({"version": STATE_VERSION, "steps": {}, "pending_restarts": [], "files": {}})
        self.set_left_by_undo(left)

    def forget_undone(self, keep_steps) -> None:
        """After undo: nothing recorded as ours, no restart pending; only the
        steps in keep_steps (results in the root, packages) stay done."""
        self.undo.clear()
        self._data["pending_restarts"] = []
        self._data.pop("services_before", None)
        self._data["steps"] = {k: v for k, v in self._data["steps"].items() if k in keep_steps}


# Locks on what a run changes, keyed by its resolved path: two runs over the
# same root (or TFTP root, or server files) exclude each other whatever their
# state dirs. /run/lock is the FHS place for them (and a tmpfs: a reboot
# clears them, and flock(2) locks die with their holder anyway).
PATH_LOCKS = Path("/run/lock/nfsroot-build")


def _try_flock(path: Path) -> int | None:
    """An fd holding an exclusive flock on path, or None if another holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


class RunLock:
    """flock(2) on <state dir>/lock and on a lock per path the run changes
    (``guarded``: label -> path, e.g. "the root" -> /srv/nfsroot/x); a second
    run gets Locked (exit 3) naming the holder's PID, state dir and what it holds."""

    def __init__(self, directory: Path, guarded: dict[str, Path] | None = None,
                 lock_dir: Path | None = None):
        self.path = Path(directory) / "lock"
        self.guarded = guarded or {}
        self.lock_dir = lock_dir or PATH_LOCKS
        self.fds: list[int] = []

    @property
    def fd(self) -> int | None:   # the state dir's lock
        return self.fds[0] if self.fds else None

    def path_lock(self, path: Path) -> Path:
        key = hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:24]
        return self.lock_dir / f"{key}.lock"

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = _try_flock(self.path)
        if fd is None:
            holder = self.path.with_name("lock.pid")
            pid = holder.read_text().strip() if holder.exists() else "?"
            raise Locked(f"another nfsroot-build run (pid {pid}) holds {self.path}")
        self.fds.append(fd)
        self.path.with_name("lock.pid").write_text(f"{os.getpid()}\n")
        try:
            if self.guarded:
                self.lock_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
            # In the caller's order (the root first): never waits, so no deadlock.
            for label, path in self.guarded.items():
                lock = self.path_lock(path)
                fd = _try_flock(lock)
                if fd is None:
                    raise Locked(f"another nfsroot-build run ({self._holder(lock)}) is changing "
                                 f"{label} {path}; wait for it or stop it")
                self.fds.append(fd)
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps({"pid": os.getpid(), "state_dir": str(self.path.parent),
                                          "path": str(path)}).encode() + b"\n", 0)
        except BaseException:
            self.__exit__()
            raise
        return self

    @staticmethod
    def _holder(lock: Path) -> str:
        try:
            info = json.loads(lock.read_text())
            return f"pid {info['pid']}, state dir {info['state_dir']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "pid ?"

    def __exit__(self, *exc):
        if self.fds:
            self.path.with_name("lock.pid").unlink(missing_ok=True)
        for fd in reversed(self.fds):
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self.fds.clear()
        return False
