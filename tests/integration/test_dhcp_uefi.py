"""One DHCP config serves BIOS and UEFI nodes (DHCP option 93), for every
dhcp.server kind: the config the CLI writes passes the daemon's own checker,
and the daemon itself, started on it in a network namespace this test makes,
answers a UEFI x86-64 PXE DISCOVER (arch 7) with the UEFI loader and a BIOS
one (arch 0) with the BIOS loader (proxyDHCP: with the matching tag, see
below)."""
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
    """Two namespaces joined by a veth pair: the server's (eth0, the seed's
    server interface, 192.168.0.1/24) and the probe's (cli0). Apart, because
    in one namespace an answer from 192.168.0.1 arriving on cli0 has a local
    source address and the kernel drops it as martian. cli0 gets an address
    of its own only so the kernel delivers the broadcast answer to the
    probe's socket; the DISCOVER carries none (ciaddr 0). Deleted afterwards."""
    require(os.geteuid() == 0, "needs root")
    server, client = f"nrb-u93-{os.getpid()}", f"nrb-u93c-{os.getpid()}"
    try:
        for ns in (server, client):
            subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "-n", server, "link", "add", "eth0", "type", "veth", "peer", "name", "cli0",
                        "netns", client], check=True)
        subprocess.run(["ip", "-n", server, "addr", "add", "192.168.0.1/24", "dev", "eth0"], check=True)
        subprocess.run(["ip", "-n", client, "addr", "add", "192.168.0.250/24", "dev", "cli0"], check=True)
        for ns, dev in ((server, "eth0"), (client, "cli0"), (server, "lo"), (client, "lo")):
            subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
        yield server, client
    finally:
        for ns in (server, client):
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
    server_ns, client_ns = segment
    daemon = start_daemon(server_ns, kind, stage, tmp_path)
    try:
        efi_answer = ask(client_ns, 7)
        bios_answer = ask(client_ns, 0)
    finally:
        stop([daemon.pid], grace=5, alive=lambda pid: daemon.poll() is None)
    log = (tmp_path / "daemon.log").read_text(errors="replace")
    if kind == "dnsmasq-proxy":
        # proxyDHCP offers no address and names the boot file only in its
        # PXE boot-server answer (port 4011, PXE spec 2.1), which the lab's
        # e2e boot of a UEFI node through it covers; here: the offer came
        # from us and the UEFI client got the UEFI tag, the BIOS one not.
        # (The BIOS offer names no server: a BIOS PXE ROM discovers the boot server.)
        assert efi_answer["siaddr"] == "192.168.0.1", (efi_answer, log[-2000:])
        for answer in (efi_answer, bios_answer):
            assert answer["type"] == 2 and answer["yiaddr"] == "0.0.0.0", (answer, log[-2000:])
        tags = [line.split("tags: ", 1)[1] for line in log.splitlines() if "tags: " in line]
        assert "nrb-efi64" in tags[0] and "nrb-efi64" not in tags[-1], tags
        return
    assert efi_answer["file"] == uefi, (efi_answer, log[-2000:])
    assert efi_answer["siaddr"] == "192.168.0.1" and efi_answer["yiaddr"] == "192.168.0.101", efi_answer
    assert bios_answer["file"] == bios, (bios_answer, log[-2000:])
