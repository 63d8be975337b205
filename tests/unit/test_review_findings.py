"""Defects found in review of what landed with issues 11 and 13, each shown
by a test that failed before its fix (no root, fake runner, tmp_path)."""
from __future__ import annotations

from test_replicas_rules import synced  # noqa: F401 (fixture)
from test_sync_prune_groups import with_group_root

from nfsroot_builder import replicas
from nfsroot_builder.replicas import series
from nfsroot_builder.steps.node_menus import node_menu_files


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
