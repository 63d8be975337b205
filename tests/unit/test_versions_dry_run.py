"""The dry-run of a cloned version (issue 10): after FileOps.expect_copy, a
dry-run reads a path under the new version's tree as the same path in the
tree it is cloned from, so the later steps plan what the real run will do;
a real run's FileOps ignores it. The update's dry-run context shares the
in-memory state (nothing saved)."""
from __future__ import annotations

import os

from test_versions_rules import lab_config, ready  # noqa: F401 (lab_config: a fixture)

from nfsroot_builder import session, versions
from nfsroot_builder.files import FileOps
from nfsroot_builder.state import State

from fakes import FakeRunner


def tree(tmp_path):
    src = tmp_path / "v1"
    (src / "etc").mkdir(parents=True)
    (src / "etc/hosts").write_text("127.0.0.1 localhost\n")
    os.chmod(src / "etc/hosts", 0o644)
    (src / "etc/resolv.conf").symlink_to("../run/resolv.conf")
    return src, tmp_path / "v2"


def test_a_dry_run_reads_the_copy_as_the_original(tmp_path):
    src, dst = tree(tmp_path)
    said: list[str] = []
    ops = FileOps(dry_run=True, emit=said.append)
    assert ops.ensure_file(dst / "etc/hosts", "127.0.0.1 localhost\n")   # before: nothing there
    ops = FileOps(dry_run=True, emit=said.append)
    ops.expect_copy(src, dst)
    assert ops.ensure_file(dst / "etc/hosts", "127.0.0.1 localhost\n") is False
    assert ops.ensure_symlink(dst / "etc/resolv.conf", "../run/resolv.conf") is False
    assert ops.is_dir(dst / "etc") and not ops.exists(dst / "etc/fstab") and ops.mode(dst / "etc/hosts") == 0o644
    said.clear()
    assert ops.ensure_file(dst / "etc/hosts", "changed\n")
    assert said[0] == f"# write {dst}/etc/hosts (8 bytes, mode 644)"
    assert ops.read(dst / "etc/hosts") == b"changed\n"   # what the plan wrote wins over the original
    assert ops.ensure_absent(dst / "etc/resolv.conf") and not ops.exists(dst / "etc/resolv.conf")
    assert ops.on_disk(dst / "etc/hosts") == src / "etc/hosts" and ops.on_disk(tmp_path / "x") == tmp_path / "x"
    assert not dst.exists()   # a dry-run made nothing


def test_a_real_run_ignores_expect_copy(tmp_path):
    src, dst = tree(tmp_path)
    ops = FileOps(dry_run=False, emit=lambda s: None)
    ops.expect_copy(src, dst)
    assert ops.on_disk(dst / "etc/hosts") == dst / "etc/hosts"
    assert not ops.exists(dst / "etc/hosts")


def test_the_update_dry_run_context_is_the_new_version_in_memory_only(tmp_path, lab_config):  # noqa: F811
    prefix = tmp_path / "p"
    state_file = prefix / "var/lib/nfsroot-build" / lab_config.name / "state.json"
    st = State(state_file)
    ready(st, 1, lab_config)
    st.save()
    saved = state_file.read_bytes()
    ctx = session.make_context(lab_config, prefix=prefix, runner=FakeRunner(), emit=lambda s: None,
                               dry_run=True, version="current")
    vid = versions.start_clone(ctx, "now")
    new = versions.context_for(ctx, vid)
    assert (vid, new.version_id) == (2, 2) and new.root == prefix / f"{lab_config.root.path.lstrip('/')}.v2"
    assert new.state is ctx.state and versions.clone_source(new) == prefix / lab_config.root.path.lstrip("/")
    assert new.root in new.files.untracked
    assert state_file.read_bytes() == saved   # start_clone's save is a dry-run's no-op


def test_a_dry_run_mkdir_p_plans_the_parents_it_makes(tmp_path):
    """file_repositories' mount point under a copied tree: the highest
    directory it made is removed again, in the plan as in the real run."""
    src, dst = tree(tmp_path)
    said: list[str] = []
    ops = FileOps(dry_run=True, emit=said.append)
    ops.expect_copy(src, dst)
    assert ops.ensure_dir(dst / "srv/repo/debian", 0o755)
    assert ops.is_dir(dst / "srv") and ops.is_dir(dst / "srv/repo")
    said.clear()
    assert ops.ensure_absent(dst / "srv") and said == [f"# rm {dst}/srv"]
