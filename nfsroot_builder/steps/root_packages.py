from __future__ import annotations

import contextlib
import urllib.parse
from pathlib import Path

from .. import aptsources, chroot, kernels, packages_index
from ..context import Context
from ..render.root import IMAGE_MODE_PACKAGES
from .base import Step, StepResult

# What makes the root boot as a diskless node, by init system. udev names
# the NICs and loads drivers; initscripts ships /etc/network/if-up.d/mountnfs.
INIT_PACKAGES = {"systemd": ["systemd-sysv", "udev"],
                 "sysvinit": ["sysvinit-core", "initscripts", "udev", "orphan-sysvinit-scripts"]}
APT_OPTS = ["-y", "--no-install-recommends", "-o", "Dpkg::Options::=--force-confdef",
            "-o", "Dpkg::Options::=--force-confold", "-o", f"Dpkg::Options::={chroot.DPKG_UNSAFE_IO}"]
LOCAL_DIR = "var/cache/nfsroot-build/local-debs"
# Enabled by systemd's own presets when it is installed (the mountnfs step makes sure).
REMOTE_FS_WANT = "etc/systemd/system/multi-user.target.wants/remote-fs.target"
REMOTE_FS = "/usr/lib/systemd/system/remote-fs.target"


def wanted(ctx: Context) -> list[str]:
    """The seed's apt-get installs, today's names, plus root.packages."""
    r = ctx.config.root
    # zstd: initramfs-tools compresses with it by default, else falls back to gzip with a warning.
    # netbase: /etc/protocols, without which userspace NFS mounts fail with
    # "Protocol not supported" (lab-notes RECIPE.md, pitfall 6).
    base = [r.kernel_package, "initramfs-tools", "zstd", "nfs-common", "netbase", *INIT_PACKAGES[r.init]]
    if r.serve == "image":   # live-boot's fetch= in the initrd (docs/image-mode.md)
        base += IMAGE_MODE_PACKAGES
    # root.kernel naming a kernel that no local .deb ships: installed from the archive.
    chosen = kernels.package_to_install(r.kernel, r.local_debs)
    return list(dict.fromkeys(base + ([chosen] if chosen else []) + r.packages))


def tidy(ctx: Context) -> None:
    """Drop apt's lists, caches and any .deb left in the root (~200 MB every
    node would read through NFS for nothing); mmdebstrap(1) does the same
    after a bootstrap ("cleanup/apt"). The .debs live on in the host's cache.

    One find(1), not a removal per file: which files apt left is only known
    after apt ran, and a dry-run must show the same as the real run."""
    apt, lists = ctx.root / "var/cache/apt", ctx.root / "var/lib/apt/lists"
    ctx.runner.run(["find", str(apt), str(lists), "-xdev", "-type", "f",
                    "(", "-path", f"{apt}/*.bin", "-o", "-path", f"{apt}/archives/*.deb",
                    "-o", "-path", f"{lists}/*", ")", "!", "-name", "lock", "-delete"])


def extra_sources_text(ctx: Context) -> str | None:
    """The root's apt source file for root.extra_sources (None: no such file)."""
    return aptsources.render_extra_sources([s.parsed for s in ctx.config.root.extra_sources])


def ensure_extra_sources(ctx: Context) -> bool:
    """Write (or remove) the root's nfsroot-build-extra.sources; update reads it too."""
    path, text = ctx.root / aptsources.EXTRA_SOURCES, extra_sources_text(ctx)
    return ctx.files.ensure_absent(path) if text is None else ctx.files.ensure_file(path, text, 0o644)


# In the root only while apt runs in it (file_repositories).
HOST_KEYS = "etc/apt/trusted.gpg.d/nfsroot-build-host.gpg"


