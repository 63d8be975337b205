"""Defects found in review of what landed with issues 11 and 13, each shown
by a test that failed before its fix (no root, fake runner, tmp_path)."""
from __future__ import annotations

import json

import pytest
from test_replicas_rules import synced  # noqa: F401 (fixture)
from test_side_by_side_rules import ADMIN_DHCPD, configure, make, second_text
from test_sync_prune_groups import with_group_root

from nfsroot_builder import config as config_mod
from nfsroot_builder import replicas, session
from nfsroot_builder import undo as undo_mod
from nfsroot_builder.doctor import apply_fixes, run_checks
from nfsroot_builder.replicas import series
from nfsroot_builder.state import State
from nfsroot_builder.steps.node_menus import node_menu_files

from fakes import FakeRunner
from helpers import snapshot


def test_a_replica_lacking_a_group_roots_version_shows_it_missing(synced):  # noqa: F811
    ctx, _runner, _row, tmp = synced   # b holds the default root's v1 and v2
    key = with_group_root(ctx, tmp)    # login's v1 and v2 ready on the primary, never synced
    [row] = replicas.status(ctx)
    assert row["missing"] == [f"{key}:v1", f"{key}:v2"]
    assert f"lacks {key}:v1, {key}:v2" in replicas.status_lines(ctx)[0]
    replicas.sync(ctx)
    [row] = replicas.status(ctx)
    assert row["missing"] == [] and row["versions"] == ["v1", "v2", f"{key}:v1", f"{key}:v2"]


def test_a_replicas_menus_are_node_menus_public_files_for_that_replica(synced):  # noqa: F811
    ctx, _runner, _row, _tmp = synced
    [r] = (ctx.base_config or ctx.config).servers
    rendered = replicas.rendered_files(ctx, r)
    menus = node_menu_files(replicas.replica_context(ctx, r))
    assert menus and all(rendered[f"/srv/tftp/lab/{rel}"] == text for rel, text in menus.items())
    assert "nfsroot=192.168.0.2:" in next(iter(menus.values()))


def test_sync_reads_each_roots_versions_once(synced, monkeypatch):  # noqa: F811
    """series() loads each group root's state from disk; sync used to call it
    again for what was pruned, the TFTP filters and the exports."""
    ctx, _runner, _row, tmp = synced
    key = with_group_root(ctx, tmp)
    reads = []
    monkeypatch.setattr(replicas, "series", lambda c: reads.append(1) or series(c))
    [row] = replicas.sync(ctx)
    assert len(reads) == 1
    assert row["versions"] == ["v1", "v2", f"{key}:v1", f"{key}:v2"] and row["removed"] == []


# -- undo of two builds, in either order: what the tool made goes with the last one --

def server_tree(stage) -> dict[str, tuple]:
    """The server's files under stage with their bytes; the builds' state dirs left out."""
    return {p: v[1] for p, v in snapshot(stage).items() if "/var" not in p.removeprefix(str(stage))}


@pytest.mark.parametrize("first", ["kerrighed", "test"])
@pytest.mark.parametrize("purge", [False, True], ids=["undo", "purge-root"])
def test_undo_of_both_builds_in_either_order_gives_the_server_back(tmp_path, seed_text, first, purge):
    """Undo of the build that configured first used to leave the directories
    it made (and files it made for its block) because the other's files lived
    there; the second undo had no record of them: /etc/exports.d, /srv/tftp/boot/grub
    and /etc/default/tftpd-hpa stayed, empty."""
    stage = tmp_path / "stage"
    (stage / "etc/dhcp").mkdir(parents=True)
    (stage / "etc/dhcp/dhcpd.conf").write_text(ADMIN_DHCPD)
    (stage / "etc/ganesha").mkdir()   # the admin's, empty: never removed
    before = server_tree(stage)
    configure(tmp_path, seed_text, "kerrighed")
    configure(tmp_path, second_text(seed_text), "test")
    assert (stage / "etc/exports.d").is_dir() and (stage / "srv/tftp/boot/grub").is_dir()
    builds = {"kerrighed": config_mod.parse(seed_text), "test": config_mod.parse(second_text(seed_text))}
    second = next(name for name in builds if name != first)
    report = undo_mod.undo(make(tmp_path, builds[first]), purge_root=purge)
    assert report.problems == []
    if first == "kerrighed":   # it made them; test's files keep them
        left = State.load(stage / "var/lib/nfsroot-build/kerrighed/state.json").left_by_undo()
        assert left[str(stage / "etc/exports.d")] == "dir" and left[str(stage / "etc/default/tftpd-hpa")] == "owned"
    # The second's undo --dry-run plans the removals and changes nothing.
    ctx = session.make_context(builds[second], prefix=stage, dry_run=True, emit=(shown := []).append,
                               runner=FakeRunner(emit=lambda line: None))
    mid = snapshot(tmp_path)
    undo_mod.undo(ctx)
    assert snapshot(tmp_path) == mid and f"# rm {stage}/srv/tftp" in shown
    report = undo_mod.undo(make(tmp_path, builds[second]))
    assert report.problems == []
    assert server_tree(stage) == before


