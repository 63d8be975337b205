"""The state: one owner (state.py) for what is saved, the undo record
written through State.undo, and an undo record that does not grow with the
node count."""
from __future__ import annotations

import json
import re
from pathlib import Path

from nfsroot_builder.files import FileOps
from nfsroot_builder.state import State

REPO = Path(__file__).resolve().parents[2]


def test_nothing_outside_state_py_touches_the_state_data():
    offenders = []
    for tree in ("nfsroot_builder", "tests", "bench"):
        for py in sorted((REPO / tree).rglob("*.py")):
            if py.name == "state.py" or py == Path(__file__).resolve():
                continue
            for n, line in enumerate(py.read_text().splitlines(), 1):
                if re.search(r"state\.(_?data)\b", line):
                    offenders.append(f"{py.relative_to(REPO)}:{n}: {line.strip()}")
    assert offenders == []


def test_fileops_notes_into_the_state_and_save_writes_it(tmp_path):
    state = State(tmp_path / "state.json")
    files = FileOps(backup_dir=tmp_path / "backup", undo=state.undo)
    files.ensure_file(tmp_path / "srv" / "a", "a\n")
    state.save()
    saved = json.loads((tmp_path / "state.json").read_text())["files"]
    assert saved == {str(tmp_path / "srv"): {"kind": "dir", "backup": None},
                     str(tmp_path / "srv" / "a"): {"kind": "owned", "backup": None}}


def test_reload_keeps_the_fileops_binding(tmp_path):
    path = tmp_path / "state.json"
    state = State(path)
    files = FileOps(undo=state.undo)
    other = State(path)
    other.undo.note("/etc/x", "owned")
    other.set_step("a", status="done")
    other.save()
    state.reload()
    assert "/etc/x" in files.record and state.step("a")["status"] == "done"


def test_start_step_clears_the_last_error_and_restarts_are_a_set(tmp_path):
    state = State(tmp_path / "state.json")
    state.set_step("a", status="failed", error="boom")
    state.start_step("a", started="t")
    assert state.step("a") == {"status": "running", "started": "t"}
    state.add_restarts({"b", "a"})
    state.add_restarts({"a"})
    state.restarted("a")
    assert state.pending_restarts == ["b"]


def test_forget_undone_keeps_only_the_kept_steps(tmp_path):
    state = State(tmp_path / "state.json")
    state.undo.note("/etc/x", "owned")
    state.set_step("bootstrap", status="done")
    state.set_step("dhcp-server", status="done")
    state.add_restarts({"x"})
    state.forget_undone({"bootstrap"})
    assert dict(state.files) == {} and state.pending_restarts == []
    assert state.step("bootstrap") and not state.step("dhcp-server")


def menus(n: int) -> dict[str, str]:
    return {f"grub.cfg-01-{i:06d}": "# Written by nfsroot-build for cluster 'c'.\nboot\n" for i in range(n)}


def test_the_undo_record_does_not_grow_with_the_node_count(tmp_path):
    sizes = []
    for n, where in ((10, "a"), (1000, "b")):
        state = State(tmp_path / f"state-{where}.json")
        files = FileOps(backup_dir=tmp_path / "backup", undo=state.undo)
        files.ensure_files(tmp_path / where, menus(n), pattern="grub.cfg-01-*",
                           marker="# Written by nfsroot-build")
        state.save()
        assert len(list((tmp_path / where).iterdir())) == n
        sizes.append(state.path.stat().st_size)
    assert sizes[0] == sizes[1]
    assert len(state.files) == 2   # the directory and the glob


def test_a_state_from_before_globs_sheds_its_per_menu_records(tmp_path):
    d = tmp_path / "menus"
    state = State(tmp_path / "state.json")
    for name in menus(3):
        state.undo.note(str(d / name), "owned")
    state.undo.note(str(d / "grub.cfg-01-admin"), "replaced", "/backup/x")
    files = FileOps(undo=state.undo)
    files.ensure_files(d, menus(3), pattern="grub.cfg-01-*", marker="# Written by nfsroot-build")
    assert set(state.files) == {str(d), str(d / "grub.cfg-01-*"), str(d / "grub.cfg-01-admin")}
