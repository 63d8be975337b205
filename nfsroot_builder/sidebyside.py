"""Builds side by side on one boot server (issue 11): two configs with
different `name` under one --prefix.

What each build writes carries its name (managed-block markers, drop-in
names, its state dir, its kernels' TFTP directory <tftp.root>/<name>). What
two builds cannot both have is reported before the first change (`check`,
and the preflight of every run): a node MAC, IP or host name in both, one
root.path, two TFTP roots (tftpd-hpa serves one directory), two DHCP or NFS
daemons, and the file kinds the tool does not merge (Kea's one kea-dhcp4
config; Ganesha's Export_Ids, numbered alike by every build).

The other builds are the state dirs beside this build's (under the same
--prefix: <prefix>/var/lib/nfsroot-build/<name>). Their config is the file
their dhcp-server step last configured the server from (recorded in its
outputs, gone after `undo`): the cheapest honest source, one TOML parse
each; a state records a large node list only by its digest. If that config
was edited since, the edited one is compared: what that build's next run
writes.

The loader files in a TFTP root both builds use (GRUB's fallback grub.cfg,
ipxe/boot.ipxe, pxelinux.cfg/default, the copied loader binaries) are the
same bytes whichever build writes them (render.shared_header), and each
build records them in its own undo record (FileOps.share). That record is
the shared ownership: `undo` of one build leaves such a file while another
build's record still has it (shared_users).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import config as config_mod
from .config import Config
from .context import Context
from .errors import NfsrootError
from .state import State
from .steps.dhcp import DHCP_UNIT

STATE_FILE = "state.json"


@dataclass(frozen=True)
class OtherBuild:
    name: str
    state: State
    config: Config | None   # None: not configured on the server now, or its config unreadable
    why: str = ""           # why config is None, when that is worth a note


def other_states(ctx: Context) -> dict[str, State]:
    """name -> State (read-only) of every other build whose state dir is beside this one."""
    parent = ctx.state_dir.parent
    out: dict[str, State] = {}
    try:
        dirs = sorted(d for d in parent.iterdir() if d.is_dir() and d != ctx.state_dir)
    except FileNotFoundError:
        return out
    for d in dirs:
        if (d / STATE_FILE).is_file():
            try:
                out[d.name] = State.load(d / STATE_FILE, readonly=True)
            except NfsrootError:
                continue   # a corrupt state is its own build's problem (its runs say so)
    return out


def other_builds(ctx: Context) -> list[OtherBuild]:
    """The other builds configured on this server, each with its config."""
    found = []
    for name, state in other_states(ctx).items():
        recorded = state.outputs("dhcp-server").get("config")
        if not recorded:
            found.append(OtherBuild(name, state, None))
            continue
        try:
            found.append(OtherBuild(name, state, config_mod.load(Path(recorded))))
        except (OSError, NfsrootError) as e:
            found.append(OtherBuild(name, state, None,
                                    f"build {name}'s config {recorded} cannot be read ({str(e).splitlines()[0]})"))
    return found


def shared_users(ctx: Context, path: str) -> list[str]:
    """The other builds whose undo record has path (a file builds share)."""
    return [name for name, state in other_states(ctx).items() if path in state.undo]


# (field, its value of a node, why two builds may not share it)
NODE_KEYS = (("node.mac", lambda n: n.mac, "one DHCP server would hold two answers for one machine"),
             ("node.ip", lambda n: n.ip, "two machines on one address"),
             ("node.name", lambda n: n.name, "dhcpd refuses a second host declaration of a name"))


# dnsmasq and dnsmasq-proxy are one daemon (steps/dhcp.py DHCP_UNIT): builds may mix them.
DAEMON = {kind: f"the {unit} daemon" for kind, unit in DHCP_UNIT.items()}
# Kinds whose files the tool cannot hold for two builds: (field, value) -> why.
NOT_TWICE = {
    ("dhcp.server", "kea"): "would share Kea's one kea-dhcp4 config, which the tool does not merge; "
                            "use isc-dhcp-server or dnsmasq for builds side by side",
    ("nfs.server", "ganesha"): "number their exports alike (Export_Id from 100) and NFS-Ganesha refuses a "
                               "duplicate Export_Id; use nfs.server = \"kernel\" for builds side by side",
}


def conflicts(cfg: Config, others: dict[str, Config]) -> list[str]:
    """What cfg and the other builds (name -> config) of the same server
    cannot both have, one message each naming both builds and the field."""
    out = []
    for name, other in sorted(others.items()):
        if other.name == cfg.name:
            continue   # this build under another --state-dir: its root lock keeps the two apart
        pair = f"builds {cfg.name} and {name}"
        for field, key, why in NODE_KEYS:
            theirs = {key(n): n.name for n in other.nodes}
            for node in cfg.nodes:
                if key(node) in theirs:
                    out.append(f"{field} {key(node)}: node {node.name} of build {cfg.name} and node "
                               f"{theirs[key(node)]} of build {name} ({why})")
        if cfg.root.path == other.root.path:
            out.append(f"root.path {cfg.root.path}: {pair} would build into one root")
        if cfg.tftp.root != other.tftp.root:
            out.append(f"tftp.root: build {cfg.name} has {cfg.tftp.root}, build {name} {other.tftp.root}; "
                       "tftpd-hpa serves one directory (TFTP_DIRECTORY): give both the same tftp.root "
                       "(each build's kernels go in <tftp.root>/<name>)")
        for field, mine, theirs, daemon in (("dhcp.server", cfg.dhcp.server, other.dhcp.server, "DHCP daemon (port 67)"),
                                            ("nfs.server", cfg.nfs.server, other.nfs.server, "NFS server (port 2049)")):
            if DAEMON.get(mine, mine) != DAEMON.get(theirs, theirs):
                out.append(f"{field}: build {cfg.name} uses {mine}, build {name} {theirs}; "
                           f"one server runs one {daemon}")
            elif (field, mine) in NOT_TWICE:
                out.append(f"{field} = {mine}: {pair} {NOT_TWICE[field, mine]}")
        if cfg.dhcp.server == other.dhcp.server == "isc-dhcp-server" and cfg.network.subnet == other.network.subnet:
            out.append(f"network.subnet {cfg.network.subnet}: {pair} both declare it, and dhcpd takes "
                       "one subnet declaration per network")
    return out


def check_rows(ctx: Context) -> list[tuple[str, str]]:
    """(level, message) rows for check and the preflight: a conflict is a
    "fail" under --prefix too (the other build is under the same prefix)."""
    builds = other_builds(ctx)
    rows = [("note", b.why) for b in builds if b.why]
    configs = {b.name: b.config for b in builds if b.config is not None}
    rows += [("fail", msg) for msg in conflicts(ctx.config, configs)]
    return rows
