"""The dry-run is exact: `all --dry-run` on a fresh prefix lists the same
commands and the same file changes, step by step and in order, as the real
`all` that follows it on that prefix.

The plan is read from the dry-run transcript (`$ ...` commands, `# write`,
`# mkdir`, `# rm`, `# ln`, `# install`, `# chmod` file changes); the real run
from its step logs, where the Runner writes each command as `$ ...` (a
read-only probe, which a dry-run runs as well instead of listing it, after a
`# read-only:` line) and FileOps each change with the same `# ...` line.
Values only a real run knows stand as placeholders such as
`<kernel-version>` in the plan and match any text there; nothing else may
differ.

Three builds: the shared mmdebstrap one of the other root tests
(tests/root_builds.py records its dry-run before building it), the config of
`init --example lab` (mmdebstrap) and that of `init --example seed` with
debootstrap and suite trixie.
"""
from __future__ import annotations

import difflib
import re
import shutil
from pathlib import Path

import pytest

from helpers import example_text, nfsroot_build, require

CHANGE = re.compile(r"# (write|chmod|mkdir|ln|rm|install) ")
PLACEHOLDER = re.compile(r"<[a-z][a-z-]*>")
# The byte count of a written file depends on placeholders in its content (a menu's kernel path).
SIZE = re.compile(r" \(\d+ bytes, ")


def planned(transcript: str) -> dict[str, list[str]]:
    """step -> the commands and file changes a dry-run announced, in order."""
    steps: dict[str, list[str]] = {}
    current = None
    for line in transcript.splitlines():
        m = re.match(r"### step (\S+): ", line)
        if m:
            current = steps.setdefault(m[1], [])
        elif current is not None and (line.startswith("$ ") or CHANGE.match(line)):
            current.append(SIZE.sub(" (", line))
    return steps


def log_dir(state_dir: Path) -> Path:
    """The newest run's logs: logs/last (one directory per run) or logs/ itself."""
    last = state_dir / "logs" / "last"
    return last if last.is_dir() else state_dir / "logs"


def performed(logs: Path, steps: list[str]) -> dict[str, list[str]]:
    """step -> the commands (not the read-only ones) and file changes of the real run, in order."""
    out: dict[str, list[str]] = {}
    for step in steps:
        lines = (logs / f"{step}.log").read_text(errors="replace").splitlines()
        out[step] = [SIZE.sub(" (", line) for i, line in enumerate(lines)
                     if (line.startswith("$ ") and (i == 0 or lines[i - 1] != "# read-only:"))
                     or CHANGE.match(line)]
    return out


def same(plan_line: str, real_line: str) -> bool:
    # shlex quotes a word with a placeholder ('<kernel-version>'), not the real value.
    plan_line, real_line = plan_line.replace("'", ""), real_line.replace("'", "")
    parts = PLACEHOLDER.split(plan_line)
    return re.fullmatch(".+?".join(map(re.escape, parts)), real_line) is not None


def differences(plan: dict[str, list[str]], real: dict[str, list[str]]) -> list[str]:
    problems = []
    if list(plan) != list(real):
        problems.append(f"steps differ: dry-run {list(plan)} / real {list(real)}")
    for step in plan:
        want, got = plan[step], real.get(step, [])
        if len(want) == len(got) and all(same(w, g) for w, g in zip(want, got, strict=True)):
            continue
        diff = difflib.unified_diff(want, got, "dry-run", "real run", lineterm="", n=1)
        problems.append(f"step {step}:\n" + "\n".join(diff))
    return problems


def assert_exact(transcript: str, logs: Path) -> None:
    """logs: the real run's log directory (log_dir() of its state dir right after it)."""
    plan = planned(transcript)
    assert plan, "the dry-run announced no step"
    real = performed(logs, list(plan))
    problems = differences(plan, real)
    assert not problems, "the dry-run is not what the real run did:\n" + "\n".join(problems)
    lines = [line for step in real.values() for line in step]
    commands = sum(line.startswith("$ ") for line in lines)
    print(f"exact: {commands} commands and {len(lines) - commands} file changes in {len(real)} steps")
    assert commands >= 10, "too few commands compared to prove anything"


