"""Files rendered into the root: fstab per layout, hosts, initramfs pieces."""
from __future__ import annotations

import pytest

from nfsroot_builder import config as config_mod
from nfsroot_builder.render import Served
from nfsroot_builder.render import root as R

STAGE = Served("/stage")


def with_root(cfg, **root):
    return cfg.model_copy(update={"root": cfg.root.model_copy(update=root)})


def test_tmpfs_fstab_has_no_root_line_and_tmpfs_where_systemd_writes(seed_config):
    text = R.fstab(seed_config, Served())
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert [line.split()[1] for line in lines] == [d for d, _ in R.TMPFS_DIRS]
    assert all(line.split()[2] == "tmpfs" for line in lines)
    assert "tmpfs /tmp tmpfs nosuid,nodev,mode=1777 0 0" in lines
    assert all(line.split()[1] != "/" for line in lines)


def test_per_node_fstab_leaves_var_to_the_initramfs(seed_config):
    text = R.fstab(with_root(seed_config, layout="per-node"), Served())
    assert "nfs" not in [w for line in text.splitlines() if not line.startswith("#") for w in line.split()]
    assert "tmpfs /tmp tmpfs" in text and "/var " not in text.replace("# /var", "")


def test_seed_fstab_is_the_pages_with_served_paths(seed_config):
    cfg = with_root(seed_config, layout="seed", init="sysvinit")
    text = R.fstab(cfg, STAGE)
    mounts = [line for line in text.splitlines() if not line.startswith("#")]
    for d in ("var", "tmp", "root"):
        assert f"192.168.0.1:/stage/NFSROOT/kerrighed/{d} /{d} nfs rw,hard,nolock 0 0" in mounts
    # NFS /dev and tmpfs /var/run cannot work today: commented out, with the reason.
    assert "# 192.168.0.1:/stage/NFSROOT/kerrighed/dev /dev nfs rw,hard,nolock 0 0" in text
    assert "# none /var/run tmpfs defaults 0 0" in text
    assert not [line for line in mounts if " /dev " in line or "/var/run" in line]
    assert "# Left out: /dev (the initramfs moves its devtmpfs" in text
    assert "swap" not in text


def test_hosts_lists_server_and_every_node_with_domain(seed_config):
    text = R.hosts(seed_config)
    assert "127.0.0.1 localhost" in text
    assert "192.168.0.1 server.mycluster.home server" in text
    for i in range(1, 5):
        assert f"192.168.0.10{i} ssi{i}.mycluster.home ssi{i}" in text


def test_interfaces_has_no_stanza_for_the_boot_nic(seed_config):
    text = R.interfaces(seed_config)
    stanzas = [line for line in text.splitlines() if not line.startswith("#")]
    assert stanzas == ["auto lo", "iface lo inet loopback", "source /etc/network/interfaces.d/*"]


def test_initramfs_conf_boots_from_nfs(seed_config):
    assert R.initramfs_conf(seed_config).splitlines()[-2:] == ["BOOT=nfs", "MODULES=netboot"]


def test_layout_script_is_driven_by_the_kernel_line(seed_config):
    text = R.layout_script(seed_config)
    assert "nrb.layout=*)" in text and "nrb.var=*)" in text
    assert 'nfsmount -o "$opts" "${nrbvar%%,*}" "${rootmnt}/var"' in text
    assert "mount -t overlay" in text
    assert "manual_add_modules overlay" in R.layout_hook(seed_config)


@pytest.mark.parametrize("layout,args", [
    ("tmpfs", []), ("seed", []), ("overlay", ["nrb.layout=overlay"]),
    ("per-node", ["nrb.layout=per-node", "nrb.var=192.168.0.1:/stage/NFSROOT/kerrighed.nodes/ssi2"])])
def test_layout_cmdline(seed_config, layout, args):
    cfg = with_root(seed_config, layout=layout, init="sysvinit")
    assert R.layout_cmdline(cfg, STAGE, "ssi2") == args


def test_components_and_local_debs_are_validated(seed_text):
    bad = seed_text.replace('local_debs = []', 'local_debs = ["/tmp/kernel.tar"]').replace(
        'components = ["main"]', 'components = ["main", "non free"]')
    with pytest.raises(config_mod.ConfigError) as e:
        config_mod.parse(bad)
    fields = [f for f, _ in e.value.problems]
    assert "root.local_debs" in fields and "root.components" in fields


def test_resolv_conf_from_the_cluster_config(seed_config):
    text = R.resolv_conf(seed_config)
    assert "search mycluster.home\nnameserver 123.123.123.123\nnameserver 124.124.124.124\n" in text
