"""undo with a fake runner: every recorded change is reverted, the admin's
bytes come back exactly, dry-run changes nothing, a tampered state cannot
make it touch files outside the prefix."""
from __future__ import annotations

import json
import os

import pytest

from nfsroot_builder import session
from nfsroot_builder import undo as undo_mod
from nfsroot_builder.errors import NfsrootError

from fakes import FakeRunner
from helpers import snapshot

ADMIN_DHCPD = 'option domain-name "admin.example";\nsubnet 10.9.0.0 netmask 255.255.0.0 { }'  # no final newline
ADMIN_TFTPD = 'TFTP_USERNAME="tftp"\nTFTP_DIRECTORY="/srv/tftp"\nTFTP_ADDRESS=":69"\nTFTP_OPTIONS="--secure"\n'


def make(tmp_path, cfg, dry_run=False):
    out: list[str] = []
    ctx = session.make_context(cfg, prefix=tmp_path / "stage", dry_run=dry_run,
                               runner=FakeRunner(emit=out.append), emit=out.append)
    return ctx, out


@pytest.fixture
def stage(tmp_path, seed_config):
    s = tmp_path / "stage"
    (s / "etc/dhcp").mkdir(parents=True)
    (s / "etc/default").mkdir(parents=True)
    (s / "etc/dhcp/dhcpd.conf").write_text(ADMIN_DHCPD)
    (s / "etc/default/tftpd-hpa").write_text(ADMIN_TFTPD)
    ctx, _ = make(tmp_path, seed_config)
    session.pipeline(ctx).run(to_step="nfs-exports")
    # A file the tool replaced whole (as a doctor fix or a later step might).
    (s / "etc/motd").write_text("admin's motd\n")
    ctx.files.ensure_file(s / "etc/motd", "ours\n")
    ctx.state.save()
    return s


def test_undo_restores_everything(tmp_path, seed_config, stage):
    ctx, _ = make(tmp_path, seed_config)
    kinds = {p.removeprefix(str(stage)): r["kind"] for p, r in ctx.state.files.items()}
    assert kinds["/etc/dhcp/dhcpd.conf"] == "block" and kinds["/etc/motd"] == "replaced"
    assert kinds["/etc/exports.d/nfsroot-build-kerrighed.exports"] == "owned" and kinds["/srv/tftp"] == "dir"
    report = undo_mod.undo(ctx)
    assert report.problems == []
    assert (stage / "etc/dhcp/dhcpd.conf").read_bytes() == ADMIN_DHCPD.encode()
    assert (stage / "etc/default/tftpd-hpa").read_bytes() == ADMIN_TFTPD.encode()
    assert (stage / "etc/motd").read_text() == "admin's motd\n"
    assert not (stage / "etc/exports.d").exists() and not (stage / "srv/tftp").exists()
    assert not (stage / "etc/default/isc-dhcp-server").exists()
    state = json.loads((ctx.state_dir / "state.json").read_text())
    assert state["files"] == {} and set(state["steps"]) == {"server-packages"}
    assert not (ctx.state_dir / "backup").exists()
    # A second undo has nothing to do.
    ctx2, _ = make(tmp_path, seed_config)
    assert undo_mod.undo(ctx2).done == []


def test_undo_dry_run_prints_and_changes_nothing(tmp_path, seed_config, stage):
    before = snapshot(tmp_path)
    ctx, out = make(tmp_path, seed_config, dry_run=True)
    report = undo_mod.undo(ctx)
    assert snapshot(tmp_path) == before
    assert f"# rm {stage}/etc/exports.d/nfsroot-build-kerrighed.exports" in out
    assert "-# BEGIN nfsroot-build managed block kerrighed" in out
    assert any("removed the managed block from" in d for d in report.done)


def test_dir_with_admin_files_is_kept(tmp_path, seed_config, stage):
    (stage / "srv/tftp/pxelinux.0").write_text("admin's")
    ctx, _ = make(tmp_path, seed_config)
    report = undo_mod.undo(ctx)
    assert (stage / "srv/tftp/pxelinux.0").exists()
    assert any("kept" in d and "pxelinux.0" in d for d in report.done)


