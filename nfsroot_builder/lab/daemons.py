"""Start the boot server's daemons inside the lab namespace.

Each is started so that the recorded PID is the daemon's own: `ip netns exec`
execs its command, and the two that need a private /run go through a fixed
`sh -c '... exec daemon'` (paths passed as arguments, never spliced into the
script).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time

from ..config import Config
from ..errors import NfsrootError
from ..files import atomic_write
from ..render import header
from ..render.http import nginx_main
from ..render.server import kea_json
from ..steps.dhcp import KEA_CONFIG, dnsmasq_dropin_path
from ..steps.tftp import nginx_dropin_path
from ..versions import LAB_SYSTEM_BUS

# rpcbind and ganesha.nfsd keep sockets and PID files in /run; the lab's get
# a private one (a bind mount made in the mount namespace `ip netns exec`
# creates for each command, so the host's /run is never touched).
PRIVATE_RUN = 'mount --bind "$1" /run && mkdir -p /run/rpcbind /run/ganesha && shift && exec "$@"'


# The lab's own system bus, for NFS-Ganesha's DBus interface (`root prune`
# asks it which clients are connected; versions.ganesha_clients). Its socket
# is the default system bus path inside the private /run, so ganesha finds it
# unchanged. The socket sits in the lab's root-only state dir and only root
# may connect, so the policy allows root everything: with the stock system
# policy's deny-by-default, the bus's own replies to ganesha were rejected
# and ganesha waited out DBus's 25 s reply timeout before serving NFS.
LAB_BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="root"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow send_type="signal"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
</busconfig>
"""


