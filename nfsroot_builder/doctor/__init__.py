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

from .. import services, session
from ..context import Context
from ..errors import NfsrootError, StepFailed
from ..pipeline import Pipeline
from ..steps.base import Step, StepResult
from . import group_checks, root_checks, server_checks
from .base import CHECKS, ORDER, Finding, check, ok

__all__ = ["CHECKS", "ORDER", "Finding", "apply_fixes", "check", "ok", "run_checks"]

# The modules whose @check functions fill CHECKS when they are imported.
CHECK_MODULES = (root_checks, server_checks, group_checks)


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


class FixStep(Step):
    """Apply doctor's automatic fix for one check (see `nfsroot-build doctor`)."""

    def __init__(self, finding: Finding):
        self.finding = finding
        self.name = f"doctor-fix-{finding.check}"
        self.restart: set[str] = set()

    def summary(self) -> str:
        return self.finding.fix

    def run(self, ctx: Context) -> StepResult:
        # The services are restarted by RestartStep right after the fixes,
        # not left pending for the build's `services` step.
        self.restart = set(self.finding.apply(ctx) or ())
        return StepResult(changed=True)


class RestartStep(Step):
    """Restart a service whose configuration doctor's fixes changed."""

    def __init__(self, service: str):
        self.service = service
        self.name = f"doctor-restart-{service}"

    def summary(self) -> str:
        return f"restart {self.service} (doctor --fix changed its configuration)"

    def run(self, ctx: Context) -> StepResult:
        services.restart(ctx, self.service)
        return StepResult(changed=True)


def _first_line(e: StepFailed) -> str:
    return str(e.cause).splitlines()[0]


def apply_fixes(ctx: Context, findings: list[Finding], pipe: Pipeline | None = None) -> dict[str, str]:
    """Apply the automatic fix of every finding that is not ok, then restart
    the services they changed, each as a step of the pipeline (its log, its
    state record, its file record for undo, the dry-run transcript).
    Returns check -> "fixed" | "fix failed: ..." (and "restart <service>" -> ...)."""
    pipe = pipe or session.pipeline(ctx)
    outcome: dict[str, str] = {}
    restarts: set[str] = set()
    fixable = [f for f in findings if f.status != "ok" and not f.manual]
    pipe.expect(len(fixable))
    for f in fixable:
        fix = FixStep(f)
        try:
            pipe.run_step(fix)
            outcome[f.check] = "fixed"
            restarts |= fix.restart
        except StepFailed as e:
            outcome[f.check] = f"fix failed: {_first_line(e)}"
    pipe.expect(len(fixable) + len(restarts))
    for service in sorted(restarts):
        try:
            pipe.run_step(RestartStep(service))
        except StepFailed as e:
            outcome[f"restart {service}"] = f"fix failed: {_first_line(e)}"
    return outcome
