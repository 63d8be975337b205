"""The engine with a fake runner: order, resume, staleness and why, failure,
pending restarts that survive a crash."""
from __future__ import annotations

import json

import pytest

from nfsroot_builder import chroot, session
from nfsroot_builder.errors import StepFailed, ValidationFailed
from nfsroot_builder.pipeline import Pipeline
from nfsroot_builder.steps import STEPS
from nfsroot_builder.steps.dhcp import DhcpServer
from nfsroot_builder.steps.nfs import NfsExports
from nfsroot_builder.steps.packages import ServerPackages
from nfsroot_builder.steps.root_password import RootPassword
from nfsroot_builder.steps.services import Services
from nfsroot_builder.steps.tftp import TftpServer

from fakes import FakeRunner
from helpers import mark_root

# The server half: its steps need no root tree, so a fake runner can drive them
# end to end (the root steps have their own tests).
SERVER_STEPS = (ServerPackages, TftpServer, DhcpServer, NfsExports, Services)


def make(tmp_path, cfg, runner=None, dry_run=False):
    out: list[str] = []
    runner = runner or FakeRunner(emit=out.append)
    runner.emit = out.append
    ctx = session.make_context(cfg, prefix=tmp_path / "stage", dry_run=dry_run, runner=runner, emit=out.append)
    return ctx, Pipeline(ctx, SERVER_STEPS), out


def ganesha(cfg):
    return cfg.model_copy(update={"nfs": cfg.nfs.model_copy(update={"server": "ganesha"})})


@pytest.fixture
def cfg(seed_config):
    return ganesha(seed_config)


def server_steps(plans):
    return {p.step.name: p for p in plans}


def test_order_is_the_explicit_list(tmp_path, cfg):
    ctx, _, _ = make(tmp_path, cfg)
    names = [s.name for s in session.pipeline(ctx).steps]
    assert names == [s.name for s in STEPS]
    assert names[:4] == ["server-packages", "tftp-server", "dhcp-server", "nfs-exports"]
    assert names[-1] == "services"
    assert len(set(names)) == len(names)


def test_full_run_then_resume_skips_everything(tmp_path, cfg):
    ctx, pipe, _ = make(tmp_path, cfg)
    report = dict(pipe.run())
    assert report["dhcp-server"] == "changed"
    state = json.loads((ctx.state_dir / "state.json").read_text())
    assert all(s["status"] == "done" for s in state["steps"].values())
    assert state["pending_restarts"] == []
    ctx2, pipe2, _ = make(tmp_path, cfg)
    assert all(p.status == "done" for p in pipe2.plan()), [(p.step.name, p.why) for p in pipe2.plan()]
    assert set(dict(pipe2.run(resume=True)).values()) == {"done"}


def test_changing_a_node_makes_only_dhcp_stale_and_says_why(tmp_path, cfg):
    make(tmp_path, cfg)[1].run()
    nodes = list(cfg.node)
    nodes[3] = nodes[3].model_copy(update={"mac": "52:54:00:aa:bb:cc"})
    _, pipe, _ = make(tmp_path, cfg.model_copy(update={"node": nodes}))
    plans = server_steps(pipe.plan())
    stale = {n for n, p in plans.items() if p.status != "done"}
    # nfs-exports does not depend on MACs (tmpfs layout); dhcp-server does.
    assert stale == {"dhcp-server"}
    assert plans["dhcp-server"].why == "config changed: nodes"


def test_changing_tftp_root_marks_tftp_and_why(tmp_path, cfg):
    make(tmp_path, cfg)[1].run()
    new = cfg.model_copy(update={"tftp": cfg.tftp.model_copy(update={"root": "/srv/tftp2"})})
    plans = server_steps(make(tmp_path, new)[1].plan())
    assert plans["tftp-server"].status == "stale" and "tftp.root" in plans["tftp-server"].why


