"""Server renderers against golden files, plus the properties that matter."""
from __future__ import annotations

import pytest

from nfsroot_builder.render import Served
from nfsroot_builder.render import server as r

from golden import check_golden


def with_(cfg, section, **kw):
    return cfg.model_copy(update={section: getattr(cfg, section).model_copy(update=kw)})


@pytest.mark.parametrize("loader", ["grub", "ipxe", "pxegrub"])
def test_dhcpd_block(seed_config, loader):
    cfg = with_(seed_config, "boot", loader=loader)
    text = r.dhcpd_block(cfg, Served())
    check_golden(f"dhcpd-{loader}.conf", text)
    assert text.count("host ssi") == 4
    assert "deny unknown-clients;" in text
    assert 'option root-path "192.168.0.1:/NFSROOT/kerrighed";' in text


def test_dhcpd_pxegrub_menu_option(seed_config):
    text = r.dhcpd_block(with_(seed_config, "boot", loader="pxegrub"), Served())
    assert "code 150 = string" in text and 'concat("(nd)/grub/", host-decl-name)' in text


def test_exports_seed_layout(seed_config):
    cfg = with_(seed_config, "root", layout="seed", init="sysvinit")
    text = r.exports(cfg, Served())
    check_golden("exports-seed", text)
    for d in ("tmp", "var", "dev", "root"):
        assert f"/NFSROOT/kerrighed/{d} 192.168.0.0/24(rw,sync,no_root_squash,no_subtree_check)" in text
    assert "/NFSROOT/kerrighed 192.168.0.0/24(ro,async,no_root_squash,no_subtree_check)" in text
    assert "*" not in text


def test_exports_per_node(seed_config):
    text = r.exports(with_(seed_config, "root", layout="per-node"), Served())
    assert "/NFSROOT/kerrighed.nodes/ssi2 192.168.0.102(rw,sync,no_root_squash,no_subtree_check)" in text


def test_exports_staged_paths(seed_config):
    text = r.exports(seed_config, Served("/tmp/stage"))
    assert "/tmp/stage/NFSROOT/kerrighed 192.168.0.0/24(ro" in text


def test_ganesha(seed_config):
    text = r.ganesha_exports(with_(seed_config, "root", layout="per-node"), Served())
    check_golden("ganesha-per-node.conf", text)
    assert text.count("EXPORT {") == 5 and "Squash = No_Root_Squash;" in text
    assert 'Clients = 192.168.0.101; Access_Type = RW;' in text
    assert r.ganesha_client("*.cluster.example") == '"*.cluster.example"' and r.ganesha_client("@nodes") == "@nodes"


def test_defaults_blocks(seed_config):
    assert r.dhcpd_defaults_block(seed_config) == 'INTERFACESv4="eth0"\n'
    assert 'TFTP_DIRECTORY="/srv/tftp"' in r.tftpd_defaults_block(seed_config, Served())
