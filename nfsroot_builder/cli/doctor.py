"""`nfsroot-build doctor` and `nfsroot-build undo`: their command lines only
(the checks and fixes: nfsroot_builder/doctor/, undo: undo.py)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .. import groups, session
from .common import DEFAULT_CONFIG, ConfigOpt, DryOpt, JsonOpt, PrefixOpt, StateOpt, err, guarded, make_ctx
from .common import say as _say
from .progress import ConsoleProgress

doctor_app = typer.Typer()


@doctor_app.command()
@guarded
def doctor(config: ConfigOpt = DEFAULT_CONFIG, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None,
           fix: Annotated[bool, typer.Option("--fix", help="apply the fixes that are safe "
                                             "(with --dry-run: print them)")] = False,
           dry_run: DryOpt = False,
           as_json: JsonOpt = False):
    """Check for the seed's common problems and newer ones; --fix repairs what is safe."""
    from ..doctor import apply_fixes, run_checks
    real_fix = fix and not dry_run
    ctx = make_ctx(config, prefix, state_dir, dry_run=not real_fix, json_stdout=as_json, version="current")
    if real_fix:
        session.require_root("doctor --fix")
    outcome: dict[str, str] = {}
    with session.locked(ctx):
        before = run_checks(ctx)
        after = before
        if fix:
            pipe = session.pipeline(ctx, progress=ConsoleProgress(err, live=real_fix and not as_json))
            outcome = apply_fixes(ctx, before, pipe)
            if real_fix and outcome:
                after = run_checks(ctx)
    rows = []
    for old, new in zip(before, after, strict=True):
        row = new.as_dict()
        row["fixed"] = old.status != "ok" and new.status == "ok" and new.check in outcome
        row["fix_outcome"] = outcome.get(new.check)
        line = f"{new.status:<4}  {new.check}: {new.reason}"
        if row["fixed"]:
            line = f"ok    {new.check}: fixed ({old.reason})"
        elif new.status != "ok":
            if new.check in outcome and outcome[new.check] != "fixed":
                line += f" — --fix could not fix it ({outcome[new.check].removeprefix('fix failed: ')}); " \
                        f"manual fix: {new.fix}"
            elif new.manual or (real_fix and new.check in outcome):
                line += f" — manual fix: {new.fix}"
            elif fix and dry_run:
                line += f" — fix (--fix would do it, commands above): {new.fix}"
            else:
                line += f" — fix (doctor --fix does it): {new.fix}"
        rows.append(row)
        if not as_json:
            _row(line)
    for what, result in outcome.items():
        if what.startswith("restart ") and not as_json:
            _row(f"fail  {what}: {result}")
    failed = [r for r in rows if r["status"] == "fail"] + [
        1 for w, r in outcome.items() if w.startswith("restart ") and r != "fixed"]
    if as_json:
        print(json.dumps({"checks": rows, "ok": not failed}, indent=2))
    else:
        counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "warn", "fail")}
        _row(f"{len(rows)} checks: {counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail")
    if failed:
        raise typer.Exit(1)


def _row(line: str) -> None:
    """A line of doctor's table: stdout, like `status` and `check` (issue 14
    point 6), so it pipes; progress of --fix stays on stderr."""
    print(line, flush=True)


def _remove_state_dir(path: Path) -> None:
    """A state dir after `undo --purge-root`: its lock files, then the directory if that left it empty."""
    for leftover in ("lock", "lock.pid"):
        (path / leftover).unlink(missing_ok=True)
    try:
        path.rmdir()
    except OSError:
        pass


@doctor_app.command()
@guarded
def undo(config: ConfigOpt = DEFAULT_CONFIG, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None, dry_run: DryOpt = False,
         purge_root: Annotated[bool, typer.Option("--purge-root", help="also delete the built root "
                                                  "(refused while anything is mounted under it)")] = False):
    """Remove what the tool wrote on the server and restore the files it changed."""
    from ..undo import undo as do_undo
    ctx = make_ctx(config, prefix, state_dir, dry_run=dry_run, version="current")
    if not dry_run:
        session.require_root("undo")
    # Each group root's build first (its kernel in TFTP, its tree with --purge-root: docs/groups.md).
    subs = [groups.context(ctx, gr, dry_run=dry_run, version="current")
            for gr in groups.stored_roots(ctx.config, ctx.state_dir)]
    if not ctx.state.files and not purge_root and not any(sub.state.files for sub in subs):
        _say(f"nothing to undo: the state in {ctx.state_dir} records no files")
        return
    reports = []
    for sub in subs:
        with session.locked(sub):
            reports.append(do_undo(sub, purge_root=purge_root))
        if purge_root and not dry_run:
            _remove_state_dir(sub.state_dir)
    with session.locked(ctx):
        report = do_undo(ctx, purge_root=purge_root)
    for sub_report in reports:
        report.done[:0] = sub_report.done
        report.restarted[:0] = [s for s in sub_report.restarted if s not in report.restarted]
        report.problems[:0] = sub_report.problems
    if purge_root and not dry_run:
        _remove_state_dir(ctx.state_dir / "roots")
        _remove_state_dir(ctx.state_dir)
    verb = "would be " if dry_run else ""
    for line in report.done:
        _say(f"  {line}" if not dry_run else f"  (dry-run) {line}")
    for service in report.restarted:
        _say(f"  {verb}restarted {service}")
    for problem in report.problems:
        _say(f"error: {problem}")
    _say(f"undo: {len(report.done)} change(s){' planned' if dry_run else ''}, "
         f"{len(report.problems)} problem(s)")
    if report.problems:
        raise typer.Exit(1)
