"""RESULTS.md from the recorded results: the targets with their verdicts,
an analysis computed from this run's numbers (ratios, margins, the slowest
steps by name), every result with its raw times. Pure: no process, no clock;
tests/bench/test_report.py feeds it made-up results."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from harness import Result, fmt_s

FULL_BUILD_TARGET = 0.3    # nfsroot-build's full build / the seed by hand (issue 9)


@dataclass
class Meta:
    """What the report says about the run itself."""
    quick: bool
    started: str                  # "2026-11-29 19:20 UTC"
    finished: str                 # "19:45"
    machine: list[str] = field(default_factory=list)
    at_scale: int = 10000         # the size of the render / add-one / no-op-at-scale targets
    server_only: bool = False     # no root was built: resume and inventory runs stop before bootstrap


@dataclass
class Target:
    name: str
    limit: float
    unit: str                     # "s", "MB" or "×"
    measured: float | None = None
    why_not: str = ""             # why it was not measured
    note: str = ""
    result_key: str = ""          # the result whose steps explain it

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        return self.measured <= self.limit if self.unit == "×" else self.measured < self.limit

    def shown(self, value: float | None = None) -> str:
        v = self.measured if value is None else value
        if v is None:
            return "not measured"
        return fmt_s(v) if self.unit == "s" else f"{v:.0f} MB" if self.unit == "MB" else f"{v:.2f}×"

    @property
    def verdict(self) -> str:
        return {None: "-", True: "met", False: "**missed**"}[self.met]


def median_of(results: dict[str, Result], key: str) -> float | None:
    r = results.get(key)
    return r.median if r else None


def why_not(results: dict[str, Result], *keys: str) -> str:
    reasons = [results[k].not_measured for k in keys if k in results and results[k].not_measured]
    return "; ".join(dict.fromkeys(reasons)) or "not run"


def pair_ratios(results: dict[str, Result], cache_state: str) -> list[float]:
    r = results.get(f"full-mmdebstrap-{cache_state}")
    pairs = (r.detail.get("pairs") or []) if r else []
    return [p["mmdebstrap"] / p["seed"] for p in pairs if p.get("seed")]


def targets(results: dict[str, Result], meta: Meta) -> list[Target]:
    out = []
    for c in ("cold", "warm"):
        t = Target(f"full build ≤ {FULL_BUILD_TARGET}× the seed by hand ({c} cache, median of alternating pairs)",
                   FULL_BUILD_TARGET, "×", result_key=f"full-mmdebstrap-{c}")
        ratios = pair_ratios(results, c)
        if ratios:
            t.measured = statistics.median(ratios)
            mm, seed = median_of(results, f"full-mmdebstrap-{c}"), median_of(results, f"full-seed-{c}")
            t.note = (f"{len(ratios)} pair{'s' if len(ratios) != 1 else ''}: " + ", ".join(f"{x:.2f}" for x in ratios)
                      + (f"; medians {fmt_s(mm)} vs {fmt_s(seed)}" if mm and seed else ""))
        else:
            t.why_not = why_not(results, f"full-mmdebstrap-{c}", f"full-seed-{c}")
        out.append(t)

    def timed(name: str, key: str, limit: float, note: str = "") -> Target:
        t = Target(name, limit, "s", median_of(results, key), note=note, result_key=key)
        if t.measured is None:
            t.why_not = why_not(results, key)
        return t

    n = meta.at_scale
    out.append(timed("no-op resume < 1 s (2 nodes)", "noop-resume", 1.0))
    render = timed(f"{n:,}-node render < 1 s", f"inventory-{n}", 1.0)
    tm = median_of(results, f"inventory-{n}-tmpfs copy")
    render.note = f"on a tmpfs copy of the build: {fmt_s(tm)}" if tm is not None else ""
    out.append(render)
    r = results.get(f"inventory-{n}")
    mem = Target(f"{n:,}-node render < 150 MB", 150, "MB", r.peak_kb / 1024 if r and r.peak_kb else None,
                 result_key=f"inventory-{n}")
    mem.why_not = "" if mem.measured is not None else why_not(results, f"inventory-{n}")
    out.append(mem)
    noop = timed(f"no-op resume at {n:,} nodes < 0.4 s", f"noop-resume-{n}", 0.4)
    r = results.get(f"noop-resume-{n}")
    if r and r.steps_ran:
        noop.note = "not a no-op: " + ", ".join(r.steps_ran) + " ran"
    out.append(noop)
    add = timed(f"add one node at {n:,} < 2 s", f"add-one-{n}", 2.0)
    r = results.get(f"add-one-{n}")
    if r and r.steps_ran is not None:
        add.note = "steps that ran: " + (", ".join(r.steps_ran) or "none")
    out.append(add)
    if meta.server_only:   # these run on the build: without a root, on its server steps
        for t in out:
            if t.measured is not None and t.result_key in {"noop-resume", f"inventory-{n}", f"noop-resume-{n}",
                                                             f"add-one-{n}"}:
                t.note = "; ".join(x for x in ("server steps only: no root was built in this run", t.note) if x)
    out.append(timed("dry-run < 1 s (2 nodes)", "dry-run", 1.0))
    typo = results.get("unknown-package")
    t = Target("unknown package fails, naming it, < 60 s (index not cached)", 60, "s",
               (typo.detail.get("first run, index fetched") if typo and not typo.not_measured else None),
               result_key="unknown-package")
    if t.measured is None:
        t.why_not = why_not(results, "unknown-package")
    elif typo.median is not None:
        t.note = f"with the index cached: {fmt_s(typo.median)} (median of {len(typo.times)})"
    out.append(t)
    return out


def top_phases(phases: dict[str, float], k: int = 3) -> list[tuple[str, float]]:
    return sorted(((s, v) for s, v in phases.items() if v > 0), key=lambda kv: -kv[1])[:k]


def split_of(r: Result, wall: float) -> str:
    """'node-menus 2.94 s (48%), ...; outside the steps 0.55 s (9%)' of a run."""
    ph = r.detail.get("phases") or {}
    if not ph or not wall:
        return ""
    parts = [f"{s} {fmt_s(v)} ({v / wall:.0%})" for s, v in top_phases(ph)]
    rest = wall - sum(ph.values())
    out = "slowest steps: " + (", ".join(parts) or "none above 0 s")
    if rest > 0:
        out += f"; outside the steps (start-up, config, state, the checks of skipped steps) {fmt_s(rest)} ({rest / wall:.0%})"
    return out


def analysis(results: dict[str, Result], tgts: list[Target]) -> list[str]:
    """For every missed target, what this run's numbers say about it."""
    out = []
    start = median_of(results, "startup")
    bd = results.get("breakdown")
    for t in tgts:
        if t.met is not False:
            continue
        excess = t.measured - t.limit
        out.append(f"- **{t.name}**: {t.shown()}, {t.measured / t.limit:.2f}× the limit; "
                   f"{t.shown(excess) if t.unit != '×' else f'{excess:.2f}×'} over it, "
                   f"a cut of {excess / t.measured:.0%} would meet it.")
        r = results.get(t.result_key)
        if t.unit == "×" and r:
            c = "cold" if "cold" in t.name else "warm"
            seed = results.get(f"full-seed-{c}")
            ratios = pair_ratios(results, c)
            if seed and seed.median and r.median:
                need = t.limit * seed.median
                out.append(f"  - At the seed's median {fmt_s(seed.median)}, the target is {fmt_s(need)}: "
                           f"nfsroot-build's median {fmt_s(r.median)} is {fmt_s(r.median - need)} too long.")
                out.append(f"  - nfsroot-build, {split_of(r, r.median)}.")
                out.append("  - seed by hand, slowest phases: "
                           + ", ".join(f"{s} {fmt_s(v)} ({v / seed.median:.0%})"
                                       for s, v in top_phases(seed.detail.get("phases") or {})) + ".")
            if len(ratios) > 1:
                out.append(f"  - The pairs' ratios range {min(ratios):.2f}–{max(ratios):.2f}.")
            continue
        if not r:
            continue
        wall = r.detail.get("observed_wall") or r.median
        if r.detail.get("phases"):
            out.append(f"  - The observed run ({fmt_s(wall)}): {split_of(r, wall)}.")
        tm = results.get(f"{t.result_key}-tmpfs copy")
        if tm and tm.median and r.median:
            out.append(f"  - On a tmpfs copy of the build: {fmt_s(tm.median)}; the shared disk accounts for "
                       f"{fmt_s(max(r.median - tm.median, 0))} ({max(r.median - tm.median, 0) / r.median:.0%})"
                       + (f"; there, {split_of(tm, tm.detail.get('observed_wall') or tm.median)}"
                          if tm.detail.get("phases") else "") + ".")
        if r.steps_ran is not None and not r.detail.get("phases"):
            out.append("  - Steps that ran: " + (", ".join(r.steps_ran) or "none") + ".")
        if start and t.unit == "s" and r.median:
            out.append(f"  - The startup floor (`nfsroot-build list`) is {fmt_s(start)} of it ({start / r.median:.0%}).")
        if r.detail.get("state_kb"):
            out.append(f"  - The state file after the run: {r.detail['state_kb']:,} KB.")
        if bd and t.unit == "s" and "render" in t.name:
            timed = [(k, float(v)) for k, v in bd.detail.items() if _is_number(v)]
            big = sorted(timed, key=lambda kv: -kv[1])[:3]
            if big:
                out.append(f"  - In-process ({bd.title}), the largest parts: "
                           + ", ".join(f"{k} {v:.2f} s" for k, v in big) + ".")
    return out