def test_missing_output_makes_step_stale(tmp_path, cfg):
    ctx, pipe, _ = make(tmp_path, cfg)
    pipe.run()
    (ctx.prefix / "etc/ganesha/nfsroot-build-kerrighed.conf").unlink()
    plans = server_steps(make(tmp_path, cfg)[1].plan())
    assert plans["nfs-exports"].status == "stale" and "missing" in plans["nfs-exports"].why


def test_failure_names_step_command_and_output_then_resume(tmp_path, cfg):
    def dhcpd_fails(argv):
        if argv[0] == "dhcpd":
            return 1, "", "Internet Systems Consortium DHCP Server\n/etc/dhcp/dhcpd.conf line 7: semicolon expected.\n"
    ctx, pipe, _ = make(tmp_path, cfg, FakeRunner(hook=dhcpd_fails))
    with pytest.raises(StepFailed) as exc:
        pipe.run()
    msg = str(exc.value)
    assert "dhcp-server" in msg and "dhcpd -t" in msg and "semicolon expected" in msg
    assert isinstance(exc.value.cause, ValidationFailed)   # dhcpd's own message, not its banner
    assert "Internet Systems Consortium" not in msg
    plans = server_steps(make(tmp_path, cfg)[1].plan())
    assert plans["dhcp-server"].status == "failed"
    assert plans["tftp-server"].status == "done"
    ctx, pipe, _ = make(tmp_path, cfg)
    report = dict(pipe.run(resume=True))
    assert report["server-packages"] == report["tftp-server"] == "done"
    assert report["dhcp-server"] == "changed"
    assert "isc-dhcp-server" not in ctx.state.pending_restarts   # services ran


def test_pending_restarts_survive_a_crash_before_services(tmp_path, cfg):
    seen = []

    def restart_fails(argv):
        seen.append(argv)
        if argv[-1] == "restart":
            return 1, "", "Job for tftpd-hpa.service failed\n"
    ctx, pipe, _ = make(tmp_path, cfg)
    pipe.run(only="tftp-server")
    state = json.loads((ctx.state_dir / "state.json").read_text())
    assert state["pending_restarts"] == ["tftpd-hpa"]
    plans = server_steps(make(tmp_path, cfg)[1].plan())
    assert plans["services"].status == "pending"


def test_interrupted_step_is_redone(tmp_path, cfg):
    ctx, pipe, _ = make(tmp_path, cfg)
    pipe.run()
    ctx.state.set_step("dhcp-server", status="running")
    ctx.state.save()
    plans = server_steps(make(tmp_path, cfg)[1].plan())
    assert plans["dhcp-server"].status == "interrupted"
    assert dict(make(tmp_path, cfg)[1].run(resume=True))["dhcp-server"] == "unchanged"


def test_dependency_rerun_makes_dependant_stale(tmp_path, cfg):
    from nfsroot_builder.steps.base import Step, StepResult

    class A(Step):
        """a"""
        name = "a"
        def fingerprint(self, ctx): return {"x": ctx.config.tftp.root}
        def run(self, ctx): return StepResult()

    class B(Step):
        """b"""
        name = "b"
        needs = ("a",)
        def run(self, ctx): return StepResult()

    class C(Step):
        """c"""
        name = "c"
        def run(self, ctx): return StepResult()
    ctx, _, _ = make(tmp_path, cfg)
    Pipeline(ctx, (A, B, C)).run()
    new = cfg.model_copy(update={"tftp": cfg.tftp.model_copy(update={"root": "/x"})})
    ctx, _, _ = make(tmp_path, new)
    plans = {p.step.name: p for p in Pipeline(ctx, (A, B, C)).plan()}
    assert plans["a"].status == "stale"
    assert plans["b"].status == "stale" and "needs a" in plans["b"].why
    assert plans["c"].status == "done"
    # Running only "a" later makes "b" stale because a ran after it.
    Pipeline(ctx, (A, B, C)).run(only="a")
    ctx, _, _ = make(tmp_path, new)
    plans = {p.step.name: p for p in Pipeline(ctx, (A, B, C)).plan()}
    assert plans["b"].status == "stale" and "ran before a" in plans["b"].why


