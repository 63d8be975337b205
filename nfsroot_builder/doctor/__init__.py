"""`doctor`: the seed's "(Not so) Common problems", and what it did not know
yet, as read-only checks with fixes.

A check looks at the server (under the prefix) and the built root and
returns one Finding: ok / warn / fail, the reason, and the fix. When the
fix is safe to apply automatically the finding carries it as a function
that changes things only through ctx.runner and ctx.files, so
`doctor --fix --dry-run` prints the commands and diffs and changes nothing.
Checks whose fix needs the admin's judgement (their own /etc/exports, a
colliding host entry) say "manual fix" and --fix leaves them alone.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import services
from ..context import Context
from ..errors import NfsrootError

Apply = Callable[[Context], "set[str] | None"]   # returns services to restart


@dataclass
class Finding:
    status: str                  # ok | warn | fail
    reason: str
    fix: str = ""                # what to do, in words (and commands)
    apply: Apply | None = field(default=None, repr=False)   # the safe automatic fix
    check: str = ""
    seed: str = ""               # the seed page's problem it covers (a..e), if any

    @property
    def manual(self) -> bool:
        return self.apply is None

    def as_dict(self) -> dict:
        return {"check": self.check, "status": self.status, "reason": self.reason, "fix": self.fix,
                "automatic_fix": not self.manual, "seed_problem": self.seed or None}


def ok(reason: str) -> Finding:
    return Finding("ok", reason)


@dataclass
class CheckDef:
    name: str
    seed: str
    fn: Callable[[Context], Finding]

    @property
    def summary(self) -> str:
        return (inspect.getdoc(self.fn) or "").splitlines()[0]


CHECKS: list[CheckDef] = []
# The seed's five problems first, in the page's order, then the newer ones.
ORDER = ("writable-exports", "root-interfaces", "root-udev-net", "nfs-state-files", "exports-syntax",
         "root-hostname", "tftp-readable", "initrd-nfs", "tftp-kernel", "dhcpd-syntax", "dhcp-nodes",
         "host-collisions", "world-no-root-squash", "nfs-threads")


def check(name: str, seed: str = ""):
    def deco(fn):
        CHECKS.append(CheckDef(name, seed, fn))
        return fn
    return deco


def run_checks(ctx: Context, only: list[str] | None = None) -> list[Finding]:
    out = []
    for c in sorted(CHECKS, key=lambda c: ORDER.index(c.name) if c.name in ORDER else len(ORDER)):
        if only and c.name not in only:
            continue
        try:
            f = c.fn(ctx)
        except (NfsrootError, OSError, ValueError) as e:
            f = Finding("fail", f"could not check: {e}", "look at the file named above")
        f.check, f.seed = c.name, c.seed
        out.append(f)
    return out


def apply_fixes(ctx: Context, findings: list[Finding]) -> dict[str, str]:
    """Apply the automatic fix of every finding that is not ok; restart what
    they changed. Returns check -> "fixed" | "fix failed: ..."."""
    outcome: dict[str, str] = {}
    restarts: set[str] = set()
    for f in findings:
        if f.status == "ok" or f.manual:
            continue
        if ctx.runner.dry_run:
            ctx.emit(f"### doctor --fix {f.check}")
        try:
            restarts |= set(f.apply(ctx) or ())
            outcome[f.check] = "fixed"
        except NfsrootError as e:
            outcome[f.check] = f"fix failed: {str(e).splitlines()[0]}"
    for service in sorted(restarts):
        try:
            services.restart(ctx, service)
        except NfsrootError as e:
            outcome[f"restart {service}"] = f"fix failed: {str(e).splitlines()[0]}"
    if not ctx.runner.dry_run:
        # Files the fixes created are the tool's from now on (FileOps noted
        # them in the state's undo record): undo removes them.
        ctx.state.save()
    return outcome


# The checks register themselves with @check (imported last: they use the above).
from . import root_checks, server_checks  # noqa: F401
