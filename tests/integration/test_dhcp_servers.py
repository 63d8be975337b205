"""Each dhcp.server kind for real: the CLI writes its config under a staging
prefix, the daemon's own parser accepts it, bad input is refused before any
file is written, a vetoing checker leaves nothing behind, a switch of kind
takes the old kind's files back, and undo removes the rest."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from nfsroot_builder.steps.dhcp import kea_test_copy

from helpers import example_text, nfsroot_build, require

TO_DHCP = ["--to", "dhcp-server"]
KIND_FILE = {"isc-dhcp-server": "etc/dhcp/dhcpd.conf", "kea": "etc/kea/kea-dhcp4-nfsroot-build.conf",
             "dnsmasq": "etc/dnsmasq.d/nfsroot-build-kerrighed.conf",
             "dnsmasq-proxy": "etc/dnsmasq.d/nfsroot-build-kerrighed.conf"}
TOOL = {"isc-dhcp-server": "dhcpd", "kea": "kea-dhcp4", "dnsmasq": "dnsmasq", "dnsmasq-proxy": "dnsmasq"}


def seed_with(kind: str, loader: str = "grub") -> str:
    return (example_text("seed").replace('server = "isc-dhcp-server"', f'server = "{kind}"')
            .replace('loader = "grub"', f'loader = "{loader}"'))


def daemon_accepts(kind: str, path: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """The daemon's own parser on the written file. Kea also checks that the
    interface exists; the seed's eth0 need not on this machine, so it reads
    a copy listening on "*" (what the step's checker does too)."""
    if kind == "kea":
        copy = tmp_path / "kea-any.conf"
        copy.write_text(kea_test_copy(path.read_text()))
        argv = ["kea-dhcp4", "-t", str(copy)]
    elif kind == "isc-dhcp-server":
        argv = ["dhcpd", "-t", "-q", "-4", "-cf", str(path)]
    else:
        argv = ["dnsmasq", "--test", f"--conf-file={path}"]
    return subprocess.run(argv, capture_output=True, text=True)


@pytest.mark.parametrize("loader", ["grub", "ipxe"])
@pytest.mark.parametrize("kind", ["kea", "dnsmasq", "dnsmasq-proxy"])
def test_each_kind_is_accepted_by_its_daemon(tmp_path, kind, loader):
    require(shutil.which(TOOL[kind]) is not None, f"{TOOL[kind]} not installed")
    cfg, stage = tmp_path / "cluster.toml", tmp_path / "stage"
    cfg.write_text(seed_with(kind, loader))
    res = nfsroot_build("all", "-c", cfg, "--prefix", stage, *TO_DHCP, check=True)
    assert "changed: tftp-server, dhcp-server" in res.stderr
    written = stage / KIND_FILE[kind]
    checked = daemon_accepts(kind, written, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The step ran the daemon's checker before the file replaced anything.
    log = (stage / "var/lib/nfsroot-build/kerrighed/logs/last/dhcp-server.log").read_text()
    assert {"kea": "kea-dhcp4 -t", "dnsmasq": "dnsmasq --test", "dnsmasq-proxy": "dnsmasq --test"}[kind] in log
    assert not (stage / "etc/dhcp/dhcpd.conf").exists()
    # Unchanged config: nothing to do.
    res = nfsroot_build("all", "-c", cfg, "--prefix", stage, *TO_DHCP, check=True)
    assert "nothing changed" in res.stderr


@pytest.mark.parametrize("kind", ["isc-dhcp-server", "kea", "dnsmasq", "dnsmasq-proxy"])
def test_duplicate_mac_exits_2_before_anything_is_written(tmp_path, kind):
    cfg, stage = tmp_path / "cluster.toml", tmp_path / "stage"
    cfg.write_text(seed_with(kind).replace('mac = "52:54:00:00:00:04"', 'mac = "52:54:00:00:00:01"'))
    res = nfsroot_build("all", "-c", cfg, "--prefix", stage)
    assert res.returncode == 2, res.stderr
    assert "node[3].mac" in res.stderr and "duplicate mac" in res.stderr
    assert not stage.exists()


def test_a_vetoing_checker_leaves_no_file(tmp_path):
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    (bindir / "kea-dhcp4").write_text("#!/bin/sh\necho 'DHCP4_PARSER_FAIL no such option' >&2\nexit 1\n")
    (bindir / "kea-dhcp4").chmod(0o755)
    cfg, stage = tmp_path / "cluster.toml", tmp_path / "stage"
    cfg.write_text(seed_with("kea"))
    res = nfsroot_build("all", "-c", cfg, "--prefix", stage, *TO_DHCP,
                        env={"PATH": f"{bindir}:{os.environ['PATH']}"})
    assert res.returncode == 1
    assert "step 'dhcp-server' failed" in res.stderr and "DHCP4_PARSER_FAIL" in res.stderr
    assert not (stage / KIND_FILE["kea"]).exists()
    assert not (stage / "etc/default/kea-dhcp4-server").exists()


def test_switching_kind_takes_the_old_files_back_and_undo_the_rest(tmp_path):
    for tool in ("dhcpd", "kea-dhcp4", "dnsmasq"):
        require(shutil.which(tool) is not None, f"{tool} not installed")
    cfg, stage = tmp_path / "cluster.toml", tmp_path / "stage"
    admin_dhcpd = 'option domain-name "admin.example";\n'
    (stage / "etc/dhcp").mkdir(parents=True)
    (stage / "etc/dhcp/dhcpd.conf").write_text(admin_dhcpd)
    cfg.write_text(seed_with("isc-dhcp-server"))
    nfsroot_build("all", "-c", cfg, "--prefix", stage, *TO_DHCP, check=True)
    cfg.write_text(seed_with("kea"))
    res = nfsroot_build("all", "-c", cfg, "--prefix", stage, *TO_DHCP, check=True)
    assert "changed: dhcp-server" in res.stderr
    assert (stage / "etc/dhcp/dhcpd.conf").read_text() == admin_dhcpd   # our block is gone
    assert (stage / KIND_FILE["kea"]).exists()
    assert 'DAEMON_ARGS="-c /etc/kea/kea-dhcp4-nfsroot-build.conf"' in \
        (stage / "etc/default/kea-dhcp4-server").read_text()
    assert "ExecStart=/usr/sbin/kea-dhcp4 -c /etc/kea/kea-dhcp4-nfsroot-build.conf" in \
        (stage / "etc/systemd/system/kea-dhcp4-server.service.d/nfsroot-build.conf").read_text()
    cfg.write_text(seed_with("dnsmasq"))
    nfsroot_build("all", "-c", cfg, "--prefix", stage, *TO_DHCP, check=True)
    assert not (stage / KIND_FILE["kea"]).exists()
    assert not (stage / "etc/systemd/system/kea-dhcp4-server.service.d/nfsroot-build.conf").exists()
    assert (stage / KIND_FILE["dnsmasq"]).exists()
    nfsroot_build("undo", "-c", cfg, "--prefix", stage, check=True)
    assert not (stage / KIND_FILE["dnsmasq"]).exists()
    assert (stage / "etc/dhcp/dhcpd.conf").read_text() == admin_dhcpd


def test_the_labs_site_server_config_passes_dhcpd(tmp_path):
    require(shutil.which("dhcpd") is not None, "dhcpd not installed")
    from nfsroot_builder import config as config_mod
    from nfsroot_builder.lab.daemons import site_dhcpd_conf
    conf = tmp_path / "site.conf"
    conf.write_text(site_dhcpd_conf(config_mod.parse(seed_with("dnsmasq-proxy"))))
    res = subprocess.run(["dhcpd", "-t", "-q", "-4", "-cf", str(conf)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_proxy_with_pxegrub_exits_2(tmp_path):
    cfg, stage = tmp_path / "cluster.toml", tmp_path / "stage"
    cfg.write_text(seed_with("dnsmasq-proxy", "pxegrub"))
    res = nfsroot_build("all", "-c", cfg, "--prefix", stage)
    assert res.returncode == 2 and 'dhcp.server "dnsmasq-proxy" cannot serve boot.loader "pxegrub"' in res.stderr
    assert not stage.exists()


def test_undo_takes_kea_back_and_leaves_the_packages_file(tmp_path):
    require(shutil.which("kea-dhcp4") is not None, "kea-dhcp4 not installed")
    cfg, stage = tmp_path / "cluster.toml", tmp_path / "stage"
    package_conf = stage / "etc/kea/kea-dhcp4.conf"
    package_conf.parent.mkdir(parents=True)
    package_conf.write_text('{ "Dhcp4": { } }\n')
    (stage / "etc/default").mkdir(parents=True)
    (stage / "etc/default/kea-dhcp4-server").write_text("# the admin's\n")
    cfg.write_text(seed_with("kea"))
    nfsroot_build("all", "-c", cfg, "--prefix", stage, *TO_DHCP, check=True)
    assert package_conf.read_text() == '{ "Dhcp4": { } }\n'
    nfsroot_build("undo", "-c", cfg, "--prefix", stage, check=True)
    assert not (stage / KIND_FILE["kea"]).exists()
    assert not (stage / "etc/systemd/system/kea-dhcp4-server.service.d/nfsroot-build.conf").exists()
    assert (stage / "etc/default/kea-dhcp4-server").read_text() == "# the admin's\n"
    assert package_conf.read_text() == '{ "Dhcp4": { } }\n'
