"""update: which -security archive the root gets (no network: the probe is replaced)."""
from __future__ import annotations

import pytest

from nfsroot_builder import config as config_mod
from nfsroot_builder import packages_index, update


class Ctx:
    def __init__(self, cfg):
        self.config = cfg


def ctx_for(seed_text: str, suite: str, security: bool = True) -> Ctx:
    text = seed_text.replace('suite = "sid"', f'suite = "{suite}"', 1)
    if not security:
        text = text.replace("[root]\n", "[root]\nsecurity = false\n", 1)
    return Ctx(config_mod.parse(text))


@pytest.fixture
def etc_apt(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "deb http://mirror.example.invalid/debian bookworm main\n"
        "deb http://security.example.invalid/debian-security bookworm-security main\n")
    return tmp_path


@pytest.fixture
def probed(monkeypatch):
    asked = []

    def reachable(url):
        asked.append(url)
        return "unreachable" not in url
    monkeypatch.setattr(update, "_reachable", reachable)
    return asked


def test_stable_suite_gets_the_hosts_security_source(seed_text, etc_apt, probed):
    sec = update.security_source(ctx_for(seed_text, "trixie"), etc_apt)
    assert probed == ["http://security.example.invalid/debian-security/dists/trixie-security/Release"]
    assert "URIs: http://security.example.invalid/debian-security\nSuites: trixie-security\n" in sec.stanza


def test_without_a_host_source_the_mirrors_sibling(seed_text, tmp_path, probed, monkeypatch):
    (tmp_path / "sources.list.d").mkdir()
    monkeypatch.setattr(packages_index, "mirror", lambda ctx: "http://mirror.example.invalid/debian")
    sec = update.security_source(ctx_for(seed_text, "bookworm"), tmp_path)
    assert probed == ["http://mirror.example.invalid/debian-security/dists/bookworm-security/Release"]
    assert sec.stanza and "Suites: bookworm-security" in sec.stanza


def test_a_mirror_without_security_is_said_plainly(seed_text, tmp_path, probed, monkeypatch):
    (tmp_path / "sources.list.d").mkdir()
    monkeypatch.setattr(packages_index, "mirror", lambda ctx: "http://unreachable.example.invalid/debian")
    sec = update.security_source(ctx_for(seed_text, "trixie"), tmp_path)
    assert sec.stanza is None
    assert sec.note.startswith("WARNING: no trixie-security at http://unreachable.example.invalid/debian-security")
    assert "NOT applied" in sec.note and "root.security = false" in sec.note


def test_unstable_has_none_and_the_key_turns_it_off(seed_text, etc_apt, probed):
    assert update.security_source(ctx_for(seed_text, "sid"), etc_apt).stanza is None
    off = update.security_source(ctx_for(seed_text, "trixie", security=False), etc_apt)
    assert off.stanza is None and "root.security = false" in off.note
    assert probed == []
