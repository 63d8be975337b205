"""The node inventory's rules (inventory.py): ranges, MAC files, CSV rows,
the next free address, and edits that keep the example configs' comments."""
from __future__ import annotations

import pytest

from nfsroot_builder import config as config_mod
from nfsroot_builder.errors import ConfigError, UsageError
from nfsroot_builder.inventory import (
    Inventory,
    discovered,
    expand_names,
    free_addresses,
    macs_from,
    rows_from_csv,
)

from helpers import example_text

EXAMPLES = ("lab", "seed", "server")


def test_range_keeps_zero_padding():
    names = expand_names("n[001-064]")
    assert len(names) == 64 and names[0] == "n001" and names[9] == "n010" and names[-1] == "n064"


@pytest.mark.parametrize("pattern, names", [
    ("n[1-3]", ["n1", "n2", "n3"]),
    ("n[8-10]", ["n8", "n9", "n10"]),
    ("n[01-16]", [f"n{i:02d}" for i in range(1, 17)]),
    ("rack2-[1-2]-a", ["rack2-1-a", "rack2-2-a"]),
    ("login", ["login"]),
])
def test_range_expansion(pattern, names):
    assert expand_names(pattern) == names


@pytest.mark.parametrize("pattern, why", [
    ("n[3-1]", "backwards"), ("n[a-b]", "one bracket pair"), ("n[1-2][3-4]", "one bracket pair"),
    ("n[1-2", "one bracket pair"), ("n[1-100000]", "at most"),
])
def test_bad_ranges_are_refused(pattern, why):
    with pytest.raises(UsageError, match=why):
        expand_names(pattern)


def test_mac_file_skips_comments_and_blank_lines_and_says_where():
    text = "# rack 1\n52:54:00:00:00:01\n\n  52:54:00:00:00:02  # top\n"
    assert macs_from(text, "macs.txt") == [("52:54:00:00:00:01", "macs.txt line 2"),
                                           ("52:54:00:00:00:02", "macs.txt line 4")]


def test_csv_with_header_and_optional_ip():
    rows = rows_from_csv("# exported\nname,mac,ip\nn1,52:54:00:00:00:01,10.0.0.5\nn2,52:54:00:00:00:02\n",
                         "n.csv")
    assert [(r.name, r.mac, r.ip, r.origin) for r in rows] == [
        ("n1", "52:54:00:00:00:01", "10.0.0.5", "n.csv line 3"), ("n2", "52:54:00:00:00:02", None, "n.csv line 4")]


def test_csv_without_header_and_an_empty_group_column():
    rows = rows_from_csv("n1,52:54:00:00:00:01,,\n", "n.csv")
    assert [(r.name, r.ip) for r in rows] == [("n1", None)]


def test_csv_group_column_is_read():
    # Whether the group exists is the whole config's check (node[i].group, test_groups_rules.py).
    rows = rows_from_csv("name,mac,ip,group\nn1,52:54:00:00:00:01,,compute\n", "n.csv")
    assert [(r.name, r.group) for r in rows] == [("n1", "compute")]


def test_csv_wrong_column_count_names_the_line():
    with pytest.raises(ConfigError, match="line 2: has 1 column"):
        rows_from_csv("n1,52:54:00:00:00:01\nn2\n", "n.csv")


def _cfg(subnet="192.168.0.0/24", server="192.168.0.1", router=None, broadcast=None):
    extra = (f'router = "{router}"\n' if router else "") + (f'broadcast = "{broadcast}"\n' if broadcast else "")
    return config_mod.parse(f'[server]\naddress = "{server}"\n[network]\nsubnet = "{subnet}"\n{extra}')


def test_next_free_address_skips_server_router_and_used():
    cfg = _cfg(server="192.168.0.2", router="192.168.0.1")
    assert free_addresses(cfg, ["192.168.0.3", "192.168.0.5"], 3) == ["192.168.0.4", "192.168.0.6", "192.168.0.7"]


def test_next_free_address_skips_network_and_broadcast():
    cfg = _cfg(subnet="10.0.0.0/29", server="10.0.0.6")
    assert free_addresses(cfg, [], 5) == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]


def test_next_free_address_skips_a_configured_broadcast():
    cfg = _cfg(subnet="10.0.0.0/29", server="10.0.0.1", broadcast="10.0.0.3")
    assert free_addresses(cfg, [], 2) == ["10.0.0.2", "10.0.0.4"]


