from __future__ import annotations

import json
import shlex

from .. import chroot, packages_index
from ..context import Context
from .base import Step, StepResult
from .root_packages import wanted

MARKER = "etc/nfsroot-build/bootstrap.json"
# Where mmdebstrap writes its --dpkgopt options in the root (mmdebstrap(1)).
DPKG_CFG = "etc/dpkg/dpkg.cfg.d/99mmdebstrap"
ARCHIVES = '"$1"/var/cache/apt/archives'   # apt's .deb cache in the root, in a hook


def _link_debs(src: str, dst: str) -> str:
    """A hook command that puts src's .debs into dst as hard links (cp -l):
    the .deb cache in and out of the root in no time, where mmdebstrap's
    sync-in/sync-out copy ~150 MB through a pipe (0.9 s warm). apt only ever
    unlinks or renames over a .deb, so the other name never changes. Only
    .debs: a shared apt lock file would make concurrent builds wait on each
    other. -u skips a file that is already there (the same inode); across
    file systems it copies."""
    find = f"find {src} -maxdepth 1 -name '*.deb' -exec cp"
    return f"{find} -lu -t {dst} -- {{}} + 2>/dev/null || {find} -pu -t {dst} -- {{}} +"


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

    mmdebstrap installs the root's packages (see root-packages) in the same
    apt pass (--include), with INITRD=No (no initrd per kernel install: the
    initramfs step makes the one) and dpkg's force-unsafe-io (no fsync per
    file; the option is removed from the root afterwards). Either way the
    root's file system is synced once (`sync --file-system`) before the
    step records the bootstrap as finished.

    Before anything is downloaded, every package the config names (the
    kernel, root.packages, ...) is looked up in the suite's Packages index:
    a typo fails in seconds. Downloaded .debs are kept in
    /var/cache/nfsroot-build/apt (debootstrap --cache-dir; mmdebstrap hooks
    hard-link them into the root and new ones back), so a rebuild does not
    download them again.

    A bootstrap that died half-way is never resumed in place: the root is
    removed (rm --one-file-system, after unmounting anything left under it)
    and made again from an empty directory. A finished bootstrap leaves
    /etc/nfsroot-build/bootstrap.json in the root; when it matches the config
    the step does nothing. Changing the suite, variant, bootstrapper,
    architecture, components or mirror rebuilds the root from scratch.
    """
    name = "bootstrap"

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
        if ctx.root.exists():
            chroot.unmount_all(ctx, ctx.root)
            # --one-file-system: never follow a mount that survived into the host's /dev or /proc.
            ctx.runner.run(["rm", "-rf", "--one-file-system", str(ctx.root)])
        ctx.files.ensure_dir(ctx.apt_cache, 0o755)
        ctx.files.ensure_dir(ctx.root, 0o755)
        included: list[str] = []
        if r.bootstrapper == "debootstrap":
            argv = ["debootstrap", f"--variant={r.variant}", f"--arch={r.architecture}",
                    f"--components={','.join(r.components)}", f"--cache-dir={ctx.apt_cache}",
                    r.suite, str(ctx.root), mirror]
        else:
            cache = shlex.quote(str(ctx.apt_cache))
            included = wanted(ctx)
            # One apt pass: the root's packages come in with the base system
            # (--include), so root-packages finds them installed. The kernel
            # makes no initrd here (chroot.BUILD_ENV); dpkg skips its fsyncs
            # (--dpkgopt, written to the root's dpkg.cfg.d: removed again by
            # the last hook) and sync_root flushes once below.
            argv = ["env", *chroot.BUILD_ENV,
                    "mmdebstrap", "--mode=root", f"--variant={r.variant}", f"--architectures={r.architecture}",
                    f"--components={','.join(r.components)}", f"--include={','.join(included)}",
                    f"--dpkgopt={chroot.DPKG_UNSAFE_IO.removeprefix('--')}",
                    "--skip=download/empty", "--skip=essential/unlink",
                    '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/partial',
                    f"--setup-hook={_link_debs(cache, ARCHIVES)}",
                    f"--customize-hook={_link_debs(ARCHIVES, cache)}",
                    f'--customize-hook=rm "$1"/{DPKG_CFG}',
                    r.suite, str(ctx.root), mirror]
        ctx.runner.run(argv)
        chroot.sync_root(ctx)
        ctx.files.ensure_file(ctx.root / MARKER, json.dumps(identity(ctx), indent=2) + "\n")
        # root-packages reads "included" where no dpkg database exists yet
        # (a dry-run plans this bootstrap, it does not make it).
        return StepResult(changed=True, outputs={"mirror": mirror, "included": included})
