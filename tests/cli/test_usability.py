"""--version, shell completion, live progress, the per-run logs and the
doctor's fixes as pipeline steps: in-process, no real processes."""
from __future__ import annotations

import io
import json
import re

import pytest
from rich.console import Console
from typer.testing import CliRunner

from nfsroot_builder import __version__, session
from nfsroot_builder import config as config_mod
from nfsroot_builder import runner as runner_mod
from nfsroot_builder.cli import app
from nfsroot_builder.cli import progress as progress_mod
from nfsroot_builder.cli.common import complete_node, complete_step
from nfsroot_builder.cli.progress import ConsoleProgress
from nfsroot_builder.doctor import apply_fixes, run_checks
from nfsroot_builder.runlogs import RunLogs
from nfsroot_builder.steps import STEPS

from doctor_scenes import SCENES
from fakes import FakeRunner, fake_suite
from helpers import example_text, write

STEP_NAMES = [s.name for s in STEPS]


class ChattyRunner(FakeRunner):
    """A fake whose commands print lines, handed to on_line as the real Runner's reader does."""

    def _execute(self, argv, input, env, cwd, timeout, *more, **options):
        code, out, err = super()._execute(argv, input, env, cwd, timeout, *more, **options)
        if argv[0] == "dhcpd":
            out = "Internet Systems Consortium DHCP Server\r\x1b[1mchecking\x1b[0m line 7\n"
        for line in out.splitlines(keepends=True):
            if self.on_line:
                self.on_line(line)
        return code, out, err


def _fail_dhcpd(argv):
    if argv[0] == "dhcpd":
        return 1, "", "dhcpd.conf line 12: semicolon expected.\n"
    return None


def test_version_prints_the_version_exit_0(cli):
    res = cli.invoke(app, ["--version"])
    assert res.exit_code == 0, res.output
    assert res.stdout == f"{__version__}\n"


def test_bash_completion_installs_into_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    res = CliRunner().invoke(app, ["--install-completion", "bash"], prog_name="nfsroot-build")
    assert res.exit_code == 0, res.output
    script = tmp_path / ".bash_completions/nfsroot-build.sh"
    assert "_NFSROOT_BUILD_COMPLETE=complete_bash" in script.read_text()
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()


def test_step_completer_returns_the_step_names():
    assert complete_step("") == STEP_NAMES
    assert complete_step("dhcp") == ["dhcp-server"]
    assert complete_step("root-p") == ["root-password", "root-packages"]   # in the pipeline's order
    assert complete_step("zz") == []


def _complete(words: str, monkeypatch) -> tuple[int, list[str]]:
    """What bash gets for <Tab> after `words` (click's completion protocol)."""
    monkeypatch.setenv("_NFSROOT_BUILD_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", words)
    monkeypatch.setenv("COMP_CWORD", str(len(words.split()) - (0 if words.endswith(" ") else 1)))
    res = CliRunner().invoke(app, [], prog_name="nfsroot-build")
    return res.exit_code, res.output.split()


def test_run_completes_step_names(monkeypatch):
    assert _complete("nfsroot-build run dh", monkeypatch) == (0, ["dhcp-server"])
    assert _complete("nfsroot-build all --from boot", monkeypatch) == (0, ["bootstrap", "boot-loader"])


def test_lab_boot_completes_node_names_from_the_config(tmp_path, monkeypatch):
    cfg = write(tmp_path, example_text("lab"))
    names = [n.name for n in config_mod.load(cfg).nodes]
    assert _complete(f"nfsroot-build lab boot -c {cfg} ", monkeypatch) == (0, names)
    assert _complete(f"nfsroot-build lab boot -c {cfg} {names[0]} ", monkeypatch) == (0, names[1:])


@pytest.mark.parametrize("content", [None, "[server\n", "name = 1\n"])
def test_node_completion_never_fails_loudly(tmp_path, monkeypatch, content):
    cfg = tmp_path / "c.toml"
    if content is not None:
        cfg.write_text(content)
    assert _complete(f"nfsroot-build lab boot -c {cfg} ", monkeypatch) == (0, [])
    assert _complete("nfsroot-build lab boot ", monkeypatch) == (0, [])


def test_node_completer_without_config():
    class Ctx:
        params: dict = {}
    assert complete_node(Ctx(), "") == []


