"""The host's mirror from its apt sources (pyfakefs: the code reads /etc/apt)."""
from __future__ import annotations

import pytest

from nfsroot_builder import aptsources
from nfsroot_builder.aptsources import host_mirror
from nfsroot_builder.errors import UsageError

DEB822 = """Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb deb-src
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
"""


def test_deb822(fs):
    fs.create_file("/etc/apt/sources.list.d/debian.sources", contents=DEB822)
    assert host_mirror() == "http://mirror.example/debian"


def test_one_line_format_with_options(fs):
    fs.create_file("/etc/apt/sources.list", contents=(
        "# comment\ndeb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/x.gpg] http://one.example/debian trixie main\n"))
    assert host_mirror() == "http://one.example/debian"


def test_disabled_and_foreign_sources_skipped(fs):
    fs.create_file("/etc/apt/sources.list.d/other.sources", contents=(
        "Types: deb\nURIs: https://vendor.example/apt\nSuites: nodistro\nComponents: main\n\n"
        "Types: deb\nURIs: http://off.example/debian\nSuites: sid\nEnabled: no\n"))
    fs.create_file("/etc/apt/sources.list", contents="deb http://on.example/debian sid main\n")
    assert host_mirror() == "http://on.example/debian"


def test_none_found(fs):
    fs.create_dir("/etc/apt/sources.list.d")
    with pytest.raises(UsageError, match="root.mirror"):
        host_mirror()


@pytest.mark.parametrize("options", ["[a=1 b=2 c=3]", "[ a=1 b=2 c=3 ]", "[arch=amd64]", "[ arch=amd64 ]"])
def test_one_line_option_group_of_any_size(fs, options):
    fs.create_file("/etc/apt/sources.list", contents=f"deb {options} http://three.example/debian trixie main\n")
    assert host_mirror() == "http://three.example/debian"


def test_one_line_unclosed_option_group_is_skipped(fs):
    fs.create_file("/etc/apt/sources.list", contents=(
        "deb [a=1 b=2 http://broken.example/debian trixie main\n"
        "deb http://good.example/debian trixie main\n"))
    assert host_mirror() == "http://good.example/debian"


def _armored(data: bytes, indent: str = "") -> str:
    """An ASCII-armored block around data (RFC 4880 6.2), one header line; a
    deb822 field writes its empty lines " .", so indent marks that form."""
    import base64
    body = base64.b64encode(data).decode()
    blank = f"{indent}." if indent else ""
    lines = ["-----BEGIN PGP PUBLIC KEY BLOCK-----", "Comment: test", blank,
             body[:20], body[20:], "=abcd", "-----END PGP PUBLIC KEY BLOCK-----"]
    return "\n".join(indent + line if line != blank else line for line in lines) + "\n"


def test_dearmor_returns_the_packets():
    assert aptsources.dearmor(_armored(b"\x99\x01\x0dkey-one" * 5)) == b"\x99\x01\x0dkey-one" * 5


def test_host_keyring_joins_every_key_apt_trusts(tmp_path):
    etc = tmp_path / "apt"
    (etc / "trusted.gpg.d").mkdir(parents=True)
    (etc / "sources.list.d").mkdir()
    (etc / "trusted.gpg").write_bytes(b"LEGACY")
    (etc / "trusted.gpg.d/site.asc").write_text(_armored(b"SITE-KEY"))
    (etc / "trusted.gpg.d/vendor.gpg").write_bytes(b"VENDOR")
    own = tmp_path / "own.gpg"
    own.write_bytes(b"OWN")
    debian = tmp_path / "debian-archive-keyring.gpg"
    debian.write_bytes(b"DEBIAN")
    inline = _armored(b"INLINE-KEY", indent=" ")
    (etc / "sources.list.d/site.sources").write_text(
        f"Types: deb\nURIs: file:///srv/repo\nSuites: trixie\nComponents: main\nSigned-By: {own}\n\n"
        f"Types: deb\nURIs: http://example.invalid/debian\nSuites: trixie\nComponents: main\n"
        f"Signed-By:\n{inline}")
    # The Debian keyring named again by a source is taken once.
    (etc / "sources.list.d/debian.sources").write_text(f"Types: deb\nURIs: x\nSuites: trixie\nSigned-By: {debian}\n")
    assert aptsources.host_keyring(etc, debian) == b"LEGACYSITE-KEYVENDORDEBIANOWNINLINE-KEY"
