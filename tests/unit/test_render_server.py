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
    for d in ("tmp", "var", "root"):
        assert f"/NFSROOT/kerrighed/{d} 192.168.0.0/24(rw,sync,no_root_squash,no_subtree_check)" in text
    # The page's NFS /dev is left out today (render.root.SEED_LEFT_OUT): no export for it.
    assert "/NFSROOT/kerrighed/dev " not in text
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
    assert r.dhcpd_defaults_block(seed_config) == \
        'case " $INTERFACESv4 " in *" eth0 "*) ;; *) INTERFACESv4="${INTERFACESv4:+$INTERFACESv4 }eth0" ;; esac\n'
    assert 'TFTP_DIRECTORY="/srv/tftp"' in r.tftpd_defaults_block(seed_config, Served())


def with_dhcp(cfg, server, loader="grub"):
    return with_(with_(cfg, "dhcp", server=server), "boot", loader=loader)


@pytest.mark.parametrize("loader", ["grub", "ipxe"])
def test_kea_config(seed_config, loader):
    text = r.kea_config(with_dhcp(seed_config, "kea", loader), Served())
    check_golden(f"kea-dhcp4-{loader}.conf", text)
    assert text.startswith("# Written by nfsroot-build")
    dhcp4 = r.kea_json(text)["Dhcp4"]
    subnet, = dhcp4["subnet4"]
    # No pools: only the reserved MACs get an address (dhcpd's deny unknown-clients).
    assert "pools" not in subnet and subnet["next-server"] == "192.168.0.1"
    assert {"hw-address": "52:54:00:00:00:03", "ip-address": "192.168.0.103", "hostname": "ssi3"} \
        in subnet["reservations"]
    assert {"name": "root-path", "data": "192.168.0.1:/NFSROOT/kerrighed", "always-send": True} \
        in subnet["option-data"]
    files = {c["name"]: c["boot-file-name"] for c in dhcp4["client-classes"]}
    assert files["nfsroot-build-uefi"] == r.LOADER_FILES[loader][1]
    assert files["nfsroot-build-bios"] == r.LOADER_FILES[loader][0]
    assert ("nfsroot-build-ipxe" in files) == (loader == "ipxe")


@pytest.mark.parametrize("kind", ["dnsmasq", "dnsmasq-proxy"])
@pytest.mark.parametrize("loader", ["grub", "ipxe"])
def test_dnsmasq_dropin(seed_config, kind, loader):
    text = r.dnsmasq_dropin(with_dhcp(seed_config, kind, loader), Served())
    check_golden(f"{kind}-{loader}.conf", text)
    if kind == "dnsmasq":
        assert text.count("dhcp-host=") == 4
        assert "dhcp-host=52:54:00:00:00:03,192.168.0.103,ssi3" in text
        assert "dhcp-range=set:nrb-kerrighed,192.168.0.0,static,255.255.255.0,12h" in text
        assert 'option:root-path,"192.168.0.1:/NFSROOT/kerrighed"' in text
        assert "pxe-service" not in text
    else:
        # proxyDHCP: no addresses, no names, no options: the site's server gives those.
        assert "dhcp-range=set:nrb-kerrighed,192.168.0.0,proxy,255.255.255.0" in text
        assert "dhcp-host" not in text and "dhcp-option" not in text
        assert text.count("pxe-service=") == (4 if loader == "ipxe" else 2)
    # Everything is under the cluster's tag: the admin's own ranges stay untouched.
    for line in text.splitlines():
        if line.startswith(("dhcp-boot", "dhcp-option", "pxe-service")):
            assert "tag:nrb-kerrighed" in line, line


def test_dnsmasq_boot_files_exclusive(seed_config):
    """iPXE, UEFI and BIOS clients each match exactly one dhcp-boot line."""
    text = r.dnsmasq_dropin(with_dhcp(seed_config, "dnsmasq", "ipxe"), Served())
    boots = [line for line in text.splitlines() if line.startswith("dhcp-boot")]
    for tags, want in ((("nrb-ipxe",), "ipxe/boot.ipxe"), (("nrb-efi64",), "ipxe.efi"), ((), "undionly.kpxe")):
        have = {"nrb-kerrighed", *tags}
        hits = [b for b in boots if all((t[1:] not in have) if t.startswith("!") else (t in have)
                                        for t in (w[4:] for w in b.split("=", 1)[1].split(",") if w.startswith("tag:")))]
        assert len(hits) == 1 and want in hits[0], (tags, hits)
