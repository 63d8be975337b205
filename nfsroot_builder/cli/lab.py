"""`nfsroot-build lab up | boot | status | stop-daemons | down`: the configured boot server in
a network namespace, and QEMU nodes booting from it."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .. import session
from .common import ConfigOpt, JsonOpt, PrefixOpt, StateOpt, complete_node, err, guarded, make_ctx

lab_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                      help="Boot virtual nodes from the build, in an isolated network namespace.")


def _lab(config, prefix, state_dir):
    from ..lab import Lab
    session.require_root("the lab")
    return Lab(make_ctx(config, prefix, state_dir, dry_run=False, version="current"))


@lab_app.command()
@guarded
def up(config: ConfigOpt, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None):
    """Create the namespace and start the DHCP server, in.tftpd, rpcbind and NFS-Ganesha in it."""
    lab = _lab(config, prefix, state_dir)
    for p in lab.up():
        err.print(f"  {p.name}: pid {p.pid}" + (f" (server {p.server})" if p.server != "primary" else ""))
    err.print(f"lab {lab.ns} is up: server {lab.cfg.server.address} on {lab.cfg.server.interface}, "
              f"{len(lab.cfg.nodes)} node(s) configured; logs in {lab.dir / 'logs'}")


@lab_app.command()
@guarded
def boot(config: ConfigOpt,
         nodes: Annotated[list[str] | None, typer.Argument(help="node names (default: all)",
                                                           autocompletion=complete_node)] = None,
         prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None,
         timeout: Annotated[float, typer.Option(help="seconds to wait for each login prompt")] = 600,
         keep: Annotated[bool, typer.Option(help="leave the nodes running")] = False,
         as_json: JsonOpt = False):
    """Power on nodes (all at once) and wait for '<name> login:' on their consoles."""
    from ..lab.nodes import boot as boot_nodes
    lab = _lab(config, prefix, state_dir)
    names = nodes or [n.name for n in lab.cfg.nodes]
    results = boot_nodes(lab, names, timeout=timeout, keep=keep, progress=lambda m: err.print(f"  {m}"))
    for r in results:
        if r.ok:
            err.print(f"[green]pass[/] {r.name}: login after {r.seconds:.1f}s; "
                      f"root {r.facts.get('root', '?')}, var {r.facts.get('var', '?')}, "
                      f"version {r.facts.get('version', '?')}, {r.facts.get('pkgs', '?')} packages, "
                      f"kernel {r.facts.get('kernel', '?')}")
        else:
            err.print(f"[red]FAIL[/] {r.name}: {r.problem} (console: {r.serial_log})")
            for line in r.tail:
                err.print(f"    | {line}", markup=False)
    if as_json:
        print(json.dumps([r.__dict__ for r in results], indent=2))
    if not all(r.ok for r in results):
        raise typer.Exit(1)


@lab_app.command()
@guarded
def status(config: ConfigOpt, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None,
           as_json: JsonOpt = False):
    """Is the lab up, and which of its processes are alive."""
    st = _lab(config, prefix, state_dir).status()
    if as_json:
        print(json.dumps(st, indent=2))
        return
    err.print(f"namespace {st['namespace']}: {'up' if st['up'] else 'down'}")
    for p in st["procs"]:
        err.print(f"  {p['name']}: pid {p['pid']} {'alive' if p['alive'] else 'gone'}")


@lab_app.command("stop-daemons")
@guarded
def stop_daemons(config: ConfigOpt, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None):
    """Kill the lab server's daemons by their recorded PIDs; running nodes and the namespace stay."""
    done = _lab(config, prefix, state_dir).stop_daemons()
    err.print("stopped: " + (", ".join(done) if done else "no daemon was running"))


@lab_app.command("kill-server")
@guarded
def kill_server(server: Annotated[str, typer.Argument(help='"primary" ([server]) or a [[servers]] name')],
                config: ConfigOpt, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None):
    """Kill one boot server's daemons (by their recorded PIDs): a failure drill for replicated servers."""
    done = _lab(config, prefix, state_dir).kill_server(server)
    err.print(f"killed on server {server}: " + (", ".join(done) if done else "nothing was running"))


@lab_app.command()
@guarded
def down(config: ConfigOpt, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None):
    """Kill exactly the processes the lab started and delete its namespace."""
    done = _lab(config, prefix, state_dir).down()
    err.print("stopped: " + (", ".join(done) if done else "nothing was running"))
