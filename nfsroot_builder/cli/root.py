"""`nfsroot-build root list | switch | rollback | prune`: the root's versions
(docs/versions.md, docs/day2.md)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .. import groups, session, versions
from ..errors import NfsrootError, UsageError
from .common import DEFAULT_CONFIG, ConfigOpt, JsonOpt, PrefixOpt, StateOpt, err, guarded, make_ctx

root_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                       help="The root's versions: list, switch (all nodes or a canary), roll back, prune.")

# `--group G`: G's root's version series (docs/groups.md); a group on [root]: the default root.
GroupOpt = Annotated[str | None, typer.Option("--group", help="this [[group]]'s root (default: the default "
                                              "[root]; a group that boots [root]: the same)")]


def _rows(ctx, nodes=None) -> list[dict]:
    """One row per version; nodes: the nodes that boot this root (default: the config's)."""
    state = ctx.state
    cfg = ctx.base_config or ctx.config
    wanted = versions.node_versions(cfg if nodes is None else cfg.model_copy(update={"node": nodes}), state, None)
    rows = []
    for vid, rec in sorted(state.versions().items()):
        tree = ctx.host(rec["path"])
        rows.append({
            "id": versions.label(vid), "path": rec["path"], "created": rec.get("created"),
            "suite": (rec.get("identity") or {}).get("suite"), "kernel": rec.get("kernel"),
            "size": versions.tree_size(tree), "packages": versions.package_count(tree),
            "state": versions.state_word(state, vid), "serve": versions.serve_of(rec),
            "nodes": sorted(n for n, v in wanted.items() if v == vid)})
    return rows


@root_app.command("list")
@guarded
def list_(config: ConfigOpt = DEFAULT_CONFIG, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None,
          as_json: JsonOpt = False, group: GroupOpt = None):
    """The versions: id, created, suite, kernel, size, packages, state, nodes set to it (--json: and serve)."""
    ctx = make_ctx(config, prefix, state_dir, dry_run=True, version="current")
    cfg = ctx.base_config or ctx.config
    if group is not None:   # one series only, as a config without groups lists it
        one = groups.series(ctx, group, dry_run=True)
        rows = _rows(one.ctx, one.nodes)
        if as_json:
            print(json.dumps({"versions": rows}, indent=2))
        else:
            print(f"{one.label()} {one.ctx.config.root.path if one.group_root else cfg.root.path}")
            _print_rows(rows)
        return
    rows = _rows(ctx, groups.default_nodes(cfg))
    # [[group]]s with roots of their own: one section each (groups.py).
    sections = []
    for gr in groups.group_roots(cfg):
        sub = groups.context(ctx, gr, dry_run=True, version="current")
        sections.append({"group_root": gr.key, "path": gr.config.root.path, "groups": list(gr.groups),
                         "versions": _rows(sub, groups.nodes_of(cfg, gr))})
    if as_json:
        print(json.dumps({"versions": rows, **({"group_roots": sections} if cfg.group else {})}, indent=2))
        return
    if sections:
        print(f"[root] {cfg.root.path}")
    _print_rows(rows)
    for sec in sections:
        print(f"\ngroup root {sec['group_root']} (groups: {', '.join(sec['groups'])}) {sec['path']}")
        _print_rows(sec["versions"])


def _print_rows(rows: list[dict]) -> None:
    if not rows:
        print("no root version yet: run `nfsroot-build all`")
        return
    print(f"{'id':<5} {'state':<9} {'created':<25} {'suite':<10} {'kernel':<22} {'size':>8} {'pkgs':>5}  nodes")
    for r in rows:
        size = f"{r['size'] / 2**20:.0f}M" if r["size"] is not None else "-"
        nodes = ",".join(r["nodes"]) if len(r["nodes"]) <= 4 else f"{len(r['nodes'])} nodes"
        print(f"{r['id']:<5} {r['state']:<9} {(r['created'] or '-')[:25]:<25} {r['suite'] or '-':<10} "
              f"{r['kernel'] or '-':<22} {size:>8} {r['packages'] if r['packages'] is not None else '-':>5}  "
              f"{nodes}".rstrip())


def _series(config, prefix, state_dir, group: str | None, command: str) -> groups.Series:
    session.require_root(command)
    ctx = make_ctx(config, prefix, state_dir, dry_run=False, version="current")
    return groups.series(ctx, group, dry_run=False)


def _own_nodes(one: groups.Series, names: list[str]) -> None:
    """--nodes: a pin only steers a node that boots this series' root (the
    unknown names: versions.switch's own message)."""
    cfg = one.ctx.base_config or one.ctx.config
    mine = {n.name for n in one.nodes}
    others = [n.name for n in cfg.nodes if n.name in names and n.name not in mine]
    if others:
        raise UsageError(f"--nodes: {', '.join(others)} do(es) not boot {one.label()}: name their "
                         f"group with --group (`node list` shows each node's group)")


def _serve(ctx) -> None:
    """Menus and DHCP follow the state's current version and pins (running
    nodes keep the tree they mounted: nothing else changes). A context made
    again from the config already parsed (10,000 nodes: 0.16 s a parse)."""
    cfg = ctx.base_config or ctx.config
    again = session.make_context(cfg, prefix=ctx.prefix, state_dir=ctx.state_dir, dry_run=False,
                                 emit=ctx.emit, note=ctx.note, version="current")
    with session.locked(again):
        versions.serve(again)


@root_app.command()
@guarded
def switch(version: Annotated[str, typer.Argument(help="the version (v1, v2, ... as `root list` shows)")],
           config: ConfigOpt = DEFAULT_CONFIG, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None,
           nodes: Annotated[str | None, typer.Option("--nodes", help="only these nodes (comma-separated): "
                                                     "a canary; the others keep theirs")] = None,
           group: GroupOpt = None):
    """The next boot of every node (or only --nodes) gets VERSION; running nodes keep theirs."""
    vid = versions.parse_id(version)
    one = _series(config, prefix, state_dir, group, "root switch")
    names = [n for n in (nodes or "").split(",") if n]
    _own_nodes(one, names)
    with session.locked(one.ctx):
        line = versions.switch(one.ctx, vid, names)
    _serve(one.main)
    err.print(f"{one.group_root.key}: {line}" if one.group_root else line, markup=False)


@root_app.command()
@guarded
def rollback(config: ConfigOpt = DEFAULT_CONFIG, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None,
             group: GroupOpt = None):
    """Back to the previous current version: no rebuild; menus and DHCP follow."""
    one = _series(config, prefix, state_dir, group, "root rollback")
    prev = one.ctx.state.previous_version()
    if not prev:
        of = f" of {one.label()}" if one.group_root else ""
        raise UsageError(f"no previous root version{of} to roll back to (`root list`)")
    with session.locked(one.ctx):
        line = versions.switch(one.ctx, prev, [])
    _serve(one.main)
    err.print(f"rolled back {one.group_root.key}: {line}" if one.group_root else f"rolled back: {line}",
              markup=False)


@root_app.command()
@guarded
def prune(config: ConfigOpt = DEFAULT_CONFIG, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None,
          keep: Annotated[int, typer.Option("--keep", min=1, help="keep this many newest finished versions")] = 2,
          group: GroupOpt = None):
    """Remove old versions; never the current, the previous, a pinned one or one with NFS clients (exit 1 if it refused one)."""
    one = _series(config, prefix, state_dir, group, "root prune")
    with session.locked(one.ctx):
        # The NFS server is the build's (a group root's context has its own state dir, not the lab's bus).
        removed, kept, refused = versions.prune(one.ctx, keep, server=one.main)
    for vid in removed:
        err.print(f"removed {versions.label(vid)}", markup=False)
    for vid, why in kept:
        err.print(f"kept {versions.label(vid)}: {why}", markup=False)
    for vid, why in refused:
        err.print(f"refused to remove {versions.label(vid)}: {why}", markup=False)
    if refused:   # asked to go, but in use: the admin should know
        raise typer.Exit(1)
    if not removed:
        err.print("nothing to prune", markup=False)


__all__ = ["root_app", "NfsrootError"]
