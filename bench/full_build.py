"""The full build against the seed's procedure by hand (seed-by-hand.sh).

nfsroot-build (mmdebstrap) and the seed script run in alternating pairs in
one run: pair 1 seed first, pair 2 nfsroot-build first, and so on, so that
drift in the machine's load or the mirror's speed hits both sides alike.
Each pair gives a ratio; the target is judged on the median of the pairs'
ratios. Cold: every run starts with an empty cache of its own (no .debs, no
package-name index). Warm: the cache its cold runs filled. Then one
nfsroot-build run with debootstrap, cold and warm (reported, no target).
"""
from __future__ import annotations

import shlex
import statistics

from harness import HERE, Harness, Result, load

PAIRS = 3                 # the acceptance's median of 3 pairs (--pairs changes it)
TOOL = "mmdebstrap"
CACHE_STATES = ("cold", "warm")


def missing_steps(h: Harness) -> str:
    need = [s for s in ("bootstrap", "root-packages", "initramfs", "kernel-to-tftp") if s not in h.steps]
    return f"nfsroot-build has no {', '.join(need)} step yet" if need else ""


def title(side: str, cache_state: str) -> str:
    what = "seed page by hand (bench/seed-by-hand.sh)" if side == "seed" else f"nfsroot-build all, {side}"
    return f"full build, {what}, {cache_state} package cache"


def full_build(h: Harness) -> None:
    sides = ("seed", TOOL, "debootstrap")
    if h.quick or missing_steps(h):
        why = "--quick (QUICK=1) skips the full builds" if h.quick else missing_steps(h)
        for side in sides:
            for c in CACHE_STATES:
                h.skip(f"full-{side}-{c}", title(side, c), why)
        return
    mirror = h.mirror()
    # Nothing is removed between the timed runs: every run gets a prefix
    # (and a cold run a cache directory) of its own, and all are removed at
    # the end. Removing the last run's tree just before a run made that run
    # 5-8 s slower here (ext4 mounted with `discard` on a virtio disk: a
    # 335 MB tree freed 386 MB of discards; warm builds after such a removal
    # took 26.0-27.1 s, without one 15.6-18.9 s), a larger share of
    # nfsroot-build's ~20 s than of the seed script's ~70 s.
    made: list = []
    caches = {side: h.work / f"cache-{side}" for side in sides}
    for cache in caches.values():
        h.rm_tree(cache)
    for c in CACHE_STATES:
        runs: dict[str, list[Result]] = {"seed": [], TOOL: []}
        pairs = []
        for i in range(getattr(h.a, "pairs", PAIRS)):
            order = ("seed", TOOL) if i % 2 == 0 else (TOOL, "seed")
            pair = {side: one_build(h, side, c, caches, mirror, f"{c} pair {i + 1}", made) for side in order}
            for side, r in pair.items():
                runs[side].append(r)
            if all(r.times for r in pair.values()):
                pairs.append({"seed": pair["seed"].times[0], TOOL: pair[TOOL].times[0], "first": order[0]})
        for side, rs in runs.items():
            r = merge(f"full-{side}-{c}", title(side, c), rs)
            if side == TOOL:
                r.detail["pairs"] = pairs
            h.record(r)
        # Reported as before, no target: the other bootstrapper, one run.
        h.record(merge(f"full-debootstrap-{c}", title("debootstrap", c),
                       [one_build(h, "debootstrap", c, caches, mirror, c, made)]))
    # Only the last mmdebstrap build is used again (the resume benchmarks).
    for path in made:
        if path != h.full_prefix:
            h.rm_tree(path)
    h.sh("sync")


def one_build(h: Harness, side: str, cache_state: str, caches: dict, mirror: str, label: str,
              made: list) -> Result:
    """One full build under a prefix of its own; not recorded (merge() makes
    the row). A cold run starts a new, empty cache directory for its side
    (caches[side]), which the next warm runs use."""
    tag = label.replace(" ", "-")
    prefix = h.work / f"full-{side}-{tag}"
    if cache_state == "cold":
        caches[side] = h.work / f"cache-{side}-{tag}"
        made.append(caches[side])
    cache = caches[side]
    made.append(prefix)
    h.rm_tree(prefix)
    cache.mkdir(parents=True, exist_ok=True)
    if side == "seed":
        cmd = " ".join(shlex.quote(str(x)) for x in (HERE / "seed-by-hand.sh", prefix, cache, mirror, h.a.suite))
        name = None
    else:
        name = "bench-mm" if side == TOOL else "bench-deb"
        cfg = h.config(name, 2, name=name, bootstrapper=side, suite=h.a.suite)
        cmd = h.in_own_cache(cache, h.nbq("all", "-c", cfg, "--prefix", prefix))
    # The report shows the command without the mirror's address (the host's own mirror).
    r = Result(f"full-{side}", title(side, cache_state), cmd.replace(mirror, "<the host's mirror>"), load=load())
    h.say(f"{r.title} ({label}) ... (minutes)")
    # Untimed: the run before (the seed's 600 MB root, which it never
    # syncs) must not be written back during this one, by the kernel's
    # flusher or by nfsroot-build's `sync --file-system`.
    h.sh("sync")
    try:
        wall, r.peak_kb, err = h.observe(cmd)
    except RuntimeError as e:
        if side == TOOL:
            h.full_prefix = None
        r.not_measured = "the build failed: " + " | ".join(str(e).replace(mirror, "<mirror>").splitlines()[-3:])[:400]
        return r
    r.times = [wall]
    r.detail["phases"] = h.seed_phases(err) if side == "seed" else h.state_phases(prefix, name)
    r.detail["root_size_mb"] = h.du_mb(prefix / ("NFSROOT/kerrighed" if side == "seed" else f"srv/nfsroot/{name}"))
    r.load += f" → {load()}"
    if side == TOOL:
        h.full_prefix = prefix
    return r


def merge(key: str, title_: str, runs: list[Result]) -> Result:
    """One row from several runs: every time, the largest peak, each step's median."""
    ok = [r for r in runs if r.times]
    r = Result(key, title_, runs[0].command, load=" / ".join(x.load for x in runs))
    if not ok:
        r.not_measured = "; ".join(dict.fromkeys(x.not_measured for x in runs))
        return r
    failed = [x.not_measured for x in runs if not x.times]
    r.note = f"{len(failed)} of {len(runs)} runs failed: {failed[0]}" if failed else ""
    r.times = [x.times[0] for x in ok]
    r.peak_kb = max(x.peak_kb or 0 for x in ok) or None
    steps = dict.fromkeys(s for x in ok for s in x.detail.get("phases", {}))
    r.detail["phases"] = {s: round(statistics.median(x.detail["phases"][s] for x in ok if s in x.detail["phases"]), 2)
                          for s in steps}
    sizes = [x.detail["root_size_mb"] for x in ok if x.detail.get("root_size_mb")]
    r.detail["root_size_mb"] = sizes[-1] if sizes else None
    return r
