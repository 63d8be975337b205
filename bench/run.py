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
--keep. The benchmarks are in benchmarks.py, full_build.py and
lab_boot.py, the plumbing in harness.py, the report in report.py.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import benchmarks  # noqa: E402
import report  # noqa: E402
from full_build import PAIRS, full_build  # noqa: E402
from harness import BUILD_NAME, Harness, load  # noqa: E402
from initrd_transfer import initrd_transfer  # noqa: E402
from lab_boot import lab_boot  # noqa: E402
from storm import section_of, with_section  # noqa: E402
from versions_bench import new_version, switch_rollback  # noqa: E402

# The order they run in: the full build first (the later ones reuse its root).
BENCHMARKS = (benchmarks.startup, full_build, benchmarks.noop_resume, benchmarks.dry_run,
              benchmarks.inventory, benchmarks.add_one, benchmarks.tmpfs_copy, benchmarks.unknown_package,
              benchmarks.node_import,
              lab_boot, initrd_transfer, benchmarks.breakdown, new_version, switch_rollback)
DPKG_VERSION = "dpkg-query -W -f '${Version}' "


def machine(h: Harness, git_rev: str, load_start: str, load_end: str) -> list[str]:
    def first(cmd, default="?"):
        p = subprocess.run(cmd, shell=True, text=True, capture_output=True)
        return (p.stdout.strip().splitlines() or [default])[0] if p.returncode == 0 else default
    cpu = first("lscpu | sed -n 's/^Model name: *//p'")
    mem = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) // 1024 // 1024
    os_name = first(". /etc/os-release && echo \"$PRETTY_NAME\"")
    virt = first("systemd-detect-virt 2>/dev/null || echo unknown", "unknown")
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores (virtualisation: {virt})",
        f"- memory: {mem} GiB; disk under {h.work.parent}: "
        f"{first(f'df -h --output=fstype,size {h.work.parent} | tail -1')}",
        f"- OS: {os_name}, kernel {platform.release()}; Python {platform.python_version()}",
        f"- tools: {first('hyperfine --version')}, debootstrap {first(DPKG_VERSION + 'debootstrap')}, "
        f"mmdebstrap {first(DPKG_VERSION + 'mmdebstrap')}, dhcpd {first(DPKG_VERSION + 'isc-dhcp-server')}, "
        f"nfsroot-build (git {git_rev} at the start)",
        f"- load average (1/5/15 min): {load_start} at the start, {load_end} at the end "
        "(the machine is shared: other builds and VMs may run meanwhile; each row has its own)",
    ]


def run_all(h: Harness, selected=BENCHMARKS) -> report.Meta:
    started = datetime.now().astimezone()
    load_start = load()
    p = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    h.rm_tree(h.work)
    h.work.mkdir(parents=True)
    try:
        for bench in selected:
            try:
                bench(h)
            except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                # One benchmark failing (a step failed, a tool is missing) must not cost the
                # others: it is reported, with the command's last lines.
                name = bench.__name__.replace("_", "-")
                lines = [ln for ln in str(e).splitlines() if ln.strip()]
                h.skip(f"failed-{name}", f"{name}: failed", "failed: " + " | ".join(lines[:1] + lines[-4:])[:600])
    finally:
        finished = datetime.now().astimezone()
        info = machine(h, p.stdout.strip() or "?", load_start, load())
        if not h.a.keep:
            h.rm_tree(h.work)
    return report.Meta(quick=h.quick, started=f"{started:%Y-%m-%d %H:%M %Z}", finished=f"{finished:%H:%M}",
                       machine=info, at_scale=benchmarks.scale(h), server_only=h.full_prefix is None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, one run each, no full build, no lab")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"), help="where to write the report")
    ap.add_argument("--work", default="/var/tmp/nfsroot-bench", help="scratch directory (removed at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--runs", type=int, default=5, help="hyperfine runs for short commands")
    ap.add_argument("--suite", default="trixie", help="Debian suite of the full builds")
    ap.add_argument("--pairs", type=int, default=PAIRS, help="alternating pairs of full builds per cache state")
    ap.add_argument("--nfsroot-build", default=shutil.which("nfsroot-build", path=str(Path(sys.executable).parent))
                    or shutil.which("nfsroot-build"), help="the nfsroot-build executable to measure")
    ap.add_argument("--lab-timeout", default="900", help="seconds a lab node may take to reach login")
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="run only this benchmark (repeatable): " + ", ".join(b.__name__ for b in BENCHMARKS))
    ap.add_argument("--build", metavar="PREFIX",
                    help="a finished full build of the base config (bench-mm, 2 nodes; e.g. the "
                         "full-mmdebstrap prefix of a --keep run) for the benchmarks that need one, "
                         "when full_build is not run: partial runs with --only")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        ap.error("run as root: the benchmarks make real builds under a staging prefix")
    for tool in ("hyperfine", "/usr/bin/time", "unshare"):
        if not shutil.which(tool):
            ap.error(f"{tool} is needed (apt-get install hyperfine time util-linux)")
    if not a.nfsroot_build:
        ap.error("no nfsroot-build executable found; pass --nfsroot-build")
    unknown = set(a.only) - {b.__name__ for b in BENCHMARKS}
    if unknown:
        ap.error(f"no benchmark named {', '.join(sorted(unknown))}")
    h = Harness(a)
    if a.build:
        if not (Path(a.build) / "var/lib/nfsroot-build" / BUILD_NAME / "state.json").is_file():
            ap.error(f"--build {a.build}: no finished {BUILD_NAME} build there")
        h.full_prefix = Path(a.build).absolute()
    meta = run_all(h, tuple(b for b in BENCHMARKS if not a.only or b.__name__ in a.only))
    out = Path(a.out)
    # bench/storm.py's section is measured by hand, not by this run: carried over.
    kept = section_of(out.read_text()) if out.exists() else ""
    out.write_text(with_section(report.render(h.results, meta), kept))
    print(f"bench: wrote {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
