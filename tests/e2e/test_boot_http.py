"""boot.transport = "http": the loader comes over TFTP, kernel and initrd from
the lab's nginx (the staged drop-in of the tftp-server step), on the shared
mm root (GRUB; switched for this test, put back afterwards)."""
from __future__ import annotations

import re
import shutil

from helpers import nfsroot_build, require
from test_lab_boot import boot_all_from_nfs, edit_config, lab_procs, lab_up  # noqa: F401 (fixtures)


def test_kernel_and_initrd_over_http_grub(mm, lab_up, edit_config):  # noqa: F811
    require(shutil.which("nginx") is not None, "nginx not installed")
    edit_config(mm, "timeout = 0\n", 'timeout = 0\ntransport = "http"\n')
    nfsroot_build("all", "-c", mm.cfg, "--prefix", mm.stage, "--resume", check=True)
    dropin = (mm.stage / "etc/nginx/conf.d/nfsroot-build-mm.conf").read_text()
    assert "listen 192.168.0.1:80;" in dropin and f"root {mm.tftp};" in dropin
    menu = (mm.tftp / "boot/grub/grub.cfg-01-52-54-00-12-35-01").read_text()
    assert "insmod http" in menu and "linux (http,192.168.0.1)/" in menu
    lab_up(mm)
    assert "nginx" in lab_procs(mm)
    boot_all_from_nfs(mm, "n1")
    access = (mm.stage / "var/lib/nfsroot-build/mm/lab/logs/nginx-access.log").read_text()
    initrd = f"initrd.img-{mm.kernel()}"
    # '<client> [<time>] "GET <path> HTTP/1.1" 200 <bytes> <seconds>': the
    # whole initrd went to n1 over HTTP.
    got = re.findall(rf'^192\.168\.0\.101 \[[^]]+\] "GET /mm/{re.escape(initrd)} HTTP/1\.\d" 200 (\d+) ', access, re.M)
    assert got, access
    assert int(got[-1]) == (mm.tftp / "mm" / initrd).stat().st_size
    assert re.search(rf'"GET /mm/vmlinuz-{re.escape(mm.kernel())} HTTP/1\.\d" 200 ', access), access
