"""`nfsroot-build update` and `root diff A B` (docs/day2-kernel-update.md)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .. import groups, rootdiff, session, update, versions
from ..errors import UsageError
from ..state import now
from .build import build_app
from .common import DEFAULT_CONFIG, ConfigOpt, DryOpt, JsonOpt, PrefixOpt, StateOpt, err, guarded, make_ctx
from .root import GroupOpt, root_app


@build_app.command("update")
@guarded
def update_(config: ConfigOpt = DEFAULT_CONFIG, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None,
            as_json: JsonOpt = False, dry_run: DryOpt = False, group: GroupOpt = None):
    """A new root version: the current one + apt-get update && dist-upgrade (with the -security archive)."""
    if dry_run:
        _update_dry_run(config, prefix, state_dir, group)
        return
    session.require_root("update")
    main = make_ctx(config, prefix, state_dir, dry_run=False, version="current")
    one = groups.series(main, group, dry_run=False)
    base = one.ctx
    with session.locked(base):
        current = base.state.current_version()
        vid = versions.start_clone(base, now())
    before = base.root
    ctx = make_ctx(config, prefix, state_dir, dry_run=False, version=vid) if one.group_root is None \
        else groups.context(main, one.group_root, dry_run=False, version=vid)
    with session.locked(ctx):
        pipe = _pipeline(ctx, one)
        # The step records as the current version left them: a copy that
        # upgrades nothing is thrown away, and its bootstrap with it.
        records = {step.name: ctx.state.step(step.name) for step in pipe.steps}
        upgrade = update.Upgrade()
        try:
            pipe.run(only="bootstrap")   # the copy of the current version's tree
            pipe.run_step(upgrade)
            changes = rootdiff.diff(before, ctx.root)
        except BaseException:
            versions.set_status(ctx, vid, "failed", error="update failed")
            raise
        security = upgrade.security
        err.print(security.note, markup=False, style="yellow" if security.note.startswith("WARNING") else None)
        if not changes.packages_changed:
            versions.discard(ctx, vid)
            for name, rec in records.items():
                ctx.state.set_step(name, **rec)
            ctx.state.save()
            made = None
            err.print(f"nothing to upgrade: {versions.label(current)} stays current, no version made", markup=False)
        else:
            report = pipe.run(resume=True)
            done = versions.finish_run(ctx, report, versions.ROOT_FINISHING_STEPS if one.group_root
                                       else versions.FINISHING_STEPS)
            made = versions.label(vid)
            err.print(f"{made} from {versions.label(current)}: " + (done or "built"), markup=False)
            for line in changes.lines():
                err.print(line, markup=False)
    if made and one.group_root is not None:
        # The build's server steps serve the group root's new version: its
        # export, its nodes' menus and DHCP root-path (docs/groups.md).
        with session.locked(main):
            versions.serve(main, exports=True)
    if as_json:
        print(json.dumps({"version": made, "from": versions.label(current), "security": security.note,
                          **({"group_root": one.group_root.key} if one.group_root else {}),
                          **changes.to_json()}, indent=2))


def _pipeline(ctx, one: groups.Series):
    """The steps that make a version of the series' root: all of them for
    the default root, a group root's ROOT_STEPS (and its root image)."""
    return session.pipeline(ctx, only_steps=groups.ROOT_STEPS if one.group_root else None)


def _update_dry_run(config: Path, prefix: Path, state_dir: Path | None, group: str | None) -> None:
    """The update's transcript: the clone (bootstrap), the upgrade, then what
    `all --resume` would run for the new version if a package changed. The
    new version exists in this process's memory only: a dry-run's state is
    read-only (never saved), its runner runs no command that changes
    anything and its FileOps write no file."""
    one = groups.series(make_ctx(config, prefix, state_dir, dry_run=True, version="current"), group, dry_run=True)
    ctx = one.ctx
    current = ctx.state.current_version()
    vid = versions.start_clone(ctx, now())
    ctx = versions.context_for(ctx, vid)
    say = ctx.emit
    what = f" of {one.label()}" if one.group_root else ""
    say(f"# update{what}: {versions.label(vid)} = a copy of {versions.label(current)} ({ctx.config.root.path}), "
        "upgraded")
    pipe = _pipeline(ctx, one)
    pipe.run(only="bootstrap")
    pipe.run_step(update.Upgrade())
    say(f"# if a package changed: the steps below make {versions.label(vid)} and it becomes current; "
        f"else {versions.label(vid)} is removed and {versions.label(current)} stays current")
    for plan in pipe.plan():
        # Not the bootstrap again: the clone above made it (a dry-run has no tree to verify it by).
        if plan.needs_run and plan.step.name != "bootstrap":
            pipe.run_step(plan.step)
    if one.group_root:
        say(f"# then the build's nfs-exports, dhcp-server, node-menus and services serve {versions.label(vid)} "
            f"to the nodes of group(s) {', '.join(one.group_root.groups)}")
    err.print(f"dry-run: update{what} would make {versions.label(vid)} from {versions.label(current)} "
              "if a package has an upgrade; nothing was changed", markup=False)


@root_app.command("diff")
@guarded
def diff(a: Annotated[str, typer.Argument(help="a version (v1, v2, ... as `root list` shows)")],
         b: Annotated[str, typer.Argument(help="the version to compare it with")],
         config: ConfigOpt = DEFAULT_CONFIG, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None,
         as_json: JsonOpt = False, group: GroupOpt = None):
    """Packages added, removed, upgraded (with versions) and files changed under /etc from A to B."""
    ctx = groups.series(make_ctx(config, prefix, state_dir, dry_run=True, version="current"), group,
                        dry_run=True).ctx
    recs = ctx.state.versions()
    trees = []
    for text in (a, b):
        vid = versions.parse_id(text)
        if vid not in recs:
            raise UsageError(f"no root version {versions.label(vid)}; `nfsroot-build root list` shows them")
        trees.append(ctx.host(recs[vid]["path"]))
    changes = rootdiff.diff(*trees)
    if as_json:
        print(json.dumps(changes.to_json(), indent=2))
        return
    for line in changes.lines() or ["no difference in packages or /etc"]:
        print(line)
