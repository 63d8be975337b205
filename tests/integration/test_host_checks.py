"""`check` knows the host (issue 14 points 1 and 4), proven with the real CLI
inside a network namespace this test creates: an interface with and without
server.address, and a process this test starts listening on udp/67 there.
The host's own namespace is never touched: every `ip` names the namespace,
and the CLI runs under `ip netns exec`, where /proc/net and `ip addr` show
only the namespace (proc(5), ip-netns(8)).

What is not proven here: a real `exportfs -ra` (this kernel has no NFS
server); the ordering is proven with the dry-run transcript below and with
the fake runner in tests/unit/test_exports_order.py.
"""
from __future__ import annotations

import hashlib
import lzma
import subprocess
import sys
import uuid

import pytest

from helpers import example_text, require, snapshot, write

IFACE = "nrbt0"


@pytest.fixture
def netns():
    require(subprocess.run(["ip", "-V"], capture_output=True).returncode == 0, "needs iproute2")
    ns = f"nrbt-prod-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for argv in (["link", "set", "lo", "up"], ["link", "add", IFACE, "type", "bridge"],
                     ["addr", "add", "192.168.0.1/24", "dev", IFACE], ["link", "set", IFACE, "up"]):
            subprocess.run(["ip", "-n", ns, *argv], check=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)


def nfsroot_build(*args, netns):
    """The real CLI inside the test's namespace, as root."""
    return subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-m", "nfsroot_builder",
                           *map(str, args)], capture_output=True, text=True, timeout=300)


def with_local_mirror(tmp_path, cfg_text) -> str:
    """The config on a file:// trixie holding just the names the build asks
    for: the preflight looks them up, the namespace reaches no mirror, and the
    test sends nothing anywhere."""
    cfg_text = cfg_text.replace('suite = "sid"', 'suite = "trixie"')
    from types import SimpleNamespace

    from nfsroot_builder import config as config_mod
    from nfsroot_builder.steps.root_packages import wanted
    names = wanted(SimpleNamespace(config=config_mod.parse(cfg_text)))
    dist = tmp_path / "mirror/dists/trixie"
    (dist / "main/binary-amd64").mkdir(parents=True, exist_ok=True)
    index = lzma.compress("".join(f"Package: {n}\n\n" for n in names).encode())
    (dist / "main/binary-amd64/Packages.xz").write_bytes(index)
    (dist / "Release").write_text(f"Suite: trixie\nSHA256:\n {hashlib.sha256(index).hexdigest()} {len(index)} "
                                  "main/binary-amd64/Packages.xz\n")
    mirror = tmp_path / "mirror"
    return cfg_text.replace('mirror = ""', f'mirror = "file://{mirror}"')


def config(tmp_path, **replace):
    text = example_text("seed").replace('interface = "eth0"', f'interface = "{IFACE}"')
    text = text.replace('dns_servers = ["123.123.123.123", "124.124.124.124"]', "dns_servers = []")
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return write(tmp_path, with_local_mirror(tmp_path, text))


def check_in(ns, cfg, *extra):
    return nfsroot_build("--debug", "check", "-c", cfg, *extra, netns=ns)


def test_interface_holding_the_address_passes(tmp_path, netns):
    res = check_in(netns, config(tmp_path))
    assert res.returncode == 0, res.stderr
    assert f"ok: server.interface {IFACE} holds server.address 192.168.0.1" in res.stdout


def test_missing_interface_fails_naming_it(tmp_path, netns):
    res = check_in(netns, config(tmp_path, **{f'interface = "{IFACE}"': 'interface = "nrbt9"'}))
    assert res.returncode == 1
    assert f"fail: server.interface: nrbt9 does not exist on this host (it has lo, {IFACE})" in res.stdout


def test_address_not_on_the_interface_fails(tmp_path, netns):
    cfg = config(tmp_path, **{'address = "192.168.0.1"': 'address = "192.168.0.2"'})
    res = check_in(netns, cfg)
    assert res.returncode == 1
    assert f"fail: server.address: 192.168.0.2 is not an address of {IFACE} (it has 192.168.0.1/24)" in res.stdout


def test_under_prefix_host_problems_are_notes(tmp_path, netns):
    cfg = config(tmp_path, **{f'interface = "{IFACE}"': 'interface = "nrbt9"'})
    res = check_in(netns, cfg, "--prefix", tmp_path / "stage")
    assert res.returncode == 0, res.stderr
    assert "note: server.interface: nrbt9 does not exist" in res.stdout


def test_seed_placeholders_are_flagged(tmp_path, netns):
    res = check_in(netns, write(tmp_path, with_local_mirror(tmp_path, example_text("seed"))))
    assert res.returncode == 1
    assert "fail: network.dns_servers: 123.123.123.123, 124.124.124.124 are the seed page's placeholders" in res.stdout
    assert "fail: server.interface: eth0 does not exist on this host" in res.stdout


def test_lab_config_refused_outside_prefix_only(tmp_path, netns):
    cfg = write(tmp_path, with_local_mirror(tmp_path, example_text("lab")))
    res = check_in(netns, cfg)
    assert res.returncode == 1
    assert "fail: this is the lab example config (its root password 'nfsroot' is published" in res.stdout
    assert check_in(netns, cfg, "--prefix", tmp_path / "stage").returncode == 0


def test_another_dhcp_server_on_port_67_fails(tmp_path, netns):
    listener = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c",
         "import socket,time; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('0.0.0.0',67)); "
         "print('bound', flush=True); time.sleep(600)"], stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline().strip() == "bound"
        res = check_in(netns, config(tmp_path))
        assert res.returncode == 1
        comm = open(f"/proc/{listener.pid}/comm").read().strip()
        assert f"fail: 67/udp (DHCP) is taken by {comm} (pid {listener.pid})" in res.stdout
    finally:
        listener.kill()   # only the process this test started, by its PID
        listener.wait()


def test_dry_run_on_the_host_predicts_exportfs_after_the_root(tmp_path, netns):
    """Without --prefix, as a real run would: exportfs -ra only in the services
    step, after bootstrap; the dry-run changes nothing on the host."""
    cfg = config(tmp_path)
    before = snapshot(tmp_path)
    res = nfsroot_build("all", "--dry-run", "-c", cfg, "--state-dir", tmp_path / "state", netns=netns)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    steps = [i for i, line in enumerate(lines) if line.startswith("### step ")]
    exportfs = [i for i, line in enumerate(lines) if line == "$ exportfs -ra"]
    services = next(i for i in steps if lines[i].startswith("### step services"))
    bootstrap = next(i for i in steps if lines[i].startswith("### step bootstrap"))
    assert exportfs and all(i > services > bootstrap for i in exportfs)
    assert snapshot(tmp_path) == before

