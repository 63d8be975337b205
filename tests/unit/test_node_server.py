"""A node's preferred boot server (node.server, issue 13 point 2;
docs/replicas.md "A node's preferred server"): validated against the
servers' names, and carried by every server's Kea answer (next-server and
root-path of the node's reservation), since Kea's load-balancing cannot pin
a client to a server."""
from __future__ import annotations

import pytest
from test_replicas_rules import LAB, problems, synced, with_servers  # noqa: F401 (fixture)

from nfsroot_builder import config as config_mod
from nfsroot_builder.render import Served
from nfsroot_builder.render.server import kea_config, kea_json

LAB1 = 'name = "lab1"\n'


def preferring(server: str, text: str | None = None) -> str:
    text = with_servers() if text is None else text
    return text.replace(LAB1, f'{LAB1}server = "{server}"\n', 1)


def reservations(text: str, prefix: str = "/") -> dict[str, dict]:
    kea = kea_json(kea_config(config_mod.parse(text), Served(prefix)))["Dhcp4"]
    return {r["hostname"]: r for r in kea["subnet4"][0]["reservations"]}


@pytest.mark.parametrize("text", [preferring("c"), preferring("b", LAB)], ids=["unknown", "no-servers"])
def test_an_unknown_preferred_server_is_refused_naming_the_node_field(text):
    got = problems(text)
    assert "no server named" in got["node[0].server"] and "primary" in got["node[0].server"], got


def test_primary_needs_no_servers():
    cfg = config_mod.parse(preferring("primary", LAB))
    assert cfg.nodes[0].server == "primary"
    # One server: its own address, as the subnet's next-server says anyway.
    assert reservations(preferring("primary", LAB))["lab1"]["next-server"] == "192.168.0.1"


def test_every_servers_answer_sends_the_node_to_its_preferred_server():
    res = reservations(preferring("b"))
    # lab1 goes to b (next-server and root-path on b's own copy), the other
    # node keeps the subnet's: whichever server answers, itself.
    assert res["lab1"]["next-server"] == "192.168.0.2"
    assert res["lab1"]["option-data"] == [{"name": "root-path", "data": "192.168.0.2:/srv/replica-b/srv/nfsroot/lab",
                                           "always-send": True}]
    assert "next-server" not in res["lab2"] and "option-data" not in res["lab2"]
    # A node preferring the primary, under a staging prefix: the primary's served path.
    res = reservations(preferring("primary"), "/stage")
    assert res["lab1"]["next-server"] == "192.168.0.1"
    assert res["lab1"]["option-data"][0]["data"] == "192.168.0.1:/stage/srv/nfsroot/lab"


def test_the_replicas_kea_config_sends_the_node_to_the_primary(synced):  # noqa: F811
    """The replica's Kea (rendered by sync for b) also sends a node that
    prefers the primary there, not to b itself."""
    from nfsroot_builder import replicas, versions
    ctx, _runner, _row, tmp = synced
    cfg = config_mod.parse(preferring("primary", with_servers(tree=str(tmp / "b"))))
    ctx.base_config, ctx.config = cfg, versions.with_root_path(cfg, "/srv/nfsroot/lab.v2")
    kea = kea_json(replicas.rendered_files(ctx, cfg.servers[0])["/etc/kea/kea-dhcp4-nfsroot-build.conf"])["Dhcp4"]
    res = {x["hostname"]: x for x in kea["subnet4"][0]["reservations"]}
    assert kea["subnet4"][0]["next-server"] == "192.168.0.2"
    assert res["lab1"]["next-server"] == "192.168.0.1"
    assert res["lab1"]["option-data"][0]["data"] == f"192.168.0.1:{tmp}/stage/srv/nfsroot/lab.v2"
    assert "next-server" not in res["lab2"]
