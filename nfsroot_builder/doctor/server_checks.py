"""Checks of the boot server: exports, NFS state files, dhcpd.conf, TFTP
permissions, NFS threads. Paths are under the prefix (ctx.host())."""
from __future__ import annotations

import grp
import os
import pwd
import re
import stat
from pathlib import Path

from .. import groups, services, sidebyside
from ..config import export_client_problem
from ..context import Context
from ..errors import CommandFailed
from ..files import split_block
from ..render import node_dir
from ..render.http import nginx_dropin
from ..render.server import dhcpd_block
from ..steps.dhcp import (
    DHCP_UNIT,
    DhcpServer,
    dhcpd_errors,
    dhcpd_test_argv,
    dnsmasq_checker,
    kea_checker,
    wanted_files,
)
from ..steps.nfs import GANESHA_MAIN, NfsExports, exports_dropin, ganesha_dropin
from ..steps.tftp import TFTPD_DEFAULTS, TftpServer, nginx_checker, nginx_dropin_path
from .base import Finding, check, ok
from .parse import (
    Export,
    covers,
    dhcpd_hosts,
    ini_value,
    parse_exports,
    parse_ganesha,
    shell_var,
)

NFS_STATE_FILES = ("etab", "rmtab", "state", "xtab")
NFS_DEFAULTS = "/etc/default/nfs-kernel-server"
NFS_CONF_DROPIN = "/etc/nfs.conf.d/nfsroot-build.conf"
MAX_LISTED = 5


def _listed(items: list[str]) -> str:
    more = f" (and {len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else ""
    return "; ".join(items[:MAX_LISTED]) + more


# -- exports ------------------------------------------------------------------


def kernel_export_files(ctx: Context) -> list[Path]:
    # exports(5): /etc/exports, then every /etc/exports.d/*.exports.
    d = ctx.host("/etc/exports.d")
    files = [ctx.host("/etc/exports")] + (sorted(d.glob("*.exports")) if d.is_dir() else [])
    return [f for f in files if f.is_file()]


def all_exports(ctx: Context) -> list[Export]:
    if ctx.config.nfs.server == "kernel":
        return [e for f in kernel_export_files(ctx) for e in parse_exports(f.read_text(), f)]
    files = [ctx.host(GANESHA_MAIN), ctx.host(ganesha_dropin(ctx.config.name))]
    return [e for f in files if f.is_file() for e in parse_ganesha(f.read_text(), f)]


def ours(ctx: Context) -> Path:
    return ctx.host((exports_dropin if ctx.config.nfs.server == "kernel" else ganesha_dropin)(ctx.config.name))


def rewrite_exports(ctx: Context) -> set[str]:
    """The nfs-exports step again: our drop-in from the config, re-exported."""
    return NfsExports().run(ctx).restart


def required_writable(ctx: Context) -> list[tuple[str, str]]:
    """(served path, client) pairs the layout needs writable with root not squashed."""
    cfg, served = ctx.config, ctx.served
    if cfg.root.layout == "per-node":
        return [(node_dir(cfg, served, n.name), n.ip) for n in cfg.nodes]
    root = served.path(cfg.root.path)
    return [(f"{root}/{d}", cfg.nfs_clients) for d in cfg.root.writable_dirs]


