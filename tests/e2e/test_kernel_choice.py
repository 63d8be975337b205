"""root.kernel: a node boots the kernel the config names, not the newest.

The kernel is older than the trixie root's stock one: the build host's
bookworm kernel package (`apt-get download` from the host's own apt
sources), given as a root.local_debs .deb and selected by its release.
"""
from __future__ import annotations

import re
import subprocess

import pytest

from nfsroot_builder.kernels import installed_releases

from helpers import nfsroot_build, require
from root_builds import new_build, remove_stage
from test_lab_boot import assert_nfs_root, boot, lab_up, report_times  # noqa: F401 (lab_up: a fixture)


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
    b.cfg.write_text(b.cfg.read_text().replace("[root]\n", f'[root]\nkernel = "{release}"\n', 1))
    yield b, release
    remove_stage(b.stage)


def test_older_kernel_from_local_deb_boots(older_kernel_build, lab_up):  # noqa: F811
    b, release = older_kernel_build
    nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, check=True)
    kernels = installed_releases(b.root)
    # Both: the stock (newer) kernel of linux-image-amd64 and the chosen older one.
    assert release in kernels and kernels[-1] != release, kernels
    assert b.kernel() == release
    assert (b.tftp / f"kern/vmlinuz-{release}").exists()
    assert not (b.tftp / f"kern/vmlinuz-{kernels[-1]}").exists()
    menu = (b.tftp / "boot/grub/grub.cfg-01-52-54-00-12-35-01").read_text()
    assert f"vmlinuz-{release}" in menu and f"initrd.img-{release}" in menu
    st = nfsroot_build("status", "-c", b.cfg, "--prefix", b.stage, check=True)
    assert "stale" not in st.stdout + st.stderr
    lab_up(b)
    res, results = boot(b, "n1")
    report_times(res)
    assert_nfs_root(b, results["n1"])
    assert results["n1"]["facts"]["kernel"] == release
    assert f"kernel {release}" in res.stderr
