"""update's core on plain root trees: a copy of a built root is upgraded from
its own sources (a local file: repository that had nrb-probe 1.0 at build
time and 1.1 afterwards); rootdiff names the upgrade; a second upgrade of
the result changes no package."""
from __future__ import annotations

import subprocess

from local_repo import use_repo

from nfsroot_builder import config as config_mod
from nfsroot_builder import session, update
from nfsroot_builder.rootdiff import diff

from helpers import nfsroot_build
from root_builds import installed, new_build, remove_stage


def copy_tree(src, dst) -> None:
    subprocess.run(["cp", "-a", "--reflink=auto", str(src), str(dst)], check=True)


def upgrade_copy(b, src, dst):
    copy_tree(src, dst)
    cfg = config_mod.load(b.cfg)
    cfg = cfg.model_copy(update={"root": cfg.root.model_copy(update={"path": "/" + str(dst.relative_to(b.stage))})})
    ctx = session.make_context(cfg, prefix=b.stage, state_dir=b.stage / "update-state")
    return update.upgrade(ctx, src)


def test_upgrade_a_copy_then_nothing_more(tmp_path_factory, probe_repo):
    repo = probe_repo
    b = new_build(tmp_path_factory, "upd", bootstrapper="mmdebstrap", layout="tmpfs", loader="grub")
    use_repo(b, repo)
    try:
        nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, check=True)
        assert "nrb-probe\t1.0" in installed(b.root)
        repo.add("nrb-probe", "1.1")
        v2 = b.root.with_name(b.root.name + ".up2")
        changes, security = upgrade_copy(b, b.root, v2)
        print(security.note, *changes.lines(), sep="\n")
        assert ("nrb-probe", "1.0", "1.1") in changes.upgraded
        assert "  nrb-probe 1.0 -> 1.1" in changes.lines()
        assert "nrb-probe\t1.0" in installed(b.root)          # the tree it was copied from is untouched
        assert "nrb-probe\t1.1" in installed(v2)
        assert diff(b.root, v2).upgraded == changes.upgraded  # the same answer `root diff` gives
        v3 = b.root.with_name(b.root.name + ".up3")
        again, _ = upgrade_copy(b, v2, v3)
        assert not again.packages_changed, again.lines()
    finally:
        remove_stage(b.stage)
