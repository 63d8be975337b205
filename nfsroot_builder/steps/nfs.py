from __future__ import annotations

from pathlib import Path

from .. import versions
from ..context import Context
from ..render import Served, node_dir
from ..render.server import exports, ganesha_exports
from .base import Step, StepResult, stale_blocks, stale_files

EXPORTS_DROPIN = "/etc/exports.d/nfsroot-build.exports"
GANESHA_DROPIN = "/etc/ganesha/nfsroot-build.conf"
GANESHA_MAIN = "/etc/ganesha/ganesha.conf"
# Not a service: a pending "restart" of this name is `exportfs -ra`, run by
# the services step once what the exports name exists (see NfsExports).
EXPORTS_RELOAD = "exportfs"


def exported_paths(ctx: Context) -> list[Path]:
    """The directories the exports name, as seen under the prefix."""
    c = ctx.config
    if c.root.layout == "per-node":
        return [ctx.root] + [ctx.host(node_dir(c, Served(), n.name)) for n in c.nodes]
    return [ctx.root] + [ctx.root / d for d in c.root.writable_dirs]


class NfsExports(Step):
    """Export the root read-only and the layout's writable trees to the cluster.

    Clients default to the cluster subnet (never `*` unless the config says
    so). With the kernel server the exports are a drop-in the tool owns,
    /etc/exports.d/nfsroot-build.exports; the admin's /etc/exports is not
    touched. With NFS-Ganesha they are a file included from ganesha.conf by
    a managed block. Either is activated by the `services` step (`exportfs
    -ra`, or a restart of nfs-ganesha), after the root exists: exportfs
    refuses an export of a directory that is not there yet.
    """
    name = "nfs-exports"
    # 2: ganesha Clients unquoted (a quoted network was rejected)
    # 3: `exportfs -ra` moved to the services step (it failed before bootstrap made the root)
    version = 3

    def fingerprint(self, ctx: Context) -> dict:
        c = ctx.config
        return {"nfs": c.nfs.model_dump(), "root.path": c.root.path, "layout": c.root.layout,
                "clients": c.nfs_clients,
                "nodes": [(n.name, n.ip) for n in c.nodes] if c.root.layout == "per-node" else [],
                "versions": versions.export_roots(ctx)}

    def verify(self, ctx: Context) -> list[str]:
        c = ctx.config
        if c.nfs.server == "kernel":
            bad = stale_files({ctx.host(EXPORTS_DROPIN): exports(c, ctx.served, versions.export_roots(ctx))})
        else:
            bad = stale_files({ctx.host(GANESHA_DROPIN): ganesha_exports(c, ctx.served, versions.export_roots(ctx))})
            bad += stale_blocks({ctx.host(GANESHA_MAIN): f'%include "{ctx.host(GANESHA_DROPIN)}"\n'})
        if c.root.layout == "per-node":
            bad += [str(d) for d in (ctx.host(node_dir(c, Served(), n.name)) for n in c.nodes) if not d.is_dir()]
        return [f"missing or not as configured: {' '.join(bad)}"] if bad else []

    def run(self, ctx: Context) -> StepResult:
        c = ctx.config
        changed = False
        if c.root.layout == "per-node":
            for node in c.nodes:
                changed |= ctx.files.ensure_dir(ctx.host(node_dir(c, Served(), node.name)), 0o755)
        if c.nfs.server == "kernel":
            changed |= ctx.files.ensure_dir(ctx.host("/etc/exports.d"), 0o755)
            # Activated by the services step: here the root may not exist yet
            # ("exportfs: Failed to stat /NFSROOT/kerrighed", issue 14).
            dropin = ctx.files.ensure_file(ctx.host(EXPORTS_DROPIN), exports(c, ctx.served, versions.export_roots(ctx)))
            return StepResult(changed=changed or dropin, restart={EXPORTS_RELOAD} if dropin else set())
        dropin = ctx.files.ensure_file(ctx.host(GANESHA_DROPIN), ganesha_exports(c, ctx.served, versions.export_roots(ctx)))
        main = ctx.files.managed_block(ctx.host(GANESHA_MAIN),
                                       f'%include "{ctx.host(GANESHA_DROPIN)}"\n')
        changed |= dropin or main
        return StepResult(changed=changed, restart={"nfs-ganesha"} if (dropin or main) else set())