@check("writable-exports", seed="a")
def writable_exports(ctx: Context) -> Finding:
    """Nodes can mount their root and write where the layout needs it ("/dev/null not writable")."""
    cfg = ctx.config
    entries = all_exports(ctx)
    root = ctx.served.path(cfg.root.path)
    problems = []
    if not any(e.path == root and any(covers(c.host, cfg.nfs_clients) for c in e.clients) for e in entries):
        problems.append(f"{root} is not exported to {cfg.nfs_clients}: nodes cannot mount their root")
    for path, client in required_writable(ctx):
        grants = [c for e in entries if e.path == path for c in e.clients if covers(c.host, client)]
        if not grants:
            problems.append(f"{path} is not exported to {client}")
        elif not any(c.rw for c in grants):
            problems.append(f"{path} is exported read-only to {client}: the node cannot write there")
        elif not any(c.rw and not c.root_squash for c in grants):
            # exports(5): root_squash is the default; init and udev run as root.
            problems.append(f"{path} is exported with root_squash to {client}: root on the node "
                            "cannot write there (exports(5) default)")
    devnull = ctx.root / "dev/null"
    bad_null = cfg.root.layout == "seed" and (ctx.root / "dev").is_dir() and not (
        devnull.exists() and stat.S_ISCHR(devnull.stat().st_mode)
        and os.major(devnull.stat().st_rdev) == 1 and os.minor(devnull.stat().st_rdev) == 3)
    if bad_null:
        problems.append(f"{devnull} is not the character device 1,3: with the seed layout /dev is "
                        "the exported one, so nodes hang on '/dev/null not writable'")
    if not problems:
        need = ", ".join(p for p, _ in required_writable(ctx)) or "none (tmpfs on the node)"
        return ok(f"layout {cfg.root.layout}: root exported; writable exports: {need}")

    def apply(ctx: Context) -> set[str]:
        restart = rewrite_exports(ctx)
        if bad_null:
            ctx.files.ensure_absent(devnull)
            ctx.runner.run(["mknod", "-m", "666", str(devnull), "c", "1", "3"])
        return restart
    fix = (f"rewrite {ours(ctx)} from the config: the root read-only, the layout's writable trees "
           "rw,no_root_squash to the cluster, and re-export")
    if bad_null:
        fix += f"; mknod -m 666 {devnull} c 1 3"
    return Finding("fail", _listed(problems), fix, apply)


def _wildcard_to_cidr(host: str) -> str | None:
    parts = host.split(".")
    fixed = []
    for p in parts:
        if p == "*":
            break
        if not p.isdigit():
            return None
        fixed.append(p)
    if len(parts) != 4 or any(p != "*" for p in parts[len(fixed):]) or not fixed:
        return None
    return ".".join(fixed + ["0"] * (4 - len(fixed))) + f"/{8 * len(fixed)}"


def corrected_line(e: Export) -> str:
    toks = []
    for c in e.clients:
        host = c.host
        if host and export_client_problem(host) and (cidr := _wildcard_to_cidr(host)):
            host = cidr
        if c.spaced_after is not None:
            toks[-1] = f"{toks[-1]}({','.join(c.options or [])})"
            continue
        toks.append(host + (f"({','.join(c.options)})" if c.options is not None and c.host else ""))
    return f"{e.path} {' '.join(toks)}"


@check("exports-syntax", seed="e")
def exports_syntax(ctx: Context) -> Finding:
    """exports(5) syntax: no wildcards in IP addresses, no space between a client and its options."""
    problems, manual, ours_bad = [], [], False
    for f in kernel_export_files(ctx):
        for e in parse_exports(f.read_text(), f):
            bad = []
            for c in e.clients:
                if c.spaced_after is not None:
                    bad.append(f"the space in '{c.spaced_after} ({','.join(c.options or [])})' exports "
                               f"{e.path} to the world with those options and to {c.spaced_after} "
                               "with the defaults (ro,root_squash)")
                if c.host and (why := export_client_problem(c.host)):
                    bad.append(why)
            if bad:
                problems.append(f"{f}:{e.line}: " + "; ".join(bad))
                if f == ctx.host(exports_dropin(ctx.config.name)):
                    ours_bad = True
                else:
                    manual.append(f"{f}:{e.line}: write '{corrected_line(e)}'")
    if not problems:
        return ok(f"{len(kernel_export_files(ctx))} exports file(s) parse cleanly")
    fix = ("; ".join(manual) + " (then exportfs -ra)") if manual else ""
    if ours_bad:
        fix = (f"rewrite {ctx.host(exports_dropin(ctx.config.name))} from the config" + ("; " + fix if fix else ""))
    return Finding("fail", _listed(problems), fix, rewrite_exports if ours_bad else None)