def _is_number(v) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def render(results: dict[str, Result], meta: Meta) -> str:
    out = ["# nfsroot-build benchmarks", "",
           f"Written by `make bench{' QUICK=1' if meta.quick else ''}` (bench/run.py) on {meta.started}, "
           f"finished {meta.finished}. Every figure below comes from that run; see bench/README.md for what "
           "each benchmark does.", "", "## Machine", "", *meta.machine, "",
           "## Targets", "", "| target | measured | verdict | note |", "| --- | --- | --- | --- |"]
    tgts = targets(results, meta)
    for t in tgts:
        out.append(f"| {t.name} | {t.shown()} | {t.verdict} | {t.why_not or t.note} |")
    for k in ("lab-boot-1", "lab-boot-2"):
        r = results.get(k)
        if r:
            out.append(f"| {r.title} (no target: reported) | {r.fmt_time()} | - | {r.not_measured or r.note} |")
    judged = [t for t in tgts if t.met is not None]
    missed = [t for t in judged if not t.met]
    out += ["", f"{len(judged) - len(missed)} of {len(judged)} measured targets met"
            + (f"; {len(tgts) - len(judged)} not measured." if len(judged) < len(tgts) else ".")]
    if missed:
        out += ["", "## Missed targets: what this run's numbers say", ""]
        out += analysis(results, tgts)
    out += ["", "## All results", "",
            "Median of the runs (hyperfine, or the alternating pairs of the full builds) unless a single run; "
            "peak = maximum resident set size (GNU time) of one observed run, nfsroot-build and the processes "
            "it waited for.", "",
            "| benchmark | median | runs | min – max | peak memory | steps that ran | load (1/5/15), I/O pressure |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results.values():
        if r.key == "breakdown":
            continue
        if r.not_measured:
            out.append(f"| {r.title} | not measured: {r.not_measured} | | | | | {r.load} |")
            continue
        rng = f"{fmt_s(min(r.times))} – {fmt_s(max(r.times))}" if len(r.times) > 1 else ""
        ran = "-" if r.steps_ran is None else (", ".join(r.steps_ran) or "none")
        title = f"{r.title} ({r.note})" if r.note else r.title
        out.append(f"| {title} | {r.fmt_time()} | {len(r.times)} | {rng} | {r.fmt_mem()} | {ran} | {r.load} |")
    ratios = ratio_lines(results)
    if ratios:
        out += ["", "## Ratios (same run, same cache state)", ""] + [f"- {x}" for x in ratios]
    phased = [r for r in results.values() if r.detail.get("phases")]
    if phased:
        out += ["", "## Where the time goes, per step", "",
                "Seconds per step (nfsroot-build: from the build's state.json; of several runs, each step's "
                "median) or per phase of the seed script (its marks); the rest of a run's wall time is start-up "
                "(imports, reading and validating the config) and the checks of the steps that were skipped.", ""]
        for r in phased:
            ph = ", ".join(f"{k} {v:g}" for k, v in r.detail["phases"].items())
            size = r.detail.get("root_size_mb")
            out.append(f"- {r.title}: {ph}" + (f" (root: {size} MB)" if size else ""))
    b = results.get("breakdown")
    if b:
        out += ["", f"## Where an inventory run's time goes ({b.title})", "",
                "Measured in-process by bench/breakdown.py (one run each, seconds):", ""]
        out += [f"- {k}: {v}" for k, v in b.detail.items()]
    out += ["", "## Commands and raw times", ""]
    for r in results.values():
        if r.times and not r.not_measured:
            out.append(f"- {r.key}: `{r.command}`  ")
            out.append("  times (s): " + ", ".join(f"{x:.3f}" for x in r.times))
            for i, p in enumerate(r.detail.get("pairs") or [], 1):
                out.append(f"  pair {i} ({p['first']} first): seed {p['seed']:.1f} s, "
                           f"nfsroot-build {p['mmdebstrap']:.1f} s, ratio {p['mmdebstrap'] / p['seed']:.2f}")
    return "\n".join(out) + "\n"


def ratio_lines(results: dict[str, Result]) -> list[str]:
    out = []
    for c in ("cold", "warm"):
        seed = results.get(f"full-seed-{c}")
        if not seed or not seed.median:
            continue
        for t in ("debootstrap", "mmdebstrap"):
            r = results.get(f"full-{t}-{c}")
            if r and r.median:
                out.append(f"full build, {c} cache: nfsroot-build with {t} / seed script = "
                           f"{r.median / seed.median:.2f} (medians)")
        ratios = pair_ratios(results, c)
        if ratios:
            out.append(f"full build, {c} cache: mmdebstrap / seed per pair = "
                       + ", ".join(f"{x:.2f}" for x in ratios) + f"; median {statistics.median(ratios):.2f}")
    return out
