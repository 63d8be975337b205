"""`nfsroot-build update`: the root's packages upgraded from its own sources.

The upgrade runs in a *copy* of the current root (a new version, see
versions.py), never in a tree a node may be running: the ``Upgrade`` step acts
on ``ctx.root``, which the caller made a fresh clone of the current version.
It runs ``apt-get update`` and ``apt-get dist-upgrade`` in a chroot
session, from the root's own sources (the suite, root.extra_sources) plus,
for a stable suite, its -security archive (root.security, on by default).
What changed is the difference of the two trees (rootdiff): when no package
changed, the caller throws the copy away and makes no version.
"""
from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from . import aptsources, chroot, packages_index
from .context import Context
from .steps.base import Step, StepResult
from .steps.root_packages import APT_OPTS, ensure_extra_sources, file_repositories, tidy

# Suites Debian's security team publishes a <suite>-security archive for.
SECURITY_SUITES = {"bullseye", "bookworm", "trixie", "stable", "oldstable", "oldoldstable"}
SECURITY_SOURCES = "etc/apt/sources.list.d/nfsroot-build-security.sources"


@dataclass
class Security:
    stanza: str | None   # the root's security source, None: none used
    note: str            # what the admin is told about it


def _reachable(url: str) -> bool:
    import urllib.error  # here: urllib.request pulls in ssl, ~8 ms of every command's start-up
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=packages_index.TIMEOUT) as r:
            r.read(1)
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def security_source(ctx: Context, etc_apt: Path = Path("/etc/apt")) -> Security:
    """The -security archive for the root's suite: the host's own security
    source, else the mirror's sibling (…/debian -> …/debian-security). A
    mirror that does not carry it is said plainly, and the update goes on
    from the suite alone."""
    r = ctx.config.root
    if not r.security:
        return Security(None, "security archive off (root.security = false)")
    if r.suite not in SECURITY_SUITES:
        return Security(None, f"{r.suite} has no -security archive")
    suite = f"{r.suite}-security"
    uri = aptsources.host_security_uri(etc_apt)
    if uri is None:
        mirror = packages_index.mirror(ctx)
        parts = urllib.parse.urlsplit(mirror)
        uri = urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/") + "-security"))
    if not _reachable(f"{uri}/dists/{suite}/Release"):
        return Security(None, f"WARNING: no {suite} at {uri} (the mirror does not carry it, or it "
                              f"is unreachable): security updates were NOT applied; give the host a "
                              f"security source, or set root.security = false")
    stanza = (f"# Written by nfsroot-build update (root.security).\nTypes: deb\nURIs: {uri}\n"
              f"Suites: {suite}\nComponents: {' '.join(r.components)}\n")
    return Security(stanza, f"security archive {uri} {suite}")


class Upgrade(Step):
    """Upgrade the new version's tree (a fresh copy of the current one): apt-get update && apt-get dist-upgrade.

    From the root's own sources (the suite, root.extra_sources) and, for a
    stable suite, its -security archive (root.security). The kernel installs
    with INITRD=No as in a build: the initramfs step makes its initrd. Run
    by `nfsroot-build update` as a step of its own (its log, the dry-run's
    transcript), never by `all`.
    """
    name = "update-upgrade"

    def __init__(self):
        self.security: Security | None = None   # what run() used, for the admin's note

    def run(self, ctx: Context) -> StepResult:
        self.security = upgrade(ctx)
        return StepResult(changed=True)


def upgrade(ctx: Context) -> Security:
    """apt-get update && apt-get dist-upgrade in ctx.root (a fresh copy of
    the current version); which security source it used. What changed is
    rootdiff.diff(the current tree, ctx.root), the caller's."""
    security = security_source(ctx)
    path = ctx.root / SECURITY_SOURCES
    if security.stanza:
        ctx.files.ensure_file(path, security.stanza, 0o644)
    else:
        ctx.files.ensure_absent(path)
    ensure_extra_sources(ctx)
    with chroot.session(ctx, apt_cache=True) as ch, file_repositories(ctx):
        ch.run([*chroot.BUILD_ENV, "dpkg", "--configure", "-a"])
        ch.run(["apt-get", "update"])
        ch.run([*chroot.BUILD_ENV, "apt-get", "dist-upgrade", *APT_OPTS])
    tidy(ctx)
    chroot.sync_root(ctx)
    return security
