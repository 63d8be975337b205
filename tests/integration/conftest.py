"""Integration tests run the real CLI as a subprocess, as root, with the real
tools (dhcpd -t, chroot, mmdebstrap). They skip only when the machine truly
lacks root; under CI=true a missing prerequisite fails instead."""
from __future__ import annotations

import os

import pytest

from helpers import require


@pytest.fixture(autouse=True)
def _root():
    require(os.geteuid() == 0, "needs root")


@pytest.fixture
def probe_repo(tmp_path):
    """A signed local file: repository holding nrb-probe 1.0 (tests/local_repo.py)."""
    import shutil

    from local_repo import LocalRepo
    for tool in ("gpg", "apt-ftparchive", "dpkg-deb"):
        require(shutil.which(tool) is not None, f"{tool} not installed")
    repo = LocalRepo(tmp_path)
    repo.add("nrb-probe", "1.0")
    yield repo
    repo.stop()
