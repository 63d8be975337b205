"""Locks on what a run changes, the chroot session's write-ahead record and
its recovery, the per-build .deb cache lease, and the process/mount helpers -
with files under tmp_path and a fake runner (the real kills and builds are in
tests/integration/test_kill_resume.py and test_concurrent_builds.py)."""
from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from nfsroot_builder import chroot, debcache, procs, session
from nfsroot_builder.errors import Locked
from nfsroot_builder.render.root import POLICY_RC_D
from nfsroot_builder.state import RunLock
from nfsroot_builder.steps.root_packages import RootPackages

from fakes import FakeRunner


@pytest.fixture
def ctx(seed_config, tmp_path, monkeypatch):
    monkeypatch.setattr(chroot, "mounts_under", lambda root: [])
    monkeypatch.setattr(chroot, "stop_processes", lambda ctx, root: None)
    c = session.make_context(seed_config, prefix=tmp_path / "stage", state_dir=tmp_path / "state",
                             runner=FakeRunner(), emit=lambda line: None)
    c.apt_cache = tmp_path / "cache" / "apt"
    (c.root / "usr/sbin").mkdir(parents=True)
    (c.root / "etc").mkdir()
    return c


# -- locks ------------------------------------------------------------------------
def test_a_second_run_over_the_same_root_with_another_state_dir_is_locked_out(tmp_path):
    root = tmp_path / "srv/nfsroot/x"
    first = RunLock(tmp_path / "state-a", {"the root": root}, lock_dir=tmp_path / "locks")
    second = RunLock(tmp_path / "state-b", {"the root": root}, lock_dir=tmp_path / "locks")
    with first, pytest.raises(Locked) as e:
        second.__enter__()
    msg = str(e.value)
    assert f"pid {os.getpid()}" in msg and str(tmp_path / "state-a") in msg and str(root) in msg
    # The loser released what it had taken: its state dir is free again.
    assert second.fds == []
    with RunLock(tmp_path / "state-b", lock_dir=tmp_path / "locks"):
        pass


def test_different_roots_do_not_exclude_each_other(tmp_path):
    locks = tmp_path / "locks"
    with RunLock(tmp_path / "a", {"the root": tmp_path / "r1"}, lock_dir=locks), \
            RunLock(tmp_path / "b", {"the root": tmp_path / "r2"}, lock_dir=locks):
        pass


