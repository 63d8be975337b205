from __future__ import annotations

import json
import shlex
from pathlib import Path

from .. import aptsources, chroot, debcache, packages_index, pathguard, versions
from ..context import Context
from .base import Step, StepResult
from .root_packages import expect_installed, wanted

MARKER = "etc/nfsroot-build/bootstrap.json"
# The root version this tree is (v1, v2, ...): the lab's report line shows it.
VERSION_FILE = "etc/nfsroot-build/version"
# What a bootstrapped root holds that later steps act on: base-files'
# directories, and the build host's resolver and name, which debootstrap and
# mmdebstrap both copy in (the hostname and node-network steps replace them).
# Declared with FileOps.expect so that a dry-run plans with them.
BASE_DIRS = ("tmp", "var/tmp", "var/log", "var/cache", "var/spool", "var/lib")
FROM_HOST = ("etc/resolv.conf", "etc/hostname")
# base-files' top directories with their modes: root.files (site-files) keeps
# the mode of a directory the root has, and plans with these in a dry-run.
TOP_DIRS = {"etc": 0o755, "root": 0o700, "usr": 0o755, "var": 0o755, "opt": 0o755, "srv": 0o755}
# Where mmdebstrap writes its --dpkgopt options in the root (mmdebstrap(1)).
DPKG_CFG = "etc/dpkg/dpkg.cfg.d/99mmdebstrap"
# mmdebstrap's own hook that bind-mounts every file: mirror into the chroot
# for the apt and dpkg that run inside (mmdebstrap(1), --hook-dir, example 3):
# apt's file method does not copy the .debs, so dpkg in the chroot opens
# them at the mirror's path.
FILE_MIRROR_HOOKS = "/usr/share/mmdebstrap/hooks/file-mirror-automount"
# debootstrap's --keyring: in the build's state dir, rewritten when the host's keys change.
DEBOOTSTRAP_KEYRING = "debootstrap-keyring.gpg"


def _cache_hooks(lease: str) -> list[str]:
    """mmdebstrap hooks that bind-mount the build's .deb cache lease on the
    root's /var/cache/apt/archives for the whole apt pass, as the chroot
    session does for root-packages: apt downloads into the lease and dpkg
    reads from it, and nothing is copied, whether or not the cache and the
    root share a file system. (Copying in and out by hard links fell back
    to copying the whole pool, 470 MB, when they did not: +7-12 s.) The
    customize hook unmounts it before mmdebstrap's clean-up, which empties
    the root's apt cache (mmdebstrap(1), "cleanup"); a run killed before
    then leaves the mount, which the next run's unmount_all removes with
    the half-made root. partial/ is made under the mount point too:
    mmdebstrap's clean-up expects it."""
    point = '"$1"/var/cache/apt/archives'
    return [f"--setup-hook=mkdir -p {point}/partial && mount --bind {lease} {point}",
            f"--customize-hook=umount {point}"]


# Where the build host's depmod cache (debcache.depmod_dir) is bound in the
# root while mmdebstrap installs, and the depmod that uses it: first in the
# PATH apt gives dpkg and the maintainer scripts (apt.conf(5), DPkg::Path;
# its default leaves /usr/local/sbin out).
DEPMOD_CACHE_POINT = '"$1"/var/cache/nfsroot-build-depmod'
DEPMOD_WRAPPER = Path(__file__).resolve().parent.parent / "assets" / "depmod-cached"
DEPMOD_IN_ROOT = '"$1"/usr/local/sbin/depmod'
# The wrapper's hand-over between its background watcher and the postinst.
DEPMOD_RUN = '"$1"/run/nfsroot-build-depmod'
DPKG_PATH = 'DPkg::Path "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"'
# Where mmdebstrap writes its --aptopt options in the root (mmdebstrap(1)).
APT_CFG = "etc/apt/apt.conf.d/99mmdebstrap"


