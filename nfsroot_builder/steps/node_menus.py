from __future__ import annotations

from .. import versions
from ..context import Context
from ..files import differing
from ..render import header, menus
from .base import Step, StepResult, digest

MENU_DIRS = {"grub": ("boot/grub", "grub.cfg-01-*"), "ipxe": ("ipxe", "*.ipxe"), "pxegrub": ("grub", "*")}


class NodeMenus(Step):
    """Write one boot menu per node: the kernel, its initrd and the NFS root command line.

    Each menu boots the kernel published by kernel-to-tftp with
    `root=/dev/nfs nfsroot=<server>:<root>,tcp,v3 ip=dhcp ro` (the Debian
    initramfs mounts NFSv3 only), the layout's `nrb.layout=`/`nrb.var=`
    (per-node: the node's own /var directory) and boot.kernel_args. By boot.loader:
    boot/grub/grub.cfg-01-<mac-with-dashes> (GRUB 2 looks that name up by
    itself), ipxe/<mac-with-dashes>.ipxe (chained from ipxe/boot.ipxe), or
    the seed's legacy GRUB menu grub/<node> (DHCP option 150 points there).
    Menus this build wrote for nodes no longer in the config are removed.
    Each node's menu names the root version it boots next (docs/versions.md):
    the one this run builds or `root switch` chose, or the node's pin
    (`root switch VERSION --nodes ...`), with that version's kernel and initrd.
    Menus with the same content (every layout but per-node) are one file
    under many names (hard links); undo knows them by their header.
    """
    name = "node-menus"
    needs = ("kernel-to-tftp", "boot-loader")

    def _files(self, ctx: Context) -> dict[str, str]:
        kernel = ctx.output("kernel-to-tftp", "kernel_path")
        initrd = ctx.output("kernel-to-tftp", "initrd_path")
        rec = ctx.state.versions().get(ctx.version_id, {})
        if rec.get("status") == "ready" and rec.get("kernel_path"):
            # A finished version (after `root switch` or `root rollback`): its own kernel.
            kernel, initrd = rec["kernel_path"], rec["initrd_path"]
        images = menus.Images(ctx.placeholder("kernel-path", kernel), ctx.placeholder("initrd-path", initrd))
        groups = versions.node_groups(ctx)
        if len(groups) == 1 and groups[0][2] == ctx.version_id:   # the usual case (10,000 nodes: no copy)
            return menus.menu_files(ctx.config, ctx.served, images)
        out: dict[str, str] = {}
        recs = ctx.state.versions()
        for cfg, nodes, vid in groups:
            its = images if vid == ctx.version_id else menus.Images(recs[vid]["kernel_path"], recs[vid]["initrd_path"])
            out.update(menus.menu_files(cfg.model_copy(update={"node": nodes}), ctx.served, its))
        return out

    def fingerprint(self, ctx: Context) -> dict:
        c = ctx.config
        # A menu uses a node's name and MAC only ([name, mac] pairs: model_dump
        # per node cost 14 ms of a no-op resume at 10,000 nodes).
        return {"boot": c.boot.model_dump(), "nodes": [[n.name, n.mac] for n in c.nodes],
                "server": c.server.address, "root.path": ctx.served.path(c.root.path), "suite": c.root.suite,
                "layout": c.root.layout,
                # Which version each node boots next (canary pins, rollback).
                "versions": digest(versions.node_versions(c, ctx.state, versions.menu_target(ctx)))
                if ctx.state.pins() else versions.menu_target(ctx)}

    def _by_name(self, ctx: Context) -> dict[str, str]:
        """Menu file name -> content; all of them live in the loader's menu directory."""
        directory, _pattern = MENU_DIRS[ctx.config.boot.loader]
        cut = len(directory) + 1
        return {rel[cut:]: text for rel, text in self._files(ctx).items()}

    def verify(self, ctx: Context) -> list[str]:
        if not ctx.output("kernel-to-tftp", "kernel_path"):
            return ["no kernel published yet"]
        directory, _pattern = MENU_DIRS[ctx.config.boot.loader]
        encoded: dict[str, bytes] = {}   # equal menus are one str: encode each once
        expected = {name: encoded.get(text) or encoded.setdefault(text, text.encode())
                    for name, text in self._by_name(ctx).items()}
        bad = differing(ctx.tftp_root / directory, expected)
        return [f"not as configured: {' '.join(f'{directory}/{name}' for name in bad)}"] if bad else []

    def run(self, ctx: Context) -> StepResult:
        directory, pattern = MENU_DIRS[ctx.config.boot.loader]
        menus_dir = ctx.tftp_root / directory
        files = self._by_name(ctx)
        # Only menus this build wrote (they start with its header) are its own:
        # undo removes those (one glob record, not one per node), and so does
        # this step when their node left the config.
        ours = header(ctx.config).splitlines()[0]
        changed = ctx.files.ensure_files(menus_dir, files, 0o644, pattern=pattern, marker=ours)
        changed |= ctx.files.prune(menus_dir, pattern, keep=set(files), marker=ours,
                                   exclude=("boot.ipxe", "grub.cfg"))
        return StepResult(changed=changed, outputs={"menus": digest(files)})
