"""hostcheck with a fake `ip -j addr` and a fake /proc (no sockets, no processes)."""
from __future__ import annotations

import json
import os

from nfsroot_builder import hostcheck, session

from fakes import FakeRunner
from helpers import example_text

LINKS = [{"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
         {"ifname": "eth0", "addr_info": [{"family": "inet6", "local": "fe80::1", "prefixlen": 64}]}]


def ctx_for(tmp_path, cfg, answer, prefix="/"):
    runner = FakeRunner(answers={"ip -j addr show": answer})
    return session.make_context(cfg, prefix=prefix if prefix == "/" else tmp_path / "stage", runner=runner,
                                state_dir=tmp_path / "state", dry_run=True)


def test_interface_without_ipv4(tmp_path, seed_config):
    rows = hostcheck.interface(ctx_for(tmp_path, seed_config, (0, json.dumps(LINKS), "")))
    assert rows == [("fail", "server.address: 192.168.0.1 is not an address of eth0 (it has no IPv4 address); "
                             "give the interface a static address first (docs/server.md)")]


def test_ip_missing_is_a_warning_not_a_pass(tmp_path, seed_config):
    [(level, msg)] = hostcheck.interface(ctx_for(tmp_path, seed_config, (127, "", "ip: command not found")))
    assert level == "warn" and "is unchecked" in msg


def test_staging_turns_failures_into_notes_and_keeps_the_lab_quiet(tmp_path, seed_config):
    rows = hostcheck.host_checks(ctx_for(tmp_path, seed_config, (0, json.dumps(LINKS), ""), prefix="stage"))
    assert rows and all(level in ("note", "ok", "warn") for level, _ in rows)
    from nfsroot_builder import config as config_mod
    lab = config_mod.parse(example_text("lab"))
    assert hostcheck.lab_config(ctx_for(tmp_path, lab, (0, "[]", ""), prefix="stage")) == []
    assert hostcheck.lab_config(ctx_for(tmp_path, lab, (0, "[]", "")))[0][0] == "fail"


def fake_proc(tmp_path, port_hex, inode, comm, state="07"):
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    (proc / "net/udp").write_text(header + f"   0: 00000000:{port_hex} 00000000:0000 {state} 00000000:00000000 "
                                           f"00:00000000 00000000     0        0 {inode} 2 0000 0\n")
    (proc / "4242/fd").mkdir(parents=True)
    (proc / "4242/comm").write_text(comm + "\n")
    os.symlink(f"socket:[{inode}]", proc / "4242/fd/3")
    return proc


def test_a_foreign_dhcp_server_is_named_with_its_pid(tmp_path, seed_config):
    proc = fake_proc(tmp_path, "0043", 999, "dnsmasq")
    rows = hostcheck.port_owners(ctx_for(tmp_path, seed_config, (0, "[]", "")), proc=proc)
    assert rows == [("fail", "67/udp (DHCP) is taken by dnsmasq (pid 4242); stop it, or the nodes get answers "
                             "from two DHCP servers (docs/server.md)")]


def test_the_configured_daemon_may_hold_its_port(tmp_path, seed_config):
    proc = fake_proc(tmp_path, "0043", 999, "dhcpd")
    assert hostcheck.port_owners(ctx_for(tmp_path, seed_config, (0, "[]", "")), proc=proc) == []


def test_an_admins_export_of_a_missing_directory_is_flagged(tmp_path, seed_config):
    ctx = ctx_for(tmp_path, seed_config, (0, "[]", ""), prefix="stage")
    etc = ctx.host("/etc")
    (etc / "exports.d").mkdir(parents=True)
    (etc / "exports").write_text("# old\n\"/srv/gone\" \\\n   10.0.0.0/8(ro)\n/srv/here 10.0.0.0/8(ro)\n")
    (etc / "exports.d/nfsroot-build-kerrighed.exports").write_text("/NFSROOT/kerrighed 192.168.0.0/24(ro)\n")
    ctx.host("/srv/here").mkdir(parents=True)
    rows = hostcheck.other_exports(ctx)
    assert rows == [("fail", f"{etc / 'exports'} exports /srv/gone, which does not exist: `exportfs -ra` "
                             "(step services) would fail on it; create it or remove that line")]
