"""The host's mirror from its apt sources (pyfakefs: the code reads /etc/apt)."""
from __future__ import annotations

import pytest

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