def _depmod_hooks(cache: str) -> list[str]:
    """mmdebstrap hooks that give the root's packages a depmod whose output
    comes from the build host's cache when the module tree is one it has
    seen (assets/depmod-cached: the kernel's postinst runs `depmod VERSION`,
    3.5 s of one core for Debian's xz-compressed modules; a hit takes
    0.1 s and gives the same bytes), and that on a miss is computed in the
    background as soon as the kernel is unpacked, beside dpkg's other work
    (`depmod --nrb-watch`, run in the root's chroot, its output in a log the
    last hook prints). Set up after the essential packages (base-files makes
    /usr/local/sbin) and removed, with the mount, by the first customize
    hook, which first stops the watcher and waits for it and its children
    (flock on its lock): the finished root has none of it (nor the
    DPkg::Path option, in the --aptopt file the hook removes)."""
    return [f"--aptopt={DPKG_PATH}",
            f"--essential-hook=mkdir -p {DEPMOD_CACHE_POINT} {DEPMOD_RUN} && mount --bind {cache} {DEPMOD_CACHE_POINT}"
            f" && install -m 755 {shlex.quote(str(DEPMOD_WRAPPER))} {DEPMOD_IN_ROOT}"
            f' && {{ chroot "$1" /usr/local/sbin/depmod --nrb-watch </dev/null >{DEPMOD_RUN}/watch.log 2>&1 & }}',
            f"--customize-hook=touch {DEPMOD_RUN}/stop && flock {DEPMOD_RUN}/watch.lock true"
            f" && cat {DEPMOD_RUN}/watch.log >&2 && rm -r {DEPMOD_RUN}"
            f" && rm -f {DEPMOD_IN_ROOT} \"$1\"/{APT_CFG} && umount {DEPMOD_CACHE_POINT}"
            f" && rmdir {DEPMOD_CACHE_POINT}"]


def _lists_hooks(lists: list[tuple[Path, str]]) -> list[str]:
    """A mmdebstrap setup hook that links the suite's InRelease and indexes
    the package-name check already fetched and verified
    (packages_index.apt_lists) into the root's /var/lib/apt/lists, where
    mmdebstrap's `apt-get update` finds them: it fetches InRelease again (or
    gets an If-Modified-Since hit) and verifies it as always, and downloads
    no index whose hash that InRelease still lists (9.7 MB, ~1.2 s). Hard
    links (apt replaces its lists by rename, never in place), a copy across
    file systems; a file that is gone (another build's clean-up) is left to
    apt, which then downloads it."""
    if not lists:
        return []
    links = []
    for src, name in lists:
        s, d = shlex.quote(str(src)), f'"$1"/var/lib/apt/lists/{shlex.quote(name)}'
        links.append(f"{{ ln {s} {d} 2>/dev/null || cp -p {s} {d} || true; }}")
    return ["--setup-hook=" + "; ".join(links)]


def identity(ctx: Context) -> dict:
    r = ctx.config.root
    return {"bootstrapper": r.bootstrapper, "suite": r.suite, "variant": r.variant,
            "architecture": r.architecture, "components": r.components, "mirror": r.mirror}


