"""A sysvinit root names its NFSv4 ID-mapping domain in /etc/idmapd.conf, so
libnfsidmap never asks the name servers for the _nfsv4idmapdomain TXT record
(in the lab, whose nodes get name servers that do not answer, each of those
lookups cost about 20 s of a sysvinit boot)."""
from __future__ import annotations

from test_seed_layout import seed_layout_text

from nfsroot_builder import config as config_mod
from nfsroot_builder import session
from nfsroot_builder.steps.root_files import Mountnfs

from helpers import example_text


def idmapd_conf(text: str, tmp_path) -> str:
    want = Mountnfs().wanted(session.make_context(config_mod.parse(text), prefix=tmp_path / "stage"))
    kind, content, mode = want["/etc/idmapd.conf"]
    assert (kind, mode) == ("file", 0o644)
    return content


def test_the_domain_is_network_domain(tmp_path):
    text = seed_layout_text()
    assert 'domain = "mycluster.home"' in text
    conf = idmapd_conf(text, tmp_path)
    assert "[General]\nDomain = mycluster.home\n" in conf
    assert "Nobody-User = nobody\nNobody-Group = nogroup\n" in conf


def test_without_a_domain_libnfsidmaps_own_default(tmp_path):
    text = seed_layout_text().replace('domain = "mycluster.home"\n', "")
    assert config_mod.parse(text).network.domain is None
    assert "[General]\nDomain = localdomain\n" in idmapd_conf(text, tmp_path)


def test_a_systemd_root_keeps_nfs_commons_file(tmp_path):
    want = Mountnfs().wanted(session.make_context(config_mod.parse(example_text("seed")), prefix=tmp_path / "stage"))
    assert "/etc/idmapd.conf" not in want
