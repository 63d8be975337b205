"""A canary (`root switch vN --nodes X`) gets vN's root-path from every DHCP
kind (issue 10): dhcpd in the node's host declaration, Kea in its
reservation, dnsmasq by a tag its dhcp-host line sets; the other nodes keep
the served version's. Without pins the files are as before (the goldens)."""
from __future__ import annotations

import pytest
from test_versions_rules import ready

from nfsroot_builder import config as config_mod
from nfsroot_builder import session, versions
from nfsroot_builder.render import Served
from nfsroot_builder.render import server as r
from nfsroot_builder.state import State
from nfsroot_builder.steps.dhcp import DhcpServer, dnsmasq_dropin_path, wanted_files

from fakes import FakeRunner
from helpers import root_paths_by_node

OLD = "/NFSROOT/kerrighed"          # v1: the seed's root.path
NEW = "/NFSROOT/kerrighed.v2"


def with_kind(cfg, kind):
    return cfg.model_copy(update={"dhcp": cfg.dhcp.model_copy(update={"server": kind})})


def render(kind, cfg, root_paths):
    if kind == "kea":
        return r.kea_config(cfg, Served(), root_paths)
    if kind == "isc-dhcp-server":
        return r.dhcpd_block(cfg, Served(), root_paths)
    return r.dnsmasq_dropin(cfg, Served(), root_paths)


@pytest.mark.parametrize("kind", ["isc-dhcp-server", "kea", "dnsmasq"])
def test_a_pinned_node_gets_its_versions_root_path_the_others_the_served_one(seed_config, kind):
    cfg = with_kind(seed_config, kind)
    first, *rest = [n.name for n in cfg.nodes]
    text = render(kind, cfg, {first: f"{OLD}.v3"})
    got = root_paths_by_node(text, kind, cfg)
    assert got[first] == f"192.168.0.1:{OLD}.v3"
    assert all(got[n] == f"192.168.0.1:{OLD}" for n in rest), got


@pytest.mark.parametrize("kind", ["isc-dhcp-server", "kea", "dnsmasq"])
def test_two_canary_versions_and_no_pins(seed_config, kind):
    cfg = with_kind(seed_config, kind)
    a, b, c, d = [n.name for n in cfg.nodes]
    got = root_paths_by_node(render(kind, cfg, {a: f"{OLD}.v2", c: f"{OLD}.v3", d: f"{OLD}.v2"}), kind, cfg)
    assert [got[n].rpartition(":")[2] for n in (a, b, c, d)] == [f"{OLD}.v2", OLD, f"{OLD}.v3", f"{OLD}.v2"]
    # No pins: the same bytes as without the argument (the goldens pin those).
    assert render(kind, cfg, {}) == render(kind, cfg, None)


def test_dnsmasq_proxy_sends_no_root_path_pinned_or_not(seed_config):
    cfg = with_kind(seed_config, "dnsmasq-proxy")
    text = r.dnsmasq_dropin(cfg, Served(), {cfg.nodes[0].name: f"{OLD}.v2"})
    assert "root-path" not in text and text == r.dnsmasq_dropin(cfg, Served())


def stage_with_versions(tmp_path, seed_text, kind, pins):
    """A staged state: v1 and v2 ready, v2 current, pins; the context of `root switch` (current version)."""
    cfg = config_mod.parse(seed_text.replace('server = "isc-dhcp-server"', f'server = "{kind}"'))
    prefix = tmp_path / "stage"
    state = State(prefix / "var/lib/nfsroot-build" / cfg.name / "state.json")
    ready(state, 1, cfg)
    ready(state, 2, cfg)
    state.set_pins(pins(cfg))
    state.save()
    return session.make_context(cfg, prefix=prefix, runner=FakeRunner(), emit=lambda s: None, version="current")


def written(ctx, kind) -> str:
    if kind == "isc-dhcp-server":
        return ctx.host(ctx.config.dhcp.config_file).read_text()
    path = dnsmasq_dropin_path(ctx) if kind == "dnsmasq" else next(iter(wanted_files(ctx)))
    return ctx.host(path).read_text()


@pytest.mark.parametrize("kind", ["isc-dhcp-server", "kea", "dnsmasq"])
def test_the_step_writes_the_canarys_root_path_and_sees_a_pin_change(tmp_path, seed_text, kind):
    ctx = stage_with_versions(tmp_path, seed_text, kind, lambda cfg: {cfg.nodes[0].name: 1})
    assert ctx.version_id == 2 and versions.pinned_root_paths(ctx) == {ctx.config.nodes[0].name: OLD}
    step = DhcpServer()
    step.run(ctx)
    got = root_paths_by_node(written(ctx, kind), kind, ctx.config)
    first, *rest = [n.name for n in ctx.config.nodes]
    assert got[first] == f"192.168.0.1:{tmp_path}/stage{OLD}"
    assert all(got[n] == f"192.168.0.1:{tmp_path}/stage{NEW}" for n in rest), got
    assert step.verify(ctx) == []
    pinned_fp = step.fingerprint(ctx)
    # The canary back on the current version: the step is stale, by content and by fingerprint.
    ctx.state.set_pins({})
    assert step.verify(ctx) and step.fingerprint(ctx) != pinned_fp
    assert "pinned" not in step.fingerprint(ctx)   # builds without canaries keep their fingerprint
    step.run(ctx)
    assert set(root_paths_by_node(written(ctx, kind), kind, ctx.config).values()) == \
        {f"192.168.0.1:{tmp_path}/stage{NEW}"}


def test_a_pin_to_the_served_version_or_an_unknown_one_is_no_override(tmp_path, seed_text):
    ctx = stage_with_versions(tmp_path, seed_text, "kea",
                              lambda cfg: {cfg.nodes[0].name: 2, cfg.nodes[1].name: 9, "gone": 1})
    assert versions.pinned_root_paths(ctx) == {}
