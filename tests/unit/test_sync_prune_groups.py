"""`sync` and what `root prune` removed, and group roots' versions (issue 13
point 2; docs/replicas.md), with a fake runner: the removal comes after the
replica's own files are rewritten, the removed versions' kernel directories
are protected from the TFTP copy's --delete until then, and a group root's
ready versions are copied (their own --link-dest series) and exported."""
from __future__ import annotations

from test_replicas_rules import synced, with_servers  # noqa: F401 (fixture)

from nfsroot_builder import config as config_mod
from nfsroot_builder import replicas
from nfsroot_builder.state import State


def rsyncs(runner) -> list[list[str]]:
    return [argv for argv in runner.executed if argv[0] == "rsync"]


def test_a_pruned_version_leaves_the_replica_after_its_menus_are_rewritten(synced):  # noqa: F811
    ctx, runner, row, tmp = synced
    b = tmp / "b"
    assert ctx.state.replicas()["b"]["trees"] == {"v1": {"path": "/srv/nfsroot/lab", "tftp": "lab"},
                                                  "v2": {"path": "/srv/nfsroot/lab.v2", "tftp": "lab.v2"}}
    ctx.state.drop_version(1)   # what `root prune` did on the primary
    runner.executed.clear()
    [again] = replicas.sync(ctx)
    calls = rsyncs(runner)
    assert again["removed"] == ["v1"] and again["versions"] == ["v2"]
    # The v2 tree, the TFTP root (v1's kernel directory protected), the
    # replica's own files, then the removal of v1's tree and kernel directory.
    assert [a[-1] for a in calls] == [f"{b}/srv/nfsroot/lab.v2/", f"{b}/srv/tftp/lab/", f"{b}",
                                      f"{b}/srv/nfsroot/", f"{b}/srv/tftp/lab/"]
    assert "--filter=P /lab/" in calls[1] and "--delete" in calls[1]
    assert calls[3][:3] == ["rsync", "-r", "--delete"] and calls[3][3:5] == ["--filter=+ /lab/***", "--filter=- *"]
    assert calls[4][3:5] == ["--filter=+ /lab/***", "--filter=- *"]
    staged = ctx.state_dir / "replicas/b"
    exports = next(p for p in (staged / "etc").rglob("*nfsroot-build-lab*") if p.is_file())
    assert "/srv/nfsroot/lab.v2" in exports.read_text() and '/srv/nfsroot/lab";' not in exports.read_text()
    assert set(ctx.state.replicas()["b"]["trees"]) == {"v2"}
    # Once removed, a further sync removes nothing.
    runner.executed.clear()
    assert replicas.sync(ctx)[0]["removed"] == []
    assert len(rsyncs(runner)) == 3


def with_group_root(ctx, tmp) -> str:
    """ctx (the `synced` fixture's) with a group root "login" whose own
    state has v1 and v2 ready and v3 building; its state key."""
    cfg = config_mod.parse(with_servers(tree=str(tmp / "b")).replace(
        '[[node]]\nname = "lab1"\n', '[[group]]\nname = "login"\nroot.path = "/srv/nfsroot/login"\n\n'
                                    '[[node]]\nname = "lab1"\ngroup = "login"\n', 1))
    ctx.base_config = cfg
    ctx.config = cfg.model_copy(update={"root": cfg.root.model_copy(update={"path": "/srv/nfsroot/lab.v2"})})
    key = "srv-nfsroot-login"
    gstate = State.load(ctx.state_dir / "roots" / key / "state.json")
    for vid, status in ((1, "ready"), (2, "ready"), (3, "building")):
        path = "/srv/nfsroot/login" + ("" if vid == 1 else f".v{vid}")
        d = "lab-srv-nfsroot-login" + ("" if vid == 1 else f".v{vid}")
        gstate.set_version(vid, path=path, status=status, kernel="6.12", kernel_path=f"/{d}/vmlinuz-6.12",
                           initrd_path=f"/{d}/initrd.img-6.12")
    gstate.set_current(2)
    gstate.save()
    return key


def test_a_group_roots_ready_versions_are_copied_and_exported(synced):  # noqa: F811
    ctx, runner, _row, tmp = synced
    key = with_group_root(ctx, tmp)
    runner.executed.clear()
    [row] = replicas.sync(ctx)
    calls = rsyncs(runner)
    b = tmp / "b"
    assert [a[-1] for a in calls[:4]] == [f"{b}/srv/nfsroot/lab/", f"{b}/srv/nfsroot/lab.v2/",
                                          f"{b}/srv/nfsroot/login/", f"{b}/srv/nfsroot/login.v2/"]
    # Each series links against its own previous version.
    assert f"--link-dest={b}/srv/nfsroot/login" in calls[3] and not any("--link-dest" in a for a in calls[2])
    # The building group version's kernel directory stays off the replica.
    assert "--filter=- /lab-srv-nfsroot-login.v3/" in calls[4]
    assert row["versions"] == ["v1", "v2", f"{key}:v1", f"{key}:v2"]
    assert ctx.state.replicas()["b"]["versions"] == ["v1", "v2"]   # status' list: the default root's
    staged = ctx.state_dir / "replicas/b"
    exports = next(p for p in (staged / "etc").rglob("*nfsroot-build-lab*") if p.is_file())
    assert "/srv/nfsroot/login.v2" in exports.read_text()
