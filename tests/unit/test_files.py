"""File operations: managed blocks keep the admin's bytes, writes are atomic,
dry-run prints diffs and writes nothing, validators can veto."""
from __future__ import annotations

import os

import pytest

from nfsroot_builder.errors import ValidationFailed
from nfsroot_builder.files import FileOps, split_block, with_block

ADMIN = "# my own exports\n/home 10.0.0.0/8(rw,sync)\n\n/srv/data  host1(ro)   # keep spacing\n"


def ops(tmp_path, **kw):
    lines: list[str] = []
    return FileOps(emit=lines.append, backup_dir=tmp_path / "backup", **kw), lines


def test_managed_block_keeps_admin_lines_byte_for_byte(tmp_path):
    f = tmp_path / "exports"
    f.write_text(ADMIN)
    files, _ = ops(tmp_path)
    assert files.managed_block(f, "/NFSROOT 192.168.0.0/24(ro)\n")
    text = f.read_text()
    assert text.startswith(ADMIN)
    assert "/NFSROOT 192.168.0.0/24(ro)" in text
    # Second time: nothing to do.
    assert not files.managed_block(f, "/NFSROOT 192.168.0.0/24(ro)\n")
    # Changing the block keeps the admin lines, removing it restores the file exactly.
    assert files.managed_block(f, "/other 10.1.0.0/16(ro)\n")
    assert f.read_text().startswith(ADMIN)
    assert files.managed_block(f, None)
    assert f.read_bytes() == ADMIN.encode()


def test_managed_block_admin_lines_after_block_stay(tmp_path):
    f = tmp_path / "conf"
    f.write_text(with_block("before\n", "ours\n", "#") + "after\n")
    files, _ = ops(tmp_path)
    files.managed_block(f, "new\n")
    before, body, after = split_block(f.read_text(), "#")
    assert (before, body, after) == ("before\n", "new\n", "after\n")


def test_block_without_end_marker_is_an_error(tmp_path):
    f = tmp_path / "conf"
    f.write_text("x\n# BEGIN nfsroot-build managed block\nours\n")
    files, _ = ops(tmp_path)
    with pytest.raises(ValueError, match="never ends"):
        files.managed_block(f, "new\n")


def test_backup_of_preexisting_file_once(tmp_path):
    f = tmp_path / "etc" / "dhcpd.conf"
    f.parent.mkdir()
    f.write_text("admin\n")
    files, _ = ops(tmp_path)
    files.managed_block(f, "a\n")
    files.managed_block(f, "b\n")
    rec = files.record[str(f)]
    assert rec["kind"] == "block"
    assert open(rec["backup"]).read() == "admin\n"   # pristine, not the first edit


def test_ensure_file_mode_and_idempotence(tmp_path):
    f = tmp_path / "a" / "b.txt"
    files, _ = ops(tmp_path)
    assert files.ensure_file(f, "hello\n", mode=0o640)
    assert f.read_text() == "hello\n" and (f.stat().st_mode & 0o777) == 0o640
    assert not files.ensure_file(f, "hello\n", mode=0o640)
    assert files.ensure_file(f, "hello\n", mode=0o644)   # mode alone is a change
    assert files.record[str(f)] == {"kind": "owned", "backup": None}
    assert not [p for p in f.parent.iterdir() if p.name.startswith(".")]   # no temp files left


def test_dry_run_prints_diff_and_writes_nothing(tmp_path):
    f = tmp_path / "x.conf"
    f.write_text("one\ntwo\n")
    files, lines = ops(tmp_path, dry_run=True)
    assert files.ensure_file(f, "one\nthree\n")
    assert f.read_text() == "one\ntwo\n"
    assert "-two" in lines and "+three" in lines
    new = tmp_path / "new.conf"
    files.ensure_file(new, "x\n")
    assert not new.exists() and "--- /dev/null" in lines
    files.ensure_dir(tmp_path / "d")
    files.ensure_symlink(tmp_path / "l", "target")
    assert not (tmp_path / "d").exists() and not (tmp_path / "l").is_symlink()
    assert files.record == {}


