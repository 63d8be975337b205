"""The node inventory from the command line: node list/add/remove/set/import/discover.

Each editing command changes the config file in place (inventory.py keeps
its comments and layout), validates the whole result with config.parse
before anything is written (bad input: exit 2, the file byte for byte as
it was), writes through FileOps (--dry-run: the diff), then prints what
`all --resume` will re-run - the pipeline's own plan - and with --apply runs it.
"""
from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .. import config as config_mod
from .. import session
from ..errors import UsageError
from ..files import FileOps
from .common import (
    DEFAULT_CONFIG,
    ConfigOpt,
    DryOpt,
    JsonOpt,
    PrefixOpt,
    StateOpt,
    complete_node,
    guarded,
    require_config,
    say,
)

if TYPE_CHECKING:
    from ..inventory import Inventory

node_app = typer.Typer(no_args_is_help=True, help="The node inventory: list, add, remove, set, import, discover.")

ApplyOpt = Annotated[bool, typer.Option("--apply", help="then run `all --resume` (as root)")]
IpOpt = Annotated[str | None, typer.Option("--ip", help="the node's address (default: the next free one "
                                                        "of network.subnet)")]
FirmwareOpt = Annotated[str | None, typer.Option("--firmware", help='"bios" or "uefi" (which firmware the lab '
                                                                   'gives its VM)')]
GroupOpt = Annotated[str | None, typer.Option("--group", help="the [[group]] the node belongs to (its root, "
                                                             "kernel arguments; docs/groups.md)")]
NamesArg = Annotated[list[str], typer.Argument(help="node names; a range like 'n[01-16]' stands for n01 ... n16",
                                               autocompletion=complete_node)]


def inventory():
    """nfsroot_builder.inventory, imported when a node command runs: tomlkit
    costs every other command ~18 ms of start-up (the no-op resume's budget)."""
    from .. import inventory as module
    return module


