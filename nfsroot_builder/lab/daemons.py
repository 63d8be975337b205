"""Start the boot server's daemons inside the lab namespace.

Each is started so that the recorded PID is the daemon's own: `ip netns exec`
execs its command, and the two that need a private /run go through a fixed
`sh -c '... exec daemon'` (paths passed as arguments, never spliced into the
script).
"""
from __future__ import annotations

import os
import shutil
import sys
import time

from ..errors import NfsrootError

# rpcbind and ganesha.nfsd keep sockets and PID files in /run; the lab's get
# a private one (a bind mount made in the mount namespace `ip netns exec`
# creates for each command, so the host's /run is never touched).
PRIVATE_RUN = 'mount --bind "$1" /run && mkdir -p /run/rpcbind /run/ganesha && shift && exec "$@"'


def _wait(what: str, test, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if test():
            return
        time.sleep(0.2)
    raise NfsrootError(f"lab: {what} did not come up within {timeout:.0f}s")


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

    # dhcpd in the foreground (-d) on the bridge only, with the staged config.
    spawn("dhcpd", ["dhcpd", "-4", "-d", "--no-pid", "-cf", str(ctx.host(cfg.dhcp.config_file)),
                    "-lf", str(d / "dhcpd.leases"), cfg.server.interface], "dhcpd")
    # tftpd-hpa: -L foreground, -s chroot to the TFTP root (what --secure does
    # for the packaged daemon), bound to the server address only.
    spawn("tftpd", ["in.tftpd", "-L", "-v", "-u", "tftp", "-s", str(ctx.tftp_root),
                    "-a", f"{cfg.server.address}:69"], "in.tftpd")
    spawn("ra", [sys.executable, "-m", "nfsroot_builder.lab.ra", cfg.server.interface],
          os.path.realpath(sys.executable))
    spawn("rpcbind", ["sh", "-c", PRIVATE_RUN, "sh", str(run_dir), "rpcbind", "-f"], "rpcbind")

    def registered() -> str:
        res = runner.run([*exec_ns, "sh", "-c", PRIVATE_RUN, "sh", str(run_dir), "rpcinfo", "-p", "127.0.0.1"],
                         probe=True, check=False)
        return res.stdout if res.ok else ""
    _wait("rpcbind", lambda: "portmapper" in registered())
    spawn("ganesha", ["sh", "-c", PRIVATE_RUN, "sh", str(run_dir), "ganesha.nfsd", "-F",
                      "-f", str(d / "ganesha.conf"), "-L", str(logs / "ganesha.nfsd.log"),
                      "-p", "/run/ganesha/ganesha.pid", "-N", "NIV_EVENT"], "ganesha.nfsd")

    _wait("NFS-Ganesha (nfs and mountd registered with rpcbind)",
          lambda: all(svc in registered() for svc in (" nfs", " mountd")), timeout=60)
    dead = [p["name"] for p in record["procs"] if not lab.alive(p)]
    if dead:
        raise NfsrootError(f"lab: {', '.join(dead)} exited at start; see {logs}/")
