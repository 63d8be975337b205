"""doctor checks and fixes the current root version (issue 10): with v2
current, a bad /etc/hostname in v2 fails root-hostname naming v2's tree;
--fix removes it there only, keeping a copy under backup/root.v2/ (v1's
same file, fixed before, keeps its own copy under backup/root/)."""
from __future__ import annotations

from test_versions_rules import ready

from nfsroot_builder import config as config_mod
from nfsroot_builder import session, versions
from nfsroot_builder.doctor import apply_fixes, run_checks
from nfsroot_builder.state import State

from fakes import FakeRunner


def two_versions(tmp_path, seed_text, current: int):
    cfg = config_mod.parse(seed_text)
    prefix = tmp_path / "stage"
    state = State(prefix / "var/lib/nfsroot-build" / cfg.name / "state.json")
    for vid in (1, 2):
        ready(state, vid, cfg, current=vid == current)
        etc = prefix / versions.path_of(cfg.root.path, vid).lstrip("/") / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hostname").write_text(f"bad{vid}\n")
    state.save()
    return session.make_context(cfg, prefix=prefix, runner=FakeRunner(), emit=lambda s: None, version="current")


def hostname_finding(ctx):
    return next(f for f in run_checks(ctx, only=["root-hostname"]))


def test_doctor_fix_acts_on_the_current_version_and_keeps_a_copy_per_version(tmp_path, seed_text):
    ctx = two_versions(tmp_path, seed_text, current=1)
    v1, v2 = (ctx.prefix / versions.path_of(ctx.config.root.path, vid).lstrip("/") for vid in (1, 2))
    assert apply_fixes(ctx, [hostname_finding(ctx)]) == {"root-hostname": "fixed"}
    assert not (v1 / "etc/hostname").exists() and (v2 / "etc/hostname").exists()
    # v2 becomes current: doctor now looks at v2's tree.
    ctx.state.set_current(2)
    ctx.state.save()
    ctx = session.make_context(ctx.base_config, prefix=ctx.prefix, runner=FakeRunner(), emit=lambda s: None,
                               version="current")
    found = hostname_finding(ctx)
    assert found.status == "fail" and str(v2 / "etc/hostname") in found.reason, found.reason
    assert apply_fixes(ctx, [found]) == {"root-hostname": "fixed"}
    assert not (v2 / "etc/hostname").exists()
    backup = ctx.state_dir / "backup"
    assert (backup / "root/etc/hostname").read_text() == "bad1\n"
    assert (backup / "root.v2/etc/hostname").read_text() == "bad2\n"
    assert hostname_finding(ctx).status == "ok"
