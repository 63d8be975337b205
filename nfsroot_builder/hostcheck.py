"""What `check` knows about the host the boot server runs on (issue 14).

Each check returns (level, message) rows like preflight's. On the host
itself (no --prefix) a problem is a "fail": the run would configure daemons
that cannot work. Under --prefix the tree is staged for another machine (or
the lab's namespace), so the same problems are "note"s and stop nothing.

Everything here only reads: the interfaces come from `ip -j addr` (a probe
through the Runner, so it runs in a dry-run too), the listening sockets from
/proc/net/{udp,tcp}[6] (proc(5)) and their owners from /proc/<pid>/fd.
"""
from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path

from . import sidebyside
from .config import Config
from .context import Context

# The lab example's root password ("nfsroot") is published in its comments
# and the README; its bridge exists only inside the lab's network namespace.
LAB_PASSWORD_HASH = ("$6$nfsrootlab$h11iU6PTvJRLyy7/3jEA3/mAH5atrONLmymJs3/tJD/awHyv6YLTdglbrZc1fRX"
                     "..67IS4Z0GOZceY9NqF97H1")
LAB_INTERFACE = "nrb-br0"
# The seed page's "adapt to your site" DNS servers (examples/seed.toml).
SEED_DNS = frozenset({"123.123.123.123", "124.124.124.124"})
# RFC 5737 documentation networks and the RFC 7042 documentation MAC block:
# `init` writes them as placeholders, so a config still holding one is unedited.
DOC_NETWORKS = tuple(ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))
# The config holds canonical dotted quads (config._ipv4) and these are /24s:
# a text prefix decides membership exactly, without an IPv4Address per node
# (10,000 nodes: ~25 ms of every run, a no-op resume included).
DOC_PREFIXES = tuple(str(n.network_address).rsplit(".", 1)[0] + "." for n in DOC_NETWORKS)
assert all(n.prefixlen == 24 for n in DOC_NETWORKS)
DOC_MAC_PREFIX = "00:00:5e:00:53:"
PLACEHOLDER_INTERFACE = "CHANGE-ME"


@dataclass(frozen=True)
class Port:
    proto: str      # udp | tcp
    number: int
    what: str       # DHCP, TFTP, NFS
    owners: tuple[str, ...]   # process names (comm) of the daemon the config sets up


def ports(cfg: Config) -> list[Port]:
    nfs_owner = ("ganesha.nfsd",) if cfg.nfs.server == "ganesha" else ()   # kernel nfsd: no process
    return [Port("udp", 67, "DHCP", ("dhcpd",)), Port("udp", 69, "TFTP", ("in.tftpd",)),
            Port("tcp", 2049, "NFS", nfs_owner)]


def host_checks(ctx: Context) -> list[tuple[str, str]]:
    """Every host check; "fail" rows on the host become "note" rows under --prefix."""
    rows = lab_config(ctx) + placeholders(ctx.config) + interface(ctx) + port_owners(ctx) + other_exports(ctx)
    if ctx.staging:
        rows = [("note" if level == "fail" else level, f"{msg} (a note under --prefix {ctx.prefix})")
                for level, msg in rows]
    # Another build of the same server lives under the same prefix: a
    # conflict with it fails under --prefix too.
    return rows + sidebyside.check_rows(ctx)


def lab_config(ctx: Context) -> list[tuple[str, str]]:
    """The lab example belongs under --prefix (and `lab`); refused on the host even as a note."""
    c = ctx.config
    why = []
    if c.root.password_hash == LAB_PASSWORD_HASH:
        why.append("its root password 'nfsroot' is published")
    if c.server.interface == LAB_INTERFACE:
        why.append(f"its interface {LAB_INTERFACE} exists only in the lab's network namespace")
    if not why or ctx.staging:
        return []
    return [("fail", f"this is the lab example config ({'; '.join(why)}): it is for `nfsroot-build lab` "
                     "and --prefix builds only; write the server's own with `nfsroot-build init`")]


def placeholders(cfg: Config) -> list[tuple[str, str]]:
    """Values an example holds for the admin to replace."""
    out = []
    seed_dns = [a for a in cfg.network.dns_servers if a in SEED_DNS]
    if seed_dns:
        out.append(("fail", f"network.dns_servers: {', '.join(seed_dns)} are the seed page's placeholders; "
                            "put your site's DNS servers (or none)"))
    if cfg.server.interface == PLACEHOLDER_INTERFACE:
        out.append(("fail", "server.interface: still the placeholder CHANGE-ME; `ip -br addr` lists the "
                            "server's interfaces"))
    named = [("server.address", cfg.server.address), ("network.router", cfg.network.router),
             *((f"network.dns_servers[{i}]", a) for i, a in enumerate(cfg.network.dns_servers)),
             *((f"node[{i}].ip", n.ip) for i, n in enumerate(cfg.nodes))]
    doc = [f for f, a in named if a and a.startswith(DOC_PREFIXES)]
    if doc:
        out.append(("fail", f"{', '.join(doc[:4])}{' ...' if len(doc) > 4 else ''}: placeholder addresses "
                            "(RFC 5737 documentation networks); put the cluster network's"))
    macs = [f"node[{i}].mac" for i, n in enumerate(cfg.nodes) if n.mac.startswith(DOC_MAC_PREFIX)]
    if macs:
        out.append(("fail", f"{', '.join(macs[:4])}{' ...' if len(macs) > 4 else ''}: placeholder MACs "
                            f"({DOC_MAC_PREFIX}xx, RFC 7042); put the nodes' real MACs"))
    return out


