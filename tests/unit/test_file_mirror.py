"""A file: mirror (an air-gapped site's local repository, issue 14): the
bootstrap, the package lookup and apt in the root read it."""
from __future__ import annotations

import hashlib
import lzma

from nfsroot_builder import chroot, packages_index, session
from nfsroot_builder import config as config_mod
from nfsroot_builder.steps.bootstrap import FILE_MIRROR_HOOKS, Bootstrap

from fakes import FakeRunner
from helpers import example_text


def _mm_ctx(tmp_path, monkeypatch, mirror: str):
    monkeypatch.setattr(chroot, "mounts_under", lambda root: [])
    monkeypatch.setattr(chroot, "stop_processes", lambda ctx, root: None)
    monkeypatch.setattr(packages_index, "check_exist", lambda ctx, names: None)
    monkeypatch.setattr(packages_index, "apt_lists", lambda ctx: [])
    monkeypatch.setattr(packages_index, "mirror", lambda ctx: mirror)
    cfg = config_mod.parse(example_text("lab"))
    c = session.make_context(cfg, prefix=tmp_path / "stage", state_dir=tmp_path / "state",
                             runner=FakeRunner(), emit=lambda line: None)
    c.apt_cache = tmp_path / "cache"
    return c


def _mmdebstrap_argv(ctx) -> list[str]:
    Bootstrap().run(ctx)
    return next(a for a in ctx.runner.executed if "mmdebstrap" in a)


def test_a_file_mirror_is_bind_mounted_into_the_chroot_by_mmdebstraps_hook(tmp_path, monkeypatch):
    argv = _mmdebstrap_argv(_mm_ctx(tmp_path, monkeypatch, "file:///srv/repo"))
    assert f"--hook-dir={FILE_MIRROR_HOOKS}" in argv
    assert argv[-1] == "file:///srv/repo"


def test_a_network_mirror_needs_no_hook(tmp_path, monkeypatch):
    argv = _mmdebstrap_argv(_mm_ctx(tmp_path, monkeypatch, "http://mirror.invalid/debian"))
    assert not [a for a in argv if a.startswith("--hook-dir")]


def test_package_lookup_reads_a_file_mirror(tmp_path, monkeypatch):
    """The Release and Packages.xz of a local repository, read through file: URLs."""
    repo = tmp_path / "repo"
    index = lzma.compress(b"Package: nfs-common\nVersion: 1\n\nPackage: mawk\nProvides: awk\n")
    (repo / "dists/trixie/main/binary-amd64").mkdir(parents=True)
    (repo / "dists/trixie/main/binary-amd64/Packages.xz").write_bytes(index)
    (repo / "dists/trixie/Release").write_text(
        "Suite: trixie\nSHA256:\n"
        f" {hashlib.sha256(index).hexdigest()} {len(index)} main/binary-amd64/Packages.xz\n")
    text = example_text("lab").replace('mirror = ""', f'mirror = "file://{repo}"', 1)
    ctx = session.make_context(config_mod.parse(text), prefix=tmp_path / "stage", state_dir=tmp_path / "state",
                               runner=FakeRunner(), emit=lambda line: None)
    ctx.apt_cache = tmp_path / "cache"
    assert packages_index.available(ctx) >= {"nfs-common", "mawk", "awk"}


