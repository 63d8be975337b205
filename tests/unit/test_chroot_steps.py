"""Root steps with a fake runner: what they decide, without a real root."""
from __future__ import annotations

import json

import pytest

from nfsroot_builder import chroot, debcache, packages_index, pathguard, session
from nfsroot_builder import config as config_mod
from nfsroot_builder.errors import NfsrootError
from nfsroot_builder.steps.bootstrap import DPKG_CFG, MARKER, Bootstrap, identity
from nfsroot_builder.steps.initramfs import Initramfs, newest_kernel
from nfsroot_builder.steps.root_packages import RootPackages, wanted
from nfsroot_builder.steps.root_password import RootPassword

from fakes import FakeRunner
from helpers import example_text, mark_root


def _context(cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(chroot, "mounts_under", lambda root: [])
    monkeypatch.setattr(chroot, "stop_processes", lambda ctx, root: None)
    monkeypatch.setattr(packages_index, "check_exist", lambda ctx, names: None)
    monkeypatch.setattr(packages_index, "apt_lists", lambda ctx: [])
    monkeypatch.setattr(packages_index, "mirror", lambda ctx: "http://mirror.invalid/debian")
    runner = FakeRunner()
    c = session.make_context(cfg, prefix=tmp_path / "stage", state_dir=tmp_path / "state",
                             runner=runner, emit=lambda line: None)
    c.apt_cache = tmp_path / "cache"
    return c


def mark(ctx, build: str) -> None:
    mark_root(ctx.root, build)


@pytest.fixture
def ctx(seed_config, tmp_path, monkeypatch):
    return _context(seed_config, tmp_path, monkeypatch)


@pytest.fixture
def mm_ctx(tmp_path, monkeypatch):
    """The lab config: bootstrapper = "mmdebstrap"."""
    return _context(config_mod.parse(example_text("lab")), tmp_path, monkeypatch)


def test_half_done_bootstrap_starts_again_from_an_empty_directory(ctx):
    (ctx.root / "usr/bin").mkdir(parents=True)      # what a killed debootstrap leaves
    mark(ctx, ctx.config.name)                       # ... after the marker it wrote first
    Bootstrap().run(ctx)
    cmds = [a[:3] for a in ctx.runner.executed]
    assert cmds[0] == ["rm", "-rf", "--one-file-system"] and ctx.runner.executed[0][3] == str(ctx.root)
    assert ctx.runner.executed[1][0] == "debootstrap"   # the seed config's bootstrapper
    assert "--cache-dir=" + str(debcache.lease_dir(ctx)) in ctx.runner.executed[1]
    assert json.loads((ctx.root / MARKER).read_text()) == identity(ctx)


def test_marker_is_written_before_the_base_system(ctx):
    seen = []
    ctx.runner.hook = lambda argv: seen.append((argv[0], (ctx.root / pathguard.BUILD_MARKER).is_file())) or None
    Bootstrap().run(ctx)
    assert ("debootstrap", True) in seen
    assert json.loads((ctx.root / pathguard.BUILD_MARKER).read_text()) == {"build": ctx.config.name}


def test_empty_existing_root_is_used_not_removed(ctx):
    (ctx.root / "lost+found").mkdir(parents=True)     # a fresh file system mounted there
    Bootstrap().run(ctx)
    assert [a[0] for a in ctx.runner.executed] == ["debootstrap", "sync"]


@pytest.mark.parametrize("build,words", [(None, "no nfsroot-build made"), ("other", "build 'other'")])
def test_root_without_this_builds_marker_is_never_removed(ctx, build, words):
    (ctx.root / "home/alice").mkdir(parents=True)
    (ctx.root / "home/alice/thesis.tex").write_text("years of work\n")
    if build:
        mark(ctx, build)
    with pytest.raises(NfsrootError, match=words):
        Bootstrap().run(ctx)
    assert ctx.runner.executed == []
    assert (ctx.root / "home/alice/thesis.tex").read_text() == "years of work\n"


@pytest.mark.parametrize("helper", [chroot.unmount_all, chroot.stop_processes])
def test_mount_and_kill_helpers_refuse_the_host_root(helper, tmp_path):
    (tmp_path / "up").symlink_to("/")
    for root in ("/", tmp_path / "up"):
        with pytest.raises(NfsrootError, match="host's own /"):
            helper(None, root)


def test_finished_bootstrap_is_left_alone(ctx):
    (ctx.root / MARKER).parent.mkdir(parents=True)
    (ctx.root / MARKER).write_text(json.dumps(identity(ctx)))
    assert Bootstrap().verify(ctx) == []
    assert not Bootstrap().run(ctx).changed and ctx.runner.executed == []


def test_newest_kernel_by_debian_version_ordering(tmp_path):
    (tmp_path / "boot").mkdir()
    for v in ("6.12.9+deb13-amd64", "6.12.10+deb13-amd64", "6.1.0-28-amd64"):
        (tmp_path / "boot" / f"vmlinuz-{v}").touch()
    assert newest_kernel(tmp_path) == "6.12.10+deb13-amd64"   # a string sort says 6.12.9
    assert newest_kernel(tmp_path / "nothing") is None


def test_root_password_goes_to_chpasswd_on_stdin(ctx):
    (ctx.root / "etc").mkdir(parents=True)
    (ctx.root / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    seen = []
    ctx.runner.hook = lambda argv: seen.append(argv) or None
    RootPassword().run(ctx)
    chpasswd = [a for a in seen if "chpasswd" in a]
    assert chpasswd and chpasswd[0][-2:] == ["chpasswd", "-e"]
    assert RootPassword().fingerprint(ctx)["password_hash"].startswith("sha256:")


def test_mmdebstrap_installs_the_roots_packages_in_its_one_apt_pass(mm_ctx):
    Bootstrap().run(mm_ctx)
    argv = next(a for a in mm_ctx.runner.executed if "mmdebstrap" in a)
    assert f"--include={','.join(wanted(mm_ctx))}" in argv
    # No initrd while the kernel installs: the initramfs step makes the one, with the config in.
    assert argv[:argv.index("mmdebstrap")] == ["env", "INITRD=No"]
    # Unsafe dpkg I/O only during the build: the option file is removed by the last hook ...
    assert "--dpkgopt=force-unsafe-io" in argv
    hooks = [a for a in argv if a.startswith("--customize-hook=")]
    assert hooks[-1] == f'--customize-hook=rm "$1"/{DPKG_CFG}'
    # ... and the root is flushed once before the marker says the bootstrap is done.
    after = mm_ctx.runner.executed[mm_ctx.runner.executed.index(argv) + 1]
    assert after == ["sync", "--file-system", str(mm_ctx.root)]
    assert (mm_ctx.root / MARKER).exists()


def test_mmdebstrap_root_needs_no_second_apt_pass(mm_ctx, monkeypatch):
    monkeypatch.setattr(packages_index, "installed", lambda root: {p: "1" for p in wanted(mm_ctx)})
    result = RootPackages().run(mm_ctx)
    assert not result.changed
    # Nothing installed: only the tidy-up of apt's lists and caches (a find) runs.
    assert [argv[0] for argv in mm_ctx.runner.executed] == ["find"]


def test_root_packages_install_without_initrd_with_unsafe_io_then_sync(ctx, monkeypatch):
    monkeypatch.setattr(packages_index, "installed", lambda root: {})
    RootPackages().run(ctx)
    cmds = ctx.runner.executed
    installs = [a for a in cmds if "apt-get" in a and "install" in a]
    assert installs and all(a[a.index("apt-get") - 1] == "INITRD=No" for a in installs)
    assert all("Dpkg::Options::=--force-unsafe-io" in a for a in installs)
    configure = next(a for a in cmds if "--configure" in a)
    assert configure[configure.index("dpkg") - 1] == "INITRD=No"
    # One sync, after the last dpkg run and before the step returns.
    assert cmds[-1] == ["sync", "--file-system", str(ctx.root)]


def test_initramfs_makes_the_initrd_a_kernel_installed_without_one_lacks(ctx, monkeypatch):
    kernel = "6.12.10+deb13-amd64"
    (ctx.root / "boot").mkdir(parents=True)
    (ctx.root / "boot" / f"vmlinuz-{kernel}").touch()

    def listing(argv):
        if "update-initramfs" in argv:   # what update-initramfs -u -k does without an initrd
            (ctx.root / "boot" / f"initrd.img-{kernel}").write_bytes(b"initrd")
        if "lsinitramfs" in argv:
            return 0, "".join(f"{n}\n" for n in ("scripts/nfs", "usr/bin/nfsmount", "conf/conf.d/nfsroot-build",
                                                  "scripts/init-bottom/nfsroot-build-layout",
                                                  "usr/lib/modules/x/kernel/fs/overlayfs/overlay.ko.xz")), ""
        return None
    ctx.runner.hook = listing
    monkeypatch.setattr("nfsroot_builder.render.root.initrd_must_contain", lambda cfg: [r"scripts/nfs"])
    result = Initramfs().run(ctx)
    builds = [a for a in ctx.runner.executed if "update-initramfs" in a]
    assert builds and builds[0][-3:] == ["-u", "-k", kernel] and result.changed


def test_planned_mmdebstrap_bootstrap_counts_its_packages_as_installed(mm_ctx):
    """A dry-run plans the bootstrap without a root: root-packages must then
    plan what the real run does after mmdebstrap --include, nothing."""
    mm_ctx.state.set_step("bootstrap", outputs=Bootstrap().run(mm_ctx).outputs)   # as the pipeline does
    mm_ctx.runner.executed.clear()
    assert not (mm_ctx.root / "var/lib/dpkg/status").exists()
    assert not RootPackages().run(mm_ctx).changed
    # Nothing installed: only the tidy-up of apt's lists and caches (a find) runs.
    assert [argv[0] for argv in mm_ctx.runner.executed] == ["find"]
