"""The command line: parse, call the pipeline, map errors to exit codes.

Exit codes: 0 ok, 1 a step failed, 2 bad config or usage, 3 locked by
another run. Progress goes to stderr (rich); the dry-run transcript and
--json go to stdout, plain.
"""
from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from . import __version__, session
from . import config as config_mod
from .errors import Interrupted, NfsrootError, StepFailed

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  pretty_exceptions_enable=False,
                  help="Build the NFS root of a diskless Debian cluster and configure its boot server.")
err = Console(stderr=True, highlight=False, soft_wrap=True)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="cluster config (TOML)")]
PrefixOpt = Annotated[Path, typer.Option("--prefix", help="write every path under this staging directory")]
StateOpt = Annotated[Path | None, typer.Option("--state-dir", help="where the build's state lives")]
DryOpt = Annotated[bool, typer.Option("--dry-run", "-n", help="print every command and file change; change nothing")]

_debug = False


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
         version: Annotated[bool, typer.Option("--version", help="print the version")] = False) -> None:
    global _debug
    _debug = debug
    if version:
        print(__version__)
        raise typer.Exit(0)


def _fail(e: BaseException) -> None:
    code = getattr(e, "exit_code", 1)
    if isinstance(e, StepFailed) and isinstance(e.cause, Interrupted):
        code = Interrupted.exit_code
    print(f"error: {e}", file=sys.stderr)
    raise typer.Exit(code)


def guarded(fn):
    """Errors become one message and an exit code; tracebacks only with --debug."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with session.signals_raise():
                return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except NfsrootError as e:
            if _debug:
                raise
            _fail(e)
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            raise typer.Exit(130) from None
        except Exception as e:
            if _debug:
                raise
            print(f"internal error: {type(e).__name__}: {e} (run with --debug for the traceback)",
                  file=sys.stderr)
            raise typer.Exit(1) from None
    return wrapper


def _progress(msg: str) -> None:
    err.print(msg)


def _ctx(config: Path, prefix: Path, state_dir: Path | None, dry_run: bool):
    cfg = config_mod.load(config)
    return session.make_context(cfg, prefix=prefix, state_dir=state_dir, dry_run=dry_run,
                                note=lambda m: err.print(f"  [dim]{m}[/]"))


@app.command()
def init(example: Annotated[str, typer.Option(help="which example: seed (the Kerrighed page) or lab")] = "seed"):
    """Print a commented example config (the seed page's cluster)."""
    try:
        text = resources.files("nfsroot_builder.examples").joinpath(f"{example}.toml").read_text()
    except FileNotFoundError:
        print(f"error: no example named {example!r} (seed, lab)", file=sys.stderr)
        raise typer.Exit(2) from None
    sys.stdout.write(text)


@app.command("list")
def list_steps():
    """The steps in order, one line each."""
    from .steps import STEPS
    width = max(len(s.name) for s in STEPS)
    for i, s in enumerate(STEPS, 1):
        print(f"{i:2}. {s.name:<{width}}  {s.summary()}")


@app.command()
@guarded
def check(config: ConfigOpt, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None):
    """Validate the config and run the preflight checks; change nothing."""
    ctx = _ctx(config, prefix, state_dir, dry_run=True)
    from .preflight import preflight
    problems = preflight(ctx)
    for level, msg in problems:
        print(f"{level}: {msg}", file=sys.stderr)
    if any(level == "fail" for level, _ in problems):
        raise typer.Exit(1)
    err.print(f"{config}: ok ({len(ctx.config.nodes)} nodes, layout {ctx.config.root.layout}, "
              f"loader {ctx.config.boot.loader})")


def _run(config, prefix, state_dir, dry_run, *, resume=False, from_step=None, to_step=None, only=None):
    ctx = _ctx(config, prefix, state_dir, dry_run)
    if not dry_run:
        session.require_root("a real run")
    with session.locked(ctx):
        pipe = session.pipeline(ctx, progress=_progress)
        report = pipe.run(resume=resume, from_step=from_step, to_step=to_step, only=only)
    ran = [r for r in report if r[1] in ("changed", "unchanged")]
    changed = [name for name, what in ran if what == "changed"]
    skipped = sum(1 for r in report if r[1] == "done")
    verb = "would change" if dry_run else "changed"
    if changed:
        err.print(f"{len(ran)} step(s) ran, {skipped} skipped as done; {verb}: {', '.join(changed)}")
    else:
        err.print(f"{len(ran)} step(s) ran, {skipped} skipped as done; nothing changed")


@app.command("all")
@guarded
def all_(config: ConfigOpt, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None, dry_run: DryOpt = False,
         resume: Annotated[bool, typer.Option("--resume", help="skip steps that are done and not stale")] = False,
         from_step: Annotated[str | None, typer.Option("--from", help="start at this step")] = None,
         to_step: Annotated[str | None, typer.Option("--to", help="stop after this step")] = None):
    """Run every step in order."""
    _run(config, prefix, state_dir, dry_run, resume=resume, from_step=from_step, to_step=to_step)


@app.command()
@guarded
def run(step: str, config: ConfigOpt, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None,
        dry_run: DryOpt = False):
    """Run one step."""
    _run(config, prefix, state_dir, dry_run, only=step)


@app.command()
@guarded
def status(config: ConfigOpt, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None,
           as_json: Annotated[bool, typer.Option("--json", help="machine-readable, on stdout")] = False):
    """Each step: done / pending / failed / interrupted / stale, and why."""
    ctx = _ctx(config, prefix, state_dir, dry_run=True)
    plans = session.pipeline(ctx).plan()
    rows = [{"step": p.step.name, "status": p.status, "why": p.why,
             "finished": ctx.state.step(p.step.name).get("finished")} for p in plans]
    if as_json:
        print(json.dumps({"steps": rows, "pending_restarts": ctx.state.pending_restarts}, indent=2))
        return
    table = Table("step", "status", "why", title=f"build {ctx.config.name}")
    colour = {"done": "green", "stale": "yellow", "pending": "blue", "failed": "red", "interrupted": "red"}
    for r in rows:
        table.add_row(r["step"], f"[{colour[r['status']]}]{r['status']}[/]", r["why"])
    err.print(table)


# Sub-commands that live in their own modules (imported last: they use the helpers above).
from .cli_lab import lab_app

app.add_typer(lab_app, name="lab")

# doctor and undo (their logic: nfsroot_builder/doctor/, undo.py).
from .doctor import command as _doctor_command  # noqa: F401
