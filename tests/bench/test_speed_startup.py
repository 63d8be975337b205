"""The start-up and no-op resume fast paths (issue 9's speed targets) give
the same answers as the slow code they replace, and start-up stays lean:
the dpkg status byte scan against python-debian, the documentation-network
check against ipaddress, a probe through subprocess.run against one through
sh, and the modules every command imports."""
from __future__ import annotations

import ipaddress
import subprocess
import sys

import pytest

from nfsroot_builder import hostcheck, packages_index
from nfsroot_builder.runner import Runner

STATUS = b"""\
Package: libc6
Status: install ok installed
Priority: optional
Version: 2.41-12+deb13u5
Description: GNU C Library
 Package: not-a-package
 Status: install ok installed
 .
 continuation lines are not fields

Package: removed-conf
Status: deinstall ok config-files
Version: 1.0-1

Package: on-hold
Status: hold ok installed
Architecture: amd64
Version: 3:4.5~rc1-2

Package: half
Status: install reinstreq half-installed
Version: 2

Package: marked-for-removal
Status: deinstall ok installed
Version: 7
Multi-Line-Field:
 Version: 99

Package: no-version
Status: install ok installed
"""


def _python_debian(path):
    from debian.deb822 import Deb822
    out = {}
    with open(path, "rb") as f:
        for para in Deb822.iter_paragraphs(f, fields=["Package", "Status", "Version"], use_apt_pkg=False):
            if para.get("Status", "").endswith(" installed"):
                out[para["Package"]] = para.get("Version", "")
    return out


def test_installed_byte_scan_matches_python_debian(tmp_path):
    status = tmp_path / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True)
    status.write_bytes(STATUS)
    found = packages_index.installed(tmp_path)
    assert found == _python_debian(status)
    assert found == {"libc6": "2.41-12+deb13u5", "on-hold": "3:4.5~rc1-2", "marked-for-removal": "7",
                     "no-version": ""}


def test_installed_matches_python_debian_on_this_host():
    status = "/var/lib/dpkg/status"
    assert packages_index.installed("/") == _python_debian(status)
    assert len(packages_index.installed("/")) > 50


@pytest.mark.parametrize("address", ["192.0.2.0", "192.0.2.255", "198.51.100.7", "203.0.113.1",
                                     "192.0.20.5", "192.0.3.1", "10.192.0.2", "198.51.10.1", "203.0.11.3"])
def test_documentation_prefixes_decide_like_ipaddress(address):
    by_network = any(ipaddress.IPv4Address(address) in n for n in hostcheck.DOC_NETWORKS)
    assert address.startswith(hostcheck.DOC_PREFIXES) == by_network


@pytest.mark.parametrize("argv, kw", [
    (["sh", "-c", "echo out; echo err >&2; exit 3"], {}),
    (["sh", "-c", "kill -9 $$"], {}),
    (["cat"], {"input": "one\ntwo"}),
    (["sh", "-c", 'printf "%s" "$NRB_PROBE_TEST"'], {"env": {"NRB_PROBE_TEST": "x y"}}),
    (["pwd"], {"cwd": "/usr"}),
    (["nrb-no-such-command-here"], {}),
])
def test_a_probe_answers_like_a_streamed_command(argv, kw):
    probe = Runner().run(argv, probe=True, check=False, **kw)
    streamed = Runner().run(argv, check=False, **kw)
    assert (probe.exit_code, probe.stdout, probe.stderr) == (streamed.exit_code, streamed.stdout, streamed.stderr)


def test_a_probe_reads_bytes_that_are_not_utf8():
    # (The streamed path fails on these: sh hands its callback bytes.)
    assert Runner().run(["sh", "-c", "printf 'a\\377b\\n'"], probe=True).stdout == "a\ufffdb\n"


def test_a_probe_is_logged_and_times_out(tmp_path):
    log = open(tmp_path / "log", "w")
    res = Runner(log=log).run(["sh", "-c", "echo shown; exec sleep 30"], probe=True, check=False, timeout=0.5)
    log.close()
    assert res.exit_code == 124 and res.stdout == "shown\n"
    assert "shown\n" in (tmp_path / "log").read_text()


def test_start_up_leaves_the_heavy_modules_alone():
    """What every command imports (the no-op resume's floor): none of these."""
    code = ("import sys, nfsroot_builder.cli; "
            "print(' '.join(m for m in ('debian.deb822', 'debian.debian_support', 'urllib.request', 'ssl', "
            "'sh', 'rich.table', 'rich.live') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []
