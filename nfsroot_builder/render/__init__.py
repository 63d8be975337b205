"""Pure functions: config (+ where things live) -> file text. No I/O here."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from ..config import Config


@dataclass(frozen=True)
class Served:
    """Paths as the daemons and the nodes see them.

    Under a staging prefix the daemons (the lab's dhcpd, tftpd, ganesha)
    serve the staged tree, so every path in a rendered file carries the
    prefix; on a real server the prefix is "/" and paths are the config's.
    """
    prefix: str = "/"

    def path(self, p: str) -> str:
        return str(PurePosixPath(self.prefix) / p.lstrip("/"))


VERSION_SUFFIX = re.compile(r"\.v\d+$")


def base_root_path(path: str) -> str:
    """root.path as configured, from any version's path (versions.path_of:
    version N >= 2 lives at <root.path>.v<N>)."""
    return VERSION_SUFFIX.sub("", path)


def node_dir(cfg: Config, served: Served, node: str) -> str:
    """A node's own read-write directory on the server (layout per-node): one
    for all root versions, beside the configured root.path."""
    return served.path(f"{base_root_path(cfg.root.path)}.nodes/{node}")


def header(cfg: Config, comment: str = "#") -> str:
    return (f"{comment} Written by nfsroot-build for cluster '{cfg.name}'. Do not edit:\n"
            f"{comment} change the cluster config and run nfsroot-build again.\n")


def quote(value: str) -> str:
    """A double-quoted string for dhcpd.conf, ganesha.conf, GRUB and shell-ish files."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def shared_header(comment: str = "#") -> str:
    """The header of a file every build served from one TFTP root shares (the
    loader's fallback menus): the same bytes whichever build writes it, so a
    second build leaves the first one's file as it is."""
    return (f"{comment} Written by nfsroot-build for every build this TFTP root serves. Do not edit:\n"
            f"{comment} change a cluster config and run nfsroot-build again.\n")
