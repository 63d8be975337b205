"""Layout "seed" with init = "sysvinit" (issue 12, point 5): what of the
page's 2008 layout is kept, what is left out and said at `check` time, and
how the lab judges a sysvinit node."""
from __future__ import annotations

import pytest

from nfsroot_builder import config as config_mod
from nfsroot_builder import preflight, session
from nfsroot_builder.lab import Lab
from nfsroot_builder.lab.nodes import NodeResult, judge, sysv_failures
from nfsroot_builder.lab.render import FACTS_MARK, FACTS_SYSV_SCRIPT, FACTS_TAB_TEXT
from nfsroot_builder.render import root as R
from nfsroot_builder.steps.root_files import SEED_MOUNTNFS_LINK, SERIAL_TAB, Mountnfs

from helpers import example_text


def seed_layout_text(kernel_args='"console=ttyS0,115200n8", "console=tty0"') -> str:
    text = example_text("seed")
    for old, new in (('layout = "tmpfs"', 'layout = "seed"'), ('init = "systemd"', 'init = "sysvinit"'),
                     ('kernel_args = ["console=ttyS0,115200n8", "console=tty0"]', f"kernel_args = [{kernel_args}]")):
        assert old in text
        text = text.replace(old, new)
    return text


@pytest.fixture
def ctx(tmp_path):
    return session.make_context(config_mod.parse(seed_layout_text()), prefix=tmp_path / "stage")


def test_check_names_the_field_and_each_part_left_out(ctx):
    notes = preflight.layout_notes(ctx)
    assert [level for level, _ in notes] == ["warn"] * 3
    assert all(msg.startswith('root.layout = "seed": ') for _, msg in notes)
    text = "\n".join(msg for _, msg in notes)
    assert "/dev is not mounted by fstab" in text and "devtmpfs" in text and "udev" in text
    assert "/var/run is not mounted by fstab" in text and "symlink to /run" in text
    assert "S35mountnfs" in text and "ASYNCMOUNTNFS=no" in text and ".depend.boot" in text


def test_other_layouts_get_no_seed_notes(tmp_path):
    cfg = config_mod.parse(example_text("seed"))
    assert preflight.layout_notes(session.make_context(cfg, prefix=tmp_path / "stage")) == []


def test_seed_exports_and_fstab_agree_without_dev(ctx):
    assert ctx.config.root.writable_dirs == ("var", "tmp", "root")
    mounted = [line.split()[1] for line in R.fstab(ctx.config, ctx.served).splitlines()
               if line and not line.startswith("#") and " nfs " in line]
    assert mounted == ["/var", "/tmp", "/root"]


def test_mountnfs_for_sysvinit_keeps_the_link_and_mounts_from_rcs(ctx):
    want = Mountnfs().wanted(ctx)
    assert want[SEED_MOUNTNFS_LINK] == ("link", "../network/if-up.d/mountnfs")
    assert "\nASYNCMOUNTNFS=no\n" in want["/etc/default/rcS"][1]
    # One /tmp for every node: no node cleans it at boot (bootclean races on /tmp/.clean).
    assert "\nTMPTIME=infinite\n" in want["/etc/default/rcS"][1]
    # The serial console of the kernel line gets a getty, at its speed.
    assert want["/etc/inittab.d"] == ("dir", 0o755)
    assert "T0:2345:respawn:/sbin/getty -L 115200 ttyS0 vt100\n" in want[SERIAL_TAB][1]


def test_no_serial_console_no_getty_file(tmp_path):
    cfg = config_mod.parse(seed_layout_text('"console=tty0"'))
    want = Mountnfs().wanted(session.make_context(cfg, prefix=tmp_path / "stage"))
    assert want[SERIAL_TAB] == ("absent",) and "/etc/inittab.d" not in want


def test_serial_consoles_default_speed():
    cfg = config_mod.parse(seed_layout_text('"console=ttyS1", "console=ttyS0,57600n8"'))
    assert R.serial_consoles(cfg) == [("ttyS1", "9600"), ("ttyS0", "57600")]


