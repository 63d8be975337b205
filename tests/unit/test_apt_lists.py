"""The suite's InRelease and index, fetched once by the package-name check
and handed to mmdebstrap's apt (packages_index.apt_lists, bootstrap's
setup hook): apt's own file names, hashes checked before anything is handed
over, nothing written by a dry-run, a Release-only repository still read."""
from __future__ import annotations

import hashlib
import lzma
import os

import pytest

from nfsroot_builder import packages_index, session
from nfsroot_builder.errors import NfsrootError
from nfsroot_builder.steps.bootstrap import _lists_hooks

from fakes import FakeRunner

INDEX = b"Package: bash\n\nPackage: exim4\nProvides: mail-transport-agent\n"
LAST_MODIFIED = "Sat, 09 Aug 2025 10:00:00 GMT"   # 1754733600


def release_text(index: bytes, plain: bytes | None = None) -> bytes:
    xz = lzma.compress(index)
    plain = index if plain is None else plain
    return (f"Suite: trixie\nSHA256:\n {hashlib.sha256(plain).hexdigest()} {len(plain)} main/binary-amd64/Packages\n"
            f" {hashlib.sha256(xz).hexdigest()} {len(xz)} main/binary-amd64/Packages.xz\n").encode()


def signed(text: bytes) -> bytes:
    return (b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n" + text +
            b"-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCgAdFiEE\n-----END PGP SIGNATURE-----\n")


def serve(monkeypatch, inrelease: bytes | None, index: bytes = INDEX, release: bytes | None = None) -> list[str]:
    """A mirror of one suite, through packages_index._fetch; the URLs asked for."""
    fetched: list[str] = []

    def fetch(url, headers=None):
        fetched.append(url)
        if url.endswith("/InRelease"):
            if inrelease is None:
                raise packages_index.NotFound(url)
            if headers is not None:
                headers["Last-Modified"] = LAST_MODIFIED
            return inrelease
        if url.endswith("/Release"):
            return release
        return lzma.compress(index)
    monkeypatch.setattr(packages_index, "_fetch_chunks", lambda url, headers=None: iter([fetch(url, headers)]))
    return fetched


def context(tmp_path, seed_config, dry_run=False, mirror="http://mirror.invalid/debian"):
    root = seed_config.root.model_copy(update={"mirror": mirror, "suite": "trixie", "components": ["main"],
                                               "architecture": "amd64"})
    ctx = session.make_context(seed_config.model_copy(update={"root": root}), prefix=tmp_path / "stage",
                               dry_run=dry_run, runner=FakeRunner(), emit=lambda line: None)
    ctx.apt_cache = tmp_path / "cache/apt"
    return ctx


@pytest.mark.parametrize("uri, name", [
    ("http://deb.debian.org/debian/dists/trixie/InRelease", "deb.debian.org_debian_dists_trixie_InRelease"),
    ("http://deb.debian.org/debian/dists/trixie/main/binary-amd64/Packages",
     "deb.debian.org_debian_dists_trixie_main_binary-amd64_Packages"),
    # apt's URItoFileName: no user or password, the port kept, '_' and '~' quoted.
    ("https://user:secret@mirror.example:8080/de_bian~x/dists/sid/InRelease",
     "mirror.example:8080_de%5fbian%7ex_dists_sid_InRelease"),
])
def test_list_names_are_apts_own(uri, name):
    assert packages_index.apt_list_name(uri) == name


def test_a_real_run_keeps_the_checked_inrelease_and_index_under_apts_names(tmp_path, seed_config, monkeypatch):
    inrelease = signed(release_text(INDEX))
    fetched = serve(monkeypatch, inrelease)
    ctx = context(tmp_path, seed_config)
    packages_index.check_exist(ctx, ["bash"])
    lists = packages_index.apt_lists(ctx)
    assert [name for _, name in lists] == ["mirror.invalid_debian_dists_trixie_InRelease",
                                          "mirror.invalid_debian_dists_trixie_main_binary-amd64_Packages"]
    (kept_inrelease, _), (kept_index, _) = lists
    assert kept_inrelease.read_bytes() == inrelease
    assert os.stat(kept_inrelease).st_mtime == 1754733600   # apt's If-Modified-Since asks with it
    assert kept_index.read_bytes() == INDEX
    # The index was fetched once, for the name check: apt_lists found it kept.
    assert [u.rsplit("/", 1)[1] for u in fetched] == ["InRelease", "Packages.xz"]
    # The setup hook links them in under those names.
    hook, = _lists_hooks(lists)
    assert f'ln {kept_index} "$1"/var/lib/apt/lists/mirror.invalid_debian_dists_trixie_main_binary-amd64_Packages' \
        in hook


