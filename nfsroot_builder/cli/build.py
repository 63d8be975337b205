"""The build commands: init, list, check, all, run, status."""
from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .. import groups, replicas, session, versions
from .common import (
    DEFAULT_CONFIG,
    ConfigOpt,
    DryOpt,
    FullOpt,
    JsonOpt,
    PrefixOpt,
    StateOpt,
    StepArg,
    ascii_only,
    complete_step,
    err,
    guarded,
    known_step,
    make_ctx,
    say,
    steps_epilog,
)
from .progress import ConsoleProgress
from .transcript import print_transcript, summarize

build_app = typer.Typer()


@build_app.command()
def init(example: Annotated[str, typer.Option(help="which example: server (today's defaults, placeholders "
                                                   "`check` flags), seed (the Kerrighed page) or lab")] = "server"):
    """Print a commented example config (default: a server's, with placeholders to replace)."""
    try:
        text = resources.files("nfsroot_builder.examples").joinpath(f"{example}.toml").read_text()
    except FileNotFoundError:
        print(f"error: no example named {example!r} (server, seed, lab)", file=sys.stderr)
        raise typer.Exit(2) from None
    sys.stdout.write(text)


@build_app.command("list")
def list_steps():
    """The steps in order, one line each."""
    from ..steps import STEPS
    width = max(len(s.name) for s in STEPS)
    for i, s in enumerate(STEPS, 1):
        print(f"{i:2}. {s.name:<{width}}  {s.summary()}")


@build_app.command()
@guarded
def check(config: ConfigOpt = DEFAULT_CONFIG, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None):
    """Validate the config and run the preflight checks; change nothing."""
    ctx = make_ctx(config, prefix, state_dir, dry_run=True)
    from ..preflight import preflight
    problems = preflight(ctx)
    for level, msg in problems:   # the check's result: stdout (errors that stop it: stderr)
        print(f"{level}: {msg}")
    if any(level == "fail" for level, _ in problems):
        raise typer.Exit(1)
    print(f"{config}: ok ({len(ctx.config.nodes)} nodes, layout {ctx.config.root.layout}, "
              f"loader {ctx.config.boot.loader})")


def _host_notes(ctx) -> None:
    """The host checks' notes and warnings (under --prefix a host problem is a
    note); their failures stop the run in the preflight, before any change."""
    from ..hostcheck import host_checks
    for level, msg in host_checks(ctx):
        if level in ("note", "warn"):
            say(f"{level}: {msg}")


def _run(config, prefix, state_dir, dry_run, *, resume=False, from_step=None, to_step=None, only=None,
         full=False, group=None):
    for name in (from_step, to_step, only):
        known_step(name)
    # A dry-run's transcript is collected, then printed after its summary (transcript.py).
    lines: list[str] = []
    ctx = make_ctx(config, prefix, state_dir, dry_run, emit=lines.append if dry_run else None)
    if not dry_run:
        session.require_root("a real run")
    _host_notes(ctx)
    out = Console(file=sys.stdout, highlight=False)
    # A dry-run's steps take milliseconds: no live line. On a terminal its
    # transcript carries the step headings, so they are not printed twice.
    progress = ConsoleProgress(err, live=None if not dry_run else False) \
        if not (dry_run and out.is_terminal) else None
    report: list[tuple[str, str]] = []
    try:
        targets = groups.run_targets(ctx.config, group, from_step, to_step, only)
        subs = [(gr, groups.context(ctx, gr, dry_run=dry_run), sub_range) for gr, sub_range in targets.group_roots]
        pipes = {gr.key: session.pipeline(sub, progress=progress, only_steps=groups.ROOT_STEPS)
                 for gr, sub, _ in subs}
        main_pipe = session.pipeline(ctx, progress=progress)
        if subs:
            # Every root's preflight before the first change (a typo in [root]
            # must not stop the run after a group root was built).
            for gr, _sub, (start, stop, one) in subs:
                pipes[gr.key].check(resume=resume, from_step=start, to_step=stop, only=one)
            if targets.main:
                main_pipe.check(resume=resume, from_step=from_step, to_step=to_step, only=only)
        for gr, sub, (start, stop, one) in subs:
            # Each group root first (its own lock, state and version), so the
            # server steps below serve the version it made current.
            with session.locked(sub):
                sub_report = pipes[gr.key].run(resume=resume, from_step=start, to_step=stop, only=one)
                if not dry_run and (done := versions.finish_run(sub, sub_report, versions.ROOT_FINISHING_STEPS)):
                    err.print(f"group root {gr.key}: {done}", markup=False)
            report += [(f"{name}@{gr.key}", what) for name, what in sub_report if what != "not selected"]
        if targets.main:
            with session.locked(ctx):
                main_report = main_pipe.run(resume=resume, from_step=from_step, to_step=to_step, only=only)
                report = main_report + report
                if not dry_run:
                    done = versions.finish_run(ctx, main_report)
                    if done:
                        err.print(done, markup=False)
    finally:
        if dry_run and lines:   # what was planned up to a failure is shown too
            for line in summarize(lines, ctx.root).lines(ctx.staging):
                err.print(line, markup=False)
            print_transcript(lines, out, full=full)
        elif progress:   # a dry-run's times measure nothing
            progress.summary()
    ran = [r for r in report if r[1] in ("changed", "unchanged")]
    changed = [name for name, what in ran if what == "changed"]
    skipped = sum(1 for r in report if r[1] == "done")
    if dry_run:
        err.print(f"dry-run: would run {len(ran)} step(s), {skipped} skipped as done; "
                  + (f"would change: {', '.join(changed)}" if changed else "nothing would change")
                  + "; nothing was changed", markup=False)
    elif changed:
        err.print(f"{len(ran)} step(s) ran, {skipped} skipped as done; changed: {', '.join(changed)}")
    else:
        err.print(f"{len(ran)} step(s) ran, {skipped} skipped as done; nothing changed")


