"""Root steps with a fake runner: what they decide, without a real root."""
from __future__ import annotations

import json

import pytest

from nfsroot_builder import chroot, debcache, packages_index, session
from nfsroot_builder.steps.bootstrap import MARKER, Bootstrap, identity
from nfsroot_builder.steps.initramfs import newest_kernel
from nfsroot_builder.steps.root_password import RootPassword

from fakes import FakeRunner


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


def test_half_done_bootstrap_starts_again_from_an_empty_directory(ctx):
    (ctx.root / "usr/bin").mkdir(parents=True)      # what a killed debootstrap leaves
    Bootstrap().run(ctx)
    cmds = [a[:3] for a in ctx.runner.executed]
    assert cmds[0] == ["rm", "-rf", "--one-file-system"] and ctx.runner.executed[0][3] == str(ctx.root)
    assert ctx.runner.executed[1][0] == "debootstrap"   # the seed config's bootstrapper
    assert "--cache-dir=" + str(debcache.lease_dir(ctx)) in ctx.runner.executed[1]
    assert json.loads((ctx.root / MARKER).read_text()) == identity(ctx)


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
