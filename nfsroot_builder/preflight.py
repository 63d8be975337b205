"""`check`: what would stop a run, found before anything changes."""
from __future__ import annotations

import os
import shutil

from . import aptsources, hostcheck, packages_index, pathguard, signed_boot
from .context import Context
from .errors import NfsrootError
from .render.root import SEED_LEFT_OUT
from .steps.packages import missing_packages, wanted_packages
from .steps.root_files import MOUNTNFS_NOTE
from .steps.root_packages import wanted as root_packages


def mirror_checks(ctx: Context) -> list[tuple[str, str]]:
    """The mirror answers for the suite (its Release file, read-only) and
    holds every package the config names: a malformed URL or a typo fails
    here, before anything is changed, not half-way through a build."""
    # boot.secure_boot: the signed shim and GRUB come from the same suite.
    chain = [s.package for s in signed_boot.CHAIN] if ctx.config.boot.secure_boot else []
    try:
        packages_index.check_exist(ctx, root_packages(ctx) + chain)
    except NfsrootError as e:
        return [("fail", str(e))]
    r = ctx.config.root
    return [("ok", f"mirror {packages_index.mirror(ctx)}: {r.suite} holds every package the config names")]


def layout_notes(ctx: Context) -> list[tuple[str, str]]:
    """What of the seed page's 2008 layout cannot work on today's Debian,
    and what the tool does instead (warnings: the rest of the layout boots)."""
    if ctx.config.root.layout != "seed":
        return []
    return [("warn", f'root.layout = "seed": {point} is not mounted by fstab: {why}')
            for point, why in SEED_LEFT_OUT.items()] + [("warn", f'root.layout = "seed": {MOUNTNFS_NOTE}')]


def require(ctx: Context, *, mirror: bool) -> None:
    """The preflight of `all` and `run`: raise (exit 1, as `check` fails) on any failure.

    mirror=False skips the mirror probe when no step that downloads will run.
    The disk is not looked at again: the pipeline that calls this checked
    it before planning (Pipeline.check).
    """
    failed = [msg for level, msg in preflight(ctx, mirror=mirror, disk=False) if level == "fail"]
    if failed:
        raise NfsrootError("preflight failed, nothing was changed:\n" +
                              "\n".join(f"  {msg}" for msg in failed))


def preflight(ctx: Context, *, mirror: bool = True, disk: bool = True) -> list[tuple[str, str]]:
    """(level, message) rows; a root or TFTP root that is unsafe on disk raises ConfigError (exit 2).
    disk=False: the caller checked the disk already (pathguard.check_disk)."""
    if disk:
        pathguard.check_disk(ctx)
    out: list[tuple[str, str]] = []
    if os.geteuid() != 0:
        out.append(("warn", "not root: a real run needs root (check and --dry-run do not)"))
    if not ctx.config.root.mirror:
        try:
            out.append(("ok", f"mirror: {aptsources.host_mirror()} (from the host's apt sources)"))
        except NfsrootError as e:
            out.append(("fail", str(e)))
            mirror = False
    if mirror:
        out += mirror_checks(ctx)
    if shutil.which("dpkg-query"):
        missing = missing_packages(ctx, wanted_packages(ctx))
        if missing:
            out.append(("warn", f"server packages not installed yet (step server-packages installs them): "
                                f"{' '.join(missing)}"))
    else:
        out.append(("fail", "dpkg-query not found: the boot server must be a Debian system"))
    if not ctx.config.nodes:
        out.append(("warn", "no [[node]] entries: dhcpd will answer nobody"))
    out += layout_notes(ctx)
    return out + hostcheck.host_checks(ctx)