@check("world-no-root-squash")
def world_no_root_squash(ctx: Context) -> Finding:
    """No export lets the whole world in as root (`*` with no_root_squash)."""
    problems, in_ours = [], False
    for e in all_exports(ctx):
        for c in e.clients:
            if c.world and not c.root_squash:
                who = "'*'" if c.host == "*" else "the world (no host before the options)"
                problems.append(f"{e.file}:{e.line}: {e.path} is exported to {who} with no_root_squash: "
                                "any machine can mount it and write as root")
                in_ours |= e.file == ours(ctx)
    if not problems:
        return ok("no export gives root access to every host")
    if in_ours and ctx.config.nfs_clients != "*":
        return Finding("fail", _listed(problems),
                       f"rewrite {ours(ctx)} from the config (clients {ctx.config.nfs_clients})",
                       rewrite_exports)
    return Finding("fail", _listed(problems),
                   "restrict the clients to the cluster network (nfs.clients in the config, e.g. "
                   f"\"{ctx.config.network.subnet}\", then nfsroot-build run nfs-exports) or, "
                   "in your own exports, name the hosts or use root_squash")


# -- NFS server state files -----------------------------------------------------


def _etab_paths(text: str) -> set[str]:
    return {line.split("\t")[0].split()[0].rstrip("/") for line in text.splitlines() if line.strip()}


@check("nfs-state-files", seed="d")
def nfs_state_files(ctx: Context) -> Finding:
    """The NFS server's state files exist with the right modes and match the exports ("getfh failed")."""
    if ctx.config.nfs.server != "kernel":
        return ok("NFS-Ganesha keeps no /var/lib/nfs/etab, rmtab or xtab")
    d = ctx.host("/var/lib/nfs")
    if not d.is_dir():
        return ok(f"{d} does not exist (nfs-kernel-server not installed here)")
    broken: list[Path] = []
    problems = []
    for name in NFS_STATE_FILES:
        p = d / name
        if not p.exists() and not p.is_symlink():
            if name == "xtab":
                continue   # nfs-utils no longer writes xtab; only a broken one matters
            problems.append(f"{p} is missing")
        elif not p.is_file() or p.is_symlink():
            problems.append(f"{p} is not a regular file")
        elif (p.stat().st_mode & 0o7777) != 0o644:
            problems.append(f"{p} has mode {p.stat().st_mode & 0o7777:o}, not 644")
        else:
            continue
        broken.append(p)
    out_of_sync = False
    dropin = ctx.host(exports_dropin(ctx.config.name))
    # etab is what mountd answers from; exportfs only fills it on a real server.
    if not ctx.staging and dropin.is_file() and (d / "etab").is_file():
        missing = {e.path for e in parse_exports(dropin.read_text(), dropin)} - _etab_paths(
            (d / "etab").read_text())
        if missing:
            out_of_sync = True
            problems.append(f"{d / 'etab'} does not list {', '.join(sorted(missing))}: "
                            "the server's state is out of sync with the exports")
    if not problems:
        return ok(f"{d}: etab, rmtab, state present, mode 644")

    def apply(ctx: Context) -> set[str]:
        # The seed's recipe, with the server stopped so nothing rewrites
        # the files under us; state keeps its content (statd's NSM number).
        services.control(ctx, "nfs-kernel-server", "stop")
        ctx.files.untracked.append(d)   # daemon state, not configuration: undo leaves it
        try:
            for p in broken:
                if p.name == "state" and p.is_file() and not p.is_symlink():
                    ctx.files.ensure_mode(p, 0o644)   # keep statd's NSM state number
                    continue
                if p.is_symlink() or (p.exists() and not p.is_file()):
                    ctx.files.ensure_absent(p)
                ctx.files.ensure_file(p, b"", 0o644)
                if p.name == "state" and _user("statd"):
                    ctx.runner.run(["chown", "statd", str(p)])
            if out_of_sync:
                for name in ("etab", "rmtab"):
                    ctx.files.ensure_file(d / name, b"", 0o644)
        finally:
            ctx.files.untracked.remove(d)
        services.control(ctx, "nfs-kernel-server", "start")
        if not ctx.staging:
            ctx.runner.run(["exportfs", "-ra"])
        return set()
    return Finding("fail", _listed(problems),
                   "stop nfs-kernel-server, recreate the broken files empty with mode 644, start it "
                   "and exportfs -ra (the seed's recipe)", apply)


