"""The lab's pure parts: names, QEMU argv, ganesha.conf, judging a console."""
from __future__ import annotations

import pytest

from nfsroot_builder import config as config_mod
from nfsroot_builder import session
from nfsroot_builder.errors import NfsrootError
from nfsroot_builder.lab import Lab, netns
from nfsroot_builder.lab.daemons import wait_for_daemon
from nfsroot_builder.lab.nodes import NodeResult, firmware, judge, parse_facts, qemu_argv
from nfsroot_builder.lab.ra import advertisement, only_solicitations
from nfsroot_builder.lab.render import FACTS_MARK, ganesha_conf
from nfsroot_builder.render import Served

from helpers import example_text


@pytest.fixture
def lab(tmp_path):
    cfg = config_mod.parse(example_text("lab"))
    return Lab(session.make_context(cfg, prefix=tmp_path / "stage"))


def console(host="lab1", root="nfs,192.168.0.1:{root}", failed="none", login=True):
    text = "iPXE initialising devices...ok\nLinux version 6.12\n"
    text += f"\x1b[6n{FACTS_MARK} host={host} root={root} var=none failed={failed} state=running\n"
    if login:
        text += f"\nDebian GNU/Linux 13 {host} ttyS0\n\n{host} login: "
    return text


def test_namespace_is_per_build_and_short_taps(tmp_path):
    cfg = config_mod.parse(example_text("lab"))
    a, b = netns.namespace(cfg, tmp_path / "a"), netns.namespace(cfg, tmp_path / "b")
    assert a != b and a.startswith("nrb-lab-")
    assert all(len(netns.tap_name(i)) <= 15 for i in range(10000))


def test_qemu_argv_boots_from_the_network_without_user_networking(tmp_path):
    argv = qemu_argv("lab1", "52:54:00:12:34:01", "nrb-tap0", tmp_path / "c.log", "tcg",
                     firmware("bios", tmp_path / "v.fd"))
    text = " ".join(argv)
    assert "mac=52:54:00:12:34:01" in text and "disable-legacy=on" in text and "bootindex=1" in text
    assert "tap,id=net0,ifname=nrb-tap0,script=no,downscript=no" in text
    assert "user" not in text.split() and "-nic" not in argv and "hostfwd" not in text


def test_ganesha_conf_for_the_lab(lab):
    text = ganesha_conf(lab.cfg, Served("/stage"), "/stage/run")
    assert "Protocols = 3, 4;" in text and "Enable_NLM = false;" in text and "Graceless = true;" in text
    assert 'Path = "/stage/srv/nfsroot/lab";' in text
    assert "Bind_addr = 192.168.0.1;" in text
    # No listener on a port below 1024, where root's RPC clients bind (bindresvport(3)).
    assert "Enable_RQUOTA = false;" in text


def test_a_daemon_that_exits_at_start_fails_at_once_with_its_log(tmp_path):
    log = tmp_path / "ganesha.nfsd.log"
    log.write_text("an earlier start\n")
    since = log.stat().st_size
    log.write_text("an earlier start\nBind_sockets :DISP :FATAL :Error binding to V6 interface. Cannot continue.\n")
    polls = []
    with pytest.raises(NfsrootError) as err:
        wait_for_daemon("NFS-Ganesha", lambda: polls.append(1) and False, timeout=3600, exited=lambda: True,
              log=log, since=since)
    assert len(polls) == 1
    assert "exited before it came up" in str(err.value) and "Error binding to V6" in str(err.value)
    assert "an earlier start" not in str(err.value)


def test_facts_only_from_finished_lines():
    assert parse_facts(f"{FACTS_MARK} host=a root=nfs,x:/y var=none") == {}
    assert parse_facts(f"lab2 login: {FACTS_MARK} host=a root=nfs,x:/y var=none failed=none\n")["root"] == "nfs,x:/y"


def test_judge_pass(lab):
    node = lab.cfg.nodes[0]
    r = NodeResult(node.name)
    assert judge(lab, node, console(root=f"nfs,192.168.0.1:{lab.ctx.root}"), r)
    assert r.ok and r.hostname == "lab1" and r.problem == ""


