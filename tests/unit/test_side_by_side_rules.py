"""Builds side by side (issue 11, point 2) with a fake runner: managed-block
markers carry the build's name; an unnamed block (an older version's) is
adopted only by the build whose undo record has the file; undo of one build
leaves the other's lines byte for byte and keeps the loader files the
other still records; check names both builds and the field of a conflict."""
from __future__ import annotations

import re
import threading
import time

import pytest

from nfsroot_builder import config as config_mod
from nfsroot_builder import session, sidebyside
from nfsroot_builder import undo as undo_mod
from nfsroot_builder.files import FileOps, split_block, with_block

from fakes import FakeRunner
from helpers import snapshot

ADMIN_DHCPD = 'option domain-name "admin.example";\nsubnet 10.9.0.0 netmask 255.255.0.0 { }\n'


def second_text(seed_text: str, name: str = "test") -> str:
    """The seed's config as another build: its own name, root, subnet, MACs and node names."""
    return (seed_text.replace("kerrighed", name).replace("192.168.0.", "192.168.1.")
            .replace("52:54:00:00:00:0", "52:54:00:00:01:0").replace('"ssi', '"tst'))


def make(tmp_path, cfg, config_file=None):
    ctx = session.make_context(cfg, prefix=tmp_path / "stage", runner=FakeRunner(emit=lambda line: None),
                               emit=lambda line: None)
    ctx.config_file = config_file
    return ctx


def configure(tmp_path, text: str, name: str):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    ctx = make(tmp_path, config_mod.parse(text), path)
    session.pipeline(ctx).run(to_step="nfs-exports")
    session.pipeline(ctx).run(only="boot-loader")   # the shared fallback grub.cfg (grub-mknetdir faked)
    return ctx


# -- markers ------------------------------------------------------------------------

def test_two_builds_keep_a_named_block_each_in_one_file():
    text = with_block(ADMIN_DHCPD, "prod's\n", "#", "prod")
    text = with_block(text, "test's\n", "#", "test")
    assert text == (ADMIN_DHCPD + "# BEGIN nfsroot-build managed block prod\nprod's\n"
                    "# END nfsroot-build managed block prod\n# BEGIN nfsroot-build managed block test\n"
                    "test's\n# END nfsroot-build managed block test\n")
    assert split_block(text, "#", "test")[1] == "test's\n" and split_block(text, "#", "prod")[1] == "prod's\n"
    assert with_block(with_block(text, None, "#", "test"), None, "#", "prod") == ADMIN_DHCPD
    # Replaced in place: the other build's block keeps its place.
    assert with_block(text, "prod's new\n", "#", "prod").index("prod's new") < text.index("test's")


def test_an_unnamed_block_is_adopted_only_by_the_build_whose_record_has_the_file(tmp_path):
    conf = tmp_path / "dhcpd.conf"
    old = ADMIN_DHCPD + "# BEGIN nfsroot-build managed block\nold\n# END nfsroot-build managed block\n"
    conf.write_text(old)
    stranger = FileOps(build="test")
    stranger.managed_block(conf, "test's\n")
    assert conf.read_text() == old + ("# BEGIN nfsroot-build managed block test\ntest's\n"
                                      "# END nfsroot-build managed block test\n")
    owner = FileOps(build="prod")
    owner.undo.note(str(conf), "block")   # its state says it wrote the block (an older version did)
    owner.managed_block(conf, "prod's\n")
    text = conf.read_text()
    assert "old\n" not in text and text.count("BEGIN") == 2   # renamed in place, not duplicated
    assert text.startswith(ADMIN_DHCPD + "# BEGIN nfsroot-build managed block prod\nprod's\n")


def test_undo_removes_the_unnamed_block_its_record_has(tmp_path, seed_config):
    ctx = make(tmp_path, seed_config)
    conf = ctx.host("/etc/dhcp/dhcpd.conf")
    conf.parent.mkdir(parents=True)
    conf.write_text(ADMIN_DHCPD + "# BEGIN nfsroot-build managed block\nold\n# END nfsroot-build managed block\n")
    backup = ctx.state_dir / "backup/dhcpd.conf"
    backup.parent.mkdir(parents=True)
    backup.write_text(ADMIN_DHCPD)
    ctx.files.undo.note(str(conf), "block", str(backup))
    report = undo_mod.undo(ctx)
    assert report.problems == [] and conf.read_text() == ADMIN_DHCPD


