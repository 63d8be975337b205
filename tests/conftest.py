"""Shared fixtures. Unit and CLI tests may not start real processes nor open
sockets: the guard makes the real Runner, subprocess and every socket fail
loudly there (integration/e2e/bench tests may)."""
from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from nfsroot_builder import config as config_mod
from nfsroot_builder.runner import Runner

from helpers import example_text

REAL_PROCESS_DIRS = ("integration", "e2e", "bench", "production")

# The real roots (built once per session) for the integration and e2e tests.
pytest_plugins = ["root_builds"]


def pytest_collection_modifyitems(items):
    """Mark each test by its directory: `-m "not e2e"` skips the boots."""
    for item in items:
        for kind in ("integration", "e2e"):
            if kind in Path(str(item.fspath)).parts:
                item.add_marker(getattr(pytest.mark, kind))


class Refused(AssertionError):
    """A unit test reached for the world outside the process."""


@pytest.fixture(autouse=True)
def _no_real_processes_or_sockets(request, monkeypatch):
    if any(part in REAL_PROCESS_DIRS for part in Path(str(request.fspath)).parts):
        yield []
        return
    attempts: list[str] = []

    def refuser(what, method=True):
        def refuse(*args, **kwargs):
            # Recorded as well as raised: code under test may catch the error
            # (the CLI maps exceptions to an exit code), and the test must fail anyway.
            detail = f"{what}: {list(args[1:] if method else args)[:2]!r}"
            attempts.append(detail)
            raise Refused(f"unit test tried to use the outside world: {detail}")
        return refuse

    monkeypatch.setattr(Runner, "_execute", refuser("real process"))
    monkeypatch.setattr(Runner, "spawn", refuser("real process"))
    monkeypatch.setattr(subprocess.Popen, "__init__", refuser("subprocess"))
    # Every TCP/UDP/unix socket is made by socket.socket (create_connection,
    # urllib, http.client go through it); name resolution is network traffic too.
    monkeypatch.setattr(socket.socket, "__init__", refuser("socket"))
    monkeypatch.setattr(socket.socket, "connect", refuser("socket.connect"))
    monkeypatch.setattr(socket, "getaddrinfo", refuser("socket.getaddrinfo", method=False))
    monkeypatch.setattr(socket, "create_connection", refuser("socket.create_connection", method=False))
    yield attempts
    assert not attempts, f"unit test tried to use the outside world: {attempts}"


@pytest.fixture
def seed_text() -> str:
    return example_text("seed")


@pytest.fixture
def seed_config(seed_text) -> config_mod.Config:
    return config_mod.parse(seed_text)