def _read_input(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{what} {path}: cannot be read: {getattr(e, 'strerror', None) or e}") from None


def _edit(config: Path, prefix: Path, state_dir: Path | None, dry_run: bool, apply: bool,
          change: Callable[[Inventory, Callable[[], config_mod.Config]], str]) -> None:
    """Read the config, change its nodes, validate the whole result, write
    it (or show the diff), say what `all --resume` will re-run."""
    if dry_run and apply:
        raise UsageError("--apply with --dry-run: the dry-run changes nothing to apply "
                         "(it prints what `all --resume` would re-run)")
    require_config(config)
    if apply:   # checked before the config changes, not after
        session.require_root("--apply (`all --resume`)")
    before = config_mod.read_text(config)
    inv = inventory().Inventory(before, str(config))
    # The config as it is, parsed only when a change needs it (a free address).
    what = change(inv, functools.cache(lambda: config_mod.parse(before, str(config))))
    text, cfg = inv.validated()
    target = config.resolve()   # a symlinked config: replace the file, keep the link
    if not dry_run and config_mod.read_text(config) != before:
        raise UsageError(f"{config} changed while this command ran; nothing written, run it again")
    # The whole text was validated above by the tool's own parser: the checker FileOps would run.
    changed = FileOps(dry_run=dry_run, emit=print).ensure_file(target, text, mode=target.stat().st_mode & 0o7777)
    print(f"{'would change' if dry_run else 'changed'} {config}: {what}" if changed
          else f"{config}: already so, nothing changed")
    ctx = session.make_context(cfg, prefix=prefix, state_dir=state_dir, dry_run=True, emit=lambda line: None)
    plans = [p for p in session.pipeline(ctx).plan() if p.needs_run]
    if all(p.status == "pending" and p.why == "never ran" for p in plans) and plans:
        print(f"nothing built yet (no state in {ctx.state_dir}): `all` runs every step")
    elif plans:
        print(f"`all --resume` will re-run {len(plans)} step(s):")
        for p in plans:
            print(f"  {p.step.name}: {p.why}")
    else:
        print("`all --resume` has nothing to re-run")
    if apply and changed:
        from .build import _run
        _run(config, prefix, state_dir, False, resume=True)


def _node_values(name: str, mac: str | None, ip: str | None, firmware: str | None, group: str | None = None) -> dict:
    values = {"name": name} if name else {}
    values.update({k: v for k, v in (("mac", mac), ("ip", ip), ("firmware", firmware), ("group", group))
                   if v is not None})
    return values


def _span(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 3 else f"{len(names)} nodes ({names[0]} ... {names[-1]})"


@node_app.command("list")
@guarded
def list_(config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False):
    """The nodes of the config: name, MAC, address, firmware, group."""
    require_config(config)
    rows = [{"name": n.name, "mac": n.mac, "ip": n.ip, "firmware": n.firmware, "group": n.group or None}
            for n in config_mod.load(config).nodes]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    width = max([len(r["name"]) for r in rows] + [4])
    print(f"{'name':<{width}}  {'mac':<17}  {'ip':<15}  {'firmware':<8}  group")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['mac']:<17}  {r['ip']:<15}  {r['firmware']:<8}  {r['group'] or '-'}")


@node_app.command()
@guarded
def add(name: Annotated[str, typer.Argument(help="the node's name, or a range like 'n[001-064]' with --macs")],
        mac: Annotated[str | None, typer.Option("--mac", help="the MAC the node PXE-boots with")] = None,
        macs: Annotated[Path | None, typer.Option("--macs", help="a file of MACs, one a line ('#' comments "
                                                                 "allowed), in the order of the range")] = None,
        ip: IpOpt = None, firmware: FirmwareOpt = None, group: GroupOpt = None,
        config: ConfigOpt = DEFAULT_CONFIG, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None,
        dry_run: DryOpt = False, apply: ApplyOpt = False):
    """Add a node, or a range of nodes with their MACs from a file; no --ip: the next free addresses."""
    names = inventory().expand_names(name)
    if (mac is None) == (macs is None):
        raise UsageError("give the MAC: --mac MAC for one node, or --macs FILE for a range")
    if mac is not None and len(names) > 1:
        raise UsageError(f"{name!r} makes {len(names)} nodes: give their MACs with --macs FILE")
    if ip is not None and len(names) > 1:
        raise UsageError(f"--ip gives one node's address; {name!r} makes {len(names)} nodes "
                         "(left out, each gets the next free address)")
    given = [(mac, "--mac")] if mac is not None else inventory().macs_from(_read_input(macs, "--macs"), str(macs))
    if len(given) != len(names):
        raise UsageError(f"{name!r} makes {len(names)} node(s) but {macs} holds {len(given)} MAC(s)")

    def change(inv: Inventory, current) -> str:
        ips = [ip] if ip is not None else inventory().free_addresses(current(), [n.ip for n in current().nodes],
                                                         len(names), str(config))
        for node_name, (node_mac, origin), node_ip in zip(names, given, ips, strict=True):
            inv.add(_node_values(node_name, node_mac, node_ip, firmware, group), origin)
        return f"added {_span(names)}" + (f", {ips[0]}" if len(ips) == 1 else f", {ips[0]} ... {ips[-1]}")
    _edit(config, prefix, state_dir, dry_run, apply, change)


@node_app.command()
@guarded
def remove(names: NamesArg, config: ConfigOpt = DEFAULT_CONFIG, prefix: PrefixOpt = Path("/"),
           state_dir: StateOpt = None, dry_run: DryOpt = False, apply: ApplyOpt = False):
    """Remove nodes by name (or range); their menus and DHCP entries go at the next `all --resume`."""
    expanded = [n for name in names for n in inventory().expand_names(name)]

    def change(inv: Inventory, current) -> str:
        for n in expanded:
            inv.remove(n)
        return f"removed {_span(expanded)}"
    _edit(config, prefix, state_dir, dry_run, apply, change)


@node_app.command("set")
@guarded
def set_(name: Annotated[str, typer.Argument(help="the node's name", autocompletion=complete_node)],
         mac: Annotated[str | None, typer.Option("--mac", help="its new MAC")] = None,
         ip: Annotated[str | None, typer.Option("--ip", help="its new address")] = None,
         firmware: FirmwareOpt = None, group: GroupOpt = None,
         config: ConfigOpt = DEFAULT_CONFIG, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None,
         dry_run: DryOpt = False, apply: ApplyOpt = False):
    """Change a node's MAC, address, firmware or group."""
    values = _node_values("", mac, ip, firmware, group)
    if not values:
        raise UsageError("nothing to set: give --mac, --ip, --firmware or --group")

    def change(inv: Inventory, current) -> str:
        inv.set(name, values, "the command line")
        return f"{name}: " + ", ".join(f"{k} = {v}" for k, v in values.items())
    _edit(config, prefix, state_dir, dry_run, apply, change)


@node_app.command("import")
@guarded
def import_(csv_file: Annotated[Path, typer.Argument(metavar="FILE.csv", help="name,mac[,ip[,group]] lines; "
                                                     "a header line is allowed")],
            config: ConfigOpt = DEFAULT_CONFIG, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None,
            dry_run: DryOpt = False, apply: ApplyOpt = False):
    """Add the nodes of a CSV file; rows without an ip get the next free addresses, in order."""
    rows = inventory().rows_from_csv(_read_input(csv_file, "FILE.csv"), str(csv_file))
    if not rows:
        raise UsageError(f"{csv_file}: no node lines")

    def change(inv: Inventory, current) -> str:
        missing = [r for r in rows if r.ip is None]
        free = iter(inventory().free_addresses(current(), [n.ip for n in current().nodes] + [r.ip for r in rows if r.ip],
                                   len(missing), str(config)) if missing else [])
        for r in rows:
            inv.add(_node_values(r.name, r.mac, r.ip or next(free), None, r.group), r.origin)
        return f"added {_span([r.name for r in rows])} from {csv_file}"
    _edit(config, prefix, state_dir, dry_run, apply, change)


def _dhcpd_log(log: Path | None) -> str:
    """dhcpd's log: --log FILE, else the journal (systemd) or /var/log/syslog."""
    if log is not None:
        return _read_input(log, "--log")
    from ..runner import Runner
    from ..services import has_systemd
    if has_systemd():
        return Runner().run(["journalctl", "--unit", "isc-dhcp-server", "--no-pager", "--output", "short"],
                            probe=True).stdout
    syslog = Path("/var/log/syslog")
    if not syslog.exists():
        raise UsageError("no journal (systemd does not run here) and no /var/log/syslog: give dhcpd's log with --log FILE")
    return _read_input(syslog, "log")


@node_app.command()
@guarded
def discover(log: Annotated[Path | None, typer.Option("--log", help="dhcpd's log file (default: the journal "
                                                                    "of isc-dhcp-server, or /var/log/syslog)")] = None,
             config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False):
    """The MACs dhcpd refused (no free leases, unknown client) and the config does not have yet.

    The output is a --macs file: `node discover > macs.txt`, then
    `node add 'n[01-NN]' --macs macs.txt`.
    """
    found = inventory().discovered(_dhcpd_log(log))
    if config != DEFAULT_CONFIG or config.exists():
        known = {n.mac for n in config_mod.load(config).nodes}
        left_out = [f for f in found if f["mac"] in known]
        found = [f for f in found if f["mac"] not in known]
        if left_out:
            say(f"{len(left_out)} MAC(s) already in {config} left out")
    if as_json:
        print(json.dumps(found, indent=2))
        return
    for f in found:
        print(f"{f['mac']}  # via {f['via']}: {f['why']}; {f['count']} DHCPDISCOVER(s), last {f['last']}")
    if not found:
        say("no refused DHCPDISCOVER in the log")
    elif sys.stdout.isatty():
        say(f"add them: save this as macs.txt, then nfsroot-build node add 'n[01-{len(found):02d}]' --macs macs.txt")
