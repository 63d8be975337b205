"""Per-node boot menus: GRUB 2 (network), iPXE scripts, legacy GRUB (pxegrub).

Kernel and initrd paths are TFTP paths (tftpd-hpa --secure resolves them
inside the TFTP root), so they never carry the staging prefix; the NFS root
in the kernel line is a served path, which does.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import Config, Node
from . import Served, header
from .root import layout_cmdline


@dataclass(frozen=True)
class Images:
    """Kernel and initrd as TFTP paths, e.g. /cluster/vmlinuz-6.12.38+deb13-amd64."""
    kernel: str
    initrd: str

    @property
    def initrd_name(self) -> str:
        return self.initrd.rsplit("/", 1)[-1]


def kernel_cmdline(cfg: Config, served: Served, node: Node) -> str:
    """root=/dev/nfs nfsroot=<server>:<root>,tcp,v3 ip=dhcp ro, the layout's nrb.*
    arguments (render.root.layout_script) and boot.kernel_args.

    v3: the Debian initramfs mounts with klibc's nfsmount, which speaks NFSv2/3
    only (initramfs-tools(7), "nfsroot"); tcp: UDP NFS is gone from current kernels.
    """
    words = ["root=/dev/nfs", f"nfsroot={cfg.server.address}:{served.path(cfg.root.path)},tcp,v3",
             "ip=dhcp", "ro", *layout_cmdline(cfg, served, node.name), *cfg.boot.kernel_args]
    return " ".join(words)


def mac_dashes(node: Node) -> str:
    return node.mac.replace(":", "-")


def grub_cfg_name(node: Node) -> str:
    """GRUB's net config search (grub_net_search_config_file): grub.cfg-01-<mac>."""
    return f"grub.cfg-01-{mac_dashes(node)}"


# No node name in the menus but where the kernel line needs one (layout
# per-node): equal menus are written once and hard-linked (FileOps.ensure_files).
def grub_menu(cfg: Config, served: Served, node: Node, images: Images) -> str:
    title = f"Debian {cfg.root.suite} (NFS root, cluster {cfg.name})"
    return (header(cfg) +
            f"set timeout={cfg.boot.timeout}\n"
            "set default=0\n"
            f'menuentry "{title}" {{\n'
            f"  echo 'Loading {images.kernel} ...'\n"
            f"  linux {images.kernel} {kernel_cmdline(cfg, served, node)}\n"
            f"  initrd {images.initrd}\n"
            "}\n")


def grub_fallback(cfg: Config) -> str:
    """boot/grub/grub.cfg: what a machine with no menu of its own sees."""
    return (header(cfg) +
            'echo "nfsroot-build: no grub.cfg-01-<mac> for this machine (${net_default_mac})"\n'
            "sleep 10\nreboot\n")


def grub_signed_cfg(cfg: Config) -> str:
    """grub/grub.cfg for Debian's signed netboot GRUB (boot.secure_boot).

    That image reads $prefix/grub.cfg with prefix (tftp,<server>)/grub, and
    never looks for grub.cfg-01-<mac> itself (its built-in config names the
    file): this one turns the MAC into that name and reads the node's menu,
    the same file the unsigned GRUB reads.
    """
    pair = "([0-9a-f][0-9a-f])"
    sets = " ".join(f"--set={i}:m{i}" for i in range(1, 7))
    return (header(cfg) +
            f"regexp {sets} '^{':'.join([pair] * 6)}$' \"$net_default_mac\"\n"
            'configfile "/boot/grub/grub.cfg-01-$m1-$m2-$m3-$m4-$m5-$m6"\n' +
            grub_fallback(cfg).removeprefix(header(cfg)))


def ipxe_boot(cfg: Config) -> str:
    """ipxe/boot.ipxe (the DHCP filename for iPXE clients): chain the node's script.

    A relative name resolves against this script's own URI (ipxe.org/cfg),
    i.e. tftp://<server>/ipxe/<mac>.ipxe.
    """
    return ("#!ipxe\n" + header(cfg) +
            "chain ${netX/mac:hexhyp}.ipxe || goto none\n"
            ":none\n"
            "echo nfsroot-build: no script for ${netX/mac}\n"
            "sleep 10\nreboot\n")


def ipxe_menu(cfg: Config, served: Served, node: Node, images: Images) -> str:
    # initrd=<name>: the EFI stub finds the initrd iPXE registered under that name.
    return ("#!ipxe\n" + header(cfg) +
            f"echo nfsroot-build: ${{netX/mac}} boots {images.kernel}\n"
            f"kernel {images.kernel} initrd={images.initrd_name} {kernel_cmdline(cfg, served, node)}\n"
            f"initrd {images.initrd}\n"
            "boot\n")


def ipxe_name(node: Node) -> str:
    return f"{mac_dashes(node)}.ipxe"


def pxegrub_menu(cfg: Config, served: Served, node: Node, images: Images) -> str:
    """The seed's /srv/tftp/grub/<node>: GRUB legacy, fetched via DHCP option 150."""
    return (header(cfg) +
            f"timeout {cfg.boot.timeout}\n\n"
            f"title Debian {cfg.root.suite} (NFS root, cluster {cfg.name})\n"
            "root (nd)\n"
            f"kernel {images.kernel} {kernel_cmdline(cfg, served, node)}\n"
            f"initrd {images.initrd}\n")


def menu_files(cfg: Config, served: Served, images: Images) -> dict[str, str]:
    """TFTP-relative path -> content, for every node, for the configured loader."""
    loader = cfg.boot.loader
    render, name = {"grub": (grub_menu, grub_cfg_name), "ipxe": (ipxe_menu, ipxe_name),
                    "pxegrub": (pxegrub_menu, lambda n: n.name)}[loader]
    directory = {"grub": "boot/grub/", "ipxe": "ipxe/", "pxegrub": "grub/"}[loader]
    if cfg.root.layout == "per-node" or not cfg.nodes:
        return {directory + name(node): render(cfg, served, node, images) for node in cfg.nodes}
    # The menu does not depend on the node: render it once (10,000 nodes: 0.3 s -> 10 ms).
    text = render(cfg, served, cfg.nodes[0], images)
    return {directory + name(node): text for node in cfg.nodes}
