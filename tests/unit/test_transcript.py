"""The dry-run transcript for a reviewer (issue 14 point 7): summary, folding,
colour only on a terminal, the whole transcript for a machine reader."""
from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from nfsroot_builder.cli.transcript import fold, print_transcript, summarize

ROOT = Path("/s/NFSROOT/k")


def menu(n: int) -> list[str]:
    return ["--- /dev/null", f"+++ /s/srv/tftp/grub.cfg-0{n}", "@@ -0,0 +1,2 @@", f"+menuentry node{n}", "+}"]


TRANSCRIPT = ["### step node-menus: menus", *menu(1), *menu(2), *menu(3),
              "# write /s/NFSROOT/k/etc/hosts (20 bytes)", "$ systemctl restart isc-dhcp-server",
              "$ chroot /s/NFSROOT/k apt-get install -y -o Dpkg::Options::=--force-confdef nfs-common zstd"]


def test_fold_shows_one_menu_and_names_the_others():
    out = fold(TRANSCRIPT)
    assert out[:6] == ["### step node-menus: menus", *menu(1)]
    assert out[6] == "# ... and 2 more file(s) like this one: /s/srv/tftp/grub.cfg-02 /s/srv/tftp/grub.cfg-03"
    assert out[7:] == TRANSCRIPT[16:]


def test_fold_keeps_different_diffs():
    other = ["--- /dev/null", "+++ /s/etc/x", "@@ -0,0 +1 @@", "+something else"]
    assert fold([*menu(1), *other]) == [*menu(1), *other]


def test_summary_counts():
    s = summarize(TRANSCRIPT, ROOT)
    assert len(s.host_files) == 3 and s.root_files == {"/s/NFSROOT/k/etc/hosts"}
    assert s.packages == {"nfs-common", "zstd"} and s.commands == 2
    assert s.restarts == ["systemctl restart isc-dhcp-server"]


def test_not_a_terminal_prints_every_line_as_emitted():
    buf = io.StringIO()
    print_transcript(TRANSCRIPT, Console(file=buf, force_terminal=False), full=False)
    assert buf.getvalue().splitlines() == TRANSCRIPT


def test_terminal_folds_and_colours_unless_full():
    buf = io.StringIO()
    print_transcript(TRANSCRIPT, Console(file=buf, force_terminal=True, width=200), full=False)
    assert "more file(s) like this one" in buf.getvalue() and "\x1b[" in buf.getvalue()
    buf = io.StringIO()
    print_transcript(TRANSCRIPT, Console(file=buf, force_terminal=True, width=200), full=True)
    assert "grub.cfg-03" in buf.getvalue() and "like this one" not in buf.getvalue()


def test_fold_treats_macs_with_hex_letters_as_alike():
    def grub(mac: str) -> list[str]:
        return ["--- /dev/null", f"+++ /s/grub.cfg-01-{mac}", "@@ -0,0 +1 @@", f"+menuentry {mac}"]
    out = fold([*grub("52-54-00-00-01-09"), *grub("52-54-00-00-01-0a")])
    assert out == [*grub("52-54-00-00-01-09"), "# ... and 1 more file(s) like this one: /s/grub.cfg-01-52-54-00-00-01-0a"]
