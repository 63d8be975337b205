"""Per-node boot menus for the three loaders."""
from __future__ import annotations

import pytest

from nfsroot_builder.render import Served
from nfsroot_builder.render import menus as M

IMAGES = M.Images("/kerrighed/vmlinuz-6.12.1", "/kerrighed/initrd.img-6.12.1")
CMDLINE = ("root=/dev/nfs nfsroot=192.168.0.1:/stage/NFSROOT/kerrighed,tcp,v3 ip=dhcp ro "
           "console=ttyS0,115200n8 console=tty0")


def with_loader(cfg, loader):
    return cfg.model_copy(update={"boot": cfg.boot.model_copy(update={"loader": loader})})


def test_kernel_cmdline_uses_the_served_root(seed_config):
    assert M.kernel_cmdline(seed_config, Served("/stage"), seed_config.nodes[0]) == CMDLINE


def test_per_node_menu_names_the_nodes_own_var(seed_config):
    cfg = seed_config.model_copy(update={"root": seed_config.root.model_copy(update={"layout": "per-node"})})
    line = M.kernel_cmdline(cfg, Served("/stage"), cfg.nodes[2])
    assert "ip=dhcp ro nrb.layout=per-node nrb.var=192.168.0.1:/stage/NFSROOT/kerrighed.nodes/ssi3 console=" in line


@pytest.mark.parametrize("loader,name", [("grub", "boot/grub/grub.cfg-01-52-54-00-00-00-02"),
                                         ("ipxe", "ipxe/52-54-00-00-00-02.ipxe"),
                                         ("pxegrub", "grub/ssi2")])
def test_one_menu_per_node_with_the_command_line(seed_config, loader, name):
    files = M.menu_files(with_loader(seed_config, loader), Served("/stage"), IMAGES)
    assert len(files) == 4 and name in files
    text = files[name]
    assert CMDLINE in text
    assert "/kerrighed/vmlinuz-6.12.1" in text and "/kerrighed/initrd.img-6.12.1" in text


def test_grub_menu_is_grub2_syntax(seed_config):
    text = M.grub_menu(seed_config, Served(), seed_config.nodes[0], IMAGES)
    assert "set timeout=1" in text and "menuentry " in text
    assert "  linux /kerrighed/vmlinuz-6.12.1 root=/dev/nfs" in text


def test_ipxe_script_names_the_initrd_for_efi(seed_config):
    text = M.ipxe_menu(seed_config, Served(), seed_config.nodes[0], IMAGES)
    assert text.startswith("#!ipxe\n")
    assert "kernel /kerrighed/vmlinuz-6.12.1 initrd=initrd.img-6.12.1 root=/dev/nfs" in text
    assert "chain ${netX/mac:hexhyp}.ipxe" in M.ipxe_boot(seed_config)


def test_pxegrub_menu_is_the_seeds(seed_config):
    text = M.pxegrub_menu(seed_config, Served(), seed_config.nodes[0], IMAGES)
    assert "timeout 1\n" in text and "root (nd)\n" in text
    assert "kernel /kerrighed/vmlinuz-6.12.1 root=/dev/nfs" in text
