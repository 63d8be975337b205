"""nfsroot-build node ...: in-process, on a copy of the lab example; bad input
exits 2 and leaves the config byte for byte as it was."""
from __future__ import annotations

import json
import os

import pytest

from nfsroot_builder import config as config_mod
from nfsroot_builder.cli import app

from helpers import example_text


@pytest.fixture
def lab(tmp_path):
    path = tmp_path / "cluster.toml"
    path.write_text(example_text("lab"))
    return path


def node(cli, lab, *args):
    return cli.invoke(app, ["node", *args, "-c", str(lab), "--prefix", str(lab.parent / "stage")])


def unchanged(lab) -> bool:
    return lab.read_bytes() == example_text("lab").encode()


def test_add_a_range_from_a_mac_file(cli, lab):
    macs = lab.parent / "macs.txt"
    macs.write_text("# rack 1\n" + "".join(f"52:54:00:aa:00:{i:02x}\n" for i in range(1, 17)))
    res = node(cli, lab, "add", "n[01-16]", "--macs", str(macs))
    assert res.exit_code == 0, res.output
    assert "added 16 nodes (n01 ... n16), 192.168.0.2 ... 192.168.0.17" in res.output
    nodes = config_mod.load(lab).nodes
    assert [(n.name, n.ip) for n in nodes[2:]] == [(f"n{i:02d}", f"192.168.0.{i + 1}") for i in range(1, 17)]
    assert lab.read_text().startswith(example_text("lab"))
    assert "nothing built yet" in res.output


def test_add_with_a_mac_in_use_exits_2_and_leaves_the_file(cli, lab):
    res = node(cli, lab, "add", "n1", "--mac", "52:54:00:12:34:02")
    assert res.exit_code == 2
    assert "node[2].mac: duplicate mac '52:54:00:12:34:02' (also node[1], 'lab2') (from --mac)" in res.output
    assert unchanged(lab)


@pytest.mark.parametrize("args, message", [
    (["add", "n1", "--mac", "52:54:00:aa:00:01", "--ip", "10.1.1.1"], "node[2].ip: 10.1.1.1 is not in network.subnet"),
    (["add", "n1", "--mac", "ff:ff:ff:ff:ff:ff"], "node[2].mac: ff:ff:ff:ff:ff:ff is a multicast or broadcast MAC"),
    (["add", "lab1", "--mac", "52:54:00:aa:00:01"], "node[2].name: duplicate name 'lab1'"),
    (["add", "n[1-2]", "--mac", "52:54:00:aa:00:01"], "makes 2 nodes: give their MACs with --macs FILE"),
    (["remove", "lab1", "nope"], "node.name: no node named 'nope'"),
    (["set", "nope", "--ip", "192.168.0.9"], "node.name: no node named 'nope'"),
    (["set", "lab1"], "nothing to set"),
    (["set", "lab1", "--ip", "192.168.0.102"],
     "node[1].ip: duplicate ip '192.168.0.102' (also node[0], 'lab1', from the command line)"),
    (["set", "lab1", "--firmware", "efi"], "node[0].firmware"),
])
def test_bad_input_exits_2_and_leaves_the_file(cli, lab, args, message):
    res = node(cli, lab, *args)
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert unchanged(lab)


def test_a_mac_file_count_mismatch_exits_2(cli, lab):
    macs = lab.parent / "macs.txt"
    macs.write_text("52:54:00:aa:00:01\n52:54:00:aa:00:02\n")
    res = node(cli, lab, "add", "n[1-3]", "--macs", str(macs))
    assert res.exit_code == 2 and "'n[1-3]' makes 3 node(s) but" in res.output and "holds 2 MAC(s)" in res.output
    assert unchanged(lab)


def test_a_bad_mac_in_the_file_names_its_line(cli, lab):
    macs = lab.parent / "macs.txt"
    macs.write_text("52:54:00:aa:00:01\n\n52:54:00:aa:00\n")
    res = node(cli, lab, "add", "n[1-2]", "--macs", str(macs))
    assert res.exit_code == 2 and "node[3].mac: not a MAC address" in res.output
    assert f"(from {macs} line 3)" in res.output
    assert unchanged(lab)


def test_dry_run_shows_the_diff_and_writes_nothing(cli, lab):
    res = node(cli, lab, "add", "n1", "--mac", "52:54:00:aa:00:01", "--ip", "192.168.0.50", "--dry-run")
    assert res.exit_code == 0, res.output
    assert '+name = "n1"' in res.output and f"would change {lab}: added n1, 192.168.0.50" in res.output
    assert unchanged(lab)


def test_apply_with_dry_run_is_refused(cli, lab):
    res = node(cli, lab, "remove", "lab1", "--dry-run", "--apply")
    assert res.exit_code == 2 and unchanged(lab)


def test_the_file_mode_is_kept(cli, lab):
    os.chmod(lab, 0o600)
    assert node(cli, lab, "remove", "lab2").exit_code == 0
    assert os.stat(lab).st_mode & 0o777 == 0o600
    assert [n.name for n in config_mod.load(lab).nodes] == ["lab1"]


