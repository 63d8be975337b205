"""The doctor on [[group]]s (docs/groups.md): each group root is built and served."""
from __future__ import annotations

from .. import groups, versions
from ..context import Context
from .base import Finding, check, ok


@check("group-roots")
def group_roots(ctx: Context) -> Finding:
    """Each [[group]]'s root has a current version whose tree and kernel are there (or it shares [root])."""
    cfg = ctx.base_config or ctx.config
    if not cfg.group:
        return ok("no [[group]]: every node boots [root]")
    words, bad = [], []
    for gr in groups.group_roots(cfg):
        now = groups.served(ctx, gr)
        nodes = len(groups.nodes_of(cfg, gr))
        if not groups.has_versions(ctx, gr):   # like the default root before its first run
            words.append(f"{', '.join(gr.groups)}: {gr.config.root.path} not built yet ({nodes} node(s))")
            continue
        label = f"{', '.join(gr.groups)}: {now.path} {versions.label(now.vid)} ({nodes} node(s))"
        missing = [p for p in (now.path, now.kernel_path and f"{cfg.tftp.root}/{now.kernel_path.lstrip('/')}")
                   if not p or not ctx.host(p).exists()]
        (bad if missing else words).append(label + (f": missing {' '.join(map(str, missing))}" if missing else ""))
    shared = [g.name for g in cfg.group if cfg.group_root(g.name) is cfg.root]
    if shared:
        words.append(f"{', '.join(shared)}: [root]")
    if bad:
        return Finding("fail", "a group root is not built or not published: " + "; ".join(bad),
                       "nfsroot-build all --resume (builds each group root, then serves it)")
    return ok("groups " + "; ".join(words))
