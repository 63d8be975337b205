"""root.extra_sources: validation up front, the root's .sources file, the index URLs (no processes)."""
from __future__ import annotations

import pytest

from nfsroot_builder import config as config_mod
from nfsroot_builder.aptsources import parse_extra_source, render_extra_sources
from nfsroot_builder.errors import ConfigError

KEY = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEabc\n=x1y2\n-----END PGP PUBLIC KEY BLOCK-----\n"
FLAT = "Types: deb\nURIs: file:/srv/site-repo\nSuites: ./\n"
DISTS = "Types: deb\nURIs: http://repo.example.invalid/debian\nSuites: trixie\nComponents: main contrib\n"


def with_sources(seed_text: str, entries: str) -> str:
    return seed_text.replace("[tftp]\n", entries + "[tftp]\n", 1)


def entry(stanza: str, key: str | None = KEY) -> str:
    return f'[[root.extra_sources]]\nstanza = """{stanza}"""\n' + (f"key = '''{key}'''\n" if key else "")


def test_valid_sources_parse(seed_text):
    cfg = config_mod.parse(with_sources(seed_text, entry(FLAT) + entry(DISTS)))
    flat, dists = (s.parsed for s in cfg.root.extra_sources)
    assert flat.indexes("amd64") == ["file:/srv/site-repo/Packages"]
    assert flat.file_dirs() == ["/srv/site-repo"]
    assert dists.indexes("amd64") == [
        "http://repo.example.invalid/debian/dists/trixie/main/binary-amd64/Packages",
        "http://repo.example.invalid/debian/dists/trixie/contrib/binary-amd64/Packages"]
    assert dists.file_dirs() == []


@pytest.mark.parametrize("stanza, key, words", [
    ("URIs: file:/r\nSuites: ./\n", KEY, "Types: deb"),
    ("Types: deb\nSuites: ./\n", KEY, "needs URIs"),
    ("Types: deb\nURIs: ftp://r.invalid/\nSuites: ./\n", KEY, "not a file:/, http:// or https://"),
    ("Types: deb\nURIs: file:/r\n", KEY, "needs Suites"),
    ("Types: deb\nURIs: file:/r\nSuites: trixie\n", KEY, "needs Components"),
    ("Types: deb\nURIs: file:/r\nSuites: ./\nComponents: main\n", KEY, "must be absent"),
    (FLAT, None, "no signing key"),
    (FLAT, "not a key", "ASCII-armored"),
    (FLAT + "Signed-By: /usr/share/keyrings/site.gpg\n", None, "keyring path"),
    (FLAT + "\nTypes: deb\nURIs: file:/s\nSuites: ./\n", KEY, "one deb822 paragraph"),
])
def test_bad_stanza_names_the_field(seed_text, stanza, key, words):
    with pytest.raises(ConfigError) as exc:
        config_mod.parse(with_sources(seed_text, entry(stanza, key)))
    assert exc.value.exit_code == 2
    problems = dict(exc.value.problems)
    assert "root.extra_sources[0]" in problems, problems
    assert words in problems["root.extra_sources[0]"]


def test_trusted_needs_no_key():
    src = parse_extra_source(FLAT + "Trusted: yes\n")
    assert src.trusted
    assert "Signed-By" not in render_extra_sources([src])


def test_key_goes_inline_into_signed_by():
    text = render_extra_sources([parse_extra_source(FLAT, KEY)])
    # deb822 continuation lines start with a blank; an empty line is " ." (deb822(5)).
    assert "Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mDMEabc\n =x1y2\n" \
           " -----END PGP PUBLIC KEY BLOCK-----\n" in text
    assert text.startswith("# Written by nfsroot-build")


def test_an_inline_signed_by_is_kept():
    stanza = FLAT + "Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mDMEabc\n" \
                    " -----END PGP PUBLIC KEY BLOCK-----\n"
    once = render_extra_sources([parse_extra_source(stanza)])
    assert " .\n mDMEabc\n" in once


def test_no_sources_no_file():
    assert render_extra_sources([]) is None
