"""What every command group shares: the options, the context it builds, the
guard that maps errors to exit codes, and the shell completers.

Exit codes: 0 ok, 1 a step failed, 2 bad config or usage, 3 locked by
another run, 130 interrupted. Progress goes to stderr (rich); the dry-run
transcript and --json go to stdout, plain.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .. import config as config_mod
from .. import session
from ..errors import Interrupted, NfsrootError, StepFailed, UsageError

err = Console(stderr=True, highlight=False, soft_wrap=True)


class Flags:
    """The main callback's options, read by the guard."""
    debug = False


def complete_step(incomplete: str) -> list[str]:
    """Shell completion of a step name (`run STEP`, `--from`, `--to`)."""
    from ..steps import STEPS
    return [s.name for s in STEPS if s.name.startswith(incomplete)]


def complete_node(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of a node name, from the config given with -c (if any).

    A completion runs on every <Tab>: any error means no candidates, never
    a message in the middle of the admin's command line.
    """
    try:
        path = ctx.params.get("config")
        if not path:
            return []
        names = [n.name for n in config_mod.load(Path(path)).nodes]
    except Exception:
        return []
    return [n for n in names if n.startswith(incomplete) and n not in (ctx.params.get("nodes") or ())]


# Where `-c` points when it is not given: a server has one cluster config.
DEFAULT_CONFIG = Path("/etc/nfsroot-build/cluster.toml")
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="cluster config (TOML)", show_default=True)]
# -h as well as --help, on every command (click's default is --help only).
CONTEXT = {"help_option_names": ["-h", "--help"]}
PrefixOpt = Annotated[Path, typer.Option("--prefix", help="write every path under this staging directory")]
StateOpt = Annotated[Path | None, typer.Option("--state-dir", help="where the build's state lives")]
DryOpt = Annotated[bool, typer.Option("--dry-run", "-n", help="print every command and file change; change nothing")]
FullOpt = Annotated[bool, typer.Option("--full", help="with --dry-run on a terminal: every diff, none folded "
                                      "(on a pipe or file the transcript is always whole)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable, on stdout")]
StepArg = Annotated[str, typer.Argument(help="a step name ('nfsroot-build list')", autocompletion=complete_step)]


def known_step(name: str | None) -> None:
    """An unknown step name is a usage error that suggests the closest one."""
    import difflib

    from ..steps import STEPS
    names = [s.name for s in STEPS]
    if name is None or name in names:
        return
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UsageError(f"no step named {name!r}; {hint}'nfsroot-build list' shows them")


def steps_epilog() -> str:
    """The step names, for `run --help`."""
    from ..steps import STEPS
    # "\b": click prints this paragraph as it is, one step a line (no re-wrap at a dash).
    return "\b\nSteps, in order ('nfsroot-build list' says what each does):\n" + \
        "\n".join(f"  {s.name}" for s in STEPS)


def ascii_only() -> bool:
    """True when the locale is not UTF-8 (LC_ALL=C): tables are drawn in ASCII.

    Python's stdout is UTF-8 even then (PEP 540's UTF-8 mode for the C
    locale), so the encoding cannot tell; the locale variables can.
    """
    import os
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        if value := os.environ.get(name):
            return "utf-8" not in value.lower().replace("utf8", "utf-8")
    return True


def say(line: str) -> None:
    """A plain line on stderr (no rich markup: reasons quote "[nfsd]" verbatim)."""
    print(line, file=sys.stderr, flush=True)


def require_config(config: Path) -> None:
    """-c left out and no config at the default place: say how to make one."""
    if config == DEFAULT_CONFIG and not config.exists():
        raise UsageError(f"no -c given and {DEFAULT_CONFIG} does not exist; write it with "
                         f"`nfsroot-build init > {DEFAULT_CONFIG}` (then edit it) or pass -c FILE")


def make_ctx(config: Path, prefix: Path, state_dir: Path | None, dry_run: bool, *, json_stdout: bool = False,
             emit=None, version: str | int = "build"):
    """Load the config and build the run's context. With json_stdout the
    dry-run transcript goes to stderr, leaving stdout to the JSON; emit
    (a dry-run's collector) takes it instead of either."""
    require_config(config)
    cfg = config_mod.load(config)
    ctx = session.make_context(cfg, prefix=prefix, state_dir=state_dir, dry_run=dry_run,
                               emit=emit or (say if json_stdout else session.emit_stdout),
                               note=lambda m: err.print(f"  {m}", markup=False, style="dim"), version=version)
    ctx.config_file = Path(config).absolute()
    return ctx


def _exit_code(e: NfsrootError) -> int:
    if isinstance(e, StepFailed) and isinstance(e.cause, Interrupted):
        return Interrupted.exit_code
    return getattr(e, "exit_code", 1)


def guarded(fn):
    """Errors become one message and an exit code; tracebacks only with --debug."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with session.signals_raise():
                return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except NfsrootError as e:
            if Flags.debug:
                raise
            say(f"error: {e}")
            raise typer.Exit(_exit_code(e)) from None
        except KeyboardInterrupt:
            say("error: interrupted")
            raise typer.Exit(130) from None
        except Exception as e:
            if Flags.debug:
                raise
            say(f"internal error: {type(e).__name__}: {e} (run with --debug for the traceback)")
            raise typer.Exit(1) from None
    return wrapper