def test_dry_run_transcript_and_nothing_written(tmp_path, cfg):
    ctx, pipe, out = make(tmp_path, cfg.model_copy(update={"nfs": cfg.nfs.model_copy(update={"server": "kernel"})}),
                          dry_run=True)
    pipe.run()
    text = "\n".join(out)
    assert "### step dhcp-server" in text and "+  host ssi1 { hardware ethernet 52:54:00:00:00:01;" in text
    # Under a staging prefix the exported path is the staged one.
    assert f"+{tmp_path}/stage/NFSROOT/kerrighed 192.168.0.0/24(ro,async,no_root_squash,no_subtree_check)" in text
    assert "# validate" in text
    assert not (tmp_path / "stage").exists()


def test_unknown_step(tmp_path, cfg):
    from nfsroot_builder.errors import UsageError
    with pytest.raises(UsageError, match="no step named"):
        make(tmp_path, cfg)[1].run(only="nope")


def test_state_and_log_never_hold_the_password_hash(tmp_path, cfg, monkeypatch):
    # A real crypt(5) hash: the seed's "!" would be found nowhere by chance.
    secret = "$6$nfsroottest$QmFzZTY0IGlzIG5vdCBhIGhhc2gsIGJ1dCBpdCBsb29rcyBsaWtlIG9uZQ"
    cfg = cfg.model_copy(update={"root": cfg.root.model_copy(update={"password_hash": secret})})
    monkeypatch.setattr(chroot, "mounts_under", lambda root: [])
    monkeypatch.setattr(chroot, "stop_processes", lambda ctx, root: None)
    stdin = []

    class Recording(FakeRunner):
        def _execute(self, argv, input, *rest):
            stdin.append(input or "")
            return super()._execute(argv, input, *rest)

    ctx, _, out = make(tmp_path, cfg, runner=Recording())
    mark_root(ctx.root, cfg.name)
    (ctx.root / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    Pipeline(ctx, (RootPassword,)).run()
    # The step ran and the hash reached chpasswd: there was a secret to leak.
    assert ctx.state.step("root-password")["status"] == "done"
    assert any(secret in s for s in stdin), stdin
    state_text = (ctx.state_dir / "state.json").read_text()
    logs = [p.read_text() for p in (ctx.state_dir / "logs").rglob("*.log")]
    assert logs and "chpasswd -e" in "".join(logs), "the step's log shows the command"
    for where, text in [("state", state_text), ("transcript", "\n".join(out)), *[("log", t) for t in logs]]:
        assert secret not in text and "QmFzZTY0IGlz" not in text, where


def test_resume_restarts_what_a_rerun_step_left_pending(tmp_path, cfg):
    ctx, pipe, _ = make(tmp_path, cfg)
    pipe.run()
    # tftp-server re-runs (its output is gone) and asks for a restart; the plan,
    # made before, had `services` as done.
    (ctx.prefix / "srv/tftp").rmdir()
    ctx.files.managed_block(ctx.prefix / "etc/default/tftpd-hpa", None)
    ctx, pipe, _ = make(tmp_path, cfg)
    report = dict(pipe.run(resume=True))
    assert report["tftp-server"] == "changed" and report["services"] == "changed"
    assert ctx.state.pending_restarts == []


def test_fingerprint_is_the_digest_of_the_inputs_serialized_once(tmp_path, cfg):
    """pipeline.fingerprint builds digest(inputs) from per-input texts: it must
    stay equal, or every done step of every build turns stale on upgrade."""
    from nfsroot_builder.steps.base import digest
    ctx, _, _ = make(tmp_path, cfg)
    pipe = session.pipeline(ctx)
    for step in pipe.steps:
        inputs = {**step.fingerprint(ctx), "step-version": step.version}
        assert pipe.fingerprint(step)[0] == digest(inputs), step.name
