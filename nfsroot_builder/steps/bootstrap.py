from __future__ import annotations

import json
from pathlib import Path

from .. import chroot, debcache, packages_index, pathguard
from ..context import Context
from .base import Step, StepResult
from .root_packages import wanted

MARKER = "etc/nfsroot-build/bootstrap.json"
# What a bootstrapped root holds that later steps act on: base-files'
# directories, and the build host's resolver and name, which debootstrap and
# mmdebstrap both copy in (the hostname and node-network steps replace them).
# Declared with FileOps.expect so that a dry-run plans with them.
BASE_DIRS = ("tmp", "var/tmp", "var/log", "var/cache", "var/spool", "var/lib")
FROM_HOST = ("etc/resolv.conf", "etc/hostname")


def identity(ctx: Context) -> dict:
    r = ctx.config.root
    return {"bootstrapper": r.bootstrapper, "suite": r.suite, "variant": r.variant,
            "architecture": r.architecture, "components": r.components, "mirror": r.mirror}


class Bootstrap(Step):
    """Create the base system in the root directory with debootstrap or mmdebstrap.

    The seed's `debootstrap sid /NFSROOT/kerrighed <mirror>`: root.bootstrapper
    picks debootstrap (the seed's tool) or mmdebstrap (faster: apt resolves
    and downloads in one pass). root.mirror defaults to the build host's own
    Debian mirror (its apt sources).

    Before anything is downloaded, every package the config names (the
    kernel, root.packages, ...) is looked up in the suite's Packages index:
    a typo fails in seconds. Downloaded .debs are kept in
    /var/cache/nfsroot-build/apt, so a rebuild does not download them again;
    each build downloads into its own hard-linked copy of it
    (/var/cache/nfsroot-build/leases/<root's hash>: debootstrap --cache-dir;
    mmdebstrap sync-in/sync-out hooks, see mmdebstrap(1) "EXAMPLES"), so
    builds that run at the same time do not meet on apt's lock.
    The bootstrapper and all it starts die with the run, even a SIGKILLed one.

    A bootstrap that died half-way is never resumed in place: the root is
    removed (rm --one-file-system, after unmounting anything left under it)
    and made again from an empty directory. Before the base system, the step
    writes /etc/nfsroot-build/build.json (naming the build) into the root:
    only a directory holding it is ever removed, and `check` refuses a
    non-empty root.path without it. A finished bootstrap leaves
    /etc/nfsroot-build/bootstrap.json in the root; when it matches the config
    the step does nothing. Changing the suite, variant, bootstrapper,
    architecture, components or mirror rebuilds the root from scratch.
    """
    name = "bootstrap"
    uses_mirror = True

    def fingerprint(self, ctx: Context) -> dict:
        return {**identity(ctx), "root.path": ctx.config.root.path}

    def _done(self, ctx: Context) -> bool:
        marker = ctx.root / MARKER
        try:
            return json.loads(marker.read_text()) == identity(ctx)
        except (OSError, ValueError):
            return False

    def verify(self, ctx: Context) -> list[str]:
        return [] if self._done(ctx) else [f"{ctx.root} holds no finished bootstrap"]

    def run(self, ctx: Context) -> StepResult:
        if self._done(ctx):
            return StepResult(changed=False)
        r = ctx.config.root
        # Fail on a typo before the first download.
        packages_index.check_exist(ctx, wanted(ctx))
        mirror = packages_index.mirror(ctx)
        if ctx.root.exists() and not pathguard.is_empty(ctx.root):
            # Only a root this build marked (a half-made one) is removed; check caught
            # the rest already, this guards the rm itself.
            pathguard.require_removable(ctx.root, ctx.config.name)
            chroot.unmount_all(ctx, ctx.root)
            # --one-file-system: never follow a mount that survived into the host's /dev or /proc.
            ctx.runner.run(["rm", "-rf", "--one-file-system", str(ctx.root)])
        ctx.files.ensure_dir(ctx.apt_cache, 0o755)
        # apt's own mode for it; the bootstrappers' cache sync leaves it so.
        ctx.files.ensure_dir(ctx.apt_cache / "partial", 0o700)
        ctx.files.ensure_dir(ctx.root, 0o755)
        # The marker first: a bootstrap that dies half-way leaves a root the next run may remove.
        ctx.files.ensure_file(ctx.root / pathguard.BUILD_MARKER, json.dumps({"build": ctx.config.name}) + "\n")
        with debcache.lease(ctx) as cache:
            if r.bootstrapper == "debootstrap":
                argv = ["debootstrap", f"--variant={r.variant}", f"--arch={r.architecture}",
                        f"--components={','.join(r.components)}", f"--cache-dir={cache}",
                        r.suite, str(ctx.root), mirror]
            else:
                argv = ["mmdebstrap", "--mode=root", f"--variant={r.variant}",
                        f"--architectures={r.architecture}", f"--components={','.join(r.components)}",
                        # check/empty: the root already holds the build marker.
                        "--skip=download/empty", "--skip=essential/unlink", "--skip=check/empty",
                        '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/partial',
                        f"--setup-hook=sync-in {cache} /var/cache/apt/archives/",
                        f"--customize-hook=sync-out /var/cache/apt/archives {cache}",
                        r.suite, str(ctx.root), mirror]
            ctx.runner.run(argv, contained=True)
        for name in BASE_DIRS:
            ctx.files.expect(ctx.root / name)
        for name in FROM_HOST:
            if (Path("/") / name).is_file():
                ctx.files.expect(ctx.root / name, (Path("/") / name).read_bytes())
        ctx.files.ensure_file(ctx.root / MARKER, json.dumps(identity(ctx), indent=2) + "\n")
        return StepResult(changed=True, outputs={"mirror": mirror})
