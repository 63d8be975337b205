from __future__ import annotations

from pathlib import Path

from .. import groups, versions
from ..context import Context
from ..render import Served, node_dir
from ..render.server import exports, ganesha_exports
from .base import Step, StepResult, stale_blocks, stale_files

GANESHA_MAIN = "/etc/ganesha/ganesha.conf"
# The drop-ins 0.1 wrote, one build per server: a build whose undo record
# has one takes it away when it writes its own named drop-in.
LEGACY_DROPINS = ("/etc/exports.d/nfsroot-build.exports", "/etc/ganesha/nfsroot-build.conf")
# Not a service: a pending "restart" of this name is `exportfs -ra`, run by
# the services step once what the exports name exists (see NfsExports).
EXPORTS_RELOAD = "exportfs"


def exports_dropin(name: str) -> str:
    """The kernel server's drop-in of build name: builds side by side each
    have one (exportfs reads every /etc/exports.d/*.exports, exports(5))."""
    return f"/etc/exports.d/nfsroot-build-{name}.exports"


def ganesha_dropin(name: str) -> str:
    """NFS-Ganesha's exports of build name, %included from ganesha.conf by the build's managed block."""
    return f"/etc/ganesha/nfsroot-build-{name}.conf"


def group_paths(ctx: Context) -> list[str]:
    """The group roots' versions to export, config-level paths (groups.py)."""
    return sorted({path for gr in groups.group_roots(ctx.config) for _vid, path in groups.served(ctx, gr).live})


def exported_paths(ctx: Context) -> list[Path]:
    """The directories the exports name, as seen under the prefix."""
    c = ctx.config
    own = [ctx.host(p) for p in group_paths(ctx)] if c.group else []
    if c.root.layout == "per-node":
        return [ctx.root] + [ctx.host(node_dir(c, Served(), n.name)) for n in c.nodes] + own
    return [ctx.root] + [ctx.root / d for d in c.root.writable_dirs] + own


class NfsExports(Step):
    """Export the root read-only and the layout's writable trees to the cluster.

    Clients default to the cluster subnet (never `*` unless the config says
    so). With the kernel server the exports are a drop-in the tool owns,
    /etc/exports.d/nfsroot-build-<name>.exports; the admin's /etc/exports
    is not touched. With NFS-Ganesha they are a file
    /etc/ganesha/nfsroot-build-<name>.conf included from ganesha.conf by a
    managed block. Builds side by side have a drop-in each; the unnamed
    drop-in of an older version is removed when this build wrote it. Either is activated by the `services` step (`exportfs
    -ra`, or a restart of nfs-ganesha), after the root exists: exportfs
    refuses an export of a directory that is not there yet.
    Each [[group]] root's live versions are exported read-only too (docs/groups.md).
    """
    name = "nfs-exports"
    # 2: ganesha Clients unquoted (a quoted network was rejected)
    # 3: `exportfs -ra` moved to the services step (it failed before bootstrap made the root)
    # 4: a drop-in named for the build (builds side by side)
    version = 4

    def fingerprint(self, ctx: Context) -> dict:
        c = ctx.config
        return {"nfs": c.nfs.model_dump(), "root.path": c.root.path, "layout": c.root.layout,
                "clients": c.nfs_clients,
                "nodes": [(n.name, n.ip) for n in c.nodes] if c.root.layout == "per-node" else [],
                "versions": versions.export_roots(ctx),
                # Absent without groups: the fingerprints of builds without stay.
                **({"groups": paths} if (paths := group_paths(ctx)) else {})}

    def verify(self, ctx: Context) -> list[str]:
        c = ctx.config
        if c.nfs.server == "kernel":
            wanted = exports(c, ctx.served, versions.export_roots(ctx), group_paths(ctx))
            bad = stale_files({ctx.host(exports_dropin(c.name)): wanted})
        else:
            dropin = ctx.host(ganesha_dropin(c.name))
            bad = stale_files({dropin: ganesha_exports(c, ctx.served, versions.export_roots(ctx), group_paths(ctx))})
            bad += stale_blocks({ctx.host(GANESHA_MAIN): f'%include "{dropin}"\n'}, c.name)
        bad += [str(p) for p in self._legacy(ctx)]
        if c.root.layout == "per-node":
            bad += [str(d) for d in (ctx.host(node_dir(c, Served(), n.name)) for n in c.nodes) if not d.is_dir()]
        return [f"missing or not as configured: {' '.join(bad)}"] if bad else []

    @staticmethod
    def _legacy(ctx: Context) -> list[Path]:
        """The unnamed drop-ins of an older version that this build wrote (its undo record has them)."""
        return [p for p in map(ctx.host, LEGACY_DROPINS) if str(p) in ctx.files.record and p.exists()]

    def run(self, ctx: Context) -> StepResult:
        c = ctx.config
        changed = False
        legacy = [ctx.files.ensure_absent(p) for p in self._legacy(ctx)]
        changed |= any(legacy)
        if c.root.layout == "per-node":
            for node in c.nodes:
                changed |= ctx.files.ensure_dir(ctx.host(node_dir(c, Served(), node.name)), 0o755)
        if c.nfs.server == "kernel":
            changed |= ctx.files.ensure_dir(ctx.host("/etc/exports.d"), 0o755)
            # Activated by the services step: here the root may not exist yet
            # ("exportfs: Failed to stat /NFSROOT/kerrighed", issue 14).
            dropin = ctx.files.ensure_file(ctx.host(exports_dropin(c.name)),
                                           exports(c, ctx.served, versions.export_roots(ctx), group_paths(ctx)))
            dropin |= any(legacy)
            return StepResult(changed=changed or dropin, restart={EXPORTS_RELOAD} if dropin else set())
        path = ctx.host(ganesha_dropin(c.name))
        dropin = ctx.files.ensure_file(path, ganesha_exports(c, ctx.served, versions.export_roots(ctx), group_paths(ctx)))
        main = ctx.files.managed_block(ctx.host(GANESHA_MAIN), f'%include "{path}"\n')
        changed |= dropin or main
        return StepResult(changed=changed, restart={"nfs-ganesha"} if (dropin or main or any(legacy)) else set())
