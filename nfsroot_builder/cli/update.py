"""`nfsroot-build update` and `root diff A B` (docs/day2-kernel-update.md)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .. import rootdiff, session, update, versions
from ..errors import UsageError
from ..state import now
from .build import build_app
from .common import DEFAULT_CONFIG, ConfigOpt, JsonOpt, PrefixOpt, StateOpt, err, guarded, make_ctx
from .root import root_app


@build_app.command("update")
@guarded
def update_(config: ConfigOpt = DEFAULT_CONFIG, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None,
            as_json: JsonOpt = False):
    """A new root version: the current one + apt-get update && dist-upgrade (with the -security archive)."""
    session.require_root("update")
    base = make_ctx(config, prefix, state_dir, dry_run=False, version="current")
    with session.locked(base):
        current = base.state.current_version()
        vid = versions.start_clone(base, now())
    before = base.root
    ctx = make_ctx(config, prefix, state_dir, dry_run=False, version=vid)
    with session.locked(ctx):
        pipe = session.pipeline(ctx)
        # The step records as the current version left them: a copy that
        # upgrades nothing is thrown away, and its bootstrap with it.
        records = {step.name: ctx.state.step(step.name) for step in pipe.steps}
        try:
            pipe.run(only="bootstrap")   # the copy of the current version's tree
            changes, security = update.upgrade(ctx, before)
        except BaseException:
            versions.set_status(ctx, vid, "failed", error="update failed")
            raise
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
            done = versions.finish_run(ctx, report)
            made = versions.label(vid)
            err.print(f"{made} from {versions.label(current)}: " + (done or "built"), markup=False)
            for line in changes.lines():
                err.print(line, markup=False)
    if as_json:
        print(json.dumps({"version": made, "from": versions.label(current), "security": security.note,
                          **changes.to_json()}, indent=2))


@root_app.command("diff")
@guarded
def diff(a: Annotated[str, typer.Argument(help="a version (v1, v2, ... as `root list` shows)")],
         b: Annotated[str, typer.Argument(help="the version to compare it with")],
         config: ConfigOpt = DEFAULT_CONFIG, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None,
         as_json: JsonOpt = False):
    """Packages added, removed, upgraded (with versions) and files changed under /etc from A to B."""
    ctx = make_ctx(config, prefix, state_dir, dry_run=True, version="current")
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
