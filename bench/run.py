#!/usr/bin/env python3
"""The benchmark harness behind `make bench`: runs every benchmark, writes RESULTS.md.

    bench/run.py [--quick] [--out FILE] [--work DIR] [--nfsroot-build PATH]

Short commands are timed with hyperfine (median of several runs, the raw
times kept); long ones (full builds) and peak memory with /usr/bin/time.
Every figure in the output comes from this run. A benchmark that cannot run
(its command does not exist yet, --quick, no network) is reported as
"not measured: <reason>", never with a made-up number.

Needs root (real runs write a staging prefix, bind-mount the package
cache), hyperfine and GNU time. Everything is written under --work
(default /var/tmp/nfsroot-bench), which is removed at the end unless
--keep.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gen_config  # noqa: E402

SIZES = (1000, 10000, 50000)
QUICK_SIZES = (100,)
ADD_ONE_AT = 10000
QUICK_ADD_ONE_AT = 100
DPKG_VERSION = "dpkg-query -W -f '${Version}' "
# nfsroot-build's caches: apt/ (the .debs, context.APT_CACHE) and lists/ (the suite's package names)
HOST_CACHE_ROOT = Path("/var/cache/nfsroot-build")


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
        return statistics.median(self.times) if self.times else None

    def fmt_time(self) -> str:
        if self.not_measured:
            return "not measured"
        m = self.median
        return "-" if m is None else fmt_s(m)

    def fmt_mem(self) -> str:
        return "-" if self.peak_kb is None else f"{self.peak_kb / 1024:.0f} MB"


def fmt_s(s: float) -> str:
    if s < 1:
        return f"{s * 1000:.0f} ms"
    return f"{s:.2f} s" if s < 10 else f"{s:.1f} s" if s < 600 else f"{s / 60:.1f} min"


class Harness:
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

    # -- plumbing ------------------------------------------------------------
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

    def has_command(self, *words) -> bool:
        p = subprocess.run([self.nb, *words, "--help"], capture_output=True, text=True)
        return p.returncode == 0

    def hyperfine(self, cmd: str, runs: int, prepare: str | None = None, warmup: int = 0) -> list[float]:
        out = self.work / "hyperfine.json"
        argv = ["hyperfine", "--runs", str(runs), "--warmup", str(warmup), "--export-json", str(out),
                "--style", "none", "--command-name", "bench"]
        if prepare:
            argv += ["--prepare", prepare]
        argv.append(cmd)
        p = subprocess.run(argv, text=True, capture_output=True)
        if p.returncode != 0:
            raise RuntimeError(f"hyperfine failed: {cmd}\n{p.stdout[-2000:]}{p.stderr[-3000:]}")
        return [float(t) for t in json.loads(out.read_text())["results"][0]["times"]]

    def observe(self, cmd: str) -> tuple[float, int, str]:
        """One run under GNU time: (wall seconds, peak RSS KiB, stderr)."""
        tf = self.work / "time.out"
        p = subprocess.run(["/usr/bin/time", "-o", str(tf), "-f", "%e %M", "sh", "-c", cmd],
                           text=True, capture_output=True)
        if p.returncode != 0:
            raise RuntimeError(f"command failed ({p.returncode}): {cmd}\n{p.stdout[-2000:]}{p.stderr[-4000:]}")
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

    # -- the server-only scope ------------------------------------------------
    @property
    def scope(self) -> list[str]:
        """Without a built root, runs stop before the root-builder steps."""
        if self.full_prefix or "bootstrap" not in self.steps:
            return []
        return ["--to", self.steps[self.steps.index("bootstrap") - 1]]

    def base_prefix(self) -> tuple[Path, Path]:
        """A finished build of the 2-node base config: (prefix, config)."""
        base_cfg = self.config("base", 2, name="bench-mm")
        if self.full_prefix:
            return self.full_prefix, base_cfg
        prefix = self.work / "server-only"
        if not prefix.exists():
            self.say("building the server-only base (no root: --quick or no full build)")
            self.sh(self.nbq("all", "-c", base_cfg, "--prefix", prefix, *self.scope))
        return prefix, base_cfg

    # -- benchmarks -------------------------------------------------------------
    def bench_startup(self) -> None:
        cmd = self.nbq("list")
        r = Result("startup", "startup floor: nfsroot-build list (imports, no config)", cmd, load=load())
        r.times = self.hyperfine(cmd, max(self.runs, 10 if not self.quick else 1), warmup=1)
        self.record(r)

    def step_times(self, prefix: Path, steps: list[str]) -> dict[str, float]:
        """How long each step that ran took, from the build's state.json."""
        all_ = self.state_phases(prefix, "bench-mm")
        return {s: all_[s] for s in steps if s in all_}

    def bench_inventory(self, prefix: Path | None = None, where: str = "") -> None:
        base_prefix, base_cfg = self.base_prefix()
        prefix = prefix or base_prefix
        reset = self.nbq("all", "--resume", "-c", base_cfg, "--prefix", prefix, *self.scope)
        sizes = (QUICK_SIZES if self.quick else SIZES) if not where else (ADD_ONE_AT,)
        for n in sizes:
            cfg = self.config(f"inventory-{n}", n, name="bench-mm")
            cmd = self.nbq("all", "--resume", "-c", cfg, "--prefix", prefix, *self.scope)
            r = Result(f"inventory-{n}{where and '-' + where}", f"inventory scale: {n:,} nodes{where and ', ' + where}",
                       cmd, load=load())
            self.sh(reset)
            wall, r.peak_kb, err = self.observe(cmd)
            r.steps_ran = self.steps_ran(err)
            r.detail["observed_wall"] = wall
            r.detail["phases"] = self.step_times(prefix, r.steps_ran)
            state = prefix / "var/lib/nfsroot-build/bench-mm/state.json"
            r.detail["state_kb"] = state.stat().st_size // 1024 if state.exists() else None
            if n >= 50000:   # minutes on a busy disk: the observed run is the one run
                r.times = [wall]
            else:
                r.times = self.hyperfine(cmd, self.runs if n < 10000 else min(self.runs, 3), prepare=reset)
            self.record(r)
        self.sh(reset)

    def bench_add_one(self, prefix: Path | None = None, where: str = "") -> None:
        base_prefix, base_cfg = self.base_prefix()
        prefix = prefix or base_prefix
        n = QUICK_ADD_ONE_AT if self.quick else ADD_ONE_AT
        cfg_n = self.config(f"add-one-{n}", n, name="bench-mm")
        cfg_n1 = self.config(f"add-one-{n}+1", n, extra=1, name="bench-mm")
        reset = self.nbq("all", "--resume", "-c", cfg_n, "--prefix", prefix, *self.scope)
        cmd = self.nbq("all", "--resume", "-c", cfg_n1, "--prefix", prefix, *self.scope)
        r = Result(f"add-one-{n}{where and '-' + where}",
                   f"add one node to {n:,} and re-run (all --resume){where and ', ' + where}", cmd, load=load())
        self.sh(reset)
        wall, r.peak_kb, err = self.observe(cmd)
        r.steps_ran = self.steps_ran(err)
        r.detail["phases"] = self.step_times(prefix, r.steps_ran)
        r.times = self.hyperfine(cmd, self.runs, prepare=reset)
        self.record(r)
        # no-op resume at this size, while the build has n+1 nodes
        self.sh(cmd)
        r = Result(f"noop-resume-{n}{where and '-' + where}",
                   f"no-op resume at {n + 1:,} nodes{where and ', ' + where}", cmd, load=load())
        wall, r.peak_kb, err = self.observe(cmd)
        r.steps_ran = self.steps_ran(err)
        r.times = self.hyperfine(cmd, self.runs)
        self.record(r)
        # back to the base inventory for the benchmarks that follow
        self.sh(self.nbq("all", "--resume", "-c", base_cfg, "--prefix", prefix, *self.scope))

    def bench_noop_resume(self) -> None:
        prefix, base_cfg = self.base_prefix()
        cmd = self.nbq("all", "--resume", "-c", base_cfg, "--prefix", prefix, *self.scope)
        what = "a full build" if self.full_prefix else "the server steps (no root built)"
        r = Result("noop-resume", f"no-op resume: all --resume on {what}, 2 nodes", cmd, load=load())
        self.sh(cmd)   # make sure it is finished
        wall, r.peak_kb, err = self.observe(cmd)
        r.steps_ran = self.steps_ran(err)
        r.times = self.hyperfine(cmd, max(self.runs, 10) if not self.quick else 1, warmup=1)
        self.record(r)

    def bench_tmpfs(self) -> None:
        """The 10,000-node benchmarks again on a copy of the build in /dev/shm:
        what they cost without the shared disk's stalls (file creation and
        fsync wait for other VMs' and builds' I/O)."""
        if self.quick or not self.full_prefix:
            return
        avail = int(re.search(r"MemAvailable:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) // 1024
        size = self.du_mb(self.full_prefix) or 0
        if not Path("/dev/shm").is_dir() or avail < size + 4096:
            self.say(f"no tmpfs run: {avail} MB available, the build is {size} MB")
            return
        copy = Path("/dev/shm") / f"nfsroot-bench-{os.getpid()}"
        try:
            self.rm_tree(copy)
            self.sh(f"cp -a {shlex.quote(str(self.full_prefix))} {shlex.quote(str(copy))}")
            _, base_cfg = self.base_prefix()
            self.sh(self.nbq("all", "--resume", "-c", base_cfg, "--prefix", copy))
            self.bench_inventory(copy, "tmpfs copy")
            self.bench_add_one(copy, "tmpfs copy")
        finally:
            self.rm_tree(copy)

    def bench_dry_run(self) -> None:
        base_cfg = self.config("base", 2, name="bench-mm")
        empty = self.work / "empty-prefix"
        empty.mkdir(parents=True, exist_ok=True)
        cmd = self.nbq("all", "--dry-run", "-c", base_cfg, "--prefix", empty) + " >/dev/null"
        r = Result("dry-run", "dry-run of the whole pipeline (nothing built yet, 2 nodes)", cmd, load=load())
        try:
            wall, r.peak_kb, err = self.observe(cmd)
        except RuntimeError as e:
            r.not_measured = f"the dry-run failed: {str(e).splitlines()[-1][:200]}"
            self.record(r)
            return
        r.steps_ran = self.steps_ran(err)
        r.times = self.hyperfine(cmd, max(self.runs, 10) if not self.quick else 1, warmup=1)
        self.record(r)
        if self.quick:
            return
        n = ADD_ONE_AT
        cfg = self.config(f"dry-{n}", n, name="bench-mm")
        cmd = self.nbq("all", "--dry-run", "-c", cfg, "--prefix", empty) + " >/dev/null"
        r = Result(f"dry-run-{n}", f"dry-run of the whole pipeline ({n:,} nodes)", cmd, load=load())
        wall, r.peak_kb, err = self.observe(cmd)
        r.times = self.hyperfine(cmd, self.runs)
        self.record(r)

    # -- full builds --------------------------------------------------------------
    def full_build_missing(self) -> str:
        need = [s for s in ("bootstrap", "root-packages", "initramfs", "kernel-to-tftp") if s not in self.steps]
        return f"nfsroot-build has no {', '.join(need)} step yet" if need else ""

    def mirror(self) -> str:
        p = self.sh(f"{shlex.quote(sys.executable)} -c 'from nfsroot_builder.aptsources import host_mirror; "
                    "print(host_mirror())'", check=False)
        if p.returncode == 0 and p.stdout.strip():
            return p.stdout.strip()
        # a venv without the package importable: ask the tool's own python
        py = Path(self.nb).with_name("python")
        return self.sh(f"{shlex.quote(str(py))} -c 'from nfsroot_builder.aptsources import host_mirror; "
                       "print(host_mirror())'").stdout.strip()

    def bench_full(self) -> None:
        tools = ("seed", "debootstrap", "mmdebstrap")
        if self.quick:
            for t in tools:
                for c in ("cold", "warm"):
                    self.record(Result(f"full-{t}-{c}", f"full build, {t}, {c} cache",
                                       not_measured="--quick (QUICK=1) skips the full builds"))
            return
        missing = self.full_build_missing()
        suite = self.a.suite
        mirror = self.mirror()
        caches = {t: self.work / f"cache-{t}" for t in tools}
        for t in tools:
            self.rm_tree(caches[t])
        for cache_state in ("cold", "warm"):
            for t in tools:
                key = f"full-{t}-{cache_state}"
                title = ("seed page by hand (bench/seed-by-hand.sh)" if t == "seed" else f"nfsroot-build all, {t}")
                title = f"full build, {title}, {cache_state} package cache"
                if t != "seed" and missing:
                    self.record(Result(key, title, not_measured=missing))
                    continue
                prefix = self.work / f"full-{t}"
                self.rm_tree(prefix)
                if cache_state == "cold":
                    self.rm_tree(caches[t])
                caches[t].mkdir(parents=True, exist_ok=True)
                if t == "seed":
                    cmd = " ".join(shlex.quote(str(x)) for x in
                                   (HERE / "seed-by-hand.sh", prefix, caches[t], mirror, suite))
                else:
                    name = "bench-mm" if t == "mmdebstrap" else "bench-deb"
                    cfg = self.config(name, 2, name=name, bootstrapper=t, suite=suite)
                    # A private mount namespace: the build's .deb cache is this benchmark's own
                    # directory, so the host's cache (and other builds using it) are untouched.
                    # Cold means nothing cached: neither the .debs nor the package-name index.
                    inner = (f"mkdir -p {HOST_CACHE_ROOT} && mount --bind {shlex.quote(str(caches[t]))} "
                             f"{HOST_CACHE_ROOT} && exec " + self.nbq("all", "-c", cfg, "--prefix", prefix))
                    cmd = f"unshare -m --propagation private sh -c {shlex.quote(inner)}"
                # The report shows the command without the mirror's address (the host's own mirror).
                r = Result(key, title, cmd.replace(mirror, "<the host's mirror>"), load=load())
                self.say(f"{title} ... (minutes)")
                try:
                    wall, r.peak_kb, err = self.observe(cmd)
                except RuntimeError as e:
                    r.not_measured = "the build failed: " + " | ".join(str(e).replace(mirror, "<mirror>")
                                                                         .splitlines()[-3:])[:400]
                    self.record(r)
                    continue
                r.times = [wall]
                r.detail["phases"] = self.seed_phases(err) if t == "seed" else self.state_phases(prefix, name)
                r.detail["root_size_mb"] = self.du_mb(prefix / ("NFSROOT/kerrighed" if t == "seed"
                                                                else f"srv/nfsroot/{name}"))
                r.load += f" → {load()}"
                self.record(r)
                if t == "mmdebstrap":
                    self.full_prefix = prefix
        for t in tools:   # debootstrap's prefix is not used again
            if t != "mmdebstrap":
                self.rm_tree(self.work / f"full-{t}")

    @staticmethod
    def du_mb(path: Path) -> int | None:
        p = subprocess.run(["du", "-smx", str(path)], capture_output=True, text=True)
        return int(p.stdout.split()[0]) if p.returncode == 0 and p.stdout else None

    @staticmethod
    def seed_phases(stderr: str) -> dict[str, float]:
        marks = [(m.group(1), float(m.group(2))) for m in re.finditer(r"^@@phase (\S+) ([\d.]+)$", stderr, re.M)]
        return {a: round(tb - ta, 2) for (a, ta), (_b, tb) in zip(marks, marks[1:])}

    @staticmethod
    def state_phases(prefix: Path, name: str) -> dict[str, float]:
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
            except (KeyError, ValueError):
                continue
            out[step] = round((b - a).total_seconds(), 2)
        return out

    # -- lab ------------------------------------------------------------------------
    def bench_lab(self) -> None:
        keys = [("lab-boot-1", "lab boot: power-on to login, one node alone"),
                ("lab-boot-2", "lab boot: power-on to login, two nodes at once")]
        reason = ""
        if self.quick:
            reason = "--quick (QUICK=1) skips the lab"
        elif not self.has_command("lab", "boot"):
            reason = "nfsroot-build has no `lab boot` command yet"
        elif not self.full_prefix:
            reason = "needs the full build, which was not measured"
        if reason:
            for key, title in keys:
                self.record(Result(key, title, not_measured=reason))
            return
        prefix, base_cfg = self.base_prefix()
        self.sh(self.nbq("all", "--resume", "-c", base_cfg, "--prefix", prefix))
        common = ["-c", base_cfg, "--prefix", prefix]
        try:
            self.sh(self.nbq("lab", "up", *common))
            for (key, title), nodes in zip(keys, (["n000001"], [])):
                cmd = self.nbq("lab", "boot", *nodes, "--json", "--timeout", self.a.lab_timeout, *common)
                r = Result(key, title, cmd, load=load())
                self.say(f"{title} ... (minutes under TCG)")
                p = self.sh(cmd, check=False)
                try:
                    booted = json.loads(p.stdout)
                except ValueError:
                    booted = []
                secs = [b.get("seconds") for b in booted]
                if p.returncode != 0 or not booted or None in secs:
                    why = "; ".join(f"{b.get('name')}: {b.get('problem')}" for b in booted if b.get("problem"))
                    r.not_measured = f"the boot failed: {why or p.stderr.strip().splitlines()[-1:]}"[:300]
                else:
                    r.times = [max(secs)]
                    r.detail["per node"] = {b["name"]: b["seconds"] for b in booted}
                    r.detail["accel"] = sorted({str(b.get("accel", "")) for b in booted} - {""})
                    r.note = ", ".join(f"{b['name']} {b['seconds']} s" for b in booted)
                r.load += f" → {load()}"
                self.record(r)
        except RuntimeError as e:
            for key, title in keys:
                if key not in self.results:
                    self.record(Result(key, title, not_measured=f"lab up failed: {str(e)[-300:]}"))
        finally:
            self.sh(self.nbq("lab", "down", *common), check=False)

    # -- profile ----------------------------------------------------------------------
    def breakdown(self) -> None:
        """Where the time of the largest inventory goes, measured in-process."""
        n = QUICK_SIZES[-1] if self.quick else SIZES[-1]
        cfg = self.config(f"inventory-{n}", n, name="bench-mm")
        py = Path(self.nb).with_name("python")
        p = subprocess.run([str(py if py.exists() else sys.executable), str(HERE / "breakdown.py"), str(cfg)],
                           text=True, capture_output=True)
        if p.returncode == 0:
            try:
                self.results["breakdown"] = Result("breakdown", f"in-process breakdown, {n:,} nodes",
                                                   detail=json.loads(p.stdout))
            except ValueError:
                pass
        else:
            self.say(f"breakdown failed: {p.stderr[-500:]}")

    # -- the whole run -------------------------------------------------------------------
    def run(self) -> None:
        self.started = datetime.now().astimezone()
        self.load_start = load()
        p = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        self.git_rev = p.stdout.strip() or "?"
        self.rm_tree(self.work)
        self.work.mkdir(parents=True)
        try:
            for bench in (self.bench_startup, self.bench_full, self.bench_noop_resume, self.bench_dry_run,
                          self.bench_inventory, self.bench_add_one, self.bench_tmpfs, self.bench_lab,
                          self.breakdown):
                try:
                    bench()
                except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                    # One benchmark failing (a step failed, a tool is missing) must not cost the
                    # others: it is reported, with the command's last lines.
                    name = bench.__name__.removeprefix("bench_").replace("_", "-")
                    lines = [ln for ln in str(e).splitlines() if ln.strip()]
                    self.record(Result(f"failed-{name}", f"{name}: failed",
                                       not_measured="failed: " + " | ".join(lines[:1] + lines[-4:])[:600]))
        finally:
            self.finished = datetime.now().astimezone()
            self.load_end = load()
            if not self.a.keep:
                self.rm_tree(self.work)

    # -- the report -------------------------------------------------------------------------
    def machine(self) -> list[str]:
        def first(cmd, default="?"):
            p = subprocess.run(cmd, shell=True, text=True, capture_output=True)
            return (p.stdout.strip().splitlines() or [default])[0] if p.returncode == 0 else default
        cpu = first("lscpu | sed -n 's/^Model name: *//p'")
        mem = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) // 1024 // 1024
        os_name = first(". /etc/os-release && echo \"$PRETTY_NAME\"")
        virt = first("systemd-detect-virt 2>/dev/null || echo unknown", "unknown")
        return [
            f"- CPU: {cpu}, {os.cpu_count()} cores (virtualisation: {virt})",
            f"- memory: {mem} GiB; disk under {self.work.parent}: "
            f"{first(f'df -h --output=fstype,size {self.work.parent} | tail -1')}",
            f"- OS: {os_name}, kernel {platform.release()}; Python {platform.python_version()}",
            f"- tools: {first('hyperfine --version')}, debootstrap {first(DPKG_VERSION + 'debootstrap')}, "
            f"mmdebstrap {first(DPKG_VERSION + 'mmdebstrap')}, dhcpd {first(DPKG_VERSION + 'isc-dhcp-server')}, "
            f"nfsroot-build (git {self.git_rev} at the start)",
            f"- load average (1/5/15 min): {self.load_start} at the start, {self.load_end} at the end "
            "(the machine is shared: other builds and VMs may run meanwhile; each row has its own)",
        ]

    def targets(self) -> list[tuple[str, str, str, str]]:
        """(target, measured, verdict, note) for every target of the issue."""
        R = self.results
        rows = []

        def t(key):
            r = R.get(key)
            return None if r is None or r.not_measured or r.median is None else r.median

        def verdict(ok):
            return "met" if ok else "**missed**"

        for c in ("cold", "warm"):
            mm, seed = t(f"full-mmdebstrap-{c}"), t(f"full-seed-{c}")
            name = f"full build with mmdebstrap ≤ 0.5× the seed script ({c} cache)"
            if mm is None or seed is None:
                why = "; ".join(dict.fromkeys(r.not_measured for r in (R.get(f"full-mmdebstrap-{c}"),
                                                                      R.get(f"full-seed-{c}")) if r and r.not_measured))
                rows.append((name, "not measured", "-", why))
            else:
                rows.append((name, f"{mm / seed:.2f}× ({fmt_s(mm)} vs {fmt_s(seed)})", verdict(mm <= 0.5 * seed), ""))
        v = t("noop-resume")
        rows.append(("no-op resume < 1 s", fmt_s(v) if v is not None else "not measured",
                     "-" if v is None else verdict(v < 1), "" if self.full_prefix else
                     "server steps only (no root was built in this run)"))
        n = QUICK_SIZES[-1] if self.quick else 10000
        r = R.get(f"inventory-{n}")
        v = t(f"inventory-{n}")
        tm = t(f"inventory-{n}-tmpfs copy")
        note = "quick run: 100 nodes, not 10,000" if self.quick else \
            (f"on a tmpfs copy of the build: {fmt_s(tm)}" if tm is not None else "")
        if r and r.detail.get("phases"):
            note += ("; " if note else "") + "steps: " + ", ".join(f"{k} {v:g} s" for k, v in r.detail["phases"].items())
        rows.append((f"{n:,}-node render < 1 s", fmt_s(v) if v is not None else "not measured",
                     "-" if v is None else verdict(v < 1), note))
        mem = r.peak_kb / 1024 if r and r.peak_kb else None
        rows.append((f"{n:,}-node render < 150 MB", f"{mem:.0f} MB" if mem else "not measured",
                     "-" if mem is None else verdict(mem < 150), ""))
        n = QUICK_ADD_ONE_AT if self.quick else ADD_ONE_AT
        v = t(f"add-one-{n}")
        r = R.get(f"add-one-{n}")
        tm = t(f"add-one-{n}-tmpfs copy")
        note = f"on a tmpfs copy: {fmt_s(tm)}" if tm is not None else ""
        if r and r.steps_ran is not None:
            note += ("; " if note else "") + "steps that ran: " + (", ".join(r.steps_ran) or "none")
        rows.append((f"add one node at {n:,} < 2 s", fmt_s(v) if v is not None else "not measured",
                     "-" if v is None else verdict(v < 2), note))
        v = t("dry-run")
        rows.append(("dry-run < 1 s", fmt_s(v) if v is not None else "not measured",
                     "-" if v is None else verdict(v < 1), ""))
        for k in ("lab-boot-1", "lab-boot-2"):
            r = R.get(k)
            rows.append((r.title + " (no target: reported)", r.fmt_time(), "-", r.not_measured or r.note))
        return rows

    def analysis(self, missed: list[str]) -> list[str]:
        """For each missed target: the measured split of its time (this run's
        figures) and what would fix it (the profile's reading)."""
        R, out = self.results, []

        def phases(key):
            r = R.get(key)
            ph = (r.detail.get("phases") or {}) if r else {}
            return ", ".join(f"{k} {v:g} s" for k, v in sorted(ph.items(), key=lambda kv: -kv[1])[:6])

        for target in missed:
            out.append(f"- **{target}**")
            if target.startswith("full build"):
                c = "cold" if "cold" in target else "warm"
                out.append(f"  - nfsroot-build (mmdebstrap), slowest steps: {phases(f'full-mmdebstrap-{c}')}; "
                           f"seed script, slowest phases: {phases(f'full-seed-{c}')}.")
                out.append("  - Nearly all of both is dpkg unpacking and configuring packages and building the "
                           "initramfs (the steps that only write files add up to well under a second). Closing the rest needs "
                           "less work, not faster code: fewer packages (the seed script installs the default variant "
                           "with recommends), one initramfs build instead of a build per trigger, and on a cold cache "
                           "a nearer mirror or an apt proxy (the downloads are the mirror's speed).")
            elif "render" in target and "MB" not in target:
                n = QUICK_SIZES[-1] if self.quick else ADD_ONE_AT
                key = f"inventory-{n}"
                r = R.get(key)
                tm = R.get(f"{key}-tmpfs copy")
                if r and r.detail.get("observed_wall") and r.detail.get("phases"):
                    rest = r.detail["observed_wall"] - sum(r.detail["phases"].values())
                    out.append(f"  - Outside its steps the observed run spent {rest:.2f} s: start-up, reading and "
                               "validating the config, checking the steps it skipped, and writing the state "
                               "(fsync) before and after each step.")
                out.append(f"  - Steps of the observed run: {phases(key)}"
                           + (f"; the same run on a tmpfs copy of the build: {tm.fmt_time()} "
                              f"({phases(key + '-tmpfs copy')})" if tm and tm.times else "") + ".")
                per = ""
                if tm and (tm.detail.get("phases") or {}).get("node-menus"):
                    per = f" on tmpfs node-menus took {tm.detail['phases']['node-menus'] / n * 1e6:.0f} us per menu."
                kb = r.detail.get("state_kb") if r else None
                out.append(f"  - node-menus writes one file per node (GRUB fetches grub.cfg-01-<mac>): {n:,} file "
                           "creations. On this machine's shared disk they wait for other VMs' and builds' I/O (the "
                           f"I/O pressure column){(';' + per) if per else '.'} The build's state lists every file for undo"
                           + (f" ({kb:,} KB after this run)" if kb else "") + " and is rewritten twice per step. "
                           "Start-up (imports) and reading/validating the nodes (tomllib is pure Python) come on "
                           "top: see the in-process breakdown below.")
                out.append("  - Would fix: record the menu directory once in the undo record instead of every "
                           "menu (the state stays kilobytes); a compiled TOML parser (tomli's mypyc wheels or "
                           "rtoml) and validating nodes as plain tuples in bulk; writing menus from a thread pool "
                           "while the disk is the bottleneck. An admin usually changes a few nodes at a time: "
                           "see the add-one-node row.")
            elif target.startswith("add one"):
                out.append(f"  - Steps that ran: {phases(f'add-one-{QUICK_ADD_ONE_AT if self.quick else ADD_ONE_AT}')}. "
                           "Every resume also checks each done step (node-menus re-reads every menu) and parses the "
                           "whole config.")
            elif target.startswith("no-op") or target.startswith("dry-run"):
                out.append("  - Start-up is most of it (the startup floor row: importing typer, rich, pydantic and "
                           "the steps); then the read-only probes (dpkg-query) and, in a dry-run, the suite's "
                           "Release file fetched from the mirror to check package names.")
            else:
                out.append("  - see the per-step times below.")
        return out

    def report(self) -> str:
        out = ["# nfsroot-build benchmarks", "",
               f"Written by `make bench{' QUICK=1' if self.quick else ''}` (bench/run.py) on "
               f"{self.started:%Y-%m-%d %H:%M %Z}, finished {self.finished:%H:%M}. "
               "Every figure below comes from that run; see bench/README.md for what each benchmark does.",
               "", "## Machine", "", *self.machine(), "",
               "## Targets", "", "| target | measured | verdict | note |", "| --- | --- | --- | --- |"]
        targets = self.targets()
        out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in targets]
        missed = [a for a, _b, c, _d in targets if "missed" in c]
        if missed:
            out += ["", "## Missed targets: where the time goes, what would fix it", ""]
            out += self.analysis(missed)
        out += ["", "## All results", "",
                "Median of the runs (hyperfine) unless a single run; peak = maximum resident set size "
                "(GNU time) of one observed run, nfsroot-build and the processes it waited for.", "",
                "| benchmark | median | runs | min – max | peak memory | steps that ran | load (1/5/15), I/O pressure |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in self.results.values():
            if r.key == "breakdown":
                continue
            if r.not_measured:
                out.append(f"| {r.title} | not measured: {r.not_measured} | | | | | {r.load} |")
                continue
            rng = f"{fmt_s(min(r.times))} – {fmt_s(max(r.times))}" if len(r.times) > 1 else ""
            ran = "-" if r.steps_ran is None else (", ".join(r.steps_ran) or "none")
            title = f"{r.title} ({r.note})" if r.note else r.title
            out.append(f"| {title} | {r.fmt_time()} | {len(r.times)} | {rng} | {r.fmt_mem()} | {ran} | {r.load} |")
        ratios = self.ratios()
        if ratios:
            out += ["", "## Ratios (same run, same cache state)", ""] + [f"- {x}" for x in ratios]
        phases = [r for r in self.results.values() if r.detail.get("phases")]
        if phases:
            out += ["", "## Where the time goes, per step", "",
                    "Seconds per step (nfsroot-build: from the build's state.json, of the observed run) or per "
                    "phase of the seed script (its marks); the rest of a run's wall time is start-up "
                    "(imports, reading and validating the config) and the checks of the steps that were skipped.", ""]
            for r in phases:
                ph = ", ".join(f"{k} {v:g}" for k, v in r.detail["phases"].items())
                size = r.detail.get("root_size_mb")
                out.append(f"- {r.title}: {ph}" + (f" (root: {size} MB)" if size else ""))
        b = self.results.get("breakdown")
        if b:
            out += ["", f"## Where an inventory run's time goes ({b.title})", "",
                    "Measured in-process by bench/breakdown.py (one run each, seconds):", ""]
            out += [f"- {k}: {v}" for k, v in b.detail.items()]
        out += ["", "## Commands and raw times", ""]
        for r in self.results.values():
            if r.times:
                out.append(f"- {r.key}: `{r.command}`  ")
                out.append("  times (s): " + ", ".join(f"{x:.3f}" for x in r.times))
        return "\n".join(out) + "\n"

    def ratios(self) -> list[str]:
        out = []
        R = self.results
        for c in ("cold", "warm"):
            seed = R.get(f"full-seed-{c}")
            if not seed or not seed.median:
                continue
            for t in ("debootstrap", "mmdebstrap"):
                r = R.get(f"full-{t}-{c}")
                if r and r.median:
                    out.append(f"full build, {c} cache: nfsroot-build with {t} / seed script = "
                               f"{r.median / seed.median:.2f}")
        return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, one run each, no full build, no lab")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"), help="where to write the report")
    ap.add_argument("--work", default="/var/tmp/nfsroot-bench", help="scratch directory (removed at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--runs", type=int, default=5, help="hyperfine runs for short commands")
    ap.add_argument("--suite", default="trixie", help="Debian suite of the full builds")
    ap.add_argument("--nfsroot-build", default=shutil.which("nfsroot-build", path=str(Path(sys.executable).parent))
                    or shutil.which("nfsroot-build"), help="the nfsroot-build executable to measure")
    ap.add_argument("--lab-timeout", default="900", help="seconds a lab node may take to reach login")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        ap.error("run as root: the benchmarks make real builds under a staging prefix")
    for tool in ("hyperfine", "/usr/bin/time", "unshare"):
        if not shutil.which(tool):
            ap.error(f"{tool} is needed (apt-get install hyperfine time util-linux)")
    if not a.nfsroot_build:
        ap.error("no nfsroot-build executable found; pass --nfsroot-build")
    h = Harness(a)
    h.run()
    text = h.report()
    Path(a.out).write_text(text)
    print(f"bench: wrote {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
