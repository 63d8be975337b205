"""Fixtures for the in-process CLI tests (typer's CliRunner)."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from nfsroot_builder import runner as runner_mod

from fakes import FakeRunner, fake_suite


@pytest.fixture
def cli(monkeypatch):
    # Probes (dpkg-query) get the fake's answer: every package installed.
    monkeypatch.setattr(runner_mod.Runner, "_execute",
                        lambda self, argv, *a: FakeRunner()._execute(argv, *a))
    fake_suite(monkeypatch)
    return CliRunner()