@contextlib.contextmanager
def file_repositories(ctx: Context):
    """While apt runs in the root (apt in a chroot sees only the root): the
    host directories of a file: mirror (root.mirror, which the root's
    sources.list names: debootstrap writes it there) and of file: extra
    sources, bound read-only at their own paths, and the host's trusted keys
    in the root's trusted.gpg.d. Mount points and the key file are removed
    again; a SIGKILLed run's mounts go with the chroot session's
    (chroot.recover unmounts all under the root)."""
    made, mounted = [], []
    mirror = packages_index.mirror(ctx)
    dirs = [urllib.parse.urlsplit(mirror).path.rstrip("/") or "/"] if mirror.startswith("file:") else []
    dirs += [d for source in ctx.config.root.extra_sources for d in source.parsed.file_dirs()]
    try:
        for host_dir in dict.fromkeys(dirs):
            point = ctx.root / host_dir.lstrip("/")
            # The highest directory missing on the way: removed again afterwards.
            missing = [p for p in (point, *point.parents)
                       if p.is_relative_to(ctx.root) and p != ctx.root and not ctx.files.exists(p)]
            if missing:
                made.append(missing[-1])
                ctx.files.ensure_dir(point, 0o755)
            ctx.runner.run(["mount", "--bind", "-o", "ro", host_dir, str(point)])
            mounted.append(point)
        # The keys the host's apt trusts, while apt runs: the root's own apt
        # trusts Debian's keyring only, and a site's signed mirror (debootstrap
        # wrote it into the root's sources.list) would give no candidates.
        ctx.files.ensure_file(ctx.root / HOST_KEYS, aptsources.host_keyring(), 0o644)
        made.append(ctx.root / HOST_KEYS)
        yield
    finally:
        for point in reversed(mounted):
            ctx.runner.run(["umount", str(point)])
        for path in reversed(made):
            ctx.files.ensure_absent(path)


def _local_id(path: str) -> dict:
    st = Path(path).stat() if Path(path).exists() else None
    return {"path": path, "size": st.st_size if st else None, "mtime": st.st_mtime if st else None}


def expect_installed(ctx: Context) -> None:
    """What installing the root's packages makes that later steps act on;
    a dry-run, where nothing was installed, plans with it (FileOps.expect).
    Called where they are installed: root-packages, or bootstrap when
    mmdebstrap brings them in its one apt pass."""
    for d in ("etc/initramfs-tools/conf.d", "etc/initramfs-tools/scripts/init-bottom", "etc/initramfs-tools/hooks"):
        ctx.files.expect(ctx.root / d, mode=0o755)   # initramfs-tools' directories
    if ctx.config.root.init == "systemd":
        ctx.files.expect(ctx.root / "var/lib/systemd", mode=0o755)
        ctx.files.expect(ctx.root / REMOTE_FS_WANT, link=REMOTE_FS)


