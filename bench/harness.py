"""The plumbing every benchmark uses: running and timing commands (hyperfine,
GNU time), the scratch directory, configs, the staged builds they run on,
and the results they record. No benchmark lives here (bench/benchmarks.py,
full_build.py, lab_boot.py) and no report text (bench/report.py)."""
from __future__ import annotations

import json
import os
import re
import shlex
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gen_config  # noqa: E402

# nfsroot-build's caches: apt/ (the .debs, context.APT_CACHE) and lists/ (the suite's package names)
HOST_CACHE_ROOT = Path("/var/cache/nfsroot-build")
BUILD_NAME = "bench-mm"   # the build every resume/inventory benchmark works on


def load() -> str:
    """Load average (1/5/15 min) and, where the kernel has PSI, the share of the
    last 10 s in which some task waited for I/O (the disk is shared too)."""
    out = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    try:
        m = re.search(r"some avg10=([\d.]+)", Path("/proc/pressure/io").read_text())
        out += f", io {float(m.group(1)):.0f}%"
    except (OSError, AttributeError):
        pass
    return out


def fmt_s(s: float) -> str:
    if s < 1:
        return f"{s * 1000:.0f} ms"
    return f"{s:.2f} s" if s < 10 else f"{s:.1f} s" if s < 600 else f"{s / 60:.1f} min"


@dataclass
class Result:
    key: str                      # stable id, e.g. "inventory-10000"
    title: str
    command: str = ""
    times: list[float] = field(default_factory=list)   # seconds, every run
    peak_kb: int | None = None
    load: str = ""
    steps_ran: list[str] | None = None
    note: str = ""
    not_measured: str = ""        # the reason, when it could not run
    detail: dict = field(default_factory=dict)

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times and not self.not_measured else None

    def fmt_time(self) -> str:
        if self.not_measured:
            return "not measured"
        m = self.median
        return "-" if m is None else fmt_s(m)

    def fmt_mem(self) -> str:
        return "-" if self.peak_kb is None else f"{self.peak_kb / 1024:.0f} MB"


