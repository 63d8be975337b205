"""Processes and mounts, written once: stop what we started, find what is
mounted or running under a path, keep a started command tree tied to us.

Nothing here starts a process (that is the Runner's job); these helpers
signal, wait and read /proc.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path

PR_SET_PDEATHSIG = 1   # prctl(2)

# A command started "contained" runs as PID 1 of its own PID namespace under
# `unshare --kill-child`, and unshare itself gets PR_SET_PDEATHSIG: when this
# process dies - even by SIGKILL - the kernel kills unshare, unshare's child
# (the namespace's init) and with it every process of the namespace
# (pid_namespaces(7): "If the init process of a PID namespace terminates, the
# kernel terminates all of the processes in the namespace via a SIGKILL").
# That includes what a maintainer script double-forks or setsid()s away.
# Not for commands that start daemons (they would die with the command) or
# that mount proc (the mount would belong to a namespace that is gone).
# The namespace's init is a shell that waits for argv (it runs it as a child:
# not the last command, so no exec): PR_SET_PDEATHSIG is cleared when a
# program changes its user or group IDs or execs a set-user-ID program
# (prctl(2)), which apt-get does - as init itself it survived kill -9.
CONTAIN = ["unshare", "--pid", "--fork", "--kill-child", "/bin/sh", "-c", '"$@"; exit $?', "contained"]


def die_with_parent() -> Callable[[], None]:
    """A preexec function: the child gets SIGKILL when the process that
    started it dies. Checks the parent afterwards: it may have died between
    fork() and prctl() (then there is no one left to signal us)."""
    parent = os.getpid()

    def preexec() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(137)
    return preexec


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (proc(5), stat field
    22): with the PID it names one process, even after the PID is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: split after the last ')'.
    return int(stat[stat.rindex(")") + 2:].split()[19])


def running(pid: int, started: int | None = None) -> bool:
    """True if pid runs (and, given ``started``, is still the same process).
    A zombie does not count: it holds no files and no mounts."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return False
    return started is None or int(fields[19]) == started


def stop(pids: Iterable[int], *, grace: float = 5.0, alive: Callable[[int], bool] = running,
         poll: float = 0.05, reap_children: bool = True, kill_wait: float = 5.0) -> list[int]:
    """SIGTERM, wait up to ``grace`` seconds, SIGKILL what is left, wait up
    to ``kill_wait`` seconds for it to go (a process in uninterruptible I/O,
    dpkg's fsync, dies only when the I/O is done). ``alive(pid)`` says whether a PID is still the process we mean
    (callers check the program or the start time: PIDs get reused); only
    those are signalled. ``reap_children=False`` when another waiter (sh's
    thread) collects the exit status. Returns the PIDs that were signalled."""
    targets = [p for p in dict.fromkeys(pids) if alive(p)]
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, kill_wait)):
        left = [p for p in targets if alive(p)]
        if not left:
            break
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if reap_children:
                reap(left)
            if not any(alive(p) for p in left):
                break
            time.sleep(poll)
    if reap_children:
        reap(targets)
    return targets


def reap(pids: Iterable[int]) -> None:
    """Collect the exit status of those that are our own children."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def _unescape(field: str) -> str:
    # /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo (proc(5)).
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts_under(path: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> list[str]:
    """Mount points at or below path, deepest first (unmount in this order)."""
    path = Path(os.path.realpath(path)) if Path(path).exists() else Path(path).absolute()
    try:
        lines = mountinfo.read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        parts = line.split()
        if len(parts) > 4:
            point = Path(_unescape(parts[4]))
            if point == path or point.is_relative_to(path):
                found.append(str(point))
    # Stable for equal depth: a point mounted twice is unmounted twice.
    return sorted(found, key=lambda p: p.count("/"), reverse=True)


def processes_under(path: Path) -> list[int]:
    """PIDs whose root directory is at or below path: what runs chrooted in
    it (an apt-get, a maintainer script) and keeps its mounts busy. (Not by
    working directory: that may be an admin's shell.)"""
    top = os.path.realpath(path)
    if top == "/":
        return []   # every process; the build root is never / (config refuses it)
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            target = os.readlink(f"/proc/{entry.name}/root")
        except OSError:   # gone, or a kernel thread
            continue
        if target == top or target.startswith(top + "/"):
            found.append(int(entry.name))
    return found