def _run_with_progress(tmp_path, console, *, live, hook=None, to="nfs-exports"):
    cfg = config_mod.parse(example_text("seed"))
    runner = ChattyRunner(hook=hook, emit=lambda line: None)
    ctx = session.make_context(cfg, prefix=tmp_path / "stage", runner=runner, emit=lambda line: None)
    progress = ConsoleProgress(console, live=live)
    pipe = session.pipeline(ctx, progress=progress)
    try:
        pipe.run(to_step=to)
    finally:
        progress.summary()
    return ctx, progress


def test_plain_progress_when_not_a_terminal(tmp_path, monkeypatch):
    monkeypatch.setattr(progress_mod, "HEARTBEAT", 0.0)   # every output line gets its plain line
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=100, soft_wrap=True)
    _, progress = _run_with_progress(tmp_path, console, live=None)
    text = out.getvalue()
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text), repr(text)   # no spinner, no escapes, no \r
    assert "server-packages: " in text and "[1/4]" in text and "nfs-exports: " in text and "[4/4]" in text
    # The command's own redraw (\r) and colours are gone; its last state is shown.
    assert "  dhcp-server: 0s: checking line 7\n" in text
    assert [name for name, _, _ in progress.times] == STEP_NAMES[:4]
    assert re.search(r"step times:\n(  \S+ +\d+\.\ds  (changed|unchanged)\n){4}  total +\d+\.\ds\n", text), text


def test_live_status_line_on_a_terminal(tmp_path):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    _run_with_progress(tmp_path, console, live=None, to="dhcp-server")
    text = out.getvalue()
    # The status line: step, N of M, seconds, the command's last line (it is drawn, then cleared).
    assert re.search(r"dhcp-server.* \(3/3\) \d+s.*checking line 7", text), repr(text)
    assert "\x1b[" in text


def test_failed_step_keeps_its_time_in_the_summary(tmp_path):
    out = io.StringIO()
    with pytest.raises(Exception, match="dhcp-server"):
        _run_with_progress(tmp_path, Console(file=out, width=100), live=False, hook=_fail_dhcpd)
    assert re.search(r"  dhcp-server +\d+\.\ds  failed\n", out.getvalue())


def test_run_logs_one_dir_per_run_last_ten_kept(tmp_path):
    made = []
    for _ in range(12):
        path = RunLogs(tmp_path).path("bootstrap")
        path.write_text("x")
        made.append(path.parent)
    runs = RunLogs(tmp_path).runs()
    assert runs == made[2:]
    assert not made[0].exists() and not made[1].exists()
    assert (tmp_path / "logs/last").resolve() == made[-1].resolve()
    assert all(re.fullmatch(r"\d{8}-\d{6}-\d+(\.\d+)?", p.name) for p in made)


