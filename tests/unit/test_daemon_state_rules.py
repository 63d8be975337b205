"""A daemon goes back to what it was: the services step records a daemon's
state before this build first restarts it, and undo restarts one that ran
and stops one that did not (issue 14: a fresh server's isc-dhcp-server is
failed, and restarting it with its own config after undo fails)."""
from __future__ import annotations

import pytest

from nfsroot_builder import services, session, undo
from nfsroot_builder.context import Context
from nfsroot_builder.pipeline import Pipeline
from nfsroot_builder.steps.services import Services

from fakes import FakeRunner


@pytest.fixture
def host_systemd(monkeypatch):
    """As on a systemd host (no staging notes), its files still in tmp_path."""
    monkeypatch.setattr(Context, "staging", property(lambda self: False))
    monkeypatch.setattr(services, "has_systemd", lambda: True)


def make(tmp_path, cfg, answers):
    runner = FakeRunner(answers)
    ctx = session.make_context(cfg, prefix=tmp_path / "host", runner=runner, emit=lambda line: None)
    return ctx, runner


def test_the_state_before_the_first_restart_is_kept(tmp_path, seed_config, host_systemd):
    ctx, runner = make(tmp_path, seed_config, {"systemctl is-active isc-dhcp-server": (3, "failed\n", "")})
    ctx.state.add_restarts(["isc-dhcp-server"])
    Pipeline(ctx, (Services,)).run()
    assert runner.executed == [["systemctl", "is-active", "isc-dhcp-server"],
                               ["systemctl", "restart", "isc-dhcp-server"]]
    # A later restart keeps the first record: undo goes back to before the build.
    ctx.state.add_restarts(["isc-dhcp-server"])
    Pipeline(ctx, (Services,)).run()
    assert ctx.state.services_before == {"isc-dhcp-server": "failed"}
    assert runner.executed[2:] == [["systemctl", "restart", "isc-dhcp-server"]]


def test_undo_stops_what_did_not_run_and_restarts_what_did(tmp_path, seed_config, host_systemd, monkeypatch):
    ctx, runner = make(tmp_path, seed_config, {})
    ctx.state.first_restart("isc-dhcp-server", "failed")
    ctx.state.first_restart("tftpd-hpa", "active")
    monkeypatch.setattr(undo._Undo, "run", lambda self: self.touched.extend(
        [str(ctx.host("/etc/dhcp/dhcpd.conf")), str(ctx.host("/etc/default/tftpd-hpa"))]))
    monkeypatch.setattr(undo, "_service_for", lambda c, path: "isc-dhcp-server" if "dhcp" in path else "tftpd-hpa")
    report = undo.undo(ctx)
    assert ["systemctl", "stop", "isc-dhcp-server"] in runner.executed
    assert ["systemctl", "restart", "tftpd-hpa"] in runner.executed
    assert report.problems == [] and report.restarted == ["tftpd-hpa"]
    assert "stopped isc-dhcp-server: it was failed before nfsroot-build first restarted it" in report.done
    assert ctx.state.services_before == {}   # forgotten with the rest of the undo record