def test_a_dry_run_names_the_same_files_and_writes_none(tmp_path, seed_config, monkeypatch):
    serve(monkeypatch, signed(release_text(INDEX)))
    planned = packages_index.apt_lists(context(tmp_path, seed_config, dry_run=True))
    assert not (tmp_path / "cache").exists()
    assert packages_index.apt_lists(context(tmp_path, seed_config)) == planned
    assert all(path.exists() for path, _ in planned)


def test_a_kept_index_that_no_longer_matches_is_fetched_again_not_handed_over(tmp_path, seed_config, monkeypatch):
    fetched = serve(monkeypatch, signed(release_text(INDEX)))
    (_, _), (kept_index, _) = packages_index.apt_lists(context(tmp_path, seed_config))
    kept_index.write_bytes(b"Package: bash\n")   # torn or edited since
    fetched.clear()
    packages_index.apt_lists(context(tmp_path, seed_config))
    assert kept_index.read_bytes() == INDEX
    assert [u.rsplit("/", 1)[1] for u in fetched] == ["InRelease", "Packages.xz"]


def test_an_index_whose_decompressed_hash_differs_from_the_inrelease_fails(tmp_path, seed_config, monkeypatch):
    # The .xz matches its line; the decompressed index does not match the plain line.
    serve(monkeypatch, signed(release_text(INDEX, plain=b"Package: other\n")))
    with pytest.raises(NfsrootError, match="decompressed does not match"):
        packages_index.check_exist(context(tmp_path, seed_config), ["bash"])


def test_a_repository_without_inrelease_is_read_through_release_and_hands_apt_nothing(tmp_path, seed_config,
                                                                                      monkeypatch):
    fetched = serve(monkeypatch, None, release=release_text(INDEX))
    ctx = context(tmp_path, seed_config)
    packages_index.check_exist(ctx, ["bash", "mail-transport-agent"])
    assert packages_index.apt_lists(ctx) == []
    assert [u.rsplit("/", 1)[1] for u in fetched] == ["InRelease", "Release", "Packages.xz"]


def test_older_unused_kept_indexes_are_removed_when_a_new_one_is_kept(tmp_path, seed_config, monkeypatch):
    lists = tmp_path / "cache/lists"
    lists.mkdir(parents=True)
    (lists / "main_amd64_00000000000000000000.Packages").write_bytes(b"old")
    (lists / "main_amd64_00000000000000000000.json").write_text("[]")   # the names cache: not this kind
    monkeypatch.setattr(packages_index, "KEEP_UNUSED_SECONDS", -1)
    serve(monkeypatch, signed(release_text(INDEX)))
    packages_index.apt_lists(context(tmp_path, seed_config))
    assert sorted(p.suffix for p in lists.iterdir()) == ["", ".Packages", ".json"]


def test_no_lists_for_a_file_mirror(tmp_path, seed_config, monkeypatch):
    serve(monkeypatch, signed(release_text(INDEX)))
    assert packages_index.apt_lists(context(tmp_path, seed_config, mirror="file:///srv/repo")) == []
    assert _lists_hooks([]) == []


def test_the_gz_index_is_read_where_the_release_lists_one_and_checked_like_the_xz(tmp_path, seed_config,
                                                                                 monkeypatch):
    import gzip
    gz = gzip.compress(INDEX)
    text = release_text(INDEX) + f" {hashlib.sha256(gz).hexdigest()} {len(gz)} main/binary-amd64/Packages.gz\n".encode()
    fetched = serve(monkeypatch, signed(text))
    served = {"Packages.gz": gz}
    fake = packages_index._fetch_chunks
    monkeypatch.setattr(packages_index, "_fetch_chunks", lambda url, headers=None: (
        iter([served[url.rsplit("/", 1)[1]]]) if url.endswith(".gz") else fake(url, headers)))
    packages_index.check_exist(context(tmp_path, seed_config), ["bash", "mail-transport-agent"])
    assert [u.rsplit("/", 1)[1] for u in fetched] == ["InRelease"]   # the index came from the .gz
    served["Packages.gz"] = gzip.compress(INDEX + b"\nPackage: evil\n")
    with pytest.raises(NfsrootError, match="Packages.gz does not match its Release checksum"):
        packages_index.check_exist(context(tmp_path / "other", seed_config), ["bash"])
