from __future__ import annotations

from dataclasses import replace

from .. import groups, versions
from ..context import Context
from ..files import differing
from ..render import header, menus
from .base import Step, StepResult, digest

MENU_DIRS = {"grub": ("boot/grub", "grub.cfg-01-*"), "ipxe": ("ipxe", "*.ipxe"),
             "pxelinux": ("pxelinux.cfg", "01-*"), "pxegrub": ("grub", "*")}


def node_menu_files(ctx: Context) -> dict[str, str]:
    """Every node's boot menu as ctx's config and state say: path relative to
    the TFTP root -> content. The one definition of what the menus are: the
    node-menus step writes them, `sync` renders them for each replica."""
    kernel = ctx.output("kernel-to-tftp", "kernel_path")
    initrd = ctx.output("kernel-to-tftp", "initrd_path")
    rec = ctx.state.versions().get(ctx.version_id, {})
    if rec.get("status") == "ready" and rec.get("kernel_path"):
        # A finished version (after `root switch` or `root rollback`): its own kernel.
        kernel, initrd = rec["kernel_path"], rec["initrd_path"]
    images = menus.Images(ctx.placeholder("kernel-path", kernel), ctx.placeholder("initrd-path", initrd))
    if ctx.config.group:
        return _group_files(ctx, images)
    by_version = versions.node_groups(ctx)
    if len(by_version) == 1 and by_version[0][2] == ctx.version_id:   # the usual case (10,000 nodes: no copy)
        return menus.menu_files(ctx.config, ctx.served, images)
    return _version_files(ctx, by_version, images)


def _version_files(ctx: Context, by_version, images: menus.Images) -> dict[str, str]:
    out: dict[str, str] = {}
    recs = ctx.state.versions()
    for cfg, nodes, vid in by_version:
        its = images if vid == ctx.version_id else menus.Images(recs[vid]["kernel_path"], recs[vid]["initrd_path"])
        out.update(menus.menu_files(cfg.model_copy(update={"node": nodes}), ctx.served, its))
    return out


def _group_files(ctx: Context, images: menus.Images) -> dict[str, str]:
    """With [[group]]s: the default root's nodes as above, each group
    root's nodes with that root's served version, kernel and initrd
    (groups.served), and every node with its group's [boot] keys."""
    c = ctx.config
    sets = [(cfg, nodes, its) for cfg, nodes, its in _default_sets(ctx, images)]
    for gr in groups.group_roots(c):
        # By the version each node boots (its pin, else the served one), as that version was built.
        for booted, nodes in groups.node_boots(ctx, gr):
            its = menus.Images(ctx.placeholder("kernel-path", booted.kernel_path),
                               ctx.placeholder("initrd-path", booted.initrd_path))
            sets.append((versions.with_root_path(c.model_copy(update={"root": gr.config.root}), booted.path,
                                                 booted.serve), nodes, its))
    out: dict[str, str] = {}
    for cfg, nodes, its in sets:
        for boot, same in groups.by_boot(c, nodes):
            out.update(menus.menu_files(cfg.model_copy(update={"node": same, "boot": boot}), ctx.served, its))
    return out


def _default_sets(ctx: Context, images: menus.Images):
    """(config, nodes, images) of the default root's nodes, by the version each boots."""
    own = replace(ctx, config=ctx.config.model_copy(update={"node": groups.default_nodes(ctx.config)}))
    recs = ctx.state.versions()
    for cfg, nodes, vid in versions.node_groups(own):
        yield cfg, nodes, images if vid == ctx.version_id else \
            menus.Images(recs[vid]["kernel_path"], recs[vid]["initrd_path"])


class NodeMenus(Step):
    """Write one boot menu per node: the kernel, its initrd and the NFS root command line.

    Each menu boots the kernel published by kernel-to-tftp with
    `root=/dev/nfs nfsroot=<server>:<root>,tcp,v3 ip=dhcp ro` (the Debian
    initramfs mounts NFSv3 only), the layout's `nrb.layout=`/`nrb.var=`
    (per-node: the node's own /var directory) and boot.kernel_args. By boot.loader:
    boot/grub/grub.cfg-01-<mac-with-dashes> (GRUB 2 looks that name up by
    itself), ipxe/<mac-with-dashes>.ipxe (chained from ipxe/boot.ipxe),
    pxelinux.cfg/01-<mac-with-dashes> (PXELINUX's first try), or the seed's
    legacy GRUB menu grub/<node> (DHCP option 150 points there). With
    boot.transport = "http" the menus name kernel and initrd by URL on the
    server's nginx (GRUB: `(http,<server>)/path`).
    Menus this build wrote for nodes no longer in the config are removed.
    Each node's menu names the root version it boots next (docs/versions.md):
    the one this run builds or `root switch` chose, or the node's pin
    (`root switch VERSION --nodes ...`), with that version's kernel and initrd.
    A node of a [[group]] with its own root boots that root's current version
    (or its pin: `root switch VERSION --group G --nodes ...`), with that
    version's kernel and its serve mode (NFS or RAM image), and every node
    gets its group's boot.kernel_args (docs/groups.md).
    Menus with the same content (every layout but per-node) are one file
    under many names (hard links); undo knows them by their header.
    """
    name = "node-menus"
    needs = ("kernel-to-tftp", "boot-loader")

    def fingerprint(self, ctx: Context) -> dict:
        c = ctx.config
        # A menu uses a node's name and MAC only ([name, mac] pairs: model_dump
        # per node cost 14 ms of a no-op resume at 10,000 nodes).
        return {"boot": c.boot.model_dump(), "nodes": [[n.name, n.mac] for n in c.nodes],
                "server": c.server.address, "root.path": ctx.served.path(c.root.path), "suite": c.root.suite,
                "layout": c.root.layout,
                # Which version each node boots next (canary pins, rollback).
                "versions": digest(versions.node_versions(c, ctx.state, versions.menu_target(ctx)))
                if ctx.state.pins() else versions.menu_target(ctx),
                # Absent without groups: the fingerprints of builds without stay.
                **({"groups": digest([[g.model_dump() for g in c.group], [n.group for n in c.nodes],
                                      groups.summary(ctx)])} if c.group else {})}

    def _by_name(self, ctx: Context) -> dict[str, str]:
        """Menu file name -> content; all of them live in the loader's menu directory."""
        directory, _pattern = MENU_DIRS[ctx.config.boot.loader]
        cut = len(directory) + 1
        return {rel[cut:]: text for rel, text in node_menu_files(ctx).items()}

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
