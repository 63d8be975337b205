"""`nfsroot-build sync`: copy the root versions to the replicated boot
servers ([[servers]], docs/replicas.md)."""
from __future__ import annotations

import json
from pathlib import Path

from .. import replicas, session
from .build import build_app
from .common import DEFAULT_CONFIG, ConfigOpt, DryOpt, JsonOpt, PrefixOpt, StateOpt, guarded, make_ctx


@build_app.command("sync")
@guarded
def sync(config: ConfigOpt = DEFAULT_CONFIG, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None,
         as_json: JsonOpt = False, dry_run: DryOpt = False):
    """Bring every [[servers]] replica to this server's versions (rsync); report what was copied."""
    session.require_root("sync")
    ctx = make_ctx(config, prefix, state_dir, dry_run=dry_run, json_stdout=as_json, version="current")
    if not ctx.config.servers:
        print("no [[servers]] in the config: nothing to sync")
        return
    if dry_run:   # rsync --dry-run only: no lock, nothing written
        rows = replicas.sync(ctx, preview=True)
    else:
        with session.locked(ctx):
            rows = replicas.sync(ctx)
    if as_json:
        print(json.dumps({"replicas": rows, "dry_run": dry_run}, indent=2))
        return
    verb = "would be copied" if dry_run else "copied"
    for r in rows:
        print(f"{r['server']} ({r['address']}, {r['tree']}): {r['files']} files, {r['bytes']} bytes {verb}; "
              f"{'would hold' if dry_run else 'holds'} {', '.join(r['versions']) or 'no version'}"
              + (f"; {'would remove' if dry_run else 'removed'} {', '.join(r['removed'])} (pruned here)"
                 if r["removed"] else ""))

