"""root.kernel: a node boots the kernel the config names, not the newest.

The kernel is older than the trixie root's stock one: the build host's
bookworm kernel package (`apt-get download` from the host's own apt
sources), given as a root.local_debs .deb and selected by its release.

The same boot proves boot.transport = "http" (it was test_boot_http.py's
boot of the shared mm root, ~55 s more): the loader comes over TFTP, kernel
and initrd from the lab's nginx (the staged drop-in of the tftp-server
step); the access log shows the chosen kernel and its whole initrd sent.
"""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from nfsroot_builder.kernels import installed_releases

from helpers import nfsroot_build, require
from root_builds import new_build, remove_stage
from test_lab_boot import assert_nfs_root, boot, lab_procs, lab_up, report_times  # noqa: F401 (lab_up: a fixture)


def host_kernel_deb(dest) -> tuple[str, str]:
    """(path of the .deb, its kernel release): the newest linux-image-6.1.0-N-amd64
    the host's apt knows (bookworm's kernel), downloaded into dest."""
    found = subprocess.run(["apt-cache", "search", "--names-only", r"^linux-image-6\.1\.0-[0-9]+-amd64$"],
                           capture_output=True, text=True).stdout.split("\n")
    names = sorted((line.split()[0] for line in found if line.strip()),
                   key=lambda n: int(re.search(r"6\.1\.0-([0-9]+)-", n).group(1)))
    require(bool(names), "the host's apt sources hold no bookworm kernel (linux-image-6.1.0-N-amd64)")
    subprocess.run(["apt-get", "download", names[-1]], cwd=dest, check=True, capture_output=True)
    deb = next(dest.glob(f"{names[-1]}_*.deb"))
    return str(deb), names[-1].removeprefix("linux-image-")


@pytest.fixture
def older_kernel_build(tmp_path_factory):
    debs = tmp_path_factory.mktemp("kernel-debs")
    deb, release = host_kernel_deb(debs)
    b = new_build(tmp_path_factory, "kern", bootstrapper="mmdebstrap", layout="tmpfs", loader="grub",
                  local_debs=[deb])
    text = b.cfg.read_text().replace("[root]\n", f'[root]\nkernel = "{release}"\n', 1)
    assert "timeout = 0\n" in text
    b.cfg.write_text(text.replace("timeout = 0\n", 'timeout = 0\ntransport = "http"\n', 1))
    yield b, release
    remove_stage(b.stage)


def test_older_kernel_from_local_deb_boots(older_kernel_build, lab_up):  # noqa: F811
    b, release = older_kernel_build
    require(shutil.which("nginx") is not None, "nginx not installed")
    nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, check=True)
    kernels = installed_releases(b.root)
    # Both: the stock (newer) kernel of linux-image-amd64 and the chosen older one.
    assert release in kernels and kernels[-1] != release, kernels
    assert b.kernel() == release
    assert (b.tftp / f"kern/vmlinuz-{release}").exists()
    assert not (b.tftp / f"kern/vmlinuz-{kernels[-1]}").exists()
    menu = (b.tftp / "boot/grub/grub.cfg-01-52-54-00-12-35-01").read_text()
    assert f"vmlinuz-{release}" in menu and f"initrd.img-{release}" in menu
    # boot.transport = "http": GRUB's http module, and nginx's drop-in serving the TFTP tree.
    assert "insmod http" in menu and "linux (http,192.168.0.1)/" in menu
    dropin = (b.stage / "etc/nginx/conf.d/nfsroot-build-kern.conf").read_text()
    assert "listen 192.168.0.1:80;" in dropin and f"root {b.tftp};" in dropin
    st = nfsroot_build("status", "-c", b.cfg, "--prefix", b.stage, check=True)
    assert "stale" not in st.stdout + st.stderr
    lab_up(b)
    assert "nginx" in lab_procs(b)
    res, results = boot(b, "n1")
    report_times(res)
    assert_nfs_root(b, results["n1"])
    assert results["n1"]["facts"]["kernel"] == release
    assert f"kernel {release}" in res.stderr
    access = (b.stage / "var/lib/nfsroot-build/kern/lab/logs/nginx-access.log").read_text()
    initrd = f"initrd.img-{release}"
    # '<client> [<time>] "GET <path> HTTP/1.1" 200 <bytes> <seconds>': the
    # whole initrd went to n1 over HTTP.
    got = re.findall(rf'^192\.168\.0\.101 \[[^]]+\] "GET /kern/{re.escape(initrd)} HTTP/1\.\d" 200 (\d+) ', access, re.M)
    assert got, access
    assert int(got[-1]) == (b.tftp / "kern" / initrd).stat().st_size
    assert re.search(rf'"GET /kern/vmlinuz-{re.escape(release)} HTTP/1\.\d" 200 ', access), access
