"""The guard of tests/conftest.py: a unit test cannot reach the network or
start a process, even when the code under test swallows the error."""
from __future__ import annotations

import socket
import subprocess
import urllib.error
import urllib.request

import pytest

from nfsroot_builder.runner import Runner

# The guard raises an AssertionError (conftest.Refused): not an OSError that
# code under test would take for "no network" and work around.
Refused = AssertionError


def test_sockets_and_processes_are_refused(_no_real_processes_or_sockets):
    attempts = _no_real_processes_or_sockets
    with pytest.raises(Refused):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(Refused):
        socket.create_connection(("127.0.0.1", 9))
    with pytest.raises(Refused):
        socket.getaddrinfo("deb.debian.org", 80)
    with pytest.raises(Refused):
        subprocess.run(["true"])
    with pytest.raises(Refused):
        Runner().run(["true"])
    assert len(attempts) == 5, attempts
    attempts.clear()   # seen: the fixture's check at the end would fail this test


def test_a_swallowed_refusal_is_still_recorded(_no_real_processes_or_sockets):
    attempts = _no_real_processes_or_sockets
    try:   # what library code does: catch everything and go on
        urllib.request.urlopen("http://127.0.0.1:9/dists/trixie/Release", timeout=1)
    except (AssertionError, urllib.error.URLError, OSError):
        pass
    assert attempts and "socket" in attempts[0], attempts
    attempts.clear()