def test_undo_never_removes_a_directory_no_build_made_nor_one_that_holds_a_file(tmp_path, seed_text):
    stage = tmp_path / "stage"
    configure(tmp_path, seed_text, "kerrighed")
    configure(tmp_path, second_text(seed_text), "test")
    (stage / "srv/tftp/pxelinux.0").write_text("admin's")
    outside = tmp_path / "outside"   # an empty directory a tampered record names
    outside.mkdir()
    undo_mod.undo(make(tmp_path, config_mod.parse(seed_text)))
    prod_state = stage / "var/lib/nfsroot-build/kerrighed/state.json"
    data = json.loads(prod_state.read_text())
    data["left_by_undo"][str(outside)] = "dir"
    prod_state.write_text(json.dumps(data))
    report = undo_mod.undo(make(tmp_path, config_mod.parse(second_text(seed_text))))
    assert report.problems == [] and outside.is_dir()
    assert (stage / "srv/tftp/pxelinux.0").read_text() == "admin's"
    assert sorted(p.name for p in (stage / "srv/tftp").iterdir()) == ["pxelinux.0"]
    assert not (stage / "etc/exports.d").exists()


# -- doctor nfs-threads with two builds on one kernel NFS server --

@pytest.mark.parametrize("first", ["kerrighed", "test"])
def test_each_builds_threads_fix_holds_and_undo_in_either_order_leaves_the_packages_file(
        tmp_path, seed_text, first, monkeypatch):
    """nfsd is one daemon: each build's doctor judges the threads it will
    run (RPCNFSDCOUNT, else the last [nfsd] threads of nfs.conf and
    nfs.conf.d/*.conf) against its own nfs.threads. The drop-in is one file
    both builds' fixes write; the undo of the build that wrote it first
    used to leave it to the other, whose undo then put the gone build's
    file back."""
    monkeypatch.setattr("nfsroot_builder.services.restart", lambda ctx, service: None)
    stage = tmp_path / "stage"
    package_default = "# the package's\nRPCNFSDCOUNT=8\n"
    (stage / "etc/default").mkdir(parents=True)
    (stage / "etc/default/nfs-kernel-server").write_text(package_default)
    texts = {"kerrighed": seed_text.replace('clients = ""', 'clients = ""\nthreads = 16'),
             "test": second_text(seed_text).replace('clients = ""', 'clients = ""\nthreads = 32')}
    ctxs = {name: configure(tmp_path, text, name) for name, text in texts.items()}
    for name in texts:
        assert apply_fixes(ctxs[name], run_checks(ctxs[name], only=["nfs-threads"])) == {"nfs-threads": "fixed"}
        ctxs[name].state.save()
    for text in texts.values():
        [finding] = run_checks(make(tmp_path, config_mod.parse(text)), only=["nfs-threads"])
        assert finding.status == "ok" and finding.reason.startswith("32 nfsd threads"), finding
    second = next(name for name in texts if name != first)
    assert undo_mod.undo(make(tmp_path, config_mod.parse(texts[first]))).problems == []
    [finding] = run_checks(make(tmp_path, config_mod.parse(texts[second])), only=["nfs-threads"])
    assert finding.status == "ok", finding   # what the build that stays asked for
    assert undo_mod.undo(make(tmp_path, config_mod.parse(texts[second]))).problems == []
    assert (stage / "etc/default/nfs-kernel-server").read_text() == package_default
    assert not (stage / "etc/nfs.conf.d").exists()


def test_a_threads_fix_holds_when_another_builds_block_came_after_this_ones(tmp_path, seed_text, monkeypatch):
    """RPCNFSDCOUNT: sh takes the last assignment. kerrighed's block came
    first, test's (32) after; kerrighed then asks for 64: its block moves to
    the end, or its fix would leave nfsd at 32."""
    monkeypatch.setattr("nfsroot_builder.services.restart", lambda ctx, service: None)
    stage = tmp_path / "stage"
    (stage / "etc/default").mkdir(parents=True)
    (stage / "etc/default/nfs-kernel-server").write_text("RPCNFSDCOUNT=8\n")
    texts = {"kerrighed": seed_text.replace('clients = ""', 'clients = ""\nthreads = 16'),
             "test": second_text(seed_text).replace('clients = ""', 'clients = ""\nthreads = 32')}
    for name, text in texts.items():
        ctx = configure(tmp_path, text, name)
        assert apply_fixes(ctx, run_checks(ctx, only=["nfs-threads"])) == {"nfs-threads": "fixed"}
        ctx.state.save()
    more = texts["kerrighed"].replace("threads = 16", "threads = 64")
    ctx = make(tmp_path, config_mod.parse(more))
    assert apply_fixes(ctx, run_checks(ctx, only=["nfs-threads"])) == {"nfs-threads": "fixed"}
    ctx.state.save()
    for text in (more, texts["test"]):
        [finding] = run_checks(make(tmp_path, config_mod.parse(text)), only=["nfs-threads"])
        assert finding.status == "ok" and finding.reason.startswith("64 nfsd threads"), finding
    assert undo_mod.undo(make(tmp_path, config_mod.parse(texts["test"]))).problems == []
    assert undo_mod.undo(make(tmp_path, config_mod.parse(more))).problems == []
    assert (stage / "etc/default/nfs-kernel-server").read_text() == "RPCNFSDCOUNT=8\n"
