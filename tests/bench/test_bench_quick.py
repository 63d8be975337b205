"""`make bench QUICK=1` still works: the harness runs its small sizes (one run
each, no full build, no lab) and writes a report with numbers in it.

No timing is asserted here: benchmarks are not tests. The report goes to a
temporary file; bench/RESULTS.md is not touched.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import require

REPO = Path(__file__).resolve().parents[2]
NFSROOT_BUILD = Path(sys.executable).with_name("nfsroot-build")


def test_make_bench_quick_is_the_harness_in_quick_mode():
    res = subprocess.run(["make", "-n", "-C", str(REPO), "bench", "QUICK=1", "BENCH_OUT=/tmp/x.md"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert re.search(r"bench/run\.py --quick --out /tmp/x\.md", res.stdout), res.stdout


def test_quick_run_writes_numbers(tmp_path):
    require(os.geteuid() == 0, "the benchmarks make real (staged) runs: needs root")
    require(shutil.which("hyperfine") is not None, "hyperfine is not installed")
    require(NFSROOT_BUILD.exists(), f"no {NFSROOT_BUILD}")
    before = (REPO / "bench/RESULTS.md").read_bytes() if (REPO / "bench/RESULTS.md").exists() else None
    out = tmp_path / "RESULTS.md"
    res = subprocess.run([sys.executable, str(REPO / "bench/run.py"), "--quick", "--out", str(out),
                          "--work", str(tmp_path / "work"), "--nfsroot-build", str(NFSROOT_BUILD)],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    text = out.read_text()
    for heading in ("## Machine", "## Targets", "## All results", "## Commands and raw times"):
        assert heading in text
    # Every target has a row; the quick sizes were measured (a number with a unit).
    for target in ("no-op resume < 1 s", "100-node render < 1 s", "100-node render < 150 MB",
                   "no-op resume at 100 nodes < 0.4 s", "add one node at 100 < 2 s", "dry-run < 1 s",
                   "full build ≤ 0.3× the seed by hand (cold cache", "full build ≤ 0.3× the seed by hand (warm cache",
                   "unknown package fails"):
        assert target in text, target
    for row in ("no-op resume", "inventory scale: 100 nodes", "add one node to 100", "no-op resume at 100 nodes"):
        line = next(ln for ln in text.splitlines() if ln.startswith(f"| {row}"))
        assert re.search(r"\| \d+(\.\d+)? (ms|s) \|", line), line
    # Each measured target has a verdict computed from its number.
    for target in ("100-node render < 1 s", "no-op resume at 100 nodes < 0.4 s"):
        line = next(ln for ln in text.splitlines() if ln.startswith(f"| {target}"))
        assert re.search(r"\| \d+ ms \| (met|\*\*missed\*\*) \|", line), line
    assert re.search(r"^\d+ of \d+ measured targets met", text, re.M)
    # The long benchmarks say why they were skipped instead of showing numbers.
    assert "not measured: --quick" in text
    assert not (tmp_path / "work").exists(), "the scratch directory is removed"
    after = (REPO / "bench/RESULTS.md").read_bytes() if (REPO / "bench/RESULTS.md").exists() else None
    assert before == after, "a quick test run must not rewrite bench/RESULTS.md"
