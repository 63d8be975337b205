"""Exceptions the CLI maps to exit codes (see cli.py)."""
from __future__ import annotations


class NfsrootError(Exception):
    exit_code = 1


class ConfigError(NfsrootError):
    """Bad configuration or usage; nothing was changed."""
    exit_code = 2

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"{source}: {len(problems)} problem(s):"]
        lines += [f"  {field}: {msg}" for field, msg in problems]
        super().__init__("\n".join(lines))


class UsageError(NfsrootError):
    exit_code = 2


class CommandFailed(NfsrootError):
    """A command exited non-zero. Carries what an admin needs to act on it."""

    def __init__(self, argv_shown: str, exit_code: int, output_tail: list[str], log: str | None = None):
        self.argv_shown = argv_shown
        self.returncode = exit_code
        self.output_tail = output_tail
        self.log = log
        msg = f"command failed (exit {exit_code}): {argv_shown}"
        if output_tail:
            msg += "\n  last output:\n" + "\n".join("    " + line for line in output_tail)
        if log:
            msg += f"\n  full log: {log}"
        super().__init__(msg)


class ValidationFailed(NfsrootError):
    """A rendered file was rejected by its daemon's own checker."""


class StepFailed(NfsrootError):
    def __init__(self, step: str, cause: BaseException, log: str | None = None):
        self.step = step
        self.cause = cause
        msg = f"step '{step}' failed: {cause}"
        # A failed command names its log already; any other failure (a checker's
        # verdict, a missing kernel) names the step's log here.
        if log and getattr(cause, "log", None) is None:
            msg += f"\n  full log: {log}"
        super().__init__(msg)


class Locked(NfsrootError):
    exit_code = 3


class StateError(NfsrootError):
    exit_code = 2


class Interrupted(NfsrootError):
    """SIGTERM/SIGINT: raised so that every context manager unwinds."""
    exit_code = 130
