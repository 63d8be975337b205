"""The chroot session with a fake runner: what it runs, in which order, and
that it undoes everything on failure too. (The real mounts are checked in
tests/integration/test_root_*.py.)"""
from __future__ import annotations

from pathlib import Path

import pytest

from nfsroot_builder import chroot, debcache, session
from nfsroot_builder.errors import CommandFailed

from fakes import FakeRunner


def ctx_for(seed_config, tmp_path, runner):
    ctx = session.make_context(seed_config, prefix=tmp_path / "stage", state_dir=tmp_path / "state",
                               runner=runner, emit=lambda line: None)
    ctx.apt_cache = tmp_path / "cache"
    (ctx.root / "usr/sbin").mkdir(parents=True)
    (ctx.root / "etc").mkdir()
    return ctx


def test_session_mounts_runs_and_undoes_in_reverse(seed_config, tmp_path, monkeypatch):
    monkeypatch.setattr(chroot, "mounts_under", lambda root: [])
    monkeypatch.setattr(chroot, "stop_processes", lambda ctx, root: None)
    runner = FakeRunner()
    ctx = ctx_for(seed_config, tmp_path, runner)
    with chroot.session(ctx, apt_cache=True) as ch:
        assert (ctx.root / "usr/sbin/policy-rc.d").read_text().rstrip().endswith("exit 101")
        ch.run(["apt-get", "update"])
    cmds = [" ".join(a) for a in runner.executed]
    root = str(ctx.root)
    assert cmds[0] == f"mount -t proc proc {root}/proc"
    assert cmds[3] == f"mount --bind {debcache.lease_dir(ctx)} {root}/var/cache/apt/archives"
    assert cmds[4].startswith(f"chroot {root} /usr/bin/env -i PATH=") and cmds[4].endswith("apt-get update")
    assert cmds[5:] == [f"umount {root}/var/cache/apt/archives", f"umount {root}/dev/pts",
                        f"umount {root}/sys", f"umount {root}/proc"]
    assert not (ctx.root / "usr/sbin/policy-rc.d").exists()
    # policy-rc.d came and went: not a change of the root.
    assert str(ctx.root / "usr/sbin/policy-rc.d") not in ctx.files.changed_paths


def test_session_undoes_after_a_failing_command(seed_config, tmp_path, monkeypatch):
    monkeypatch.setattr(chroot, "mounts_under", lambda root: [])
    monkeypatch.setattr(chroot, "stop_processes", lambda ctx, root: None)
    runner = FakeRunner(answers={"chroot": (1, "", "E: broken\n")})
    ctx = ctx_for(seed_config, tmp_path, runner)
    with pytest.raises(CommandFailed), chroot.session(ctx) as ch:
        ch.run(["false"])
    assert [a[0] for a in runner.executed[-3:]] == ["umount"] * 3
    assert not (ctx.root / "usr/sbin/policy-rc.d").exists()


def test_stale_mounts_are_unmounted_first(seed_config, tmp_path, monkeypatch):
    runner = FakeRunner()
    ctx = ctx_for(seed_config, tmp_path, runner)
    left = [f"{ctx.root}/proc"]
    monkeypatch.setattr(chroot, "mounts_under", lambda root: list(left))
    monkeypatch.setattr(chroot, "stop_processes", lambda ctx, root: None)
    with chroot.session(ctx):
        left.clear()
    assert runner.executed[0] == ["umount", f"{ctx.root}/proc"]


def test_secret_reaches_stdin_only(seed_config, tmp_path, monkeypatch):
    monkeypatch.setattr(chroot, "mounts_under", lambda root: [])
    monkeypatch.setattr(chroot, "stop_processes", lambda ctx, root: None)
    shown = []
    runner = FakeRunner(dry_run=False)
    ctx = ctx_for(seed_config, tmp_path, runner)
    with chroot.session(ctx) as ch:
        ch.run(["chpasswd", "-e"], input="root:$6$x$y\n", secret=True)
        shown.append(runner.show(ch.argv(["chpasswd", "-e"]), "root:$6$x$y\n", True))
    assert all("$6$" not in " ".join(a) for a in runner.executed)
    assert shown[0].endswith("<<< <redacted>")


def test_the_roots_resolv_conf_comes_back(seed_config, tmp_path, monkeypatch):
    monkeypatch.setattr(chroot, "mounts_under", lambda root: [])
    monkeypatch.setattr(chroot, "stop_processes", lambda ctx, root: None)
    ctx = ctx_for(seed_config, tmp_path, FakeRunner())
    resolv = ctx.root / "etc/resolv.conf"
    resolv.write_text("nameserver 192.168.0.1\n")
    with chroot.session(ctx):
        if Path("/etc/resolv.conf").exists():
            assert resolv.read_bytes() == Path("/etc/resolv.conf").read_bytes()
    assert resolv.read_text() == "nameserver 192.168.0.1\n"
    assert str(resolv) not in ctx.files.changed_paths