class Bootstrap(Step):
    """Create the base system in the root directory with debootstrap or mmdebstrap.

    The seed's `debootstrap sid /NFSROOT/kerrighed <mirror>`: root.bootstrapper
    picks debootstrap (the seed's tool) or mmdebstrap (faster: apt resolves
    and downloads in one pass). root.mirror defaults to the build host's own
    Debian mirror (its apt sources); a `file:` mirror (an air-gapped
    site's local repository) is bind-mounted into the chroot by
    mmdebstrap's file-mirror-automount hook.

    mmdebstrap installs the root's packages (see root-packages) in the same
    apt pass (--include), with INITRD=No (no initrd per kernel install: the
    initramfs step makes the one) and dpkg's force-unsafe-io (no fsync per
    file; the option is removed from the root afterwards); the kernel's
    `depmod` output comes from /var/cache/nfsroot-build/depmod when the
    same module tree was built before, and is otherwise computed as soon as
    the kernel is unpacked, beside the rest of the install (docs/guide.md). Either way the
    root's file system is synced once (`sync --file-system`) before the
    step records the bootstrap as finished.

    Before anything is downloaded, every package the config names (the
    kernel, root.packages, ...) is looked up in the suite's Packages index:
    a typo fails in seconds. mmdebstrap's apt is handed that index and the
    InRelease it was checked against (/var/cache/nfsroot-build/lists): its
    `apt-get update` fetches and verifies InRelease and downloads the index
    only if the mirror changed since. Downloaded .debs are kept in
    /var/cache/nfsroot-build/apt, so a rebuild does not download them again;
    each build downloads into its own hard-linked copy of it
    (/var/cache/nfsroot-build/leases/<root's hash>: debootstrap --cache-dir;
    mmdebstrap hooks bind-mount it on the root's /var/cache/apt/archives), so
    builds that run at the same time do not meet on apt's lock.
    The bootstrapper and all it starts die with the run, even a SIGKILLed one.

    A bootstrap that died half-way is never resumed in place: the root is
    removed (rm --one-file-system, after unmounting anything left under it)
    and made again from an empty directory. Before the base system, the step
    writes /etc/nfsroot-build/build.json (naming the build) into the root:
    only a directory holding it is ever removed, and `check` refuses a
    non-empty root.path without it. A finished bootstrap leaves
    /etc/nfsroot-build/bootstrap.json in the root; when it matches the config
    the step does nothing. A tree it makes names its version in
    /etc/nfsroot-build/version. Changing the suite, variant, bootstrapper,
    architecture, components or mirror builds a new root version from
    scratch beside the others (docs/versions.md); any other change to the
    root makes a new version that starts as a copy of the current one
    (`cp -a -x --reflink=auto` into <version>.part, then renamed). A
    finished version is never removed or rebuilt in place. The first version
    of a [[group]]'s own root starts as such a copy of the default root's
    current tree when it only adds to it (docs/groups.md), else it is
    bootstrapped.
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
        if not self._done(ctx):
            return [f"{ctx.root} holds no finished bootstrap"]
        try:
            ok = (ctx.root / VERSION_FILE).read_text() == versions.label(ctx.version_id) + "\n"
        except FileNotFoundError:
            ok = True   # a 0.1 root (adopted as v1 as it is): named at its next run
        except OSError:
            ok = False
        return [] if ok else [f"{ctx.root / VERSION_FILE} does not name {versions.label(ctx.version_id)}"]

    def _name_version(self, ctx: Context) -> bool:
        return ctx.files.ensure_file(ctx.root / VERSION_FILE, versions.label(ctx.version_id) + "\n")

    def _remove_half_made(self, ctx: Context, tree: Path) -> None:
        if tree.exists() and not pathguard.is_empty(tree):
            pathguard.require_removable(tree, ctx.config.name)
            chroot.unmount_all(ctx, tree)
            ctx.runner.run(["rm", "-rf", "--one-file-system", str(tree)])

    def _clone(self, ctx: Context, source: Path) -> StepResult:
        """The new version starts as a copy of the current one (same suite,
        mirror, variant): the later steps change only what the config changed.
        cp -a --reflink=auto shares blocks where the file system can
        (btrfs, XFS) and copies elsewhere; never hard links, which would let
        a dpkg in the new tree that writes in place change the tree a node
        runs. Copied into <version>.part and renamed: a kill leaves no
        half-copied tree with a finished bootstrap's marker."""
        part = ctx.root.with_name(ctx.root.name + ".part")
        self._remove_half_made(ctx, part)
        self._remove_half_made(ctx, ctx.root)
        if ctx.root.exists():
            ctx.runner.run(["rmdir", str(ctx.root)])
        # -x: never into a mount left under the source (a node's tree has none; an admin's might).
        ctx.runner.run(["cp", "-a", "-x", "--reflink=auto", f"{source}/.", str(part)])
        ctx.runner.run(["mv", "-T", str(part), str(ctx.root)])
        ctx.files.expect_copy(source, ctx.root)   # a dry-run's later steps read the tree they will find
        # A group root's first version copies the default root's tree
        # (groups.seed): from now on the tree is this build's to remove.
        ctx.files.ensure_file(ctx.root / pathguard.BUILD_MARKER, json.dumps({"build": ctx.config.name}) + "\n")
        chroot.sync_root(ctx)
        self._name_version(ctx)
        return StepResult(changed=True, outputs={"mirror": ctx.output(self.name, "mirror"), "included": [],
                                                 "cloned_from": str(source)})

    def run(self, ctx: Context) -> StepResult:
        if self._done(ctx):
            return StepResult(changed=False)
        r = ctx.config.root
        versions.require_building(ctx)
        source = versions.clone_source(ctx)
        if source is not None:
            return self._clone(ctx, source)
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
        included: list[str] = []
        with debcache.lease(ctx) as lease:
            if r.bootstrapper == "debootstrap":
                # The keys the host's apt trusts (aptsources.host_keyring): a
                # site's signed mirror verifies, as it does for mmdebstrap.
                keyring = ctx.state_dir / DEBOOTSTRAP_KEYRING
                ctx.files.ensure_file(keyring, aptsources.host_keyring(), 0o644)
                argv = ["debootstrap", f"--variant={r.variant}", f"--arch={r.architecture}",
                        f"--components={','.join(r.components)}", f"--cache-dir={lease}",
                        f"--keyring={keyring}", r.suite, str(ctx.root), mirror]
            else:
                # Packages only root.extra_sources have: root-packages installs them.
                extra_only = set(packages_index.only_in_extra(ctx, wanted(ctx)))
                included = [p for p in wanted(ctx) if p not in extra_only]
                # One apt pass: the root's packages come in with the base system
                # (--include), so root-packages finds them installed. The kernel
                # makes no initrd here (chroot.BUILD_ENV); dpkg skips its fsyncs
                # (--dpkgopt, written to the root's dpkg.cfg.d: removed again by
                # the last hook) and sync_root flushes once below.
                argv = ["env", *chroot.BUILD_ENV,
                        "mmdebstrap", "--mode=root", f"--variant={r.variant}",
                        f"--architectures={r.architecture}", f"--components={','.join(r.components)}",
                        f"--include={','.join(included)}",
                        f"--dpkgopt={chroot.DPKG_UNSAFE_IO.removeprefix('--')}",
                        # check/empty: the root already holds the build marker.
                        "--skip=download/empty", "--skip=essential/unlink", "--skip=check/empty",
                        *_cache_hooks(shlex.quote(str(lease))),
                        *_depmod_hooks(shlex.quote(str(debcache.depmod_dir(ctx)))),
                        *_lists_hooks(packages_index.apt_lists(ctx)),
                        *([f"--hook-dir={FILE_MIRROR_HOOKS}"] if mirror.startswith("file:") else []),
                        f'--customize-hook=rm "$1"/{DPKG_CFG}',
                        r.suite, str(ctx.root), mirror]
            try:
                ctx.runner.run(argv, contained=True)
            finally:
                # A failed mmdebstrap skips the customize hook that unmounts the lease:
                # never leave it mounted in a half-made root (nothing is mounted after a success).
                chroot.unmount_all(ctx, ctx.root)
        if r.bootstrapper == "debootstrap" and mirror.startswith("file:"):
            # debootstrap names the mirror in the root's sources.list only for
            # the indexes it copied into the root (setup_apt_sources in
            # /usr/share/debootstrap/functions), none for a file: mirror, which
            # it reads in place: apt in the root (root-packages, update) would
            # have no source at all.
            ctx.files.ensure_file(ctx.root / "etc/apt/sources.list",
                                  f"deb {mirror} {r.suite} {' '.join(r.components)}\n", 0o644)
        chroot.sync_root(ctx)
        if included:
            expect_installed(ctx)
            if ctx.config.root.init == "systemd":
                # systemd's install leaves it empty (machine-id(5): filled at first boot).
                ctx.files.expect(ctx.root / "etc/machine-id", "", 0o644)
        for name in BASE_DIRS:
            ctx.files.expect(ctx.root / name)
        for name, mode in TOP_DIRS.items():
            ctx.files.expect(ctx.root / name, mode=mode)
        for name in FROM_HOST:
            if (Path("/") / name).is_file():
                ctx.files.expect(ctx.root / name, (Path("/") / name).read_bytes())
        ctx.files.ensure_file(ctx.root / MARKER, json.dumps(identity(ctx), indent=2) + "\n")
        self._name_version(ctx)
        # root-packages reads "included" where no dpkg database exists yet
        # (a dry-run plans this bootstrap, it does not make it).
        return StepResult(changed=True, outputs={"mirror": mirror, "included": included})