# -- two builds, one server ---------------------------------------------------------

@pytest.fixture
def prod_then_test(tmp_path, seed_text):
    stage = tmp_path / "stage"
    (stage / "etc/dhcp").mkdir(parents=True)
    (stage / "etc/dhcp/dhcpd.conf").write_text(ADMIN_DHCPD)
    configure(tmp_path, seed_text, "kerrighed")
    prod_alone = snapshot(stage)
    configure(tmp_path, second_text(seed_text), "test")
    return stage, prod_alone


def test_undo_of_one_build_leaves_the_others_lines_byte_for_byte(tmp_path, seed_text, prod_then_test):
    stage, prod_alone = prod_then_test
    dhcpd = (stage / "etc/dhcp/dhcpd.conf").read_text()
    assert dhcpd.startswith(ADMIN_DHCPD) and dhcpd.count("# BEGIN nfsroot-build managed block") == 2
    assert (stage / "etc/exports.d/nfsroot-build-kerrighed.exports").is_file()
    assert (stage / "etc/exports.d/nfsroot-build-test.exports").is_file()
    report = undo_mod.undo(make(tmp_path, config_mod.parse(second_text(seed_text))))
    assert report.problems == []
    assert any(f"{stage}/srv/tftp/boot/grub/grub.cfg" in d and "kerrighed uses it too" in d for d in report.done)
    after = {p: v for p, v in snapshot(stage).items() if "/var/lib/nfsroot-build/test" not in p}
    assert {p: v[1] for p, v in after.items()} == {p: v[1] for p, v in prod_alone.items()}


def test_a_loader_file_goes_with_the_last_build_that_records_it(tmp_path, seed_text, prod_then_test):
    stage, _ = prod_then_test
    fallback = stage / "srv/tftp/boot/grub/grub.cfg"
    fallback.parent.mkdir(parents=True, exist_ok=True)
    fallback.write_text("shared\n")
    undo_mod.undo(make(tmp_path, config_mod.parse(seed_text)))   # prod first: test still records it
    assert fallback.read_text() == "shared\n"
    assert "# BEGIN nfsroot-build managed block test" in (stage / "etc/dhcp/dhcpd.conf").read_text()
    assert "kerrighed" not in (stage / "etc/dhcp/dhcpd.conf").read_text()
    undo_mod.undo(make(tmp_path, config_mod.parse(second_text(seed_text))))
    assert not fallback.exists()
    assert (stage / "etc/dhcp/dhcpd.conf").read_text() == ADMIN_DHCPD


def test_the_unnamed_exports_drop_in_goes_when_this_build_wrote_it(tmp_path, seed_text):
    ctx = configure(tmp_path, seed_text, "kerrighed")
    legacy = ctx.host("/etc/exports.d/nfsroot-build.exports")
    legacy.write_text("/NFSROOT/kerrighed 192.168.0.0/24(ro)\n")
    ctx.files.undo.note(str(legacy), "owned")
    ctx.state.save()
    ctx = make(tmp_path, config_mod.parse(seed_text))
    plans = {p.step.name: p for p in session.pipeline(ctx).plan()}
    assert plans["nfs-exports"].status == "stale" and str(legacy) in plans["nfs-exports"].why
    session.pipeline(ctx).run(only="nfs-exports")
    assert not legacy.exists() and ctx.host("/etc/exports.d/nfsroot-build-kerrighed.exports").is_file()


# -- conflicts ------------------------------------------------------------------------