def test_full_subnet_says_how_many_are_left():
    cfg = _cfg(subnet="10.0.0.0/30", server="10.0.0.1")
    with pytest.raises(ConfigError, match=r"10.0.0.0/30 has 1 free address\(es\) left, 2 needed"):
        free_addresses(cfg, [], 2, "c.toml")


NEW = {"name": "n9", "mac": "52:54:00:aa:00:09", "ip": None}


def _free_ip(text: str) -> str:
    cfg = config_mod.parse(text)
    return free_addresses(cfg, [n.ip for n in cfg.nodes], 1)[0]


@pytest.mark.parametrize("example", EXAMPLES)
def test_add_keeps_every_byte_before_it(example):
    text = example_text(example)
    inv = Inventory(text, example)
    inv.add({**NEW, "ip": _free_ip(text)}, "--mac")
    new, cfg = inv.validated()
    assert new.startswith(text)   # comments, blank lines, key order: all as they were
    assert new[len(text):] == f'\n[[node]]\nname = "n9"\nmac = "52:54:00:aa:00:09"\nip = "{cfg.nodes[-1].ip}"\n'
    assert cfg.nodes[-1].name == "n9"


@pytest.mark.parametrize("example", EXAMPLES)
def test_remove_takes_out_only_that_node(example):
    text = example_text(example)
    first = config_mod.parse(text).nodes[0]
    block = f'[[node]]\nname = "{first.name}"\n'
    start = text.index(block)
    end = text.index("[[node]]", start + 1)
    inv = Inventory(text, example)
    inv.remove(first.name)
    new, cfg = inv.validated()
    assert new == text[:start] + text[end:]
    assert [n.name for n in cfg.nodes] == [n.name for n in config_mod.parse(text).nodes[1:]]
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert comments and all(c in new.splitlines() for c in comments)


def test_remove_the_last_node_leaves_no_empty_node_key():
    text = example_text("lab")
    inv = Inventory(text, "lab")
    inv.remove("lab1")
    inv.remove("lab2")
    new, cfg = inv.validated()
    assert cfg.nodes == [] and "[[node]]" not in new
    inv = Inventory(new, "lab")
    inv.add({"name": "n1", "mac": "52:54:00:aa:00:01", "ip": "192.168.0.5"}, "--mac")
    assert inv.validated()[1].nodes[0].name == "n1"


def test_set_changes_one_value_in_place():
    text = example_text("lab")
    inv = Inventory(text, "lab")
    inv.set("lab2", {"mac": "52:54:00:12:34:99"}, "the command line")
    new, _ = inv.validated()
    assert new == text.replace('mac = "52:54:00:12:34:02"', 'mac = "52:54:00:12:34:99"')


def test_a_mac_in_use_names_the_field_the_other_node_and_the_line():
    inv = Inventory(example_text("lab"), "lab.toml")
    inv.add({"name": "n9", "mac": "52:54:00:12:34:01", "ip": "192.168.0.9"}, "macs.txt line 4")
    with pytest.raises(ConfigError) as e:
        inv.validated()
    assert e.value.problems == [("node[2].mac", "duplicate mac '52:54:00:12:34:01' (also node[0], 'lab1') "
                                                "(from macs.txt line 4)")]


@pytest.mark.parametrize("values, field, msg", [
    ({"mac": "01:00:5e:00:00:01"}, "node[2].mac", "multicast"),
    ({"ip": "10.9.9.9"}, "node[2].ip", "not in network.subnet"),
    ({"ip": "192.168.0.101"}, "node[2].ip", "duplicate ip"),
    ({"name": "lab1"}, "node[2].name", "duplicate name"),
])
def test_whole_config_validation_catches_bad_nodes(values, field, msg):
    inv = Inventory(example_text("lab"), "lab.toml")
    inv.add({"name": "n9", "mac": "52:54:00:aa:00:09", "ip": "192.168.0.9", **values}, "--mac")
    with pytest.raises(ConfigError) as e:
        inv.validated()
    assert [(f, m) for f, m in e.value.problems if f == field and msg in m], e.value.problems


def test_unknown_node_is_refused():
    with pytest.raises(ConfigError, match="no node named 'nope'"):
        Inventory(example_text("lab"), "lab.toml").remove("nope")