class Harness:
    """What a benchmark gets: options, the tool, timers, and the results so far."""

    def __init__(self, args):
        self.a = args
        self.quick = args.quick
        self.nb = str(args.nfsroot_build)
        self.work = Path(args.work).absolute()
        self.results: dict[str, Result] = {}
        self.runs = 1 if self.quick else args.runs
        self.log = open(os.devnull, "w") if args.quiet else sys.stderr
        self.steps = self._list_steps()
        self.full_prefix: Path | None = None   # a finished full build, if one was made

    # -- running and timing ----------------------------------------------------
    def say(self, msg: str) -> None:
        print(f"bench: {msg}", file=self.log, flush=True)

    def sh(self, cmd: str, check: bool = True, capture: bool = True, timeout: float | None = None):
        p = subprocess.run(["sh", "-c", cmd], text=True, capture_output=capture, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError(f"command failed ({p.returncode}): {cmd}\n{(p.stdout or '')[-2000:]}"
                               f"{(p.stderr or '')[-4000:]}")
        return p

    def nbq(self, *args) -> str:
        return " ".join([shlex.quote(self.nb), *[shlex.quote(str(a)) for a in args]])

    def _list_steps(self) -> list[str]:
        out = subprocess.run([self.nb, "list"], text=True, capture_output=True, check=True).stdout
        return [m.group(1) for m in re.finditer(r"^\s*\d+\.\s+(\S+)", out, re.M)]

    def lab_unavailable(self) -> str:
        """Why a lab benchmark cannot run here, or "" when it can."""
        if self.quick:
            return "--quick (QUICK=1) skips the lab"
        if not self.has_command("lab", "boot"):
            return "nfsroot-build has no `lab boot` command yet"
        return ""

    def has_command(self, *words) -> bool:
        p = subprocess.run([self.nb, *words, "--help"], capture_output=True, text=True)
        return p.returncode == 0

    def hyperfine(self, cmd: str, runs: int, prepare: str | None = None, warmup: int = 0,
                  ignore_failure: bool = False) -> list[float]:
        out = self.work / "hyperfine.json"
        argv = ["hyperfine", "--runs", str(runs), "--warmup", str(warmup), "--export-json", str(out),
                "--style", "none", "--command-name", "bench"]
        if prepare:
            argv += ["--prepare", prepare]
        if ignore_failure:
            argv.append("--ignore-failure")
        argv.append(cmd)
        p = subprocess.run(argv, text=True, capture_output=True)
        if p.returncode != 0:
            raise RuntimeError(f"hyperfine failed: {cmd}\n{p.stdout[-2000:]}{p.stderr[-3000:]}")
        return [float(t) for t in json.loads(out.read_text())["results"][0]["times"]]

    def observe(self, cmd: str, expect_failure: bool = False) -> tuple[float, int, str]:
        """One run under GNU time: (wall seconds, peak RSS KiB, stderr)."""
        tf = self.work / "time.out"
        p = subprocess.run(["/usr/bin/time", "-o", str(tf), "-f", "%e %M", "sh", "-c", cmd],
                           text=True, capture_output=True)
        if (p.returncode != 0) != expect_failure:
            raise RuntimeError(f"command {'succeeded' if expect_failure else 'failed'} ({p.returncode}): "
                               f"{cmd}\n{p.stdout[-2000:]}{p.stderr[-4000:]}")
        wall, kb = tf.read_text().split()[-2:]
        return float(wall), int(kb), p.stderr

    def steps_ran(self, stderr: str) -> list[str]:
        """The steps a run reports it ran (its progress lines 'step: summary')."""
        ran = []
        for line in stderr.splitlines():
            name = line.split(":", 1)[0].strip()
            if name in self.steps and name not in ran:
                ran.append(name)
        return ran

    def record(self, r: Result) -> Result:
        self.results[r.key] = r
        what = r.not_measured and f"not measured: {r.not_measured}" or \
            f"{r.fmt_time()} (runs {len(r.times)}, peak {r.fmt_mem()}, load {r.load})"
        self.say(f"{r.title}: {what}")
        return r

    def skip(self, key: str, title: str, why: str) -> Result:
        return self.record(Result(key, title, not_measured=why))

    # -- files and builds ----------------------------------------------------------
    def config(self, fname: str, n: int, extra: int = 0, **kw) -> Path:
        path = self.work / "configs" / f"{fname}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(gen_config.render(n, extra, **kw))
        return path

    def rm_tree(self, path: Path) -> None:
        """Remove a prefix, refusing to cross a mount (a build that died may leave one)."""
        if not path.exists():
            return
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
                  if line.split()[1].startswith(str(path) + "/")]
        for m in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=True)

    @property
    def scope(self) -> list[str]:
        """Without a built root, runs stop before the root-builder steps."""
        if self.full_prefix or "bootstrap" not in self.steps:
            return []
        return ["--to", self.steps[self.steps.index("bootstrap") - 1]]

    def base_prefix(self) -> tuple[Path, Path]:
        """A finished build of the 2-node base config: (prefix, config)."""
        base_cfg = self.config("base", 2, name=BUILD_NAME)
        if self.full_prefix:
            return self.full_prefix, base_cfg
        prefix = self.work / "server-only"
        if not prefix.exists():
            self.say("building the server-only base (no root: --quick or no full build)")
            self.sh(self.nbq("all", "-c", base_cfg, "--prefix", prefix, *self.scope))
        return prefix, base_cfg

    def resume(self, cfg: Path, prefix: Path) -> str:
        """The command line of `all --resume` of cfg on prefix."""
        return self.nbq("all", "--resume", "-c", cfg, "--prefix", prefix, *self.scope)

    def mirror(self) -> str:
        """The host's Debian mirror, as nfsroot-build reads it (its own python)."""
        py = Path(self.nb).with_name("python")
        code = "from nfsroot_builder.aptsources import host_mirror; print(host_mirror())"
        for exe in (py, Path(sys.executable)):
            p = subprocess.run([str(exe), "-c", code], text=True, capture_output=True)
            if p.returncode == 0 and p.stdout.strip():
                return p.stdout.strip()
        raise RuntimeError(f"cannot read the host's mirror: {p.stderr[-500:]}")

    def in_own_cache(self, cache: Path, cmd: str) -> str:
        """cmd in a private mount namespace whose /var/cache/nfsroot-build is
        cache: the host's caches (and other builds using them) are untouched,
        and an empty cache is really cold (no .debs, no package-name index)."""
        inner = (f"mkdir -p {HOST_CACHE_ROOT} && mount --bind {shlex.quote(str(cache))} "
                 f"{HOST_CACHE_ROOT} && exec {cmd}")
        return f"unshare -m --propagation private sh -c {shlex.quote(inner)}"

    @staticmethod
    def du_mb(path: Path) -> int | None:
        p = subprocess.run(["du", "-smx", str(path)], capture_output=True, text=True)
        return int(p.stdout.split()[0]) if p.returncode == 0 and p.stdout else None

    @staticmethod
    def seed_phases(stderr: str) -> dict[str, float]:
        """The seed script's phases from its '@@phase NAME SECONDS' marks."""
        marks = [(m.group(1), float(m.group(2))) for m in re.finditer(r"^@@phase (\S+) ([\d.]+)$", stderr, re.M)]
        return {a: round(tb - ta, 2) for (a, ta), (_b, tb) in zip(marks, marks[1:], strict=False)}

    @staticmethod
    def state_phases(prefix: Path, name: str = BUILD_NAME) -> dict[str, float]:
        """How long each step took, from the build's state.json."""
        state = prefix / "var/lib/nfsroot-build" / name / "state.json"
        try:
            steps = json.loads(state.read_text())["steps"]
        except (OSError, ValueError, KeyError):
            return {}
        out = {}
        for step, rec in steps.items():
            try:
                a = datetime.fromisoformat(rec["started"])
                b = datetime.fromisoformat(rec["finished"])
            except (KeyError, ValueError, TypeError):
                continue
            out[step] = round((b - a).total_seconds(), 2)
        return out

    def step_times(self, prefix: Path, steps: list[str]) -> dict[str, float]:
        """How long each of `steps` took in the last run on prefix."""
        all_ = self.state_phases(prefix)
        return {s: all_[s] for s in steps if s in all_}