def test_conflicts_name_both_builds_and_the_field(seed_text):
    prod = config_mod.parse(seed_text)
    clash = (seed_text.replace('name = "kerrighed"', 'name = "test"').replace('"/srv/tftp"', '"/srv/tftp2"')
             .replace("52:54:00:00:00:0", "52:54:00:00:01:0").replace("52:54:00:00:01:01", "52:54:00:00:00:01")
             .replace('"ssi1"', '"tst1"').replace('"ssi3"', '"tst3"').replace('"ssi4"', '"tst4"')
             .replace("192.168.0.10", "192.168.0.20").replace("192.168.0.203", "192.168.0.104"))
    found = sidebyside.conflicts(config_mod.parse(clash), {"kerrighed": prod})
    for start in ("node.mac 52:54:00:00:00:01: node tst1 of build test and node ssi1 of build kerrighed",
                  "node.ip 192.168.0.104: node tst3 of build test and node ssi4 of build kerrighed",
                  "node.name ssi2: node ssi2 of build test and node ssi2 of build kerrighed",
                  "root.path /NFSROOT/kerrighed: builds test and kerrighed",
                  "tftp.root: build test has /srv/tftp2, build kerrighed /srv/tftp",
                  "network.subnet 192.168.0.0/24: builds test and kerrighed"):
        assert sum(f.startswith(start) for f in found) == 1, (start, found)
    assert len(found) == 6, found
    # Another subnet, root and nodes, one tftp.root and dhcpd: nothing to report.
    assert sidebyside.conflicts(config_mod.parse(second_text(seed_text)), {"kerrighed": prod}) == []


@pytest.mark.parametrize("section, value, field", [("dhcp", "kea", "dhcp.server"),
                                                   ("nfs", "ganesha", "nfs.server")])
def test_a_kind_the_tool_cannot_hold_twice_is_refused_naming_the_field(seed_text, section, value, field):
    def kind(text):
        text, n = re.subn(rf'(\[{section}\][^\[]*?\nserver = )"[^"]*"', rf'\1"{value}"', text)
        assert n == 1
        return config_mod.parse(text)
    found = sidebyside.conflicts(kind(second_text(seed_text)), {"kerrighed": kind(seed_text)})
    assert len(found) == 1 and found[0].startswith(f"{field} = {value}: builds test and kerrighed"), found
    mixed = sidebyside.conflicts(kind(second_text(seed_text)), {"kerrighed": config_mod.parse(seed_text)})
    assert len(mixed) == 1 and mixed[0].startswith(f"{field}: build test uses {value}"), mixed


def test_dnsmasq_and_dnsmasq_proxy_are_one_daemon_and_the_same_build_is_no_other(seed_text):
    def dnsmasq(text, kind):
        return config_mod.parse(re.sub(r'(\[dhcp\][^\[]*?\nserver = )"[^"]*"', rf'\1"{kind}"', text))
    assert sidebyside.conflicts(dnsmasq(second_text(seed_text), "dnsmasq-proxy"),
                                {"kerrighed": dnsmasq(seed_text, "dnsmasq")}) == []
    prod = config_mod.parse(seed_text)
    assert sidebyside.conflicts(prod, {"elsewhere": prod}) == []


def test_check_reads_the_other_builds_from_the_state_dirs_beside_this_one(tmp_path, seed_text):
    configure(tmp_path, seed_text, "kerrighed")
    clash = second_text(seed_text).replace("52:54:00:00:01:01", "52:54:00:00:00:01")
    rows = sidebyside.check_rows(make(tmp_path, config_mod.parse(clash)))
    assert rows and all(level == "fail" for level, _ in rows), rows
    assert rows[0][1].startswith("node.mac 52:54:00:00:00:01: node tst1 of build test and node ssi1")
    # Its config gone: a note saying so, no guess.
    (tmp_path / "kerrighed.toml").unlink()
    rows = sidebyside.check_rows(make(tmp_path, config_mod.parse(clash)))
    assert [level for level, _ in rows] == ["note"] and "cannot be read" in rows[0][1]


def test_two_builds_changing_one_file_at_once_each_keep_their_block(tmp_path):
    conf = tmp_path / "dhcpd.conf"
    conf.write_text(ADMIN_DHCPD)

    def slow_check(candidate):   # dhcpd -t takes a while: the window between read and replace
        time.sleep(0.005)

    def build(name):
        files = FileOps(build=name)
        for i in range(20):
            files.managed_block(conf, f"{name} {i}\n", validate=slow_check)
    threads = [threading.Thread(target=build, args=(name,)) for name in ("prod", "test")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    text = conf.read_text()
    assert split_block(text, "#", "prod")[1] == "prod 19\n" and split_block(text, "#", "test")[1] == "test 19\n"
    assert text.startswith(ADMIN_DHCPD)
