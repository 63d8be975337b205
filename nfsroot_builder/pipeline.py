"""Order, checkpoints, resume and staleness.

A step is *done* when it finished with the fingerprint the config gives now,
its outputs verify, and no step it needs ran after it. Otherwise it is
pending / failed / interrupted / stale, and ``why`` says which.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import pathguard
from .context import Context
from .errors import Interrupted, NfsrootError, StepFailed, UsageError
from .runlogs import RunLogs
from .state import now
from .steps.base import Step

INPUT_INLINE_MAX = 256   # characters of JSON; a larger input is recorded by its digest


@dataclass
class Plan:
    step: Step
    status: str          # done | pending | failed | interrupted | stale
    why: str = ""

    @property
    def needs_run(self) -> bool:
        return self.status != "done"


def _changed_keys(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [k for k in keys if old.get(k) != new.get(k)]


class Progress:
    """What the pipeline tells whoever shows a run's progress (the CLI).

    Steps never see it: the pipeline reports around each step, and the
    Runner hands it the output lines of the step's commands.
    """

    def step_started(self, step: Step, number: int, total: int) -> None:
        pass

    def output_line(self, line: str) -> None:
        pass

    def step_finished(self, step: Step, outcome: str, seconds: float) -> None:
        """outcome: changed | unchanged | failed | interrupted."""


class Pipeline:
    def __init__(self, ctx: Context, steps: Sequence[type[Step]], progress: Progress | None = None,
                 preflight: Callable[[list[Step]], None] | None = None):
        self.ctx = ctx
        self.steps = [cls() for cls in steps]
        self.by_name = {s.name: s for s in self.steps}
        self.progress = progress or Progress()
        self.logs = RunLogs(ctx.state_dir)
        self._number, self._total = 0, 0   # "step N of M" of this run
        # Called with the steps about to run, before the first one: it raises
        # to stop the run while nothing is changed yet (session.pipeline).
        self.preflight = preflight

    def expect(self, steps: int) -> None:
        """The M of "step N of M" when steps are run one by one (doctor's fixes)."""
        self._total = steps

    def step(self, name: str) -> Step:
        if name not in self.by_name:
            raise UsageError(f"no step named {name!r}; 'nfsroot-build list' shows them")
        return self.by_name[name]

    def fingerprint(self, step: Step) -> tuple[str, dict]:
        """(fingerprint, the inputs as recorded in the state).

        The fingerprint hashes the full inputs. The state records small
        inputs as they are and large ones (the node list) by their digest:
        enough to say *which* key changed, and the state stays small (it is
        rewritten after every step; 10,000 nodes in three steps' inputs made
        each write 2.7 MB).
        """
        inputs = {**step.fingerprint(self.ctx), "step-version": step.version}
        recorded = {}
        texts = {}
        for key, value in inputs.items():
            text = texts[key] = json.dumps(value, sort_keys=True, default=str)
            recorded[key] = value if len(text) <= INPUT_INLINE_MAX else \
                "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]
        # digest(inputs), from the texts above: each input serialized once
        # (json.dumps of a dict joins its items with ", " and ": ").
        whole = "{" + ", ".join(f"{json.dumps(k)}: {texts[k]}" for k in sorted(texts)) + "}"
        return hashlib.sha256(whole.encode()).hexdigest()[:16], recorded

    def plan(self) -> list[Plan]:
        plans: list[Plan] = []
        will_run: set[str] = set()
        for step in self.steps:
            rec = self.ctx.state.step(step.name)
            fp, inputs = self.fingerprint(step)
            status, why = "done", ""
            if not rec:
                status, why = "pending", "never ran"
            elif rec.get("status") == "failed":
                status, why = "failed", rec.get("error", "failed")
            elif rec.get("status") == "running":
                status, why = "interrupted", "a run stopped in the middle of this step"
            elif rec.get("fingerprint") != fp:
                keys = _changed_keys(rec.get("inputs", {}), inputs)
                status, why = "stale", "config changed: " + ", ".join(keys or ["(step changed)"])
            else:
                deps = [d for d in step.needs if d in will_run]
                later = [d for d in step.needs
                         if self.ctx.state.step(d).get("finished", "") > rec.get("finished", "")]
                problems = step.verify(self.ctx)
                if deps:
                    status, why = "stale", "re-runs because it needs " + ", ".join(deps)
                elif later:
                    status, why = "stale", "ran before " + ", ".join(later) + " last ran"
                elif problems:
                    status, why = "stale", "; ".join(problems)
            if status != "done":
                will_run.add(step.name)
            plans.append(Plan(step, status, why))
        return plans

    def check(self, *, resume: bool = False, from_step: str | None = None, to_step: str | None = None,
              only: str | None = None) -> tuple[list[Plan], int, int]:
        """Before anything changes: the disk guard and the preflight for the
        steps the run would run (once: a caller that runs several pipelines
        - the group roots', then the build's - checks them all first).
        Returns the plan and the selected range."""
        for name in (from_step, to_step, only):
            if name:
                self.step(name)
        # Before anything is planned or changed: never build over / or a directory we did not make.
        pathguard.check_disk(self.ctx)
        if only:
            from_step = to_step = only
        plans = self.plan() if resume else [Plan(s, "pending") for s in self.steps]
        names = [p.step.name for p in plans]
        first = names.index(from_step) if from_step else 0
        last = names.index(to_step) if to_step else len(names) - 1
        if first > last:
            raise UsageError(f"--from {from_step} comes after --to {to_step}")
        selected = [p for i, p in enumerate(plans) if (i == first if only else first <= i <= last)]
        if self.preflight and any(p.needs_run or not resume for p in selected):
            self.preflight([p.step for p in selected if p.needs_run or not resume])
            self.preflight = None   # passed: not again in run()
        return plans, first, last

    def run(self, *, resume: bool = False, from_step: str | None = None, to_step: str | None = None,
            only: str | None = None) -> list[tuple[str, str]]:
        """Run the pipeline; returns [(step, "changed" | "unchanged" | "done" | "not selected")].

        "done": skipped by --resume because it is done and not stale.
        """
        plans, first, last = self.check(resume=resume, from_step=from_step, to_step=to_step, only=only)
        report = []
        ran = False
        self._total = sum(1 for i, p in enumerate(plans) if first <= i <= last and (not only or i == first)
                          and (not resume or p.needs_run))
        for i, p in enumerate(plans):
            if only and i != first:
                continue
            if i < first or i > last:
                report.append((p.step.name, "not selected"))
            # The plan was made before anything ran; a step that ran since can
            # leave work for a later one (a restart for `services`): verify again.
            elif resume and not p.needs_run and not (ran and p.step.verify(self.ctx)):
                report.append((p.step.name, "done"))
            else:
                report.append((p.step.name, self.run_step(p.step)))
                ran = True
        return report

    def run_step(self, step: Step) -> str:
        ctx = self.ctx
        dry = ctx.runner.dry_run
        fp, inputs = self.fingerprint(step)
        self._number += 1
        self._total = max(self._total, self._number)   # a resume may re-run a step it planned to skip
        self.progress.step_started(step, self._number, self._total)
        started = time.monotonic()
        if dry:
            ctx.emit(f"### step {step.name}: {step.summary()}")
        log_path = None if dry else self.logs.path(step.name)   # a dry-run writes nothing
        ctx.state.start_step(step.name, started=now(), log=str(log_path) if log_path else None)
        ctx.state.save()
        with (open(log_path, "w") if not dry else contextlib.nullcontext()) as log:
            ctx.runner.log = log
            ctx.runner.on_line = self.progress.output_line
            ctx.files.log = ctx.runner.log_line if log else None
            before = len(ctx.files.changed_paths)
            ctx.files.begin_batch()
            try:
                try:
                    result = step.run(ctx)
                finally:
                    # The step's files are on disk before the state may say it is done.
                    ctx.files.end_batch()
            except NfsrootError as e:
                ctx.state.set_step(step.name, status="failed", finished=now(), error=str(e).splitlines()[0])
                ctx.state.save()
                self.progress.step_finished(step, "interrupted" if isinstance(e, Interrupted) else "failed",
                                            time.monotonic() - started)
                raise StepFailed(step.name, e, str(log_path) if log_path else None) from e
            except Exception as e:   # a bug: record it; Ctrl-C/SIGTERM leave "running" = interrupted
                ctx.state.set_step(step.name, status="failed", finished=now(), error=repr(e))
                ctx.state.save()
                self.progress.step_finished(step, "failed", time.monotonic() - started)
                raise
            except BaseException:
                self.progress.step_finished(step, "interrupted", time.monotonic() - started)
                raise
            finally:
                ctx.runner.log = None
                ctx.runner.on_line = None
                ctx.files.log = None
        changed = result.changed or len(ctx.files.changed_paths) > before
        ctx.state.add_restarts(result.restart)
        ctx.state.set_step(step.name, status="done", finished=now(), fingerprint=fp,
                           inputs=inputs, outputs=result.outputs, changed=changed)
        ctx.state.save()
        if dry and not changed:
            ctx.emit("# (no changes)")
        outcome = "changed" if changed else "unchanged"
        self.progress.step_finished(step, outcome, time.monotonic() - started)
        return outcome