def test_run_logs_leave_other_files_alone(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs/bootstrap.log").write_text("0.1's layout")
    (tmp_path / "logs/notes").mkdir()
    for _ in range(12):
        RunLogs(tmp_path, keep=1).path("x")
    assert sorted(p.name for p in (tmp_path / "logs").iterdir() if not RUN_DIR_NAME.match(p.name)) == \
        ["bootstrap.log", "last", "notes"]


RUN_DIR_NAME = re.compile(r"\d{8}-\d{6}-\d+(\.\d+)?$")


def _cli_with(monkeypatch, hook=None):
    monkeypatch.setattr(runner_mod.Runner, "_execute",
                        lambda self, argv, *a: FakeRunner(hook=hook)._execute(argv, *a))
    monkeypatch.setattr("os.geteuid", lambda: 0)
    fake_suite(monkeypatch)
    return CliRunner()


def test_status_names_the_log_of_a_failed_step(tmp_path, monkeypatch):
    cli = _cli_with(monkeypatch, _fail_dhcpd)
    cfg = write(tmp_path, example_text("seed"))
    args = ["-c", str(cfg), "--prefix", str(tmp_path / "stage"), "--state-dir", str(tmp_path / "state")]
    assert cli.invoke(app, ["run", "tftp-server", *args]).exit_code == 0
    res = cli.invoke(app, ["run", "dhcp-server", *args])
    assert res.exit_code == 1 and "step times:" in res.stderr and "failed" in res.stderr
    runs = sorted(p for p in (tmp_path / "state/logs").iterdir() if RUN_DIR_NAME.match(p.name))
    assert len(runs) == 2 and (tmp_path / "state/logs/last").resolve() == runs[-1].resolve()
    assert (runs[0] / "tftp-server.log").exists() and not (runs[0] / "dhcp-server.log").exists()
    log = runs[1] / "dhcp-server.log"
    assert "$ dhcpd -t" in log.read_text() and str(log) in res.stderr

    rows = {r["step"]: r for r in json.loads(cli.invoke(app, ["status", *args, "--json"]).stdout)["steps"]}
    assert rows["dhcp-server"]["status"] == "failed" and rows["dhcp-server"]["log"] == str(log)
    assert rows["tftp-server"]["log"] is None   # done: nothing to look at
    res = cli.invoke(app, ["status", *args])
    assert res.exit_code == 0 and f"dhcp-server failed; its log: {log}\n" in res.stdout   # status is a table: stdout (issue 14)


def test_dry_run_writes_no_logs(tmp_path, monkeypatch):
    cli = _cli_with(monkeypatch)
    cfg = write(tmp_path, example_text("seed"))
    res = cli.invoke(app, ["all", "-c", str(cfg), "--prefix", str(tmp_path / "stage"),
                           "--state-dir", str(tmp_path / "state"), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "state").exists() and not (tmp_path / "stage").exists()


def _built_with_few_nfs_threads(tmp_path):
    """The server steps done, then the nfs-threads scene: its fix writes a drop-in and restarts nfsd."""
    scene = next(s for s in SCENES if s.check == "nfs-threads")
    cfg = config_mod.parse(scene.config_edit(example_text("seed")))
    ctx = session.make_context(cfg, prefix=tmp_path / "stage", runner=FakeRunner(emit=lambda m: None),
                               emit=lambda m: None)
    session.pipeline(ctx).run(to_step="nfs-exports")
    pending = list(ctx.state.pending_restarts)
    scene.build(ctx.prefix, cfg.root.path)
    return ctx, pending


def test_doctor_fix_and_restart_run_as_pipeline_steps(tmp_path, monkeypatch):
    ctx, pending = _built_with_few_nfs_threads(tmp_path)
    restarted = []
    monkeypatch.setattr("nfsroot_builder.services.restart", lambda c, s: restarted.append(s))
    out = io.StringIO()
    pipe = session.pipeline(ctx, progress=ConsoleProgress(Console(file=out, width=200), live=False))
    outcome = apply_fixes(ctx, run_checks(ctx), pipe)
    assert outcome == {"nfs-threads": "fixed"} and restarted == ["nfs-kernel-server"]
    for name in ("doctor-fix-nfs-threads", "doctor-restart-nfs-kernel-server"):
        rec = ctx.state.step(name)
        assert rec["status"] == "done" and rec["log"].endswith(f"/{name}.log"), rec
        assert name + ": " in out.getvalue()
    # Its file is in the undo record, as a step's are; the build's own restarts stay pending.
    assert str(ctx.prefix / "etc/nfs.conf.d/nfsroot-build.conf") in ctx.state.files
    assert ctx.state.pending_restarts == pending


def test_doctor_restart_failure_is_reported(tmp_path, monkeypatch):
    from nfsroot_builder.errors import NfsrootError
    ctx, _ = _built_with_few_nfs_threads(tmp_path)

    def refuse(c, s):
        raise NfsrootError(f"{s}: no such service\nmore")
    monkeypatch.setattr("nfsroot_builder.services.restart", refuse)
    outcome = apply_fixes(ctx, run_checks(ctx))
    assert outcome == {"nfs-threads": "fixed",
                       "restart nfs-kernel-server": "fix failed: nfs-kernel-server: no such service"}
    assert ctx.state.step("doctor-restart-nfs-kernel-server")["status"] == "failed"


def test_doctor_fix_dry_run_is_a_step_in_the_transcript(tmp_path):
    cfg = config_mod.parse(example_text("seed"))
    ctx = session.make_context(cfg, prefix=tmp_path / "stage", runner=FakeRunner(emit=lambda m: None),
                               emit=lambda m: None)
    session.pipeline(ctx).run(to_step="nfs-exports")
    next(s for s in SCENES if s.check == "nfs-state-files").build(ctx.prefix, cfg.root.path)
    lines: list[str] = []
    dctx = session.make_context(cfg, prefix=tmp_path / "stage", dry_run=True,
                                runner=FakeRunner(emit=lines.append), emit=lines.append)
    assert apply_fixes(dctx, run_checks(dctx)) == {"nfs-state-files": "fixed"}
    text = "\n".join(lines)
    assert "### step doctor-fix-nfs-state-files: stop nfs-kernel-server, recreate" in text
    # The state directory is replaced by an empty file: planned, not done.
    assert f"# rm {ctx.prefix}/var/lib/nfs/state" in text
    assert (ctx.prefix / "var/lib/nfs/state").is_dir()
