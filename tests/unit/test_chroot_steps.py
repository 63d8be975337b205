"""Root steps with a fake runner: what they decide, without a real root."""
from __future__ import annotations

import json

import pytest

from nfsroot_builder import chroot, debcache, packages_index, pathguard, session
from nfsroot_builder.errors import NfsrootError
from nfsroot_builder.steps.bootstrap import MARKER, Bootstrap, identity
from nfsroot_builder.steps.initramfs import newest_kernel
from nfsroot_builder.steps.root_password import RootPassword

from fakes import FakeRunner
from helpers import mark_root


@pytest.fixture
def ctx(seed_config, tmp_path, monkeypatch):
    monkeypatch.setattr(chroot, "mounts_under", lambda root: [])
    monkeypatch.setattr(chroot, "stop_processes", lambda root: None)
    monkeypatch.setattr(packages_index, "check_exist", lambda ctx, names: None)
    monkeypatch.setattr(packages_index, "mirror", lambda ctx: "http://mirror.invalid/debian")
    runner = FakeRunner()
    c = session.make_context(seed_config, prefix=tmp_path / "stage", state_dir=tmp_path / "state",
                             runner=runner, emit=lambda line: None)
    c.apt_cache = tmp_path / "cache"
    return c


def mark(ctx, build: str) -> None:
    mark_root(ctx.root, build)


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
    assert [a[0] for a in ctx.runner.executed] == ["debootstrap"]


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
            helper(None, root) if helper is chroot.unmount_all else helper(root)


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
