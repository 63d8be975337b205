#!/usr/bin/env python3
"""Write docs/steps.md from the steps' docstrings (the single source).

    python3 docs/gen_steps.py            # rewrite docs/steps.md
    python3 docs/gen_steps.py --check    # exit 1 if it is out of date
"""
from __future__ import annotations

import sys
from pathlib import Path

from nfsroot_builder.steps import STEPS

OUT = Path(__file__).with_name("steps.md")


def render() -> str:
    out = ["# Step reference", "",
           "Generated from the steps' docstrings by `docs/gen_steps.py`; do not edit by hand.",
           "The steps run in this order (`nfsroot-build list`); `needs` are the steps whose",
           "results a step uses: when one of them runs again, so does the step.", ""]
    for i, step in enumerate(STEPS, 1):
        out.append(f"{i}. [`{step.name}`](#{step.name}): {step.summary()}")
    for step in STEPS:
        doc = step.doc().splitlines()
        out += ["", f"## {step.name}", "", f"**{doc[0]}**", ""]
        if step.needs:
            out += ["Needs: " + ", ".join(f"`{n}`" for n in step.needs) + ".", ""]
        out += "\n".join(doc[1:]).strip("\n").splitlines()
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run python3 docs/gen_steps.py", file=sys.stderr)
            sys.exit(1)
        sys.exit(0)
    OUT.write_text(text)
