"""The Step contract. A step is small and cannot tell dry-run from real:
it changes things only through ctx.runner and ctx.files."""
from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..context import Context
from ..files import split_block


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
    # Downloads from root.mirror: the preflight then probes the mirror first.
    uses_mirror: ClassVar[bool] = False

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


def stale_files(wanted: dict[Path, str | bytes | None]) -> list[str]:
    """The paths whose bytes on disk are not the wanted ones (None: must be
    absent): what verify() reports, so a hand edit makes the step stale."""
    bad = []
    for path, want in wanted.items():
        data = want.encode() if isinstance(want, str) else want
        try:
            have = Path(path).read_bytes()
        except OSError:
            have = None
        if have != data:
            bad.append(str(path))
    return bad


def stale_blocks(wanted: dict[Path, str], build: str | None, comment: str = "#") -> list[str]:
    """The files whose managed block of this build (named in its markers)
    is missing or not the wanted body."""
    bad = []
    for path, body in wanted.items():
        try:
            have = split_block(Path(path).read_text(), comment, build)[1]
        except (OSError, ValueError):
            have = None
        if have != (body if body.endswith("\n") or not body else body + "\n"):
            bad.append(str(path))
    return bad


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def secret_digest(value: str) -> str:
    """A salted-free hash is fine here: the input is already a crypt hash."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:16]
