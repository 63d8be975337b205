"""One log directory per run: ``<state dir>/logs/<YYYYmmdd-HHMMSS>-<pid>/<step>.log``.

``logs/last`` points at the newest run's directory; the last KEEP runs are
kept and older ones deleted, so the log of a step that failed two runs ago
is still there (0.1 overwrote ``logs/<step>.log`` on every run). The
directory is made on the first step's log, never in a dry-run.
"""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

KEEP = 10
RUN_DIR = re.compile(r"^\d{8}-\d{6}-\d+(\.\d+)?$")


class RunLogs:
    def __init__(self, state_dir: Path, keep: int = KEEP):
        self.root = Path(state_dir) / "logs"
        self.keep = keep
        self._dir: Path | None = None

    def path(self, step: str) -> Path:
        """Where this run writes the log of step (the run's directory is made now)."""
        if self._dir is None:
            self._dir = self._start()
        return self._dir / f"{step}.log"

    def _start(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        base = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        # A second pipeline of this process in the same second (doctor, tests)
        # gets the next suffix, never a pruned one's name again.
        seqs = [int(p.suffix[1:] or 0) for p in self.root.glob(base + "*") if p.name.split(".")[0] == base]
        name = f"{base}.{max(seqs) + 1}" if seqs else base
        run_dir = self.root / name
        run_dir.mkdir()
        # Replace the symlink atomically: a reader never finds `last` missing.
        tmp = self.root / f".last.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(name)
        os.replace(tmp, self.root / "last")
        self.prune()
        return run_dir

    def runs(self) -> list[Path]:
        """The run directories, oldest first (their names sort by start time)."""
        found = [p for p in self.root.iterdir() if RUN_DIR.match(p.name) and p.is_dir() and not p.is_symlink()]
        # Runs on one state dir follow each other (the run lock); a directory's
        # mtime is coarse (a jiffy): a second run of one process in the same
        # second and jiffy is ordered by its suffix.
        return sorted(found, key=lambda p: (p.name[:15], p.stat().st_mtime_ns, int(p.suffix[1:] or 0)))

    def prune(self) -> list[Path]:
        """Delete all but the newest `keep` run directories; returns the deleted."""
        old = self.runs()[:-self.keep] if self.keep else self.runs()
        for p in old:
            shutil.rmtree(p, ignore_errors=True)
        return old
