"""The pipeline, in order: the seed page, top to bottom.

This list is the only place the order lives.
"""
from __future__ import annotations

from .base import Step, StepResult
from .boot_loader import BootLoader
from .bootstrap import Bootstrap
from .dhcp import DhcpServer
from .image import RootImage
from .initramfs import Initramfs, InitramfsConfig
from .kernel_tftp import KernelToTftp
from .nfs import NfsExports
from .node_menus import NodeMenus
from .node_var import NodeVar
from .packages import ServerPackages
from .root_files import Fstab, Hostname, Hosts, Mountnfs, NodeNetwork
from .root_packages import RootPackages
from .root_password import RootPassword
from .services import Services
from .site import SiteFiles, SiteHooks
from .tftp import TftpServer

STEPS: tuple[type[Step], ...] = (
    ServerPackages,
    TftpServer,
    DhcpServer,
    NfsExports,
    # "Create the base system"
    Bootstrap,
    RootPassword,
    InitramfsConfig,     # before the one initrd (the initramfs step) is made
    RootPackages,
    Fstab,
    Mountnfs,
    Hosts,
    Hostname,
    NodeNetwork,
    NodeVar,
    SiteFiles,           # the site's own tree (root.files), after the node trees exist
    SiteHooks,           # root.hooks in the chroot: the root is complete but its initrd
    Initramfs,
    # "Configure nodes boot"
    KernelToTftp,
    RootImage,           # root.serve = "image" only: the squashfs beside the kernel
    BootLoader,
    NodeMenus,
    Services,            # last: restarts what the steps above changed
)

__all__ = ["STEPS", "Step", "StepResult"]