def test_package_records_read_a_file_mirror(tmp_path, monkeypatch):
    """records() (Secure Boot fetches shim and GRUB by them) parses the real
    Release file too: python-debian is imported where it is used, and this
    runs that import (a NameError once hid behind a TYPE_CHECKING import)."""
    repo = tmp_path / "repo"
    index = lzma.compress(b"Package: shim-signed\nVersion: 1.47\nFilename: pool/s/shim.deb\nSHA256: ab12\n")
    (repo / "dists/trixie/main/binary-amd64").mkdir(parents=True)
    (repo / "dists/trixie/main/binary-amd64/Packages.xz").write_bytes(index)
    (repo / "dists/trixie/Release").write_text(
        "Suite: trixie\nSHA256:\n"
        f" {hashlib.sha256(index).hexdigest()} {len(index)} main/binary-amd64/Packages.xz\n")
    text = example_text("lab").replace('mirror = ""', f'mirror = "file://{repo}"', 1)
    ctx = session.make_context(config_mod.parse(text), prefix=tmp_path / "stage", state_dir=tmp_path / "state",
                               runner=FakeRunner(), emit=lambda line: None)
    ctx.apt_cache = tmp_path / "cache"
    assert packages_index.records(ctx, ("shim-signed",)) == {
        "shim-signed": {"Version": "1.47", "Filename": "pool/s/shim.deb", "SHA256": "ab12"}}


def test_apt_in_the_root_reads_a_file_mirror_bound_at_its_own_path(tmp_path, monkeypatch):
    """debootstrap writes `deb file:///srv/repo ...` into the root's sources.list:
    apt in the chroot (root-packages, update) needs the directory there."""
    from nfsroot_builder import aptsources
    from nfsroot_builder.steps.root_packages import HOST_KEYS, file_repositories
    ctx = _mm_ctx(tmp_path, monkeypatch, "file:///srv/repo/")
    ctx.root.mkdir(parents=True)
    monkeypatch.setattr(aptsources, "host_keyring", lambda: b"HOST-KEYS")
    keys = ctx.root / HOST_KEYS
    with file_repositories(ctx):
        assert ["mount", "--bind", "-o", "ro", "/srv/repo", str(ctx.root / "srv/repo")] in ctx.runner.executed
        # apt in the root trusts what the host's apt trusts (a site's key), while it runs.
        assert keys.read_bytes() == b"HOST-KEYS"
    assert ["umount", str(ctx.root / "srv/repo")] in ctx.runner.executed
    assert not (ctx.root / "srv").exists() and not keys.exists()   # gone again


def test_a_network_mirror_is_not_bound(tmp_path, monkeypatch):
    from nfsroot_builder import aptsources
    from nfsroot_builder.steps.root_packages import file_repositories
    monkeypatch.setattr(aptsources, "host_keyring", lambda: b"HOST-KEYS")
    ctx = _mm_ctx(tmp_path, monkeypatch, "http://mirror.invalid/debian")
    ctx.root.mkdir(parents=True)
    with file_repositories(ctx):
        pass
    assert not [a for a in ctx.runner.executed if a[:1] == ["mount"]]


def test_debootstrap_from_a_file_mirror_names_it_in_the_roots_sources(tmp_path, monkeypatch):
    """debootstrap writes sources.list entries only for the indexes it copied into
    the root, none for a file: mirror: the bootstrap step writes the line itself."""
    from nfsroot_builder import aptsources
    monkeypatch.setattr(chroot, "mounts_under", lambda root: [])
    monkeypatch.setattr(packages_index, "check_exist", lambda ctx, names: None)
    monkeypatch.setattr(packages_index, "mirror", lambda ctx: "file:///srv/repo")
    monkeypatch.setattr(aptsources, "host_keyring", lambda: b"HOST-KEYS")
    cfg = config_mod.parse(example_text("seed").replace('suite = "sid"', 'suite = "trixie"'))
    ctx = session.make_context(cfg, prefix=tmp_path / "stage", state_dir=tmp_path / "state",
                               runner=FakeRunner(), emit=lambda line: None)
    ctx.apt_cache = tmp_path / "cache"
    Bootstrap().run(ctx)
    argv = next(a for a in ctx.runner.executed if a[0] == "debootstrap")
    assert f"--keyring={tmp_path / 'state' / 'debootstrap-keyring.gpg'}" in argv and argv[-1] == "file:///srv/repo"
    assert (ctx.root / "etc/apt/sources.list").read_text() == "deb file:///srv/repo trixie main\n"
