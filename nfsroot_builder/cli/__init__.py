"""The command line: parse, call the pipeline, map errors to exit codes.

One module per command group (build.py: init/list/check/all/run/status,
lab.py: lab ..., doctor.py: doctor/undo), what they share in common.py;
this module only assembles them. The console script is
`nfsroot-build = nfsroot_builder.cli:app`.
"""
from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from .build import build_app
from .capacity import plan_capacity  # noqa: F401 (registers `plan-capacity`)
from .common import CONTEXT, Flags
from .doctor import doctor_app
from .lab import lab_app
from .node import node_app
from .replicas import sync  # noqa: F401 (registers `sync`)
from .root import root_app
from .update import update_  # noqa: F401 (registers `update` and `root diff`)

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                  context_settings=CONTEXT,
                  help="Build the NFS root of a diskless Debian cluster and configure its boot server.")


def _print_version(value: bool) -> None:
    # Eager: runs before typer asks for a command ("Missing command", exit 2, in 0.1).
    if value:
        print(__version__)
        raise typer.Exit(0)


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
         version: Annotated[bool, typer.Option("--version", help="print the version and exit", is_eager=True,
                                               callback=_print_version)] = False) -> None:
    Flags.debug = debug


app.add_typer(build_app)
app.add_typer(lab_app, name="lab")
app.add_typer(root_app, name="root")
app.add_typer(node_app, name="node")
app.add_typer(doctor_app)