def _wait(what: str, test, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if test():
            return
        time.sleep(0.2)
    raise NfsrootError(f"lab: {what} did not come up within {timeout:.0f}s")


def site_dhcpd_conf(cfg: Config) -> str:
    """dhcpd.conf for the lab's stand-in of a site's own DHCP server, beside
    dhcp.server "dnsmasq-proxy": what a site must give each node, no more: a
    fixed address by MAC (the node's `ip`, which its NFS exports name) and
    its host name. No boot file, no root-path: those come from the proxy and
    the boot menu's nfsroot=.
    """
    net = cfg.network
    lines = [header(cfg).rstrip("\n"), "# The lab's stand-in for the site's DHCP server.", "authoritative;",
             f"subnet {net.network.network_address} netmask {net.network.netmask} {{",
             "  deny unknown-clients;", f"  option broadcast-address {net.broadcast_address};", "}",
             "group {", "  use-host-decl-names on;"]
    lines += [f"  host {n.name} {{ hardware ethernet {n.mac}; fixed-address {n.ip}; }}" for n in cfg.nodes]
    lines.append("}")
    return "\n".join(lines) + "\n"


def kea_lab_conf(text: str, lab_dir: str) -> str:
    """The staged Kea config with its lease file in the lab's directory (the
    package's default is the host's /var/lib/kea), not kept across runs."""
    data = kea_json(text)
    data["Dhcp4"]["lease-database"].update({"name": f"{lab_dir}/kea-leases4.csv", "persist": False})
    # The bridge is not RUNNING until a node's tap opens, and Kea opens no
    # socket on such an interface; it retries (Kea ARM, "Interface
    # Configuration": service-sockets-max-retries) until `lab boot`.
    data["Dhcp4"]["interfaces-config"].update({"service-sockets-max-retries": 100000,
                                               "service-sockets-retry-wait-time": 1000})
    return json.dumps(data, indent=2) + "\n"


def dnsmasq_argv(conf: str, interface: str, lab_dir: str) -> list[str]:
    """dnsmasq in the foreground with the staged drop-in only (--conf-file: not
    the host's /etc/dnsmasq.conf), DNS off (--port=0), on the bridge only,
    leases and PID file in the lab's directory, DHCP log to stderr."""
    return ["dnsmasq", "--keep-in-foreground", f"--conf-file={conf}", "--port=0", f"--interface={interface}",
            "--bind-interfaces", f"--dhcp-leasefile={lab_dir}/dnsmasq.leases", f"--pid-file={lab_dir}/dnsmasq.pid",
            "--log-dhcp", "--log-facility=-"]


def dhcpd_argv(conf: str, interface: str, leases: str) -> list[str]:
    # dhcpd in the foreground (-d), on the bridge only.
    return ["dhcpd", "-4", "-d", "--no-pid", "-cf", conf, "-lf", leases, interface]


def start_dhcp(lab, spawn) -> None:
    """The configured DHCP server (dhcp.server), with the staged config."""
    ctx, cfg, d = lab.ctx, lab.cfg, lab.dir
    kind, iface = cfg.dhcp.server, cfg.server.interface
    staged = {"isc-dhcp-server": cfg.dhcp.config_file, "kea": KEA_CONFIG}.get(kind) or dnsmasq_dropin_path(ctx)
    if not ctx.host(staged).is_file():
        raise NfsrootError(f"lab: {ctx.host(staged)} (dhcp.server {kind!r}) does not exist: "
                           f"run 'nfsroot-build all' with the same -c/--prefix first")
    if kind == "isc-dhcp-server":
        spawn("dhcpd", dhcpd_argv(str(ctx.host(cfg.dhcp.config_file)), iface, str(d / "dhcpd.leases")), "dhcpd")
    elif kind == "kea":
        conf = d / "kea-dhcp4.conf"
        atomic_write(conf, kea_lab_conf(ctx.host(KEA_CONFIG).read_text(), str(d)).encode(), 0o644)
        # Kea's PID and lock files go where these say (kea-dhcp4(8), ENVIRONMENT).
        spawn("kea-dhcp4", ["env", f"KEA_PIDFILE_DIR={d}", f"KEA_LOCKFILE_DIR={d}",
                            "kea-dhcp4", "-c", str(conf)], "kea-dhcp4")
    else:
        if kind == "dnsmasq-proxy":
            site = d / "site-dhcpd.conf"
            atomic_write(site, site_dhcpd_conf(cfg).encode(), 0o644)
            spawn("site-dhcpd", dhcpd_argv(str(site), iface, str(d / "dhcpd.leases")), "dhcpd")
        spawn("dnsmasq", dnsmasq_argv(str(ctx.host(dnsmasq_dropin_path(ctx))), iface, str(d)), "dnsmasq")


def nginx_argv(conf: str, workdir: str) -> list[str]:
    # In the foreground (daemon off): the recorded PID is the master's.
    return ["nginx", "-c", conf, "-p", workdir, "-e", f"{workdir}/nginx-error.log", "-g", "daemon off;"]


def start_nginx(lab, spawn) -> None:
    """nginx with the staged drop-in, its PID, logs and temporary files in the
    lab's directory; the access log (logs/nginx-access.log) shows what the
    nodes fetched over HTTP, with bytes and seconds."""
    dropin = lab.ctx.host(nginx_dropin_path(lab.ctx))
    if not dropin.is_file():
        raise NfsrootError(f"lab: {dropin} (boot.transport \"http\") does not exist: "
                           f"run 'nfsroot-build all' with the same -c/--prefix first")
    work = lab.dir / "nginx"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    conf = work / "nginx.conf"
    # user root: the staged TFTP root may sit under directories only root
    # may enter (pytest's 0700 basetemp); the lab serves nothing else.
    atomic_write(conf, nginx_main(str(dropin), str(work), str(lab.dir / "logs/nginx-access.log"),
                                  user="root").encode(), 0o644)
    spawn("nginx", nginx_argv(str(conf), str(work)), "nginx")


def start_daemons(lab, record: dict) -> None:
    ctx, cfg, ns, d = lab.ctx, lab.cfg, lab.ns, lab.dir
    runner = ctx.runner
    run_dir = d / "run"
    # Emptied first: a stale rpcbind.sock from an earlier lab would pass the
    # readiness check before rpcbind listens, and ganesha exits when it
    # cannot register with rpcbind.
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    logs = d / "logs"
    logs.mkdir(exist_ok=True)
    exec_ns = ["ip", "netns", "exec", ns]

    def spawn(name: str, argv: list[str], exe: str) -> int:
        pid = runner.spawn([*exec_ns, *argv], log_path=logs / f"{name}.log")
        lab.add_proc(record, name, pid, shutil.which(exe) or exe)
        return pid

    start_dhcp(lab, spawn)
    # tftpd-hpa: -L foreground, -s chroot to the TFTP root (what --secure does
    # for the packaged daemon), bound to the server address only.
    spawn("tftpd", ["in.tftpd", "-L", "-v", "-u", "tftp", "-s", str(ctx.tftp_root),
                    "-a", f"{cfg.server.address}:69"], "in.tftpd")
    if cfg.boot.transport == "http":
        start_nginx(lab, spawn)
    spawn("ra", [sys.executable, "-m", "nfsroot_builder.lab.ra", cfg.server.interface],
          os.path.realpath(sys.executable))
    spawn("rpcbind", ["sh", "-c", PRIVATE_RUN, "sh", str(run_dir), "rpcbind", "-f"], "rpcbind")

    def registered() -> str:
        res = runner.run([*exec_ns, "sh", "-c", PRIVATE_RUN, "sh", str(run_dir), "rpcinfo", "-p", "127.0.0.1"],
                         probe=True, check=False)
        return res.stdout if res.ok else ""
    _wait("rpcbind", lambda: "portmapper" in registered())
    bus_conf = d / "dbus.conf"
    atomic_write(bus_conf, LAB_BUS_CONF.encode(), 0o644)
    (run_dir / "dbus").mkdir()
    spawn("dbus", ["sh", "-c", PRIVATE_RUN, "sh", str(run_dir), "dbus-daemon", "--nofork", "--nopidfile",
                   "--nosyslog", f"--config-file={bus_conf}"], "dbus-daemon")
    _wait("dbus-daemon (the lab's system bus)", (ctx.state_dir / LAB_SYSTEM_BUS).exists)
    spawn("ganesha", ["sh", "-c", PRIVATE_RUN, "sh", str(run_dir), "ganesha.nfsd", "-F",
                      "-f", str(d / "ganesha.conf"), "-L", str(logs / "ganesha.nfsd.log"),
                      "-p", "/run/ganesha/ganesha.pid", "-N", "NIV_EVENT"], "ganesha.nfsd")

    _wait("NFS-Ganesha (nfs and mountd registered with rpcbind)",
          lambda: all(svc in registered() for svc in (" nfs", " mountd")), timeout=60)
    dead = [p["name"] for p in record["procs"] if not lab.alive(p)]
    if dead:
        raise NfsrootError(f"lab: {', '.join(dead)} exited at start; see {logs}/")
