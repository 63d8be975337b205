"""docs/steps.md is generated from the steps' docstrings: it must match them."""
from __future__ import annotations

import importlib.util
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_step_reference_is_up_to_date():
    spec = importlib.util.spec_from_file_location("gen_steps", DOCS / "gen_steps.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert (DOCS / "steps.md").read_text() == gen.render(), "run: .venv/bin/python docs/gen_steps.py"
