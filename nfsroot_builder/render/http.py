"""nginx for boot.transport = "http": the drop-in the tool owns, and the small
main config that wraps it where no host nginx.conf is used (the checker's
test copy, the lab's nginx)."""
from __future__ import annotations

from ..config import Config
from . import Served, header

HTTP_PORT = 80
# Directories nginx writes request bodies and proxied responses to; compiled
# into Debian's nginx under /var/lib/nginx (nginx -V). A wrapped nginx gets
# its own.
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_dropin(cfg: Config, served: Served, address: str | None = None) -> str:
    """/etc/nginx/conf.d/nfsroot-build-<name>.conf: a server on server.address
    only, serving the TFTP root read-only (kernel, initrd; the loaders and
    menus there are already public over TFTP). address: another listen
    address, for a test copy only."""
    listen = address or cfg.server.address
    return (header(cfg) +
            "server {\n"
            f"    listen {listen}:{HTTP_PORT};\n"
            f"    server_name {cfg.server.address};\n"
            f"    root {served.path(cfg.tftp.root)};\n"
            "    autoindex off;\n"
            "    location / {\n"
            "        limit_except GET { deny all; }\n"
            "    }\n"
            "}\n")


def nginx_main(include: str, workdir: str, access_log: str | None = None, user: str = "www-data") -> str:
    """A whole nginx.conf around one drop-in: PID, error log and temporary
    files in workdir (never the host's /run or /var/lib/nginx); access_log:
    a file, one line per request with its bytes and seconds, or None."""
    temp = "".join(f"    {kind}_temp_path {workdir}/{kind}_temp;\n" for kind in TEMP_PATHS)
    log = (f"    log_format nfsroot_build '$remote_addr [$time_iso8601] \"$request\" $status "
           "$body_bytes_sent $request_time';\n"
           f"    access_log {access_log} nfsroot_build;\n") if access_log else "    access_log off;\n"
    return (f"user {user};\n"
            f"pid {workdir}/nginx.pid;\n"
            f"error_log {workdir}/nginx-error.log info;\n"
            "worker_processes 1;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            "    include /etc/nginx/mime.types;\n"
            "    default_type application/octet-stream;\n"
            "    sendfile on;\n"
            f"{log}"
            f"{temp}"
            f"    include {include};\n"
            "}\n")
