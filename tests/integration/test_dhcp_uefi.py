"""One DHCP config serves BIOS and UEFI nodes (DHCP option 93), for every
dhcp.server kind: the config the CLI writes passes the daemon's own checker,
and the daemon itself, started on it in a network namespace this test makes,
answers a UEFI x86-64 PXE DISCOVER (arch 7) with the UEFI loader and a BIOS
one (arch 0) with the BIOS loader."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_dhcp_servers import KIND_FILE, TOOL, daemon_accepts, seed_with

from nfsroot_builder.lab.daemons import dhcpd_argv, dnsmasq_argv, kea_lab_conf
from nfsroot_builder.procs import stop

from helpers import nfsroot_build, require

PROBE = Path(__file__).with_name("dhcp_uefi_probe.py")
NODE_MAC = "52:54:00:00:00:01"      # the seed's first node
LOADERS = {"grub": ("boot/grub/i386-pc/core.0", "boot/grub/x86_64-efi/core.efi"),
           "ipxe": ("undionly.kpxe", "ipxe.efi")}


@pytest.fixture
def segment():
    """A namespace with a veth pair: eth0 (the seed's server interface,
    192.168.0.1/24) and cli0 for the probe. Deleted afterwards."""
    require(os.geteuid() == 0, "needs root")
    ns = f"nrb-u93-{os.getpid()}"
    ip = ["ip", "-n", ns]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run([*ip, "link", "set", "lo", "up"], check=True)
        subprocess.run([*ip, "link", "add", "eth0", "type", "veth", "peer", "name", "cli0"], check=True)
        subprocess.run([*ip, "addr", "add", "192.168.0.1/24", "dev", "eth0"], check=True)
        for dev in ("eth0", "cli0"):
            subprocess.run([*ip, "link", "set", dev, "up"], check=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)


def start_daemon(ns: str, kind: str, stage: Path, work: Path) -> subprocess.Popen:
    conf = stage / KIND_FILE[kind]
    if kind == "isc-dhcp-server":
        (work / "leases").write_text("")
        argv = dhcpd_argv(str(conf), "eth0", str(work / "leases"))
    elif kind == "kea":
        lab_conf = work / "kea.conf"
        lab_conf.write_text(kea_lab_conf(conf.read_text(), str(work)))
        argv = ["env", f"KEA_PIDFILE_DIR={work}", f"KEA_LOCKFILE_DIR={work}", "kea-dhcp4", "-c", str(lab_conf)]
    else:
        argv = dnsmasq_argv(str(conf), "eth0", str(work))
    log = open(work / "daemon.log", "w")
    return subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=log, stderr=subprocess.STDOUT)


def ask(ns: str, arch: int) -> dict:
    res = subprocess.run(["ip", "netns", "exec", ns, sys.executable, str(PROBE), "cli0", NODE_MAC, str(arch)],
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(res.stdout)


@pytest.mark.parametrize("loader", ["grub", "ipxe"])
@pytest.mark.parametrize("kind", ["isc-dhcp-server", "kea", "dnsmasq", "dnsmasq-proxy"])
def test_one_config_answers_bios_and_uefi_by_option_93(tmp_path, segment, kind, loader):
    require(shutil.which(TOOL[kind]) is not None, f"{TOOL[kind]} not installed")
    cfg, stage = tmp_path / "cluster.toml", tmp_path / "stage"
    # No node says firmware = "uefi": the config answers by what the client sends.
    cfg.write_text(seed_with(kind, loader))
    nfsroot_build("all", "-c", cfg, "--prefix", stage, "--to", "dhcp-server", check=True)
    checked = daemon_accepts(kind, stage / KIND_FILE[kind], tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    bios, uefi = LOADERS[loader]
    daemon = start_daemon(segment, kind, stage, tmp_path)
    try:
        efi_answer = ask(segment, 7)
        bios_answer = ask(segment, 0)
    finally:
        stop([daemon.pid], grace=5, alive=lambda pid: daemon.poll() is None)
    log = (tmp_path / "daemon.log").read_text(errors="replace")[-2000:]
    assert efi_answer["file"] == uefi, (efi_answer, log)
    assert efi_answer["siaddr"] == "192.168.0.1" or kind == "dnsmasq-proxy", efi_answer
    if kind == "dnsmasq-proxy":
        # proxyDHCP gives no address; a BIOS PXE ROM gets a boot menu and
        # asks for the file on port 4011 (PXE spec 2.1), so only "not the UEFI file".
        assert efi_answer["yiaddr"] == "0.0.0.0"
        assert bios_answer["file"] != uefi, bios_answer
    else:
        assert efi_answer["yiaddr"] == "192.168.0.101"
        assert bios_answer["file"] == bios, (bios_answer, log)