def test_tampered_state_cannot_reach_outside_the_prefix(tmp_path, seed_config, stage):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    sfile = stage / "var/lib/nfsroot-build/kerrighed/state.json"
    data = json.loads(sfile.read_text())
    data["files"][str(victim)] = {"kind": "owned", "backup": None}
    data["files"][str(stage / "etc/x")] = {"kind": "replaced", "backup": "/etc/shadow"}
    data["files"][str(stage / "etc/y")] = {"kind": "bogus"}
    sfile.write_text(json.dumps(data))
    ctx, _ = make(tmp_path, seed_config)
    report = undo_mod.undo(ctx)
    assert victim.read_text() == "precious"
    assert any("outside the staging prefix" in p for p in report.problems)
    assert any("/etc/shadow" in p and "not in" in p for p in report.problems)
    assert any("unknown record" in p for p in report.problems)
    # Problems keep the records, so a fixed state can be undone again.
    assert json.loads(sfile.read_text())["files"]


def test_missing_backup_is_reported_and_file_left(tmp_path, seed_config, stage):
    ctx, _ = make(tmp_path, seed_config)
    backup = ctx.state.files[str(stage / "etc/motd")]["backup"]
    os.unlink(backup)
    report = undo_mod.undo(ctx)
    assert (stage / "etc/motd").read_text() == "ours\n"
    assert any("backup of the original" in p for p in report.problems)


def test_purge_root_refuses_when_mounted(tmp_path, seed_config, stage, monkeypatch):
    ctx, _ = make(tmp_path, seed_config)
    (ctx.root / "proc").mkdir(parents=True)
    monkeypatch.setattr(undo_mod, "mounts_under", lambda p: [str(p / "proc")])
    before = snapshot(tmp_path)
    with pytest.raises(NfsrootError, match="refusing --purge-root.*umount -R"):
        undo_mod.undo(ctx, purge_root=True)
    assert snapshot(tmp_path) == before


def test_purge_root_removes_root_and_state(tmp_path, seed_config, stage):
    ctx, _ = make(tmp_path, seed_config)
    (ctx.root / "etc/nfsroot-build").mkdir(parents=True)
    (ctx.root / "etc/nfsroot-build/build.json").write_text('{"build": "kerrighed"}\n')   # bootstrap's marker
    (ctx.root / "etc/hostname").write_text("x\n")
    undo_mod.undo(ctx, purge_root=True)
    assert not ctx.root.exists() and not (ctx.state_dir / "state.json").exists()


def test_mounts_under_reads_mountinfo(tmp_path):
    mi = tmp_path / "mountinfo"
    mi.write_text("22 1 0:21 / /proc rw - proc proc rw\n"
                  "90 1 0:50 / /srv/my\\040root/proc rw - proc proc rw\n"
                  "91 1 0:51 / /srv/my\\040root2 rw - tmpfs t rw\n")
    from pathlib import Path
    assert undo_mod.mounts_under(Path("/srv/my root"), mi) == ["/srv/my root/proc"]



def test_undo_removes_the_menus_of_a_glob_record_and_keeps_the_admins(tmp_path, seed_config, stage):
    ctx, _ = make(tmp_path, seed_config)
    menus = stage / "srv/tftp/boot/grub"
    marker = "# Written by nfsroot-build for cluster 'kerrighed'."
    ctx.files.ensure_files(menus, {f"grub.cfg-01-{i}": f"{marker}\nboot\n" for i in range(50)},
                           pattern="grub.cfg-01-*", marker=marker)
    (menus / "grub.cfg-01-admin").write_text("the admin's\n")
    ctx.state.save()
    assert len(json.loads(ctx.state.path.read_text())["files"]) < 20   # not a record per menu
    ctx, _ = make(tmp_path, seed_config)
    report = undo_mod.undo(ctx)
    assert report.problems == []
    assert sorted(p.name for p in menus.iterdir()) == ["grub.cfg-01-admin"]
    # The directories the menus made stay: they hold the admin's file.
    assert any("kept" in d and str(menus) in d for d in report.done)


def test_the_shared_package_cache_is_not_the_builds_to_undo(tmp_path, seed_config, stage):
    ctx, _ = make(tmp_path, seed_config)
    assert ctx.files._is_untracked(ctx.apt_cache) and ctx.files._is_untracked(ctx.apt_cache.parent / "lists")
    # A state written before that recorded the cache a staged build created: undo leaves it, no problem.
    sfile = ctx.state.path
    data = json.loads(sfile.read_text())
    data["files"][str(ctx.apt_cache)] = {"kind": "dir", "backup": None}
    sfile.write_text(json.dumps(data))
    ctx, _ = make(tmp_path, seed_config)
    report = undo_mod.undo(ctx)
    assert report.problems == [] and any(str(ctx.apt_cache) in d and "left" in d for d in report.done)
