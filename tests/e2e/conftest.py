"""End-to-end: QEMU nodes PXE-boot, in a network namespace the test creates,
from roots the pipeline built. Root, /dev/net/tun, qemu-system-x86 and
NFS-Ganesha are needed; under CI=true their absence fails instead of skipping."""
from __future__ import annotations

import os
import shutil

import pytest

from helpers import require


@pytest.fixture(autouse=True)
def _prerequisites():
    require(os.geteuid() == 0, "needs root")
    require(os.path.exists("/dev/net/tun"), "no /dev/net/tun")
    for tool in ("qemu-system-x86_64", "ganesha.nfsd", "rpcbind", "in.tftpd", "dhcpd"):
        require(shutil.which(tool) is not None, f"{tool} not installed")
