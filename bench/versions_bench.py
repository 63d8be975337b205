"""Root versions (issue 10): a new version with one package added (clone +
install) against a from-scratch build of the same root, and `root switch` /
`root rollback` at 2 and 10,000 nodes. Runnable alone:

    bench/run.py --only new_version --only switch_rollback
"""
from __future__ import annotations

import time

from harness import Harness, Result, load

NAME = "bench-ver"
ADDED = "hello"   # one small package, in every Debian suite


def _prefix(h: Harness):
    return h.work / "versions-prefix"


def _configs(h: Harness, n: int):
    base = h.config(f"ver-{n}", n, name=NAME)
    plus = h.config(f"ver-{n}-plus", n, name=NAME)
    plus.write_text(plus.read_text().replace('variant = "minbase"', f'variant = "minbase"\npackages = ["{ADDED}"]'))
    return base, plus


def new_version(h: Harness) -> None:
    """From scratch (v1), then the same root with one package more (v2: clone + install)."""
    key, title = "new-version", f"new root version with one package added ({ADDED}: clone + install)"
    if h.quick:
        h.skip(key, title, "--quick (QUICK=1) skips it: it builds a root")
        return
    prefix = _prefix(h)
    h.rm_tree(prefix)
    base, plus = _configs(h, 2)
    scratch = Result("new-version-scratch", "from-scratch build of the same root (v1), for the ratio",
                     h.nbq("all", "-c", base, "--prefix", prefix), load=load())
    t0 = time.monotonic()
    h.sh(scratch.command, timeout=3600)
    scratch.times = [time.monotonic() - t0]
    h.record(scratch)
    r = Result(key, title, h.nbq("all", "-c", plus, "--prefix", prefix), load=load())
    wall, r.peak_kb, err = h.observe(r.command)
    r.times = [wall]
    r.steps_ran = h.steps_ran(err)
    r.detail["phases"] = h.step_times(prefix, r.steps_ran)
    ratio = wall / scratch.times[0]
    r.detail["ratio_to_scratch"] = round(ratio, 3)
    r.note = (f"{ratio:.2f}x the from-scratch build ({scratch.times[0]:.1f} s); target <= 0.25x: "
              f"{'met' if ratio <= 0.25 else 'missed'}; clone (bootstrap step) "
              f"{r.detail['phases'].get('bootstrap', '?')} s")
    h.record(r)


def switch_rollback(h: Harness) -> None:
    """root switch / root rollback on the two versions new_version made: 2 nodes, then 10,000."""
    prefix = _prefix(h)
    if h.quick or not (prefix / "var/lib/nfsroot-build" / NAME / "state.json").exists():
        for key in ("switch-2", "rollback-2", "switch-10000", "rollback-10000"):
            h.skip(key, f"{key.replace('-', ' at ')} nodes", "needs the versions new_version builds (not --quick)")
        return
    for n in (2, 10000):
        _base, plus = _configs(h, n)
        if n != 2:
            # The inventory is not part of a version: this rewrites /etc/hosts and the menus of the current one.
            h.sh(h.nbq("all", "--resume", "-c", plus, "--prefix", prefix), timeout=3600)
        switch = h.nbq("root", "switch", "v1", "-c", plus, "--prefix", prefix)
        back = h.nbq("root", "switch", "v2", "-c", plus, "--prefix", prefix)
        r = Result(f"switch-{n}", f"root switch at {n:,} nodes (menus and DHCP follow; target < 2 s)", switch,
                   load=load())
        r.times = h.hyperfine(switch, h.runs, prepare=back)
        h.record(r)
        rollback = h.nbq("root", "rollback", "-c", plus, "--prefix", prefix)
        r = Result(f"rollback-{n}", f"root rollback at {n:,} nodes (target < 2 s)", rollback, load=load())
        # Each rollback swaps current and previous: every run is a real one.
        r.times = h.hyperfine(rollback, h.runs, warmup=1)
        h.record(r)
    h.rm_tree(prefix)