def test_inline_node_list_gets_an_inline_entry():
    text = ('node = [{name = "a", mac = "52:54:00:00:00:01", ip = "10.0.0.2"}]\n'
            '[server]\naddress = "10.0.0.1"\n[network]\nsubnet = "10.0.0.0/24"\n')
    inv = Inventory(text, "c")
    inv.add({"name": "b", "mac": "52:54:00:00:00:02", "ip": "10.0.0.3"}, "--mac")
    new, cfg = inv.validated()
    assert [n.name for n in cfg.nodes] == ["a", "b"] and new.count("\n") == text.count("\n")


DHCPD_LOG = """\
Nov 30 01:00:00 boot dhcpd[812]: DHCPDISCOVER from 52:54:00:aa:00:01 via eth1: network 192.168.0.0/24: no free leases
Nov 30 01:00:02 boot dhcpd[812]: DHCPDISCOVER from 52:54:00:12:34:01 via eth1
Nov 30 01:00:03 boot dhcpd[812]: DHCPOFFER on 192.168.0.101 to 52:54:00:12:34:01 via eth1
Nov 30 01:00:04 boot dhcpd[812]: DHCPDISCOVER from 52:54:0:aa:0:2 (pxe-client) via eth1: unknown client
Nov 30 01:00:09 boot dhcpd[812]: DHCPDISCOVER from 52:54:00:aa:00:01 via eth1: network 192.168.0.0/24: no free leases
"""


def test_discover_reads_refused_clients_once_each():
    found = discovered(DHCPD_LOG)
    assert [(f["mac"], f["via"], f["why"], f["count"]) for f in found] == [
        ("52:54:00:aa:00:01", "eth1", "no free leases", 2), ("52:54:00:aa:00:02", "eth1", "unknown client", 1)]
    assert found[0]["last"] == "Nov 30 01:00:09 boot dhcpd[812]:"


RACKS = '''[server]
address = "10.0.0.1"
[network]
subnet = "10.0.0.0/24"

# the nodes
[[node]]
name = "a"  # first
mac = "52:54:00:00:00:01"
ip = "10.0.0.2"

# rack 2
[[node]]
name = "b"
mac = "52:54:00:00:00:02"
ip = "10.0.0.3"

# rack 3
[[node]]
name = "c"
mac = "52:54:00:00:00:03"
ip = "10.0.0.4"
'''


@pytest.mark.parametrize("removed", [["a"], ["b"], ["c"], ["a", "b", "c"]])
def test_remove_keeps_the_comments_above_the_next_node(removed):
    """tomlkit files '# rack 2' under node a: removing a must not take it."""
    inv = Inventory(RACKS, "racks.toml")
    for name in removed:
        inv.remove(name)
    new, cfg = inv.validated()
    assert all(c in new for c in ("# the nodes\n", "# rack 2\n", "# rack 3\n")), new
    assert ("# first" in new) == ("a" not in removed)
    assert [n.name for n in cfg.nodes] == [n for n in "abc" if n not in removed]


@pytest.mark.parametrize("example", EXAMPLES)
def test_appending_without_tomlkit_writes_what_tomlkit_writes(example):
    """add() appends to the text unparsed (tomlkit's parse is 1 s at 10,000
    nodes); the bytes are the ones tomlkit's document would give."""
    text = example_text(example)
    fast, slow = Inventory(text, example), Inventory(text, example)
    assert slow.doc is not None   # parsed: adds go into tomlkit's document
    for inv in (fast, slow):
        for i in (1, 2):
            inv.add({"name": f"x{i}", "mac": f"52:54:00:aa:00:0{i}", "ip": _free_ip(text).rsplit(".", 1)[0] + f".{i + 50}"},
                    f"line {i}")
    assert fast._doc is None and fast.text() == slow.text()
    assert fast.origin == slow.origin


def test_appending_after_another_table_is_checked_by_reading_it_back():
    text = example_text("lab")
    nfs = text[text.index("[nfs]"):text.index("[[node]]")]
    nodes_first = text.replace(nfs, "") + "\n" + nfs   # [nfs] is now last
    inv = Inventory(nodes_first, "lab.toml")
    inv.add({"name": "x1", "mac": "52:54:00:aa:00:01", "ip": "192.168.0.51"}, "--mac")
    new, cfg = inv.validated()
    assert [n.name for n in cfg.nodes] == ["lab1", "lab2", "x1"] and cfg.nfs.server == "ganesha"
    assert new.startswith(nodes_first)
