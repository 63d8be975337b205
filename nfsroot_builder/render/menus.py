"""Per-node boot menus: GRUB 2 (network), iPXE scripts, PXELINUX, legacy GRUB (pxegrub).

Kernel and initrd paths are TFTP paths (tftpd-hpa --secure resolves them
inside the TFTP root), so they never carry the staging prefix; the NFS root
in the kernel line is a served path, which does.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import Config, Node
from . import Served, header, shared_header
from .root import image_cmdline, layout_cmdline, root_image_url


@dataclass(frozen=True)
class Images:
    """Kernel and initrd as TFTP paths, e.g. /cluster/vmlinuz-6.12.38+deb13-amd64;
    root_image: the squashfs URL when root.serve = "image" (else "")."""
    kernel: str
    initrd: str
    root_image: str = ""

    @property
    def initrd_name(self) -> str:
        return self.initrd.rsplit("/", 1)[-1]


def image_source(cfg: Config, path: str) -> str:
    """Where the loader fetches a kernel or initrd (given as a TFTP path) from.

    boot.transport "http": from nginx on the server (steps/tftp.py), whose
    root is the TFTP root, so the URL path is the TFTP path. GRUB names it
    as a device, (http,<server>)/path (GRUB manual, "Network"); iPXE and
    lpxelinux.0 take a URL.
    """
    if cfg.boot.transport == "tftp":
        return path
    if cfg.boot.loader == "grub":
        return f"(http,{cfg.server.address}){path}"
    return f"http://{cfg.server.address}{path}"


def kernel_cmdline(cfg: Config, served: Served, node: Node, root_image: str = "") -> str:
    """root=/dev/nfs nfsroot=<server>:<root>,tcp,v3 ip=dhcp ro, the layout's nrb.*
    arguments (render.root.layout_script) and boot.kernel_args.

    v3: the Debian initramfs mounts with klibc's nfsmount, which speaks NFSv2/3
    only (initramfs-tools(7), "nfsroot"); tcp: UDP NFS is gone from current kernels.

    root.serve = "image": live-boot's boot=live fetch=<root_image> instead
    (render.root.image_cmdline); no nrb.layout: live-boot makes the overlay.
    """
    if cfg.root.serve == "image":
        return " ".join([*image_cmdline(root_image), *cfg.boot.kernel_args])
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
    title = f"Debian {cfg.root.suite} ({'RAM image' if cfg.root.serve == 'image' else 'NFS root'}, cluster {cfg.name})"
    # The http module is not in core.0: load it before (http,...) is named.
    http = "insmod http\n" if cfg.boot.transport == "http" else ""
    return (header(cfg) + http +
            f"set timeout={cfg.boot.timeout}\n"
            "set default=0\n"
            f'menuentry "{title}" {{\n'
            f"  echo 'Loading {images.kernel} ...'\n"
            f"  linux {images.kernel} {kernel_cmdline(cfg, served, node, images.root_image)}\n"
            f"  initrd {images.initrd}\n"
            "}\n")


def _menu_by_mac(directory: str) -> str:
    """GRUB lines that read the node's own menu, <directory>/grub.cfg-01-<mac>,
    named from $net_default_mac (lowercase hex: GRUB's net module). A missing
    file makes configfile fail and GRUB goes on with the next line."""
    pair = "([0-9a-f][0-9a-f])"
    sets = " ".join(f"--set={i}:m{i}" for i in range(1, 7))
    return (f"regexp {sets} '^{':'.join([pair] * 6)}$' \"$net_default_mac\"\n"
            f'configfile "{directory}/grub.cfg-01-$m1-$m2-$m3-$m4-$m5-$m6"\n')


_NO_MENU = ('echo "nfsroot-build: no grub.cfg-01-<mac> for this machine (${net_default_mac})"\n'
            "sleep 10\nreboot\n")


def grub_fallback(cfg: Config) -> str:
    """boot/grub/grub.cfg: what a machine with no menu of its own sees.

    It asks for the node's menu once more by name first: GRUB normally
    finds grub.cfg-01-<mac> by itself (normal.mod's net config search),
    but the GRUB 2.12 of a trixie server came straight here (the production
    server VM, tests/production).
    """
    return shared_header() + _menu_by_mac("$prefix") + _NO_MENU


def grub_signed_cfg(cfg: Config) -> str:
    """grub/grub.cfg for Debian's signed netboot GRUB (boot.secure_boot).

    That image reads $prefix/grub.cfg with prefix (tftp,<server>)/grub, and
    never looks for grub.cfg-01-<mac> itself (its built-in config names the
    file): this one turns the MAC into that name and reads the node's menu,
    the same file the unsigned GRUB reads.
    """
    return shared_header() + _menu_by_mac("/boot/grub") + _NO_MENU


def ipxe_boot(cfg: Config) -> str:
    """ipxe/boot.ipxe (the DHCP filename for iPXE clients): chain the node's script.

    A relative name resolves against this script's own URI (ipxe.org/cfg),
    i.e. tftp://<server>/ipxe/<mac>.ipxe.
    """
    return ("#!ipxe\n" + shared_header() +
            "chain ${netX/mac:hexhyp}.ipxe || goto none\n"
            ":none\n"
            "echo nfsroot-build: no script for ${netX/mac}\n"
            "sleep 10\nreboot\n")


def ipxe_menu(cfg: Config, served: Served, node: Node, images: Images) -> str:
    # initrd=<name>: the EFI stub finds the initrd iPXE registered under that name.
    return ("#!ipxe\n" + header(cfg) +
            f"echo nfsroot-build: ${{netX/mac}} boots {images.kernel}\n"
            f"kernel {images.kernel} initrd={images.initrd_name} {kernel_cmdline(cfg, served, node, images.root_image)}\n"
            f"initrd {images.initrd}\n"
            "boot\n")


def ipxe_name(node: Node) -> str:
    return f"{mac_dashes(node)}.ipxe"


def pxelinux_cfg_name(node: Node) -> str:
    """PXELINUX's first config name: pxelinux.cfg/01-<mac>, ARP type 1, lowercase
    hex, dashes (syslinux wiki, PXELINUX, "Configuration filename")."""
    return f"01-{mac_dashes(node)}"


def pxelinux_menu(cfg: Config, served: Served, node: Node, images: Images) -> str:
    # PROMPT 0 with no UI module: the DEFAULT label boots at once; TIMEOUT
    # counts tenths of a second (0 would mean "wait forever" at a prompt).
    return (header(cfg) +
            "DEFAULT nfsroot\n"
            "PROMPT 0\n"
            f"TIMEOUT {max(1, cfg.boot.timeout * 10)}\n"
            f"SAY nfsroot-build: booting {images.kernel}\n"
            "LABEL nfsroot\n"
            f"  KERNEL {images.kernel}\n"
            f"  INITRD {images.initrd}\n"
            f"  APPEND {kernel_cmdline(cfg, served, node, images.root_image)}\n")


def pxelinux_fallback(cfg: Config) -> str:
    """pxelinux.cfg/default: what a machine with no 01-<mac> file sees."""
    return (shared_header() +
            "SAY nfsroot-build: no pxelinux.cfg/01-<mac> for this machine\n"
            "DEFAULT local\n"
            "PROMPT 0\n"
            "LABEL local\n"
            "  LOCALBOOT -1\n")


def pxegrub_menu(cfg: Config, served: Served, node: Node, images: Images) -> str:
    """The seed's /srv/tftp/grub/<node>: GRUB legacy, fetched via DHCP option 150."""
    return (header(cfg) +
            f"timeout {cfg.boot.timeout}\n\n"
            f"title Debian {cfg.root.suite} (NFS root, cluster {cfg.name})\n"
            "root (nd)\n"
            f"kernel {images.kernel} {kernel_cmdline(cfg, served, node, images.root_image)}\n"
            f"initrd {images.initrd}\n")


def menu_files(cfg: Config, served: Served, images: Images) -> dict[str, str]:
    """TFTP-relative path -> content, for every node, for the configured loader."""
    loader = cfg.boot.loader
    render, name = {"grub": (grub_menu, grub_cfg_name), "ipxe": (ipxe_menu, ipxe_name),
                    "pxelinux": (pxelinux_menu, pxelinux_cfg_name),
                    "pxegrub": (pxegrub_menu, lambda n: n.name)}[loader]
    directory = {"grub": "boot/grub/", "ipxe": "ipxe/", "pxelinux": "pxelinux.cfg/", "pxegrub": "grub/"}[loader]
    url = root_image_url(cfg, images.kernel) if cfg.root.serve == "image" else ""
    images = Images(image_source(cfg, images.kernel), image_source(cfg, images.initrd), url)
    if cfg.root.layout == "per-node" or not cfg.nodes:
        return {directory + name(node): render(cfg, served, node, images) for node in cfg.nodes}
    # The menu does not depend on the node: render it once (10,000 nodes: 0.3 s -> 10 ms).
    text = render(cfg, served, cfg.nodes[0], images)
    return {directory + name(node): text for node in cfg.nodes}
