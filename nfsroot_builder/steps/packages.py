from __future__ import annotations

from ..context import Context
from .base import Step, StepResult
from .dhcp import DHCP_PACKAGE

NFS_SERVER_PACKAGES = {"kernel": ["nfs-kernel-server"], "ganesha": ["nfs-ganesha", "nfs-ganesha-vfs", "rpcbind"]}
LOADER_PACKAGES = {"grub": ["grub-common", "grub-pc-bin", "grub-efi-amd64-bin"], "ipxe": ["ipxe"],
                   "pxelinux": ["pxelinux", "syslinux-common", "syslinux-efi"], "pxegrub": []}


def wanted_packages(ctx: Context) -> list[str]:
    cfg = ctx.config
    pkgs = [DHCP_PACKAGE[cfg.dhcp.server], "tftpd-hpa", cfg.root.bootstrapper, "python3"]
    pkgs += NFS_SERVER_PACKAGES[cfg.nfs.server] + LOADER_PACKAGES[cfg.boot.loader]
    if cfg.boot.transport == "http":
        pkgs.append("nginx")
    # mksquashfs packs each version (steps/image.py) of [root] or of a [[group]]'s root.
    if cfg.root.serve == "image" or any(cfg.group_root(g.name).serve == "image" for g in cfg.group):
        pkgs.append("squashfs-tools")
    return sorted(set(pkgs))


def missing_packages(ctx: Context, packages: list[str]) -> list[str]:
    # dpkg-query exits 1 when a package is unknown; that is an answer, not a failure.
    res = ctx.runner.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n", *packages],
                         probe=True, check=False)
    installed = {line.split()[0] for line in res.stdout.splitlines()
                 if len(line.split()) > 1 and line.split()[1] == "ii"}
    return [p for p in packages if p not in installed]


class ServerPackages(Step):
    """Install the boot server's packages: DHCP, TFTP, NFS server, boot loader, bootstrapper.

    The seed's dhcp3-server is isc-dhcp-server today; tftp-hpa is tftpd-hpa.
    Packages already installed are left alone; nothing is upgraded.
    """
    name = "server-packages"

    def fingerprint(self, ctx: Context) -> dict:
        return {"packages": wanted_packages(ctx)}

    def verify(self, ctx: Context) -> list[str]:
        missing = missing_packages(ctx, wanted_packages(ctx))
        return [f"not installed: {' '.join(missing)}"] if missing else []

    def run(self, ctx: Context) -> StepResult:
        missing = missing_packages(ctx, wanted_packages(ctx))
        if not missing:
            return StepResult(changed=False)
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        ctx.runner.run(["apt-get", "update"], env=env)
        ctx.runner.run(["apt-get", "install", "-y", "--no-install-recommends", *missing], env=env)
        return StepResult(changed=True)