@build_app.command("all")
@guarded
def all_(config: ConfigOpt = DEFAULT_CONFIG, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None,
         dry_run: DryOpt = False, full: FullOpt = False,
         resume: Annotated[bool, typer.Option("--resume", help="skip steps that are done and not stale")] = False,
         from_step: Annotated[str | None, typer.Option("--from", help="start at this step",
                                                       autocompletion=complete_step)] = None,
         to_step: Annotated[str | None, typer.Option("--to", help="stop after this step",
                                                     autocompletion=complete_step)] = None):
    """Run every step in order."""
    _run(config, prefix, state_dir, dry_run, resume=resume, from_step=from_step, to_step=to_step, full=full)


@build_app.command(epilog=steps_epilog())
@guarded
def run(step: StepArg, config: ConfigOpt = DEFAULT_CONFIG, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None,
        dry_run: DryOpt = False, full: FullOpt = False,
        group: Annotated[str | None, typer.Option("--group", help="run a root step on this [[group]]'s root "
                                                                   "(default: the [root] one)")] = None):
    """Run one step (a root step on one group's root with --group)."""
    _run(config, prefix, state_dir, dry_run, only=step, full=full, group=group)


@build_app.command()
@guarded
def status(config: ConfigOpt = DEFAULT_CONFIG, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None, as_json: JsonOpt = False):
    """Each step: done / pending / failed / interrupted / stale, and why (and the log of a failed step)."""
    ctx = make_ctx(config, prefix, state_dir, dry_run=True)
    rows, version = _status_rows(ctx)
    # [[group]]s with roots of their own: their root steps and versions (groups.py).
    sections = []
    for gr in groups.group_roots(ctx.config):
        sub = groups.context(ctx, gr, dry_run=True)
        sub_rows, sub_version = _status_rows(sub, groups.ROOT_STEPS)
        sections.append({"group_root": gr.key, "groups": list(gr.groups), "path": sub.config.root.path,
                         "steps": sub_rows, "version": sub_version})
    if as_json:
        servers = {"servers": replicas.status(ctx)} if ctx.config.servers else {}
        print(json.dumps({"steps": rows, "pending_restarts": ctx.state.pending_restarts, "version": version,
                          **({"group_roots": sections} if ctx.config.group else {}), **servers}, indent=2))
        return
    building = version["target"] != version["current"]
    # Which root version `all` works on: the current one, or a new one it would build.
    print(f"root version: {version['target']} ({ctx.config.root.path})"
          + (f", to become current (now {version['current'] or 'none'})" if building else ", current"))
    out = Console(file=sys.stdout, highlight=False)
    if not out.is_terminal:   # a pipe or a file: plain columns, no box, no colour
        width = max(len(r["step"]) for r in rows)
        print(f"build {ctx.config.name}")
        for r in rows:
            print(f"{r['step']:<{width}}  {r['status']:<11}  {r['why']}".rstrip())
    else:
        # Here, not at the top: rich's table is ~8 ms of every command's start-up.
        from rich import box
        from rich.table import Table
        from rich.text import Text
        table = Table("step", "status", "why", title=f"build {ctx.config.name}",
                      box=box.ASCII if ascii_only() else box.HEAVY_HEAD)
        colour = {"done": "green", "stale": "yellow", "pending": "blue", "failed": "red", "interrupted": "red"}
        for r in rows:
            table.add_row(r["step"], Text(r["status"], style=colour[r["status"]]), Text(r["why"]))
        out.print(table)
    for r in rows:
        if r["log"]:   # outside the table: a path wrapped in a cell cannot be copied
            print(f"{r['step']} {r['status']}; its log: {r['log']}")
    for sec in sections:
        v = sec["version"]
        print(f"\ngroup root {sec['group_root']} (groups: {', '.join(sec['groups'])}): version {v['target']} "
              f"({sec['path']})" + (", current" if v["target"] == v["current"] else
                                    f", to become current (now {v['current'] or 'none'})"))
        width = max(len(r["step"]) for r in sec["steps"])
        for r in sec["steps"]:
            print(f"{r['step']:<{width}}  {r['status']:<11}  {r['why']}".rstrip())
            if r["log"]:
                print(f"{r['step']} {r['status']}; its log: {r['log']}")
    if ctx.config.servers:
        for line in replicas.status_lines(ctx):
            print(line)


def _status_rows(ctx, only_steps=None) -> tuple[list[dict], dict]:
    """status' rows (one per step) and the version record of one build or group root."""
    plans = session.pipeline(ctx, only_steps=only_steps).plan()
    rows = []
    for p in plans:
        rec = ctx.state.step(p.step.name)
        failed = p.status in ("failed", "interrupted")
        rows.append({"step": p.step.name, "status": p.status, "why": p.why, "finished": rec.get("finished"),
                     "log": rec.get("log") if failed else None})
    st = ctx.state
    cur = st.current_version()
    version = {"target": versions.label(ctx.version_id), "current": versions.label(cur) if cur else None,
               "previous": versions.label(st.previous_version()) if st.previous_version() else None,
               "pins": {n: versions.label(v) for n, v in st.pins().items()}}
    return rows, version
