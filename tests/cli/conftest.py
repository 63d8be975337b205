"""Fixtures for the in-process CLI tests (typer's CliRunner)."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from nfsroot_builder import packages_index
from nfsroot_builder import runner as runner_mod

from fakes import FakeRunner


@pytest.fixture
def cli(monkeypatch):
    # Probes (dpkg-query) get the fake's answer: every package installed.
    monkeypatch.setattr(runner_mod.Runner, "_execute",
                        lambda self, argv, *a: FakeRunner()._execute(argv, *a))
    # The preflight's mirror probe: the URL is checked, every package exists, and no socket is opened.
    monkeypatch.setattr(packages_index, "available", lambda ctx: packages_index.mirror(ctx) and Everything())
    return CliRunner()


class Everything:
    def __contains__(self, name) -> bool:
        return True