def test_set_and_list(cli, lab):
    assert node(cli, lab, "set", "lab2", "--mac", "52:54:00:12:34:99", "--firmware", "uefi").exit_code == 0
    res = cli.invoke(app, ["node", "list", "-c", str(lab), "--json"])
    assert json.loads(res.stdout) == [
        {"name": "lab1", "mac": "52:54:00:12:34:01", "ip": "192.168.0.101", "firmware": "bios", "group": None},
        {"name": "lab2", "mac": "52:54:00:12:34:99", "ip": "192.168.0.102", "firmware": "uefi", "group": None}]
    assert lab.read_text() == example_text("lab").replace(
        'mac = "52:54:00:12:34:02"\nip = "192.168.0.102"', 'mac = "52:54:00:12:34:99"\nip = "192.168.0.102"\nfirmware = "uefi"')


def test_import_a_csv_with_and_without_addresses(cli, lab):
    csv = lab.parent / "nodes.csv"
    csv.write_text("name,mac,ip\nc1,52:54:00:bb:00:01,192.168.0.3\nc2,52:54:00:bb:00:02\nc3,52:54:00:bb:00:03,\n")
    res = node(cli, lab, "import", str(csv))
    assert res.exit_code == 0, res.output
    assert [(n.name, n.ip) for n in config_mod.load(lab).nodes[2:]] == [
        ("c1", "192.168.0.3"), ("c2", "192.168.0.2"), ("c3", "192.168.0.4")]


@pytest.mark.parametrize("rows, messages", [
    ("c1,52:54:00:bb:00:01,,login\n", ["node[2].group: no [[group]] named 'login'", "nodes.csv line 1)"]),
    ("c1,52:54:00:bb:00:01\nc2,52:54:00:12:34:01\n", ["node[3].mac: duplicate mac", "nodes.csv line 2)"]),
    # a malformed address beside rows without one: the free-address search skips it, the validation names it
    ("c1,52:54:00:bb:00:01,192.168.0.x\nc2,52:54:00:bb:00:02\n",
     ["node[2].ip: not an IPv4 address: '192.168.0.x'", "nodes.csv line 1)"]),
])
def test_import_refuses_a_bad_row_naming_its_line(cli, lab, rows, messages):
    csv = lab.parent / "nodes.csv"
    csv.write_text(rows)
    res = node(cli, lab, "import", str(csv))
    assert res.exit_code == 2 and all(m in res.output for m in messages), res.output
    assert unchanged(lab)


def test_the_plan_after_a_change_comes_from_the_pipeline(cli, lab, monkeypatch):
    """A build's state with every step done for the config as it was (no
    files on disk: verify is left out): a new node makes stale exactly the
    steps whose inputs hold the nodes (the integration test runs it for real)."""
    from nfsroot_builder import session
    from nfsroot_builder.state import now
    from nfsroot_builder.steps import STEPS
    ctx = session.make_context(config_mod.load(lab), prefix=lab.parent / "stage", emit=lambda line: None)
    pipe = session.pipeline(ctx)
    finished = now()
    for step in pipe.steps:
        fp, inputs = pipe.fingerprint(step)
        ctx.state.set_step(step.name, status="done", finished=finished, fingerprint=fp, inputs=inputs)
    ctx.state.save()
    for step in STEPS:
        monkeypatch.setattr(step, "verify", lambda self, ctx: [])
    res = node(cli, lab, "add", "n1", "--mac", "52:54:00:aa:00:01")
    assert res.exit_code == 0, res.output
    assert "`all --resume` will re-run 3 step(s):" in res.output, res.output
    stale = [line.split(":")[0].strip() for line in res.output.splitlines() if line.startswith("  ")]
    assert stale == ["dhcp-server", "hosts", "node-menus"], res.output
    assert "config changed: nodes" in res.output


def test_discover_prints_a_macs_file_without_known_macs(cli, lab):
    log = lab.parent / "syslog"
    log.write_text("Nov 30 01:00:00 boot dhcpd[8]: DHCPDISCOVER from 52:54:00:aa:00:01 via nrb-br0: "
                   "network 192.168.0.0/24: no free leases\n"
                   "Nov 30 01:00:01 boot dhcpd[8]: DHCPDISCOVER from 52:54:00:12:34:01 via nrb-br0: unknown client\n")
    res = cli.invoke(app, ["node", "discover", "--log", str(log), "-c", str(lab)])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == ["52:54:00:aa:00:01  # via nrb-br0: no free leases; 1 DHCPDISCOVER(s), "
                                       "last Nov 30 01:00:00 boot dhcpd[8]:"]
    out = lab.parent / "macs.txt"
    out.write_text(res.stdout)
    assert node(cli, lab, "add", "n1", "--macs", str(out)).exit_code == 0
    assert config_mod.load(lab).nodes[-1].mac == "52:54:00:aa:00:01"
    res = cli.invoke(app, ["node", "discover", "--log", str(log), "-c", str(lab), "--json"])
    assert json.loads(res.stdout) == []


def test_apply_as_a_user_is_refused_before_the_file_changes(cli, lab, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    res = node(cli, lab, "add", "n1", "--mac", "52:54:00:aa:00:01", "--apply")
    assert res.exit_code == 2 and "must run as root" in res.output
    assert unchanged(lab)
