"""The runner's dry-run face: shell-quoted commands, secrets redacted, probes still run."""
from __future__ import annotations

import io

from fakes import FakeRunner


def test_dry_run_prints_quoted_and_runs_nothing():
    out: list[str] = []
    r = FakeRunner(dry_run=True, emit=out.append)
    res = r.run(["chroot", "/srv/nfs root", "sh", "-c", "echo $HOME; rm -rf /"])
    assert res.dry and res.ok
    assert out == ["$ chroot '/srv/nfs root' sh -c 'echo $HOME; rm -rf /'"]
    assert r.executed == []


def test_secret_stdin_redacted_everywhere():
    out: list[str] = []
    log = io.StringIO()
    r = FakeRunner(dry_run=True, emit=out.append, log=log)
    r.run(["chpasswd", "-e"], input="root:$6$salt$hash\n", secret=True)
    assert out == ["$ chpasswd -e <<< <redacted>"]
    assert "$6$" not in log.getvalue()
    r2 = FakeRunner(log=log)
    r2.run(["chpasswd", "-e"], input="root:$6$salt$hash\n", secret=True)
    assert "$6$" not in log.getvalue() and "<redacted>" in log.getvalue()


def test_probe_runs_in_dry_run():
    r = FakeRunner(dry_run=True, emit=lambda s: None)
    r.run(["dpkg-query", "-W", "-f", "x", "bash"], probe=True)
    assert r.executed == [["dpkg-query", "-W", "-f", "x", "bash"]]


def test_dry_run_says_which_processes_it_would_stop_and_signals_none(monkeypatch):
    from nfsroot_builder import procs
    signalled = []
    monkeypatch.setattr(procs, "stop", lambda pids, **kw: signalled.extend(pids))
    out: list[str] = []
    FakeRunner(dry_run=True, emit=out.append).stop([4242, 4243], why="processes left in /srv/nfsroot/x")
    assert out == ["# stop processes left in /srv/nfsroot/x: kill -TERM, then -KILL, 4242 4243"]
    assert signalled == []
    FakeRunner().stop([4242], why="x")
    assert signalled == [4242]
