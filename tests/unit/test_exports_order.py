"""Issue 14 point 1: kernel exports are applied by the services step, after
the root exists, never by nfs-exports (exportfs refused the not-yet-built root)."""
from __future__ import annotations

import pytest

from nfsroot_builder import session
from nfsroot_builder.context import Context
from nfsroot_builder.errors import StepFailed
from nfsroot_builder.pipeline import Pipeline
from nfsroot_builder.steps.nfs import EXPORTS_RELOAD, NfsExports
from nfsroot_builder.steps.services import Services

from fakes import FakeRunner


@pytest.fixture
def host_run(monkeypatch):
    """A run that behaves as on the host (no staging notes), its files still in tmp_path."""
    monkeypatch.setattr(Context, "staging", property(lambda self: False))


def make(tmp_path, cfg, dry_run=False):
    out: list[str] = []
    runner = FakeRunner(emit=out.append)
    ctx = session.make_context(cfg, prefix=tmp_path / "host", dry_run=dry_run, runner=runner, emit=out.append)
    return ctx, Pipeline(ctx, (NfsExports, Services)), runner, out


def test_nfs_exports_step_does_not_run_exportfs(tmp_path, seed_config, host_run):
    ctx, pipe, runner, _ = make(tmp_path, seed_config)
    pipe.run(only="nfs-exports")
    assert runner.executed == []
    assert EXPORTS_RELOAD in ctx.state.pending_restarts


def test_services_refuses_exportfs_while_the_root_is_missing(tmp_path, seed_config, host_run):
    ctx, pipe, runner, _ = make(tmp_path, seed_config)
    with pytest.raises(StepFailed, match="/NFSROOT/kerrighed"):
        pipe.run()
    assert ["exportfs", "-ra"] not in runner.executed
    assert EXPORTS_RELOAD in ctx.state.pending_restarts   # --resume will apply them


def test_services_applies_exports_once_the_root_exists(tmp_path, seed_config, host_run):
    ctx, pipe, runner, _ = make(tmp_path, seed_config)
    ctx.root.mkdir(parents=True)
    pipe.run()
    assert runner.executed == [["exportfs", "-ra"]]
    assert ctx.state.pending_restarts == []


def test_dry_run_shows_exportfs_in_the_services_step(tmp_path, seed_config, host_run):
    _, pipe, _, out = make(tmp_path, seed_config, dry_run=True)
    pipe.run()
    services_at = out.index(next(line for line in out if line.startswith("### step services")))
    assert out.index("$ exportfs -ra") > services_at