def _user(name: str):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


# -- dhcpd.conf -----------------------------------------------------------------


def _dhcpd_conf(ctx: Context) -> Path:
    return ctx.host(ctx.config.dhcp.config_file)


def _isc(ctx: Context) -> bool:
    return ctx.config.dhcp.server == "isc-dhcp-server"


def rewrite_dhcp(ctx: Context) -> set[str]:
    """The dhcp-server step again: the managed block from the config, checked with dhcpd -t."""
    return DhcpServer().run(ctx).restart


def _block_current(ctx: Context, text: str) -> bool:
    try:
        # Canaries' and group roots' own root-paths are part of what the step writes.
        return split_block(text, "#", ctx.config.name)[1] == dhcpd_block(ctx.config, ctx.served,
                                                                         groups.node_root_paths(ctx))
    except ValueError:
        return False


@check("dhcpd-syntax")
def dhcpd_syntax(ctx: Context) -> Finding:
    """The DHCP config passes `dhcpd -t` (dhcpd(8))."""
    if not _isc(ctx):
        return ok(f"dhcp.server is {ctx.config.dhcp.server}: dhcpd is not used (see dhcp-config)")
    conf = _dhcpd_conf(ctx)
    if not conf.exists():
        return ok(f"{conf} does not exist yet (step dhcp-server writes it)")
    res = ctx.runner.run(dhcpd_test_argv(conf), probe=True, check=False)
    if res.exit_code == 127:
        return Finding("warn", "dhcpd is not installed: cannot check", "nfsroot-build run server-packages")
    if res.ok:
        return ok(f"{conf} passes dhcpd -t")
    errors = dhcpd_errors(res.stdout + res.stderr, conf, str(conf))
    reason = f"dhcpd -t rejects {conf}: " + " | ".join(errors[:4])
    try:
        text = conf.read_text()
        split_block(text, "#")
    except ValueError as e:
        return Finding("fail", f"{reason}; {e}", f"repair the marker lines in {conf} by hand")
    if not _block_current(ctx, text):
        return Finding("fail", reason, f"rewrite the managed block of {conf} from the config "
                       "(dhcpd -t checks it before it replaces the file)", rewrite_dhcp)
    return Finding("fail", reason, f"the error is in your own lines of {conf} (outside the managed "
                   "block): fix the line dhcpd names, then run dhcpd -t -cf " + str(conf))


@check("dhcp-nodes")
def dhcp_nodes(ctx: Context) -> Finding:
    """Each node's MAC and IP in the config match the host declarations in dhcpd.conf."""
    if not _isc(ctx):
        return ok(f"dhcp.server is {ctx.config.dhcp.server}: its nodes are checked by dhcp-config")
    conf = _dhcpd_conf(ctx)
    if not conf.exists():
        if not ctx.config.nodes:
            return ok("no nodes configured")
        return Finding("fail", f"{conf} does not exist: nodes get no address",
                       "write the managed block (the dhcp-server step)", rewrite_dhcp)
    hosts = {h.name: h for h in dhcpd_hosts(conf.read_text(), ctx.config.name) if h.ours}
    problems = []
    for node in ctx.config.nodes:
        h = hosts.pop(node.name, None)
        if h is None:
            problems.append(f"node {node.name} has no host declaration in {conf}")
            continue
        if node.mac not in h.macs:
            problems.append(f"{node.name}: the config says MAC {node.mac}, {conf}:{h.line} says "
                            f"{', '.join(h.macs) or 'none'}")
        if node.ip not in h.addresses:
            problems.append(f"{node.name}: the config says IP {node.ip}, {conf}:{h.line} says "
                            f"{', '.join(h.addresses) or 'none'}")
    problems += [f"host {name} in {conf}:{h.line} is not a node of the config" for name, h in hosts.items()]
    if not problems:
        return ok(f"{len(ctx.config.nodes)} node(s) match {conf}")
    return Finding("fail", _listed(problems), f"rewrite the managed block of {conf} from the config "
                   "and restart isc-dhcp-server", rewrite_dhcp)


