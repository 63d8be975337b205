"""The Step contract. A step is small and cannot tell dry-run from real:
it changes things only through ctx.runner and ctx.files."""
from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, field
from typing import ClassVar

from ..context import Context


@dataclass
class StepResult:
    changed: bool = False
    restart: set[str] = field(default_factory=set)   # services whose config changed
    outputs: dict = field(default_factory=dict)       # facts later steps need (kernel version)


class Step:
    name: ClassVar[str]
    version: ClassVar[int] = 1
    # Steps whose outputs this one uses: if one of them re-runs, so does this.
    needs: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def summary(cls) -> str:
        return inspect.getdoc(cls).splitlines()[0]

    @classmethod
    def doc(cls) -> str:
        return inspect.getdoc(cls) or ""

    def fingerprint(self, ctx: Context) -> dict:
        """The config values this step depends on (never secrets in clear)."""
        return {}

    def verify(self, ctx: Context) -> list[str]:
        """Problems with this step's outputs as they are on disk now. No side effects."""
        return []

    def run(self, ctx: Context) -> StepResult:
        raise NotImplementedError


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def secret_digest(value: str) -> str:
    """A salted-free hash is fine here: the input is already a crypt hash."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:16]
