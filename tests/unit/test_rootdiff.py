"""rootdiff: packages and /etc files between two root trees (files under tmp_path only)."""
from __future__ import annotations

import os

from nfsroot_builder.rootdiff import diff


def make_root(path, packages: dict[str, str], etc: dict[str, str]):
    (path / "var/lib/dpkg").mkdir(parents=True)
    (path / "var/lib/dpkg/status").write_text("\n".join(
        f"Package: {p}\nStatus: install ok installed\nVersion: {v}\n" for p, v in packages.items())
        + "\nPackage: gone-half\nStatus: deinstall ok config-files\nVersion: 1\n")
    for rel, text in etc.items():
        (path / "etc" / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / "etc" / rel).write_text(text)
    return path


def test_packages_and_etc(tmp_path):
    a = make_root(tmp_path / "a", {"nrb-probe": "1.0", "libc6": "2.41-12", "old": "1", "kernel": "6.12.9-1"},
                  {"hostname": "n\n", "apt/sources.list": "x\n", "gone.conf": "1\n"})
    b = make_root(tmp_path / "b", {"nrb-probe": "1.1", "libc6": "2.41-12", "new": "2", "kernel": "6.12.10-1"},
                  {"hostname": "n\n", "apt/sources.list": "y\n", "added.conf": "1\n"})
    os.symlink("/usr/share/zoneinfo/UTC", b / "etc/localtime")
    d = diff(a, b)
    assert d.added == [("new", "2")] and d.removed == [("old", "1")]
    # Debian version ordering: 6.12.10 is newer than 6.12.9.
    assert d.upgraded == [("kernel", "6.12.9-1", "6.12.10-1"), ("nrb-probe", "1.0", "1.1")]
    assert d.etc_added == ["/etc/added.conf", "/etc/localtime"]
    assert d.etc_removed == ["/etc/gone.conf"]
    assert d.etc_changed == ["/etc/apt/sources.list"]
    assert "  nrb-probe 1.0 -> 1.1" in d.lines()
    assert d.to_json()["packages"]["upgraded"][1] == {"package": "nrb-probe", "from": "1.0", "to": "1.1"}
    back = diff(b, a)
    assert back.downgraded == [("kernel", "6.12.10-1", "6.12.9-1"), ("nrb-probe", "1.1", "1.0")]


def test_identical_roots_are_empty(tmp_path):
    a = make_root(tmp_path / "a", {"p": "1"}, {"x": "1\n"})
    assert diff(a, a).empty and diff(a, a).lines() == []


def test_a_mode_change_counts(tmp_path):
    a = make_root(tmp_path / "a", {}, {"x": "1\n"})
    b = make_root(tmp_path / "b", {}, {"x": "1\n"})
    (b / "etc/x").chmod(0o600)
    assert diff(a, b).etc_changed == ["/etc/x"]