@check("dhcp-config")
def dhcp_config(ctx: Context) -> Finding:
    """Kea or dnsmasq (dhcp.server): its config parses with the daemon's own checker and matches the build."""
    kind = ctx.config.dhcp.server
    if _isc(ctx):
        return ok("dhcp.server is isc-dhcp-server (see dhcpd-syntax and dhcp-nodes)")
    fix = (f"rewrite it from the config (the dhcp-server step, checked by the daemon first) "
           f"and restart {DHCP_UNIT[kind]}")
    problems = []
    for path, content in wanted_files(ctx).items():
        p = ctx.host(path)
        if not p.is_file():
            problems.append(f"{p} does not exist")
        elif p.read_text() != content:
            problems.append(f"{p} differs from what the config makes (edited by hand, or the config changed)")
    if problems:
        return Finding("fail", _listed(problems), fix, rewrite_dhcp)
    conf = next(iter(wanted_files(ctx)))
    checker = kea_checker(ctx) if kind == "kea" else dnsmasq_checker(ctx)
    try:
        checker(ctx.host(conf))
    except CommandFailed as e:
        if e.returncode == 127:
            return Finding("warn", f"{checker.shown.split()[0]} is not installed: cannot check",
                           "nfsroot-build run server-packages")
        # The file is what the build makes, yet the daemon refuses it: a
        # daemon version the renderer does not know; rewriting will not help.
        return Finding("fail", f"{checker.shown.split()[0]} rejects {ctx.host(conf)}: "
                       + " | ".join(e.output_tail[-3:]), "report it with the daemon's version: the tool "
                       "wrote this file; meanwhile use another dhcp.server")
    return ok(f"{ctx.host(conf)} matches the build and passes {checker.shown}"
              + ("; the site's DHCP server must give each node its ip and host name"
                 if kind == "dnsmasq-proxy" else ""))


def rewrite_tftp(ctx: Context) -> set[str]:
    """The tftp-server step again: tftpd's block and nginx's drop-in, checked with nginx -t."""
    return TftpServer().run(ctx).restart


@check("http-server")
def http_server(ctx: Context) -> Finding:
    """boot.transport "http": nginx's drop-in matches the build and passes `nginx -t`."""
    if ctx.config.boot.transport != "http":
        return ok("boot.transport is tftp: nginx is not used")
    dropin = ctx.host(nginx_dropin_path(ctx))
    fix = "rewrite it from the config (the tftp-server step, checked with nginx -t first) and restart nginx"
    if not dropin.is_file():
        return Finding("fail", f"{dropin} does not exist: nodes cannot fetch kernel and initrd", fix, rewrite_tftp)
    if dropin.read_text() != nginx_dropin(ctx.config, ctx.served):
        return Finding("fail", f"{dropin} differs from what the config makes (edited by hand, or the config "
                       "changed)", fix, rewrite_tftp)
    checker = nginx_checker(ctx)
    try:
        checker(dropin)
    except CommandFailed as e:
        if e.returncode == 127:
            return Finding("warn", "nginx is not installed: cannot check", "nfsroot-build run server-packages")
        return Finding("fail", f"nginx -t rejects {dropin}: " + " | ".join(e.output_tail[-3:]),
                       "read nginx's message: another server block may already listen on "
                       f"{ctx.config.server.address}:80")
    return ok(f"{dropin} matches the build and passes nginx -t")