@pytest.mark.parametrize("kw,words", [
    ({"host": "localhost"}, "DHCP name not taken"),
    ({"root": "nfs,192.168.0.1:/elsewhere"}, "expected nfs from"),
    ({"failed": "systemd-remount-fs.service"}, "failed units"),
])
def test_judge_problems(lab, kw, words):
    node = lab.cfg.nodes[0]
    kw.setdefault("root", f"nfs,192.168.0.1:{lab.ctx.root}")
    r = NodeResult(node.name)
    assert judge(lab, node, console(**kw), r)
    assert not r.ok and words in r.problem


def test_judge_waits_then_fails_fast_on_refused_mount(lab):
    node = lab.cfg.nodes[0]
    r = NodeResult(node.name)
    assert not judge(lab, node, "Begin: Mounting root file system ... ", r)
    assert judge(lab, node, "Begin: Retrying nfs mount ... mount call failed - server replied: Permission denied.\n", r)
    assert not r.ok and "Permission denied" in r.problem


def test_down_without_a_record_deletes_nothing(lab):
    # Another lab's namespace of the same name must never be deleted by us.
    assert lab.down() == []


def test_router_advertisement_bytes():
    ra = advertisement("02:00:6e:72:62:01")
    assert ra[0] == 134 and ra[6:8] == b"\x00\x00"      # router lifetime 0
    assert ra[-6:] == bytes.fromhex("02006e726201")
    words = only_solicitations()
    assert len(words) == 32


def test_site_dhcpd_gives_addresses_and_names_only(lab):
    from nfsroot_builder.lab.daemons import site_dhcpd_conf
    text = site_dhcpd_conf(lab.cfg)
    for node in lab.cfg.nodes:
        assert f"host {node.name} {{ hardware ethernet {node.mac}; fixed-address {node.ip}; }}" in text
    assert "use-host-decl-names on;" in text and "deny unknown-clients;" in text
    # Boot information is the proxy's job: the site's server sends none.
    assert "filename" not in text and "root-path" not in text and "next-server" not in text


def test_kea_lab_copy_keeps_its_leases_in_the_lab(lab):
    import json

    from nfsroot_builder.lab.daemons import kea_lab_conf
    from nfsroot_builder.render.server import kea_config, kea_json
    staged = kea_config(lab.cfg, Served("/stage"))
    data = json.loads(kea_lab_conf(staged, "/state/lab"))["Dhcp4"]
    assert data["lease-database"] == {"type": "memfile", "lfc-interval": 3600,
                                      "name": "/state/lab/kea-leases4.csv", "persist": False}
    assert data["interfaces-config"]["interfaces"] == [lab.cfg.server.interface]
    assert data["interfaces-config"]["service-sockets-max-retries"] > 0
    # Everything else is what the pipeline staged.
    assert data["subnet4"] == kea_json(staged)["Dhcp4"]["subnet4"]


def test_dnsmasq_lab_argv_reads_only_the_staged_dropin():
    from nfsroot_builder.lab.daemons import dnsmasq_argv
    argv = dnsmasq_argv("/stage/etc/dnsmasq.d/nfsroot-build-lab.conf", "nrb-br0", "/state/lab")
    assert argv[:3] == ["dnsmasq", "--keep-in-foreground", "--conf-file=/stage/etc/dnsmasq.d/nfsroot-build-lab.conf"]
    assert "--port=0" in argv and "--interface=nrb-br0" in argv and "--bind-interfaces" in argv
    assert all(a.startswith("/state/lab/") for a in (x.split("=", 1)[1] for x in argv if "file=" in x and "conf" not in x))


def test_a_node_without_login_prompt_is_reported_with_its_facts_and_a_tail_without_heartbeats(tmp_path):
    from nfsroot_builder.lab.nodes import NodeResult, watch
    log = tmp_path / "n1.log"
    log.write_text("Welcome to Debian\n[  OK  ] Started getty\n"
                   f"{FACTS_MARK} host=n1 root=nfs,x:/y state=running getty=activating\n"
                   + "".join(f"{FACTS_MARK}-HEARTBEAT {i} v1\n" for i in range(1, 60)))
    results = {"n1": NodeResult("n1")}
    watch(results, {"n1": (0.0, log)}, timeout=0, finished=lambda *a: False, alive=lambda name: True)
    assert results["n1"].problem.startswith("no login prompt within 0s, though the node reported")
    assert "getty=activating" in results["n1"].problem
    assert results["n1"].tail[-2].startswith(FACTS_MARK + " host=n1")
    assert results["n1"].tail[-1] == "(59 heartbeat lines left out)"