class RootPackages(Step):
    """Install the kernel, initramfs-tools, nfs-common, the init system and root.packages in the root.

    The seed's `apt-get install dhcp3-common nfs-common nfsbooted` and
    `initramfs-tools`, updated: the kernel (root.kernel_package,
    linux-image-<arch>), initramfs-tools (+ zstd, its compressor), nfs-common (+ netbase), systemd-sysv + udev
    (or sysvinit-core + initscripts with init = "sysvinit"), and the
    config's root.packages; no recommends, never a question (debconf
    noninteractive, existing conffiles kept). dhcp3-common and nfsbooted
    are gone: the initramfs configures the network, and the node name comes
    from DHCP (see the hostname step).

    root.extra_sources (a site's own repositories, deb822 stanzas with
    their armored key) go to the root's
    /etc/apt/sources.list.d/nfsroot-build-extra.sources (the key inline in
    Signed-By) before apt runs; a file: repository's directory is bound
    read-only into the root at its own path while apt reads it.

    root.local_debs (a custom kernel such as Kerrighed's) are copied into
    the root and installed with apt, which pulls their dependencies. A
    root.kernel that names a kernel release or package no local .deb ships
    is installed from the archive too (linux-image-<release>).

    Runs in a chroot session (proc, sysfs, devpts, policy-rc.d exit 101: no
    daemon starts in the build) with the .deb cache bound on
    /var/cache/apt/archives. A run that was interrupted is finished first
    (`dpkg --configure -a`). Afterwards apt's lists and caches are removed
    from the root, as mmdebstrap does: nodes never run apt.

    With mmdebstrap the bootstrap already installed all of these, and this
    step only checks them. Packages install with INITRD=No (the initramfs
    step makes the one initrd) and dpkg's --force-unsafe-io; the root's file
    system is synced once before the step is done.
    """
    name = "root-packages"
    needs = ("bootstrap",)
    uses_mirror = True

    def fingerprint(self, ctx: Context) -> dict:
        extra = extra_sources_text(ctx)
        return {"packages": wanted(ctx), "local_debs": [_local_id(p) for p in ctx.config.root.local_debs],
                **({"extra_sources": extra} if extra else {})}

    def verify(self, ctx: Context) -> list[str]:
        have = packages_index.installed(ctx.root)
        names = [p.split(":")[0] for p in wanted(ctx)] + ctx.output(self.name, "local_packages", [])
        missing = [p for p in names if p not in have]
        # A kill in the middle of a chroot session (this step's or a later one's).
        leftovers = chroot.leftovers(ctx)
        extra, path = extra_sources_text(ctx), ctx.root / aptsources.EXTRA_SOURCES
        if (extra is None) != (not path.exists()) or (extra is not None and path.read_text() != extra):
            leftovers.append(f"not as configured: /{aptsources.EXTRA_SOURCES}")
        return ([f"not installed in the root: {' '.join(missing)}"] if missing else []) + leftovers

    def run(self, ctx: Context) -> StepResult:
        r = ctx.config.root
        names = wanted(ctx)
        # No dpkg database: the bootstrap before this step was planned, not
        # made; what it installs (mmdebstrap --include) counts as installed.
        # A dry-run of a cloned version reads the tree it is cloned from (FileOps.on_disk).
        before = (packages_index.installed(ctx.files.on_disk(ctx.root))
                  or dict.fromkeys(ctx.output("bootstrap", "included", []), ""))
        local = []
        for deb in r.local_debs:
            res = ctx.runner.run(["dpkg-deb", "--field", deb, "Package"], probe=True)
            local.append(res.stdout.strip())
        sources_changed = ensure_extra_sources(ctx)
        if not r.local_debs and all(p.split(":")[0] in before for p in names):
            tidy(ctx)   # a run killed after apt-get installed everything left its lists
            return StepResult(changed=sources_changed, outputs={"local_packages": []})
        packages_index.check_exist(ctx, names)
        with chroot.session(ctx, apt_cache=True) as ch, file_repositories(ctx):
            # Finish what a killed run left half-configured (dpkg(1), --configure -a).
            ch.run([*chroot.BUILD_ENV, "dpkg", "--configure", "-a"])
            ch.run(["apt-get", "update"])
            ch.run([*chroot.BUILD_ENV, "apt-get", "install", *APT_OPTS, *names])
            if r.local_debs:
                copies = []
                for deb in r.local_debs:
                    dest = ctx.root / LOCAL_DIR / Path(deb).name
                    ctx.files.copy_file(Path(deb), dest)
                    copies.append("/" + LOCAL_DIR + "/" + Path(deb).name)
                try:
                    ch.run([*chroot.BUILD_ENV, "apt-get", "install", *APT_OPTS, *copies])
                finally:
                    ctx.files.ensure_absent(ctx.root / LOCAL_DIR)
            expect_installed(ctx)
        tidy(ctx)
        chroot.sync_root(ctx)   # dpkg wrote with unsafe I/O: flushed before the step is done
        after = packages_index.installed(ctx.files.on_disk(ctx.root))
        return StepResult(changed=after != before or sources_changed,
                          outputs={"local_packages": [p for p in local if p]})
