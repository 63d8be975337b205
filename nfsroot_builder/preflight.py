"""`check`: what would stop a run, found before anything changes."""
from __future__ import annotations

import os
import shutil

from . import aptsources, hostcheck, pathguard
from .context import Context
from .errors import NfsrootError
from .steps.packages import missing_packages, wanted_packages


def preflight(ctx: Context) -> list[tuple[str, str]]:
    """(level, message) rows; a root or TFTP root that is unsafe on disk raises ConfigError (exit 2)."""
    pathguard.check_disk(ctx)
    out: list[tuple[str, str]] = []
    if os.geteuid() != 0:
        out.append(("warn", "not root: a real run needs root (check and --dry-run do not)"))
    if not ctx.config.root.mirror:
        try:
            out.append(("ok", f"mirror: {aptsources.host_mirror()} (from the host's apt sources)"))
        except NfsrootError as e:
            out.append(("fail", str(e)))
    if shutil.which("dpkg-query"):
        missing = missing_packages(ctx, wanted_packages(ctx))
        if missing:
            out.append(("warn", f"server packages not installed yet (step server-packages installs them): "
                                f"{' '.join(missing)}"))
    else:
        out.append(("fail", "dpkg-query not found: the boot server must be a Debian system"))
    if not ctx.config.nodes:
        out.append(("warn", "no [[node]] entries: dhcpd will answer nobody"))
    return out + hostcheck.host_checks(ctx)