def test_validator_vetoes_and_leaves_file_alone(tmp_path):
    f = tmp_path / "dhcpd.conf"
    f.write_text("good\n")
    files, _ = ops(tmp_path)

    def reject(candidate):
        assert candidate.read_text().endswith("# END nfsroot-build managed block\n")
        raise ValidationFailed("dhcpd -t: line 3: syntax error")
    with pytest.raises(ValidationFailed):
        files.managed_block(f, "bad {\n", validate=reject)
    assert f.read_text() == "good\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dhcpd.conf"]


def test_symlink_and_absent(tmp_path):
    files, _ = ops(tmp_path)
    link = tmp_path / "etc" / "rcS.d" / "S35mountnfs"
    assert files.ensure_symlink(link, "../network/if-up.d/mountnfs")
    assert os.readlink(link) == "../network/if-up.d/mountnfs"
    assert not files.ensure_symlink(link, "../network/if-up.d/mountnfs")
    assert files.ensure_absent(link) and not link.is_symlink()
    assert not files.ensure_absent(link)


def test_copy_file_compares_content(tmp_path):
    src = tmp_path / "initrd.img"
    src.write_bytes(b"\x00" * 1000)
    os.chmod(src, 0o600)
    dst = tmp_path / "tftp" / "initrd.img"
    files, _ = ops(tmp_path)
    assert files.copy_file(src, dst, 0o644)
    assert (dst.stat().st_mode & 0o777) == 0o644
    assert not files.copy_file(src, dst, 0o644)
    src.write_bytes(b"\x01" * 1000)
    assert files.copy_file(src, dst, 0o644)


def test_untracked_tree_not_recorded(tmp_path):
    root = tmp_path / "root"
    files, _ = ops(tmp_path, untracked=[root])
    files.ensure_file(root / "etc" / "fstab", "x\n")
    files.ensure_file(tmp_path / "etc" / "exports.d" / "a.exports", "y\n")
    # The file, and the directories it made (undo removes them when empty).
    assert {p: r["kind"] for p, r in files.record.items()} == {
        str(tmp_path / "etc"): "dir", str(tmp_path / "etc" / "exports.d"): "dir",
        str(tmp_path / "etc" / "exports.d" / "a.exports"): "owned"}


MARK = "# Written by nfsroot-build for cluster 'c'."


def test_ensure_files_links_equal_content_and_records_one_glob(tmp_path):
    d = tmp_path / "tftp" / "boot" / "grub"
    files, _ = ops(tmp_path)
    menus = {f"grub.cfg-01-{i}": f"{MARK}\nsame\n" for i in range(5)}
    menus["grub.cfg-01-9"] = f"{MARK}\nother\n"
    assert files.ensure_files(d, menus, 0o644, pattern="grub.cfg-01-*", marker=MARK)
    inodes = {p.name: p.stat().st_ino for p in d.iterdir()}
    assert len({inodes[f"grub.cfg-01-{i}"] for i in range(5)}) == 1 and inodes["grub.cfg-01-9"] != inodes["grub.cfg-01-0"]
    assert (d / "grub.cfg-01-0").stat().st_nlink == 5 and (d / "grub.cfg-01-0").stat().st_mode & 0o777 == 0o644
    assert all((d / n).read_text() == t for n, t in menus.items())
    assert {k: r["kind"] for k, r in files.record.items()} == {
        str(tmp_path / "tftp"): "dir", str(tmp_path / "tftp" / "boot"): "dir", str(d): "dir",
        str(d / "grub.cfg-01-*"): "glob"}
    assert not files.ensure_files(d, menus, 0o644, pattern="grub.cfg-01-*", marker=MARK)
    # One menu changes (a kernel update for all would be one new file and relinks).
    menus["grub.cfg-01-2"] = f"{MARK}\nother\n"
    assert files.ensure_files(d, menus, 0o644, pattern="grub.cfg-01-*", marker=MARK)
    assert (d / "grub.cfg-01-2").stat().st_ino == (d / "grub.cfg-01-9").stat().st_ino
    assert (d / "grub.cfg-01-0").stat().st_nlink == 4
    assert not [p for p in d.iterdir() if p.name.startswith(".")], "no temp names left"


