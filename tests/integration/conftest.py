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