def test_the_same_root_through_a_symlink_is_the_same_lock(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    locks = tmp_path / "locks"
    with RunLock(tmp_path / "a", {"the root": tmp_path / "real"}, lock_dir=locks), pytest.raises(Locked):
        RunLock(tmp_path / "b", {"the root": tmp_path / "link"}, lock_dir=locks).__enter__()


def test_guarded_paths_cover_root_and_the_builds_tftp_directory_not_shared_server_files(ctx):
    guarded = session.guarded_paths(ctx)
    assert ctx.root in guarded.values() and ctx.tftp_root / ctx.config.name in guarded.values()
    # Another build of the same server may run at the same time (builds side by side).
    assert ctx.host("/etc") not in guarded.values() and ctx.tftp_root not in guarded.values()


# -- the chroot session's record -------------------------------------------------------
def test_session_writes_its_record_ahead_and_removes_it(ctx):
    seen = {}

    def look(argv):
        if argv[0] == "chroot":
            seen.update(json.loads((ctx.root / chroot.SESSION_RECORD).read_text()))
        return None
    ctx.runner.hook = look
    with chroot.session(ctx) as ch:
        ch.run(["true"])
    assert seen["policy-rc.d"] is True and "proc" in seen["mounts"]
    assert not (ctx.root / chroot.SESSION_RECORD).exists()
    assert str(ctx.root / chroot.SESSION_RECORD) not in ctx.files.changed_paths


def killed_session(ctx, resolv_before: bytes | None):
    """The root as a session SIGKILLed in the middle leaves it."""
    (ctx.root / chroot.POLICY).write_text(POLICY_RC_D)
    (ctx.root / chroot.RESOLV).write_bytes(b"nameserver 10.0.0.53\n")   # the build host's
    record = {"policy-rc.d": True, "mounts": ["proc"],
              "resolv.conf": {"original": None if resolv_before is None else base64.b64encode(resolv_before).decode(),
                              "mode": 0o644}}
    (ctx.root / chroot.SESSION_RECORD).parent.mkdir(parents=True, exist_ok=True)
    (ctx.root / chroot.SESSION_RECORD).write_text(json.dumps(record))


def test_leftovers_are_reported_and_recover_undoes_them(ctx):
    killed_session(ctx, b"nameserver 192.168.0.1\r\n")
    found = chroot.leftovers(ctx)
    assert any("policy-rc.d" in f for f in found) and any(chroot.SESSION_RECORD in f for f in found)
    done = chroot.recover(ctx)
    assert not (ctx.root / chroot.POLICY).exists()
    assert (ctx.root / chroot.RESOLV).read_bytes() == b"nameserver 192.168.0.1\r\n"
    assert not (ctx.root / chroot.SESSION_RECORD).exists()
    assert any("policy-rc.d" in d for d in done) and chroot.leftovers(ctx) == []


def test_recover_removes_a_resolv_conf_the_root_did_not_have(ctx):
    killed_session(ctx, None)
    chroot.recover(ctx)
    assert not (ctx.root / chroot.RESOLV).exists()


def test_a_leftover_policy_rc_d_without_record_is_ours_only_with_our_text(ctx):
    policy = ctx.root / chroot.POLICY
    policy.write_text("#!/bin/sh\nexit 0\n")        # the admin's own
    assert chroot.leftovers(ctx) == [] and chroot.recover(ctx) == []
    assert policy.exists()
    policy.write_text(POLICY_RC_D)                   # what 0.1 left after a kill
    assert chroot.leftovers(ctx) and chroot.recover(ctx)
    assert not policy.exists()


def test_the_next_session_starts_from_a_clean_root(ctx):
    killed_session(ctx, b"nameserver 192.168.0.1\n")
    with chroot.session(ctx):
        pass
    assert not (ctx.root / chroot.POLICY).exists()
    assert (ctx.root / chroot.RESOLV).read_bytes() == b"nameserver 192.168.0.1\n"


def test_root_packages_is_stale_while_a_session_left_policy_rc_d(ctx):
    (ctx.root / chroot.POLICY).write_text(POLICY_RC_D)
    problems = RootPackages().verify(ctx)
    assert any("policy-rc.d" in p for p in problems)


def test_locked_run_recovers_before_its_first_step(ctx, tmp_path, monkeypatch):
    monkeypatch.setattr("nfsroot_builder.state.PATH_LOCKS", tmp_path / "locks")
    killed_session(ctx, b"nameserver 192.168.0.1\n")
    notes = []
    ctx.note = notes.append
    with session.locked(ctx):
        assert not (ctx.root / chroot.POLICY).exists()
    assert any("policy-rc.d" in n for n in notes)


# -- the .deb cache lease --------------------------------------------------------------
def test_lease_links_the_pool_in_and_new_debs_back(ctx):
    pool = ctx.apt_cache
    pool.mkdir(parents=True)
    (pool / "a_1_amd64.deb").write_bytes(b"a")
    with debcache.lease(ctx) as lease:
        assert lease != pool and (lease / "partial").is_dir()
        assert os.path.samefile(lease / "a_1_amd64.deb", pool / "a_1_amd64.deb")
        (lease / "b_1_amd64.deb").write_bytes(b"b")            # apt downloaded it
        (lease / "partial" / "c_1_amd64.deb").write_bytes(b"")  # an unfinished download
    assert (pool / "b_1_amd64.deb").read_bytes() == b"b"
    assert not (pool / "c_1_amd64.deb").exists() and not (pool / "partial").exists()


def test_two_roots_get_two_leases_and_a_dry_run_makes_none(ctx, seed_config, tmp_path):
    other = session.make_context(seed_config, prefix=tmp_path / "other", state_dir=tmp_path / "s2",
                                 runner=FakeRunner(), emit=lambda line: None, dry_run=True)
    other.apt_cache = ctx.apt_cache
    assert debcache.lease_dir(ctx) != debcache.lease_dir(other)
    with debcache.lease(other) as lease:
        assert not lease.exists() and not ctx.apt_cache.exists()


# -- procs -----------------------------------------------------------------------------
def test_mounts_under_reads_mountinfo_deepest_first(tmp_path):
    mi = tmp_path / "mountinfo"
    mi.write_text("22 1 0:21 / /srv/r rw - ext4 x rw\n"
                  "23 22 0:22 / /srv/r/proc rw - proc proc rw\n"
                  "24 23 0:23 / /srv/r/dev/pts rw - devpts devpts rw\n"
                  "25 1 0:24 / /srv/r2 rw - tmpfs tmpfs rw\n"
                  "26 1 0:25 / /srv/my\\040root/sys rw - sysfs sysfs rw\n")
    assert procs.mounts_under(Path("/srv/r"), mi) == ["/srv/r/dev/pts", "/srv/r/proc", "/srv/r"]
    assert procs.mounts_under(Path("/srv/my root"), mi) == ["/srv/my root/sys"]


def test_stop_signals_only_what_is_still_ours(monkeypatch):
    sent = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append((pid, sig)))
    assert procs.stop([11, 12], alive=lambda pid: False, grace=0) == []
    assert sent == []


def test_stop_escalates_to_sigkill(monkeypatch):
    sent = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append((pid, sig)))
    monkeypatch.setattr(procs, "reap", lambda pids: None)

    def still(pid):   # survives SIGTERM, goes with SIGKILL
        return (pid, 9) not in sent
    assert procs.stop([11], alive=still, grace=0, poll=0) == [11]
    assert sent == [(11, 15), (11, 9)]


def test_start_time_names_one_process():
    assert procs.start_time(os.getpid()) == procs.start_time(os.getpid()) is not None
    assert procs.running(os.getpid(), procs.start_time(os.getpid()))
    assert not procs.running(os.getpid(), -1)
