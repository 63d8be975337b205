"""Shared fixtures. Unit and CLI tests may not start real processes: the
guard makes the real Runner fail loudly there (integration/e2e tests may)."""
from __future__ import annotations

from pathlib import Path

import pytest

from nfsroot_builder import config as config_mod
from nfsroot_builder.runner import Runner

from helpers import example_text

REAL_PROCESS_DIRS = ("integration", "e2e", "bench")

# The real roots (built once per session) for the integration and e2e tests.
pytest_plugins = ["root_builds"]


def pytest_collection_modifyitems(items):
    """Mark each test by its directory: `-m "not e2e"` skips the boots."""
    for item in items:
        for kind in ("integration", "e2e"):
            if kind in Path(str(item.fspath)).parts:
                item.add_marker(getattr(pytest.mark, kind))


@pytest.fixture(autouse=True)
def _no_real_processes(request, monkeypatch):
    if any(part in REAL_PROCESS_DIRS for part in Path(str(request.fspath)).parts):
        return
    def refuse(self, argv, *a, **k):
        raise AssertionError(f"unit test tried to run a real process: {argv}")
    monkeypatch.setattr(Runner, "_execute", refuse)
    monkeypatch.setattr(Runner, "spawn", refuse)


@pytest.fixture
def seed_text() -> str:
    return example_text("seed")


@pytest.fixture
def seed_config(seed_text) -> config_mod.Config:
    return config_mod.parse(seed_text)