@check("host-collisions")
def host_collisions(ctx: Context) -> Finding:
    """No other DHCP host or /etc/hosts entry on the server uses a node's name, MAC or IP."""
    cfg = ctx.config
    problems = []
    conf = _dhcpd_conf(ctx)
    admin_hosts = [h for h in dhcpd_hosts(conf.read_text(), cfg.name) if not h.ours] \
        if conf.exists() and _isc(ctx) else []
    for h in admin_hosts:
        for node in cfg.nodes:
            same = [what for what, hit in (("name", h.name == node.name), ("MAC", node.mac in h.macs),
                                          ("IP", node.ip in h.addresses)) if hit]
            if same:
                problems.append(f"{conf}:{h.line}: host {h.name} has the same {' and '.join(same)} "
                                f"as node {node.name}")
        if cfg.server.address in h.addresses:
            problems.append(f"{conf}:{h.line}: host {h.name} is given the server's address {cfg.server.address}")
    hosts_file = ctx.host("/etc/hosts")
    if hosts_file.is_file():
        for n, line in enumerate(hosts_file.read_text().splitlines(), 1):
            words = line.split("#", 1)[0].split()
            if len(words) < 2:
                continue
            ip, names = words[0], {w.split(".")[0] for w in words[1:]}
            for node in cfg.nodes:
                if ip == node.ip and node.name not in names:
                    problems.append(f"{hosts_file}:{n}: {ip} is {' '.join(words[1:])}, not node {node.name}")
                elif node.name in names and ip != node.ip and not ip.startswith("127."):
                    problems.append(f"{hosts_file}:{n}: {node.name} is {ip} there, {node.ip} in the config")
    if not problems:
        return ok("no DHCP host or /etc/hosts entry collides with a node")
    return Finding("fail", _listed(problems),
                   "the other entries are yours: rename or renumber them, or change the node in the config")


@check("other-builds")
def other_builds(ctx: Context) -> Finding:
    """No other build of this server (a state dir beside this one) uses a node's MAC, IP or name, the root, or another TFTP root."""
    rows = sidebyside.check_rows(ctx)
    fails = [msg for level, msg in rows if level == "fail"]
    if fails:
        return Finding("fail", _listed(fails), "change one of the two configs (docs/builds.md: what builds "
                       "side by side share and what each must have of its own)")
    if rows:
        return Finding("warn", _listed([msg for _level, msg in rows]),
                       "run that build again (its dhcp-server step records where its config is)")
    others = sorted(sidebyside.other_states(ctx))
    return ok(f"no conflict with the other builds here: {', '.join(others)}" if others
              else "no other build on this server")


# -- TFTP -----------------------------------------------------------------------


def _tftp_identity(ctx: Context) -> tuple[int | None, set[int], str]:
    defaults = ctx.host(TFTPD_DEFAULTS)
    name = (shell_var(defaults.read_text(), "TFTP_USERNAME") if defaults.is_file() else None) or "tftp"
    user = _user(name)
    if user is None:
        return None, set(), name
    gids = {user.pw_gid} | {g.gr_gid for g in grp.getgrall() if name in g.gr_mem}
    return user.pw_uid, gids, name


def _can(st: os.stat_result, uid, gids, bits: int) -> bool:
    """bits: 4 read, 1 search; owner, then group, then other (the kernel's order)."""
    if uid is not None and st.st_uid == uid:
        return (st.st_mode >> 6) & bits == bits
    if st.st_gid in gids:
        return (st.st_mode >> 3) & bits == bits
    return st.st_mode & bits == bits


@check("tftp-readable")
def tftp_readable(ctx: Context) -> Finding:
    """The TFTP user can read the kernel, initrd and menus (tftpd-hpa drops to TFTP_USERNAME)."""
    top = ctx.tftp_root
    if not top.is_dir():
        return ok(f"{top} does not exist yet (step tftp-server)")
    uid, gids, name = _tftp_identity(ctx)
    bad: list[tuple[Path, int]] = []
    for dirpath, dirnames, filenames in os.walk(top):
        for dn in [dirpath] if dirpath == str(top) else []:
            st = os.stat(dn)
            if not _can(st, uid, gids, 5):
                bad.append((Path(dn), (st.st_mode & 0o7777) | 0o055))
        for dn in dirnames:
            p = Path(dirpath) / dn
            st = p.stat()
            if not p.is_symlink() and not _can(st, uid, gids, 5):
                bad.append((p, (st.st_mode & 0o7777) | 0o055))
        for fn in filenames:
            p = Path(dirpath) / fn
            if p.is_symlink() or not p.is_file():
                continue
            st = p.stat()
            if not _can(st, uid, gids, 4):
                bad.append((p, (st.st_mode & 0o7777) | 0o044))
    if not bad:
        return ok(f"everything under {top} is readable by {name}")

    def apply(ctx: Context) -> set[str]:
        for p, mode in bad:
            ctx.files.ensure_mode(p, mode)
        return set()
    return Finding("fail", f"not readable by the TFTP user {name}: " + _listed(
        [f"{p} (mode {p.stat().st_mode & 0o7777:o})" for p, _ in bad]) + " — nodes get 'access violation'",
        "chmod a+r the files (a+rx the directories); the initrd is 0600 when Debian installs it", apply)


