"""The dhcp-server step per dhcp.server kind, with a fake runner: which file,
which checker, which unit the services step restarts, and a kind switch."""
from __future__ import annotations

import pytest

from nfsroot_builder import config as config_mod
from nfsroot_builder import session
from nfsroot_builder.steps.dhcp import DhcpServer

from fakes import FakeRunner

FILES = {"kea": "etc/kea/kea-dhcp4-nfsroot-build.conf", "dnsmasq": "etc/dnsmasq.d/nfsroot-build-kerrighed.conf",
         "dnsmasq-proxy": "etc/dnsmasq.d/nfsroot-build-kerrighed.conf"}
CHECKER = {"isc-dhcp-server": "dhcpd -t", "kea": "kea-dhcp4 -t", "dnsmasq": "dnsmasq --test",
           "dnsmasq-proxy": "dnsmasq --test"}
UNIT = {"isc-dhcp-server": "isc-dhcp-server", "kea": "kea-dhcp4-server", "dnsmasq": "dnsmasq",
        "dnsmasq-proxy": "dnsmasq"}


def ctx_for(tmp_path, seed_text, kind):
    runner = FakeRunner()
    cfg = config_mod.parse(seed_text.replace('server = "isc-dhcp-server"', f'server = "{kind}"'))
    return session.make_context(cfg, prefix=tmp_path / "stage", runner=runner), runner


@pytest.mark.parametrize("kind", list(UNIT))
def test_each_kind_writes_its_file_checked_and_restarts_its_unit(tmp_path, seed_text, kind):
    ctx, runner = ctx_for(tmp_path, seed_text, kind)
    step = DhcpServer()
    assert step.verify(ctx)
    result = step.run(ctx)
    assert result.changed and result.restart == {UNIT[kind]}
    assert any(" ".join(argv).startswith(CHECKER[kind]) for argv in runner.executed), runner.executed
    assert step.verify(ctx) == []
    if kind != "isc-dhcp-server":
        assert (tmp_path / "stage" / FILES[kind]).is_file()
        assert not (tmp_path / "stage/etc/dhcp/dhcpd.conf").exists()
    assert step.run(ctx).changed is False


def test_a_switch_takes_the_old_kind_back_and_restarts_both(tmp_path, seed_text):
    ctx, _ = ctx_for(tmp_path, seed_text, "kea")
    DhcpServer().run(ctx)
    ctx2, _ = ctx_for(tmp_path, seed_text, "dnsmasq")
    ctx2.files.undo.replace(dict(ctx.files.record))   # one state: the same prefix
    result = DhcpServer().run(ctx2)
    assert result.restart == {"kea-dhcp4-server", "dnsmasq"}
    assert not (tmp_path / "stage" / FILES["kea"]).exists()
    defaults = tmp_path / "stage/etc/default/kea-dhcp4-server"
    assert not defaults.exists() or "DAEMON_ARGS" not in defaults.read_text()


def test_an_admin_file_of_the_same_name_is_not_taken(tmp_path, seed_text):
    """Only files the state records as the tool's are removed on a switch."""
    admin = tmp_path / "stage" / FILES["dnsmasq"]
    admin.parent.mkdir(parents=True)
    admin.write_text("# the admin's\n")
    ctx, _ = ctx_for(tmp_path, seed_text, "kea")
    DhcpServer().run(ctx)
    assert admin.read_text() == "# the admin's\n"