def interface(ctx: Context) -> list[tuple[str, str]]:
    """server.interface exists and holds server.address (dhcpd answers only there)."""
    c = ctx.config
    name, address = c.server.interface, c.server.address
    if name in (LAB_INTERFACE, PLACEHOLDER_INTERFACE):
        return []   # said by lab_config / placeholders already
    res = ctx.runner.run(["ip", "-j", "addr", "show"], probe=True, check=False)
    try:
        links = json.loads(res.stdout) if res.ok else None
    except ValueError:
        links = None
    if not isinstance(links, list):
        return [("warn", f"could not list the host's interfaces with `ip -j addr` (exit {res.exit_code}); "
                         f"server.interface {name} is unchecked")]
    by_name = {link.get("ifname"): link for link in links if isinstance(link, dict)}
    if name not in by_name:
        return [("fail", f"server.interface: {name} does not exist on this host "
                         f"(it has {', '.join(sorted(n for n in by_name if n)) or 'no interfaces'})")]
    held = [f"{a.get('local')}/{a.get('prefixlen')}" for a in by_name[name].get("addr_info", [])
            if a.get("family") == "inet"]
    if not any(h.split("/")[0] == address for h in held):
        return [("fail", f"server.address: {address} is not an address of {name} "
                         f"(it has {', '.join(held) or 'no IPv4 address'}); give the interface a static "
                         "address first (docs/server.md)")]
    return [("ok", f"server.interface {name} holds server.address {address}")]


def port_owners(ctx: Context, proc: Path = Path("/proc")) -> list[tuple[str, str]]:
    """No other process listens on the DHCP/TFTP/NFS ports than the daemon the config sets up."""
    out = []
    for port in ports(ctx.config):
        inodes = listening_inodes(proc, port.proto, port.number)
        if not inodes:
            continue
        owners = socket_owners(proc, inodes)
        strangers = sorted(f"{comm} (pid {pid})" for comm, pid in owners.values() if comm not in port.owners)
        unowned = [i for i in inodes if i not in owners]
        if unowned and port.number == 2049 and ctx.config.nfs.server == "kernel":
            unowned = []   # the kernel's nfsd: its sockets belong to no process
        if unowned and os.geteuid() != 0:
            out.append(("warn", f"{port.number}/{port.proto} ({port.what}) is taken by a process this user "
                                "cannot see; run check as root"))
        elif unowned:
            strangers.append("the kernel (no process holds the socket)")
        if strangers:
            out.append(("fail", f"{port.number}/{port.proto} ({port.what}) is taken by {', '.join(strangers)}; "
                                f"stop it, or the nodes get answers from two {port.what} servers "
                                "(docs/server.md)"))
    return out


def listening_inodes(proc: Path, proto: str, number: int) -> set[int]:
    """Socket inodes bound to the port: UDP sockets in any state, TCP sockets in LISTEN (0A).

    /proc/net/* is the reading process's network namespace (proc(5)), which
    is also the namespace the daemons would serve.
    """
    found = set()
    for name in (proto, proto + "6"):
        try:
            lines = (proc / "net" / name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) < 10 or int(f[1].rsplit(":", 1)[1], 16) != number:
                continue
            if proto == "tcp" and f[3] != "0A":
                continue
            found.add(int(f[9]))
    return found


def socket_owners(proc: Path, inodes: set[int]) -> dict[int, tuple[str, int]]:
    """inode -> (comm, pid) of a process holding it open."""
    wanted = {f"socket:[{i}]": i for i in inodes if i}
    owners: dict[int, tuple[str, int]] = {}
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            fds = os.listdir(pid_dir / "fd")
        except OSError:   # gone, or not ours to read
            continue
        for fd in fds:
            try:
                target = os.readlink(pid_dir / "fd" / fd)
            except OSError:
                continue
            if target in wanted:
                try:
                    comm = (pid_dir / "comm").read_text().strip()
                except OSError:
                    comm = "?"
                owners[wanted[target]] = (comm, int(pid_dir.name))
        if len(owners) == len(wanted):
            break
    return owners


def other_exports(ctx: Context) -> list[tuple[str, str]]:
    """Exports of the admin's that name a missing directory: `exportfs -ra`
    (run by the services step) applies every file and fails on them, and no
    step of ours creates them. Our own drop-in is not read: its directories
    are made by the steps before services."""
    if ctx.config.nfs.server != "kernel":
        return []
    from .steps.nfs import exports_dropin
    files = [ctx.host("/etc/exports"), *sorted(ctx.host("/etc/exports.d").glob("*.exports"))]
    out = []
    for f in files:
        if f == ctx.host(exports_dropin(ctx.config.name)) or not f.is_file():
            continue
        try:
            text = f.read_text(errors="replace").replace("\\\n", " ")   # exports(5): "\" continues a line
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            path = words[0].strip('"')
            # Another build's staged drop-in names served paths, the prefix already in them.
            local = Path(path) if ctx.staging and Path(path).is_relative_to(ctx.prefix) else ctx.host(path)
            if path.startswith("/") and not local.exists():
                out.append(("fail", f"{f} exports {path}, which does not exist: `exportfs -ra` (step "
                                    "services) would fail on it; create it or remove that line"))
    return out
