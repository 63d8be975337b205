from __future__ import annotations

from ..context import Context
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
    """
    name = "node-menus"
    needs = ("kernel-to-tftp", "boot-loader")

    def _files(self, ctx: Context) -> dict[str, str]:
        kernel = ctx.output("kernel-to-tftp", "kernel_path")
        initrd = ctx.output("kernel-to-tftp", "initrd_path")
        images = menus.Images(ctx.placeholder("kernel-path", kernel), ctx.placeholder("initrd-path", initrd))
        return menus.menu_files(ctx.config, ctx.served, images)

    def fingerprint(self, ctx: Context) -> dict:
        c = ctx.config
        return {"boot": c.boot.model_dump(), "nodes": [n.model_dump() for n in c.nodes],
                "server": c.server.address, "root.path": ctx.served.path(c.root.path), "suite": c.root.suite,
                "layout": c.root.layout}

    def verify(self, ctx: Context) -> list[str]:
        if not ctx.output("kernel-to-tftp", "kernel_path"):
            return ["no kernel published yet"]
        bad = [rel for rel, text in self._files(ctx).items()
               if not (ctx.tftp_root / rel).is_file() or (ctx.tftp_root / rel).read_text() != text]
        return [f"not as configured: {' '.join(bad)}"] if bad else []

    def run(self, ctx: Context) -> StepResult:
        files = self._files(ctx)
        changed = False
        for rel, text in files.items():
            changed |= ctx.files.ensure_file(ctx.tftp_root / rel, text, 0o644)
        # Remove only menus that this build wrote (they start with its header).
        ours = header(ctx.config).splitlines()[0]
        directory, pattern = MENU_DIRS[ctx.config.boot.loader]
        for old in sorted((ctx.tftp_root / directory).glob(pattern)):
            rel = str(old.relative_to(ctx.tftp_root))
            if rel not in files and old.is_file() and ours in old.read_text(errors="replace")[:300] \
                    and old.name not in ("boot.ipxe", "grub.cfg"):
                changed |= ctx.files.ensure_absent(old)
        return StepResult(changed=changed, outputs={"menus": digest(files)})
