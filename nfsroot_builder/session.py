"""Assembling a run: config -> context (runner, files, state) -> pipeline.

Kept out of cli.py so tests and the lab build the same objects the CLI does.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from . import config as config_mod
from .context import APT_CACHE, DEFAULT_STATE_ROOT, Context
from .errors import Interrupted, UsageError
from .files import FileOps
from .pipeline import Pipeline
from .runner import Runner
from .state import RunLock, State


def state_dir_for(cfg: config_mod.Config, prefix: Path, state_dir: Path | None) -> Path:
    if state_dir:
        return Path(state_dir).absolute()
    return prefix / str(DEFAULT_STATE_ROOT).lstrip("/") / cfg.name


def emit_stdout(line: str) -> None:
    print(line, flush=True)


def make_context(cfg: config_mod.Config, *, prefix: Path = Path("/"), state_dir: Path | None = None,
                 dry_run: bool = False, runner: Runner | None = None,
                 emit: Callable[[str], None] = emit_stdout,
                 note: Callable[[str], None] = lambda msg: None) -> Context:
    prefix = Path(prefix).absolute()
    if not config_mod.SAFE_PATH.match(str(prefix)):
        # The prefix is part of every served path (exports, root-path, menus).
        raise UsageError(f"--prefix {str(prefix)!r}: may hold only letters, digits and . _ + ~ - / "
                         "(it becomes part of the paths in exports, dhcpd.conf and boot menus)")
    sdir = state_dir_for(cfg, prefix, state_dir)
    state = State.load(sdir / "state.json", readonly=dry_run)
    runner = runner or Runner(dry_run=dry_run, emit=emit)
    runner.dry_run = dry_run
    root = prefix / cfg.root.path.lstrip("/")
    # Not recorded for undo: the root (--purge-root removes it whole) and the
    # package caches every build shares (outside any staging prefix).
    files = FileOps(dry_run=dry_run, emit=emit, backup_dir=sdir / "backup",
                    undo=state.undo, untracked=[root, APT_CACHE.parent])
    ctx = Context(config=cfg, runner=runner, files=files, state=state, prefix=prefix,
                  state_dir=sdir, emit=emit, note=note)
    ctx._dry_run = dry_run
    return ctx


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise UsageError(f"{what} changes the system and must run as root "
                         "(use --dry-run to see the plan as any user)")


@contextlib.contextmanager
def signals_raise():
    """SIGTERM (and SIGHUP) unwind like Ctrl-C, so every mount is undone."""
    def handler(signum, frame):
        raise Interrupted(f"stopped by signal {signal.Signals(signum).name}")
    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def locked(ctx: Context):
    """The whole run under one lock; a dry-run takes none (it writes nothing)."""
    if ctx.runner.dry_run:
        yield
        return
    with RunLock(ctx.state_dir):
        # Re-read under the lock: another run may have finished meanwhile.
        ctx.state.reload()
        yield


def pipeline(ctx: Context, progress: Callable[[str], None] = lambda m: None) -> Pipeline:
    from .steps import STEPS
    return Pipeline(ctx, STEPS, progress=progress)


def log_stderr(msg: str) -> None:
    print(msg, file=sys.stderr)
