"""The short benchmarks, one function each; they take the Harness and record
Results in it. The full builds are in full_build.py, the lab boot in
lab_boot.py; bench/run.py runs them in the order of BENCHMARKS."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from harness import BUILD_NAME, HERE, Harness, Result, load

SIZES = (1000, 10000, 50000)
QUICK_SIZES = (100,)
AT_SCALE = 10000          # the add-one-node and no-op-at-scale size
QUICK_AT_SCALE = 100


def scale(h: Harness) -> int:
    return QUICK_AT_SCALE if h.quick else AT_SCALE


def startup(h: Harness) -> None:
    """nfsroot-build list: importing the CLI, what every command pays first."""
    cmd = h.nbq("list")
    r = Result("startup", "startup floor: nfsroot-build list (imports, no config)", cmd, load=load())
    r.times = h.hyperfine(cmd, max(h.runs, 10 if not h.quick else 1), warmup=1)
    h.record(r)


def noop_resume(h: Harness) -> None:
    """all --resume on the finished 2-node build: nothing to do."""
    prefix, base_cfg = h.base_prefix()
    cmd = h.resume(base_cfg, prefix)
    what = "a full build" if h.full_prefix else "the server steps (no root built)"
    r = Result("noop-resume", f"no-op resume: all --resume on {what}, 2 nodes", cmd, load=load())
    h.sh(cmd)   # make sure it is finished
    _wall, r.peak_kb, err = h.observe(cmd)
    r.steps_ran = h.steps_ran(err)
    r.times = h.hyperfine(cmd, max(h.runs, 10) if not h.quick else 1, warmup=1)
    h.record(r)


def dry_run(h: Harness) -> None:
    """all --dry-run on an empty prefix, 2 nodes and (not --quick) 10,000."""
    empty = h.work / "empty-prefix"
    empty.mkdir(parents=True, exist_ok=True)
    for n in (2,) if h.quick else (2, AT_SCALE):
        cfg = h.config("base" if n == 2 else f"dry-{n}", n, name=BUILD_NAME)
        cmd = h.nbq("all", "--dry-run", "-c", cfg, "--prefix", empty) + " >/dev/null"
        key, title = ("dry-run", "dry-run of the whole pipeline (nothing built yet, 2 nodes)") if n == 2 else \
            (f"dry-run-{n}", f"dry-run of the whole pipeline ({n:,} nodes)")
        r = Result(key, title, cmd, load=load())
        try:
            _wall, r.peak_kb, err = h.observe(cmd)
        except RuntimeError as e:
            r.not_measured = f"the dry-run failed: {str(e).splitlines()[-1][:200]}"
            h.record(r)
            continue
        r.steps_ran = h.steps_ran(err)
        r.times = h.hyperfine(cmd, max(h.runs, 10) if not h.quick and n == 2 else h.runs, warmup=1)
        h.record(r)


def inventory(h: Harness, prefix: Path | None = None, where: str = "") -> None:
    """The inventory goes from 2 nodes to N: exactly the node steps run."""
    base_prefix, base_cfg = h.base_prefix()
    prefix = prefix or base_prefix
    reset = h.resume(base_cfg, prefix)
    sizes = (QUICK_SIZES if h.quick else SIZES) if not where else (AT_SCALE,)
    for n in sizes:
        cfg = h.config(f"inventory-{n}", n, name=BUILD_NAME)
        cmd = h.resume(cfg, prefix)
        r = Result(f"inventory-{n}{where and '-' + where}", f"inventory scale: {n:,} nodes{where and ', ' + where}",
                   cmd, load=load())
        h.sh(reset)
        wall, r.peak_kb, err = h.observe(cmd)
        r.steps_ran = h.steps_ran(err)
        r.detail["observed_wall"] = wall
        r.detail["phases"] = h.step_times(prefix, r.steps_ran)
        state = prefix / f"var/lib/nfsroot-build/{BUILD_NAME}/state.json"
        r.detail["state_kb"] = state.stat().st_size // 1024 if state.exists() else None
        if n >= 50000:   # minutes on a busy disk: the observed run is the one run
            r.times = [wall]
        else:
            r.times = h.hyperfine(cmd, h.runs if n < 10000 else min(h.runs, 3), prepare=reset)
        h.record(r)
    h.sh(reset)


def add_one(h: Harness, prefix: Path | None = None, where: str = "") -> None:
    """Add one node to N and re-run; then the no-op resume at N nodes."""
    base_prefix, base_cfg = h.base_prefix()
    prefix = prefix or base_prefix
    n = scale(h)
    suffix = where and "-" + where
    cfg_n = h.config(f"add-one-{n}", n, name=BUILD_NAME)
    cfg_n1 = h.config(f"add-one-{n}+1", n, extra=1, name=BUILD_NAME)
    at_n, at_n1 = h.resume(cfg_n, prefix), h.resume(cfg_n1, prefix)
    r = Result(f"add-one-{n}{suffix}", f"add one node to {n:,} and re-run (all --resume){where and ', ' + where}",
               at_n1, load=load())
    h.sh(at_n)
    _wall, r.peak_kb, err = h.observe(at_n1)
    r.steps_ran = h.steps_ran(err)
    r.detail["phases"] = h.step_times(prefix, r.steps_ran)
    r.times = h.hyperfine(at_n1, h.runs, prepare=at_n)
    h.record(r)
    noop_at(h, prefix, cfg_n, n, suffix, where)
    # back to the base inventory for the benchmarks that follow
    h.sh(h.resume(base_cfg, prefix))


def noop_at(h: Harness, prefix: Path, cfg: Path, n: int, suffix: str, where: str) -> None:
    """all --resume at N nodes when nothing changed (the acceptance's no-op at 10,000)."""
    cmd = h.resume(cfg, prefix)
    h.sh(cmd)   # the build has N nodes now; the runs below have nothing to do
    r = Result(f"noop-resume-{n}{suffix}", f"no-op resume at {n:,} nodes{where and ', ' + where}", cmd,
               load=load())
    _wall, r.peak_kb, err = h.observe(cmd)
    r.steps_ran = h.steps_ran(err)
    r.times = h.hyperfine(cmd, max(h.runs, 5) if not h.quick else 1, warmup=1)
    h.record(r)


def tmpfs_copy(h: Harness) -> None:
    """The 10,000-node benchmarks again on a copy of the build on a tmpfs:
    what they cost without the shared disk's stalls (file creation and
    fsync wait for other VMs' and builds' I/O).

    The tmpfs is mounted on the work directory (--work), not taken from
    /dev/shm: a root.path under /dev is refused by the path guard (the
    system owns /dev, and a root there is gone at the next boot), and that
    guard is right for a real build, so the benchmark uses a tmpfs of its own.
    """
    if h.quick or not h.full_prefix:
        return
    avail = int(re.search(r"MemAvailable:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) // 1024
    size = h.du_mb(h.full_prefix) or 0
    if avail < size + 4096:
        h.say(f"no tmpfs run: {avail} MB available, the build is {size} MB")
        return
    mnt = h.work / "tmpfs"
    copy = mnt / "prefix"
    mnt.mkdir(parents=True, exist_ok=True)
    h.sh(f"mount -t tmpfs -o size={size + 2048}m,mode=755 nfsroot-bench {shlex.quote(str(mnt))}")
    try:
        h.sh(f"cp -a {shlex.quote(str(h.full_prefix))} {shlex.quote(str(copy))}")
        _, base_cfg = h.base_prefix()
        h.sh(h.nbq("all", "--resume", "-c", base_cfg, "--prefix", copy))
        inventory(h, copy, "tmpfs copy")
        add_one(h, copy, "tmpfs copy")
    finally:
        h.rm_tree(copy)   # unmounts what a failed run left under it first
        h.sh(f"umount {shlex.quote(str(mnt))}", check=False)


def unknown_package(h: Harness) -> None:
    """A typo in root.packages: how long until `all` fails naming it. First
    with no package-name index cached (it is fetched), then cached."""
    key, title = "unknown-package", "unknown package: `all` fails naming it"
    if h.quick:
        h.skip(key, title, "--quick (QUICK=1) skips it: it fetches the suite's index")
        return
    cfg = h.config("typo", 2, name="bench-typo")
    cfg.write_text(cfg.read_text().replace('variant = "minbase"', 'variant = "minbase"\npackages = ["nfs-commn"]'))
    cache, prefix = h.work / "cache-typo", h.work / "typo-prefix"
    cmd = h.in_own_cache(cache, h.nbq("all", "-c", cfg, "--prefix", prefix))
    clean = f"rm -rf --one-file-system {shlex.quote(str(prefix))}"
    h.rm_tree(cache)
    cache.mkdir(parents=True)
    r = Result(key, title, cmd.replace(shlex.quote(str(cache)), "<cache>"), load=load())
    wall, r.peak_kb, err = h.observe(cmd, expect_failure=True)
    if "nfs-commn" not in err:
        r.not_measured = f"the run failed without naming the package: {err.strip().splitlines()[-1:]}"
        h.record(r)
        return
    r.detail["first run, index fetched"] = wall
    r.steps_ran = h.steps_ran(err)
    r.times = h.hyperfine(cmd, h.runs, prepare=clean, ignore_failure=True)
    r.note = f"first run (index fetched): {wall:.1f} s; median of the cached runs"
    h.record(r)
    h.rm_tree(prefix)


def breakdown(h: Harness) -> None:
    """Where the time of the largest inventory goes, measured in-process."""
    n = QUICK_SIZES[-1] if h.quick else SIZES[-1]
    cfg = h.config(f"inventory-{n}", n, name=BUILD_NAME)
    py = Path(h.nb).with_name("python")
    p = subprocess.run([str(py if py.exists() else sys.executable), str(HERE / "breakdown.py"), str(cfg)],
                       text=True, capture_output=True)
    if p.returncode != 0:
        h.say(f"breakdown failed: {p.stderr[-500:]}")
        return
    try:
        h.results["breakdown"] = Result("breakdown", f"in-process breakdown, {n:,} nodes",
                                        detail=json.loads(p.stdout))
    except ValueError:
        h.say(f"breakdown printed no JSON: {p.stdout[-300:]}")


def node_import(h: Harness) -> None:
    """node import of a 1,000-line CSV into the 2-node base config (issue 11:
    under 2 s): tomlkit's edit, the whole config's validation, the write and
    the plan against the base build's state. The config is put back before each run."""
    n = QUICK_SIZES[0] if h.quick else 1000
    prefix, base_cfg = h.base_prefix()
    cfg = h.config("node-import", 2, name=BUILD_NAME)
    pristine = cfg.with_suffix(".orig")
    pristine.write_bytes(cfg.read_bytes())
    csv = h.work / "configs" / f"nodes-{n}.csv"
    # Addresses left out: each row takes the next free one (the slower path);
    # MACs and names outside gen_config's (52:54:xx..., n000001...).
    csv.write_text("name,mac\n" + "".join(f"imp{i:05d},02:00:00:00:{i >> 8:02x}:{i & 255:02x}\n"
                                          for i in range(1, n + 1)))
    cmd = h.nbq("node", "import", csv, "-c", cfg, "--prefix", prefix)
    reset = f"cp {shlex.quote(str(pristine))} {shlex.quote(str(cfg))}"
    r = Result(f"node-import-{n}", f"node import of a {n:,}-line CSV into 2 nodes (target < 2 s)", cmd, load=load())
    h.sh(reset)
    _wall, r.peak_kb, _err = h.observe(cmd)
    r.times = h.hyperfine(cmd, h.runs, prepare=reset)
    h.record(r)