def test_systemd_mountnfs_is_unchanged(tmp_path):
    cfg = config_mod.parse(example_text("seed"))
    want = Mountnfs().wanted(session.make_context(cfg, prefix=tmp_path / "stage"))
    assert list(want) == ["/etc/systemd/system/multi-user.target.wants/remote-fs.target"]


# -- the lab on a sysvinit root --------------------------------------------------

def test_lab_installs_an_inittab_entry_not_a_unit(ctx):
    lab = Lab(ctx)
    lab.install_report_unit()
    root = ctx.root
    assert (root / "etc/inittab.d/nfsroot-build-lab-report.tab").read_text() == FACTS_TAB_TEXT
    assert ":once:/usr/local/sbin/nfsroot-build-lab-report" in FACTS_TAB_TEXT
    assert (root / "usr/local/sbin/nfsroot-build-lab-report").read_text() == FACTS_SYSV_SCRIPT
    assert not (root / "etc/systemd/system").exists()
    assert "runlevel" in FACTS_SYSV_SCRIPT and "systemctl" not in FACTS_SYSV_SCRIPT
    lab.remove_report_unit()
    assert not (root / "etc/inittab.d/nfsroot-build-lab-report.tab").exists()
    assert not (root / "usr/local/sbin/nfsroot-build-lab-report").exists()


def sysv_console(ctx, runlevel="N,2", extra=""):
    srv = f"192.168.0.1:{ctx.root}"
    return ("Linux version 6.12\nINIT: version 3.14 booting\n" + extra +
            f"{FACTS_MARK} host=ssi1 root=nfs,{srv} var=nfs,{srv}/var tmp=nfs,{srv}/tmp "
            f"roothome=nfs,{srv}/root dev=devtmpfs,udev runlevel={runlevel} "
            "mountnfs=../network/if-up.d/mountnfs\n\nDebian GNU/Linux 13 ssi1 ttyS0\n\nssi1 login: ")


def test_judge_sysvinit_pass(ctx):
    node = ctx.config.nodes[0]
    r = NodeResult(node.name)
    assert judge(Lab(ctx), node, sysv_console(ctx, extra="[ ok ] Starting NFS common utilities: statd.\n"), r)
    assert r.ok, r.problem
    assert r.facts["failed"] == "none" and r.facts["var"].endswith("/var")


@pytest.mark.parametrize("kw,words", [
    ({"runlevel": "N,1"}, "runlevel is 'N,1', expected 2"),
    ({"extra": "[FAIL] Mounting NFS filesystems... failed!\n"}, "failed init scripts: [FAIL] Mounting NFS"),
    ({"extra": "startpar: service(s) returned failure: urandom ... failed!\n"}, "returned failure: urandom"),
])
def test_judge_sysvinit_problems(ctx, kw, words):
    node = ctx.config.nodes[0]
    r = NodeResult(node.name)
    assert judge(Lab(ctx), node, sysv_console(ctx, **kw), r)
    assert not r.ok and words in r.problem


def test_sysv_failures_reads_each_line_once():
    text = "[FAIL] a failed!\r\n[ ok ] b.\n[FAIL] a failed!\n"
    assert sysv_failures(text) == "[FAIL] a failed!"
    assert sysv_failures("[ ok ] all fine.\n") == "none"


def test_sysv_failures_without_colours():
    text = "Starting NFS common utilities: statd\n  \x1b[31mfailed!\x1b[0m\n"
    assert sysv_failures(text) == "failed!"


def test_a_sysvinit_root_with_its_own_tmp_keeps_bootclean(tmp_path):
    text = seed_layout_text().replace('layout = "seed"', 'layout = "tmpfs"')
    ctx = session.make_context(config_mod.parse(text), prefix=tmp_path / "stage")
    rcs = Mountnfs().wanted(ctx)["/etc/default/rcS"][1]
    assert "\nASYNCMOUNTNFS=no\n" in rcs and "TMPTIME" not in rcs