# -- NFS threads ---------------------------------------------------------------


def kernel_threads(ctx: Context) -> tuple[int, str]:
    """Threads rpc.nfsd starts and where that comes from. Debian passes
    RPCNFSDCOUNT from /etc/default/nfs-kernel-server on the command line (init
    script and nfs-utils_env.sh alike), which wins over nfs.conf(5) [nfsd] threads."""
    defaults = ctx.host(NFS_DEFAULTS)
    if defaults.is_file() and (v := shell_var(defaults.read_text(), "RPCNFSDCOUNT")) and v.isdigit():
        return int(v), f"RPCNFSDCOUNT in {defaults}"
    value, where = None, ""
    confd = ctx.host("/etc/nfs.conf.d")
    for f in [ctx.host("/etc/nfs.conf")] + (sorted(confd.glob("*.conf")) if confd.is_dir() else []):
        if f.is_file() and (v := ini_value(f.read_text(), "nfsd", "threads")) and v.isdigit():
            value, where = int(v), f"[nfsd] threads in {f}"
    return (value, where) if value is not None else (8, "the nfs-utils default")


@check("nfs-threads")
def nfs_threads(ctx: Context) -> Finding:
    """The NFS server runs enough threads for the number of nodes."""
    cfg = ctx.config
    want = cfg.nfs_threads
    if cfg.nfs.server == "ganesha":
        text = "\n".join(f.read_text() for f in (ctx.host(GANESHA_MAIN), ctx.host(ganesha_dropin(cfg.name))) if f.is_file())
        m = re.search(r"\bNb_Worker\s*=\s*(\d+)", text, re.IGNORECASE)
        have = int(m.group(1)) if m else 256   # ganesha-core-config(8) default
        if have >= want:
            return ok(f"NFS-Ganesha: {have} workers for {len(cfg.nodes)} node(s)")
        return Finding("warn", f"NFS-Ganesha Nb_Worker = {have}, fewer than {want}",
                       f"raise Nb_Worker in NFS_CORE_PARAM of {ctx.host(GANESHA_MAIN)} to {want}")
    have, where = kernel_threads(ctx)
    if have >= want:
        return ok(f"{have} nfsd threads ({where}) for {len(cfg.nodes)} node(s)")

    def apply(ctx: Context) -> set[str]:
        n = ctx.config.nfs_threads
        defaults = ctx.host(NFS_DEFAULTS)
        # sh takes the last assignment: with another build's RPCNFSDCOUNT
        # after this build's block, rewriting the block in place would
        # change nothing nfsd runs. The block moves to the end instead.
        if defaults.is_file() and shell_var(split_block(defaults.read_text(), "#", ctx.config.name)[2],
                                            "RPCNFSDCOUNT") is not None:
            ctx.files.managed_block(defaults, None)
        ctx.files.managed_block(defaults, f"RPCNFSDCOUNT={n}\n")
        ctx.files.ensure_dir(ctx.host("/etc/nfs.conf.d"), 0o755)
        ctx.files.ensure_file(ctx.host(NFS_CONF_DROPIN), f"# Written by nfsroot-build doctor --fix\n"
                              f"[nfsd]\nthreads = {n}\n")
        return {"nfs-kernel-server"}
    return Finding("warn", f"{have} nfsd threads ({where}) for {len(cfg.nodes)} node(s): "
                   f"booting nodes will queue (want {want}, nfs.threads in the config)",
                   f"set RPCNFSDCOUNT={want} (managed block in {ctx.host(NFS_DEFAULTS)}) and [nfsd] "
                   f"threads = {want} ({ctx.host(NFS_CONF_DROPIN)}), restart nfs-kernel-server", apply)

