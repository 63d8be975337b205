from __future__ import annotations

import tempfile
from pathlib import Path

from ..context import Context
from ..files import atomic_write
from ..render.http import nginx_dropin, nginx_main
from ..render.server import tftpd_defaults_block
from .base import Step, StepResult, stale_blocks, stale_files

TFTPD_DEFAULTS = "/etc/default/tftpd-hpa"


def nginx_dropin_path(ctx: Context) -> str:
    # Debian's nginx.conf includes /etc/nginx/conf.d/*.conf inside http {}:
    # one file the tool owns, no sites-enabled symlink to keep in step.
    return f"/etc/nginx/conf.d/nfsroot-build-{ctx.config.name}.conf"


def nginx_test_argv(main_conf: Path | str, workdir: Path | str) -> list[str]:
    """`nginx -t`: nginx's own parser decides (nginx(8)); -e: its start-up
    errors to stderr, not the host's /var/log/nginx/error.log."""
    return ["nginx", "-t", "-q", "-c", str(main_conf), "-p", str(workdir), "-e", "stderr"]


def nginx_checker(ctx: Context):
    """A FileOps validator: `nginx -t` on a small nginx.conf that includes the
    new drop-in alone. nginx -t binds the listen address, so under a staging
    prefix (server.address lives in the lab's namespace, not here) a copy
    listening on 127.0.0.1 is tested, in a network namespace of its own
    (unshare --net: no listener of the host can collide); the rest as written."""
    def check(candidate: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="nfsroot-build-nginx-t.") as work:
            include, wrap = candidate, []
            if ctx.staging:
                include, wrap = Path(work, "dropin.conf"), ["unshare", "--net"]
                atomic_write(include, nginx_dropin(ctx.config, ctx.served, address="127.0.0.1").encode(), 0o644)
            main = Path(work, "nginx.conf")
            atomic_write(main, nginx_main(str(include), work).encode(), 0o644)
            ctx.runner.run([*wrap, *nginx_test_argv(main, work)], probe=True)
    check.shown = "nginx -t -c <nginx.conf including the new file>"
    return check


class TftpServer(Step):
    """Configure tftpd-hpa to serve the TFTP root (kernel, initrd, boot loader, menus); nginx for HTTP.

    The seed's /etc/default/tftp-hpa used RUN_DAEMON and OPTIONS='-l -s';
    today's tftpd-hpa reads TFTP_DIRECTORY and TFTP_OPTIONS. The values go in
    a managed block at the end of the package's file (a later assignment wins),
    so the admin's own lines stay.

    With boot.transport = "http" the kernel and initrd go over HTTP (the
    loader and the menus still over TFTP): an owned drop-in
    /etc/nginx/conf.d/nfsroot-build-<name>.conf serves the TFTP root
    read-only (GET only, no index) on server.address port 80, checked with
    `nginx -t` before it replaces anything; nginx is restarted by the
    services step. Switched back to "tftp", the drop-in is removed.
    """
    name = "tftp-server"

    def fingerprint(self, ctx: Context) -> dict:
        fp = {"tftp.root": ctx.config.tftp.root}
        if ctx.config.boot.transport == "http":   # tftp builds keep their fingerprint
            fp["http"] = {"address": ctx.config.server.address, "name": ctx.config.name}
        return fp

    def verify(self, ctx: Context) -> list[str]:
        if not ctx.tftp_root.is_dir():
            return [f"{ctx.tftp_root} is missing"]
        bad = stale_blocks({ctx.host(TFTPD_DEFAULTS): tftpd_defaults_block(ctx.config, ctx.served)}, ctx.config.name)
        if ctx.config.boot.transport == "http":
            bad += stale_files({ctx.host(nginx_dropin_path(ctx)): nginx_dropin(ctx.config, ctx.served)})
        return [f"managed block or drop-in missing or not as configured: {' '.join(bad)}"] if bad else []

    def run(self, ctx: Context) -> StepResult:
        changed = ctx.files.ensure_dir(ctx.tftp_root, 0o755)
        restart = set()
        if ctx.files.managed_block(ctx.host(TFTPD_DEFAULTS), tftpd_defaults_block(ctx.config, ctx.served)):
            restart.add("tftpd-hpa")
        dropin = ctx.host(nginx_dropin_path(ctx))
        if ctx.config.boot.transport == "http":
            if ctx.files.ensure_file(dropin, nginx_dropin(ctx.config, ctx.served), validate=nginx_checker(ctx)):
                restart.add("nginx")
        elif str(dropin) in ctx.files.record and ctx.files.ensure_absent(dropin):
            restart.add("nginx")   # only a drop-in the tool wrote; an admin's file stays
        return StepResult(changed=changed or bool(restart), restart=restart)
