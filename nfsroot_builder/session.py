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

from . import chroot, versions
from . import config as config_mod
from .context import APT_CACHE, DEFAULT_STATE_ROOT, Context
from .errors import Interrupted, UsageError
from .files import FileOps
from .pipeline import Pipeline, Progress
from .runner import Runner
from .state import RunLock, State, now


def state_dir_for(cfg: config_mod.Config, prefix: Path, state_dir: Path | None) -> Path:
    if state_dir:
        return Path(state_dir).absolute()
    return prefix / str(DEFAULT_STATE_ROOT).lstrip("/") / cfg.name


def emit_stdout(line: str) -> None:
    print(line, flush=True)


def make_context(cfg: config_mod.Config, *, prefix: Path = Path("/"), state_dir: Path | None = None,
                 dry_run: bool = False, runner: Runner | None = None,
                 emit: Callable[[str], None] = emit_stdout,
                 note: Callable[[str], None] = lambda msg: None, version: str | int = "build",
                 seed: str | None = None) -> Context:
    """The run's context. version: "build" (the version this config builds:
    versions.target), "current" (what nodes get: the lab, doctor, undo), or
    a version id (root switch). seed: see versions.target."""
    prefix = Path(prefix).absolute()
    if not config_mod.SAFE_PATH.match(str(prefix)):
        # The prefix is part of every served path (exports, root-path, menus).
        raise UsageError(f"--prefix {str(prefix)!r}: may hold only letters, digits and . _ + ~ - / "
                         "(it becomes part of the paths in exports, dhcpd.conf and boot menus)")
    sdir = state_dir_for(cfg, prefix, state_dir)
    state = State.load(sdir / "state.json", readonly=dry_run)
    runner = runner or Runner(dry_run=dry_run, emit=emit)
    runner.dry_run = dry_run
    base = cfg
    versions.adopt_legacy(cfg, state, prefix / cfg.root.path.lstrip("/"), now())
    if version == "build":
        target = versions.target(cfg, state, seed)
        versions.begin(cfg, state, target, now())
        vid, path, serve = target.vid, target.path, None
    else:
        vid = state.current_version() or 1 if version == "current" else int(version)
        recs = state.versions()
        if recs and vid not in recs:
            raise UsageError(f"no root version {versions.label(vid)}; `nfsroot-build root list` shows them")
        path = recs[vid]["path"] if vid in recs else versions.path_of(cfg.root.path, vid)
        # Menus, DHCP, the lab and doctor serve that version as it was built.
        serve = versions.serve_of(recs[vid]) if vid in recs else None
    cfg = versions.with_root_path(cfg, path, serve)
    root = prefix / cfg.root.path.lstrip("/")
    # Not recorded for undo: the root (--purge-root removes it whole) and the
    # package caches every build shares (outside any staging prefix).
    files = FileOps(dry_run=dry_run, emit=emit, backup_dir=sdir / "backup",
                    undo=state.undo, untracked=[root, APT_CACHE.parent], build=cfg.name)
    ctx = Context(config=cfg, runner=runner, files=files, state=state, prefix=prefix,
                  state_dir=sdir, emit=emit, note=note, version_id=vid, base_config=base, seed_path=seed)
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


def guarded_paths(ctx: Context) -> dict[str, Path]:
    """What a run changes besides its state: locked too, so that a run with
    another --state-dir cannot work on the same root at the same time.

    Not the server files (/etc, dhcpd.conf) nor the TFTP root as a whole:
    another build of the same server (another name, root and state dir)
    may run at the same time (docs/builds.md). Its blocks and drop-ins are
    its own, FileOps.managed_block locks a file for the moment it changes
    its block, and the shared loader files are the same bytes from either."""
    return {"the root": ctx.root, "the build's TFTP directory": ctx.tftp_root / ctx.config.name}


@contextlib.contextmanager
def locked(ctx: Context):
    """The whole run under one lock; a dry-run takes none (it writes nothing).

    Under the lock, what an interrupted (SIGKILLed) run left in the root -
    processes, mounts, a chroot session's policy-rc.d and resolv.conf - is
    undone before anything else (chroot.recover): no other run can own it;
    and again when this run stops with an error or a signal inside a step.
    Only then: a mount under the root with no run of ours behind it (an
    admin's) is left alone, and `undo --purge-root` refuses to remove it.
    """
    if ctx.runner.dry_run:
        yield
        return
    with RunLock(ctx.state_dir, guarded_paths(ctx)):
        # Re-read under the lock: another run may have finished meanwhile.
        ctx.state.reload()
        versions.relock(ctx, now())
        if ctx.state.steps_started() or chroot.session_interrupted(ctx):
            for done in chroot.recover(ctx):
                ctx.note(f"after an interrupted run: {done}")
        locked_at = now()
        try:
            yield
        except BaseException:
            # Stopped half-way in a step (Ctrl-C, SIGTERM, a failure): no
            # process or mount stays in the root - a bootstrapper's own proc
            # and sys mounts included, which no chroot session undoes.
            if ctx.state.steps_started(since=locked_at):
                with chroot.signals_held():
                    chroot.recover(ctx)
            raise


def pipeline(ctx: Context, progress: Progress | None = None, only_steps: tuple[str, ...] | None = None) -> Pipeline:
    """The pipeline of `all`, `run` and `status`: before the first step runs,
    the preflight (`check`'s, with the mirror and package-name lookup when a
    step that downloads will run) must pass, so nothing changes otherwise.
    only_steps: these steps of the list, in its order (a group root's build:
    groups.ROOT_STEPS)."""
    from .preflight import require
    from .steps import STEPS

    def preflight(steps) -> None:
        require(ctx, mirror=any(s.uses_mirror for s in steps))
    steps = STEPS if only_steps is None else tuple(s for s in STEPS if s.name in only_steps)
    return Pipeline(ctx, steps, progress=progress, preflight=preflight)


def log_stderr(msg: str) -> None:
    print(msg, file=sys.stderr)