# -- the comparison itself must be able to fail --------------------------------

def test_comparison_catches_an_unannounced_command(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs/bootstrap.log").write_text(
        "# read-only:\n$ dpkg-query -W x\n$ mmdebstrap trixie /r\n$ touch /r/x\n# write /r/m (3 bytes, mode 644)\n")
    plan = "### step bootstrap: B\n$ mmdebstrap trixie /r\n# write /r/m (9 bytes, mode 644)\n"
    assert differences(planned(plan), performed(log_dir(tmp_path), ["bootstrap"])) != []
    (tmp_path / "logs/bootstrap.log").write_text(
        "# read-only:\n$ dpkg-query -W x\n$ mmdebstrap trixie /r\n# write /r/m (3 bytes, mode 644)\n")
    assert differences(planned(plan), performed(log_dir(tmp_path), ["bootstrap"])) == []


def test_placeholder_matches_only_its_place():
    assert same("$ update-initramfs -u -k <kernel-version>", "$ update-initramfs -u -k 6.12.38+deb13-amd64")
    assert not same("$ update-initramfs -u -k <kernel-version>", "$ update-initramfs -c -k 6.12.38+deb13-amd64")


# -- the real builds ----------------------------------------------------------

def test_mm_dry_run_is_exact(mm):
    """The shared mmdebstrap build (layout tmpfs, GRUB, Ganesha; tests/root_builds.py)."""
    assert_exact(mm.dry_run, mm.first_logs)


def dry_then_real(tmp_path_factory, example: str, name: str, text: str):
    """`all --dry-run` on a fresh prefix, then the real `all` there: (transcript, state dir)."""
    base = tmp_path_factory.mktemp(f"{example}-exact")
    cfg = base / "cluster.toml"
    cfg.write_text(text)
    stage = base / "stage"
    dry = nfsroot_build("all", "-c", cfg, "--prefix", stage, "--dry-run", check=True)
    assert not stage.exists(), "the dry-run wrote under the prefix"
    nfsroot_build("all", "-c", cfg, "--prefix", stage, check=True)
    return dry.stdout, stage / "var/lib/nfsroot-build" / name


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require(shutil.which("mmdebstrap") is not None, "mmdebstrap missing")
    return dry_then_real(tmp_path_factory, "lab", "lab", example_text("lab"))


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    require(shutil.which("debootstrap") is not None, "debootstrap missing")
    # sid's Release on this mirror has expired: the seed's cluster, built from trixie.
    return dry_then_real(tmp_path_factory, "seed", "kerrighed",
                         example_text("seed").replace('suite = "sid"', 'suite = "trixie"'))


def test_lab_example_dry_run_is_exact(lab):
    """`init --example lab` as it is: mmdebstrap."""
    transcript, state_dir = lab
    assert "mmdebstrap --mode=root" in transcript
    assert_exact(transcript, log_dir(state_dir))


def test_seed_example_dry_run_is_exact_with_debootstrap(seed):
    """`init --example seed` with suite trixie: debootstrap, the kernel NFS server, seven extra packages."""
    transcript, state_dir = seed
    assert "debootstrap --variant=minbase" in transcript
    assert_exact(transcript, log_dir(state_dir))


def test_seed_layout_sysvinit_dry_run_is_exact(seed_sysv):
    """The seed example with layout "seed" and init "sysvinit" (tests/root_builds.py):
    debootstrap, the sysvinit packages, the seed's fstab, rcS and inittab.d files."""
    assert "sysvinit-core" in seed_sysv.dry_run and "/etc/default/rcS" in seed_sysv.dry_run
    assert_exact(seed_sysv.dry_run, seed_sysv.first_logs)
