from __future__ import annotations

from ..context import Context
from ..render import base_root_path
from .base import Step, StepResult


class NodeVar(Step):
    """Layout "per-node": give each node its own /var on the server, seeded from the root's /var.

    The seed exported one read-write /var for all nodes; each node writing
    the same /var/lib and /var/run is what its "common problems" are made
    of. Here every node gets <root.path>.nodes/<node> (exported read-write to
    that node's address only by nfs-exports), filled once with a copy of
    the root's /var (`cp -a --one-file-system`) and mounted on /var by the
    initramfs. A node directory that already holds files is left alone:
    it is the node's own data. Other layouts: nothing to do.
    """
    name = "node-var"
    needs = ("root-packages", "nfs-exports")

    def _dirs(self, ctx: Context):
        cfg = ctx.config
        if cfg.root.layout != "per-node":
            return []
        # render.node_dir() is the served path; this is the same directory on
        # the host: beside the configured root.path, one for all versions
        # (root.path is version N's own path, <root.path>.v<N>, while N builds).
        return [ctx.host(f"{base_root_path(cfg.root.path)}.nodes/{n.name}") for n in cfg.nodes]

    def fingerprint(self, ctx: Context) -> dict:
        # The nodes only where each has a /var here: with another layout a
        # node added from the command line must not re-run this step.
        c = ctx.config
        return {"layout": c.root.layout, "nodes": [n.name for n in c.nodes] if c.root.layout == "per-node" else []}

    def verify(self, ctx: Context) -> list[str]:
        empty = [str(d) for d in self._dirs(ctx) if not d.is_dir() or not any(d.iterdir())]
        return [f"not seeded: {' '.join(empty)}"] if empty else []

    def run(self, ctx: Context) -> StepResult:
        changed = False
        for d in self._dirs(ctx):
            if d.is_dir() and any(d.iterdir()):
                continue
            changed |= ctx.files.ensure_dir(d, 0o755)
            ctx.runner.run(["cp", "-a", "--one-file-system", f"{ctx.root}/var/.", f"{d}/"])
            changed = True
        return StepResult(changed=changed)