def test_ensure_files_backs_up_an_admins_file_it_replaces(tmp_path):
    d = tmp_path / "grub"
    d.mkdir()
    (d / "grub.cfg-01-1").write_text("the admin's own menu\n")
    files, _ = ops(tmp_path)
    menus = {"grub.cfg-01-0": f"{MARK}\nx\n", "grub.cfg-01-1": f"{MARK}\nx\n"}
    files.ensure_files(d, menus, pattern="grub.cfg-01-*", marker=MARK)
    rec = files.record[str(d / "grub.cfg-01-1")]
    assert rec["kind"] == "replaced" and open(rec["backup"]).read() == "the admin's own menu\n"
    assert str(d / "grub.cfg-01-0") not in files.record


def test_prune_removes_only_marked_files_not_kept(tmp_path):
    d = tmp_path / "grub"
    files, _ = ops(tmp_path)
    files.ensure_files(d, {f"m{i}": f"{MARK}\n" for i in range(3)}, pattern="m*", marker=MARK)
    (d / "m-admin").write_text("mine\n")
    (d / "other").write_text(f"{MARK}\n")
    assert files.prune(d, "m*", keep={"m0"}, marker=MARK)
    assert sorted(p.name for p in d.iterdir()) == ["m-admin", "m0", "other"]
    assert not files.prune(d, "m*", keep={"m0"}, marker=MARK)


def test_differing_reads_content_not_names(tmp_path):
    from nfsroot_builder.files import differing
    d = tmp_path / "d"
    files, _ = ops(tmp_path)
    files.ensure_files(d, {"a": "x\n", "b": "x\n", "c": "y\n"})
    assert differing(d, {"a": b"x\n", "b": b"x\n", "c": b"y\n"}) == []
    (d / "c").write_text("edited\n")
    assert differing(d, {"a": b"x\n", "b": b"x\n", "c": b"y\n", "gone": b"z"}) == ["c", "gone"]
    assert differing(tmp_path / "missing", {"a": b""}) == ["a"]


def test_managed_block_keeps_crlf_and_bytes_that_are_not_utf8(tmp_path):
    f = tmp_path / "conf"
    admin = b"line one\r\nlatin-1 \xe9\r\n"
    f.write_bytes(admin)
    files, _ = ops(tmp_path)
    files.managed_block(f, "ours\n")
    assert f.read_bytes().startswith(admin)
    files.managed_block(f, None)
    assert f.read_bytes() == admin


def test_ensure_files_starts_another_file_at_the_link_limit(tmp_path, monkeypatch):
    import errno

    from nfsroot_builder import files as files_mod
    real_link = os.link

    def link(src, dst):
        if os.stat(src).st_nlink >= 3:   # ext4: 65,000
            raise OSError(errno.EMLINK, "Too many links")
        real_link(src, dst)
    monkeypatch.setattr(files_mod.os, "link", link)
    d = tmp_path / "m"
    files, _ = ops(tmp_path)
    menus = {f"m{i}": "same\n" for i in range(7)}
    assert files.ensure_files(d, menus)
    assert sorted(p.stat().st_nlink for p in d.iterdir()) == [1, 3, 3, 3, 3, 3, 3]
    assert all(p.read_text() == "same\n" for p in d.iterdir())
    assert not files.ensure_files(d, menus)   # every name holds the bytes: nothing to do


def test_removing_the_block_of_a_file_the_tool_made_removes_the_file(tmp_path):
    ops = FileOps(emit=lambda line: None)
    made, admins = tmp_path / "made", tmp_path / "admins"
    admins.write_text("admin line\n")
    ops.managed_block(made, "ours\n")
    ops.managed_block(admins, "ours\n")
    assert ops.managed_block(made, None) and not made.exists()
    assert ops.managed_block(admins, None) and admins.read_text() == "admin line\n"
