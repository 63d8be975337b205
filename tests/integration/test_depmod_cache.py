"""The bootstrap's depmod (nfsroot_builder/assets/depmod-cached): the
kernel postinst's `depmod VERSION`, answered from the build host's cache
when the module tree is one it has seen.

The first tests run the script itself on a small tree with a stand-in
depmod that records its calls (processes, no root); the last one compares
a real built root's modules.* with what the root's own depmod computes."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from nfsroot_builder import debcache
from nfsroot_builder.context import APT_CACHE
from nfsroot_builder.steps.bootstrap import DEPMOD_WRAPPER

from helpers import require

pytestmark = pytest.mark.integration

VERSION = "6.12.0-test-amd64"
# Stands in for kmod's depmod: its outputs are a function of the modules'
# bytes, as the real one's are; every call but --version is recorded.
FAKE_DEPMOD = """#!/bin/sh
[ "$1" = --version ] && { echo "kmod version 34"; exit 0; }
echo "$*" >> "$CALLS"
[ -n "${FAIL:-}" ] && exit 3
[ -n "${SLOW:-}" ] && sleep "$SLOW"
[ -n "${MUTATE:-}" ] && touch "$MUTATE"
[ $# -eq 1 ] && [ -d "$MODULES/$1" ] || exit 0
d=$MODULES/$1
find "$d" -name '*.ko*' | LC_ALL=C sort | xargs cat | sha256sum > "$d/modules.dep"
echo "alias for $1" > "$d/modules.alias"
"""


class Tree:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.modules = tmp / "modules"
        self.cache = tmp / "cache"
        self.calls = tmp / "calls"
        self.fake = tmp / "depmod"
        self.fake.write_text(FAKE_DEPMOD)
        self.fake.chmod(0o755)
        self.cache.mkdir()
        self.run = tmp / "run"              # the essential hook makes it in a real build
        self.watchers: list[subprocess.Popen] = []
        self.dir = self.modules / VERSION
        (self.dir / "kernel/fs").mkdir(parents=True)
        for name, data in (("kernel/fs/nfs.ko.xz", b"nfs module"), ("kernel/fs/overlay.ko.xz", b"overlay")):
            (self.dir / name).write_bytes(data)
        (self.dir / "modules.order").write_text("kernel/fs/nfs.ko\nkernel/fs/overlay.ko\n")
        (self.dir / "modules.builtin").write_text("kernel/fs/ext4.ko\n")
        self.stamp_all(1_700_000_000)

    def stamp_all(self, when: int) -> None:
        """The mtimes a .deb gives its files: the same in every build."""
        for path in self.dir.rglob("*"):
            os.utime(path, (when, when))

    def env(self, cache: bool = True, **extra: str) -> dict[str, str]:
        return {"PATH": os.environ["PATH"], "NRB_DEPMOD_REAL": str(self.fake), "NRB_MODULES_DIR": str(self.modules),
                "NRB_DEPMOD_CACHE": str(self.cache if cache else self.tmp / "no-cache"),
                "NRB_DEPMOD_RUN": str(self.run), "CALLS": str(self.calls), "MODULES": str(self.modules), **extra}

    def depmod(self, *args: str, fail: bool = False, cache: bool = True, **extra: str) -> subprocess.CompletedProcess:
        env = self.env(cache, **({"FAIL": "1"} if fail else {}), **extra)
        return subprocess.run([str(DEPMOD_WRAPPER), *args], env=env, capture_output=True, text=True)

    def watch(self, cache: bool = True, **extra: str) -> subprocess.Popen:
        """`depmod --nrb-watch`, as the essential hook starts it (the
        fixture kills it after the test if the test did not stop it)."""
        self.run.mkdir(exist_ok=True)
        self.watchers.append(subprocess.Popen([str(DEPMOD_WRAPPER), "--nrb-watch"], env=self.env(cache, **extra),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, start_new_session=True))
        return self.watchers[-1]

    def stop_watch(self, watcher: subprocess.Popen) -> str:
        """What the customize hook does: ask it to end, wait for it and its children."""
        (self.run / "stop").touch()
        subprocess.run(["flock", str(self.run / "watch.lock"), "true"], check=True, timeout=30)
        return watcher.communicate(timeout=30)[1]

    def add_version(self, version: str) -> Path:
        d = self.modules / version
        shutil.copytree(self.dir, d)
        return d

    def real_calls(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []

    def outputs(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in self.dir.glob("modules.*")
                if p.name not in ("modules.order", "modules.builtin")}

    def entries(self) -> list[Path]:
        return [p for p in self.cache.iterdir() if not p.name.startswith(".new.")]

    def fresh_build(self) -> None:
        """The same kernel package unpacked again: outputs gone, a new .fresh-install."""
        for name in self.outputs():
            (self.dir / name).unlink()
        (self.dir / ".fresh-install").write_text("")


@pytest.fixture
def tree(tmp_path):
    t = Tree(tmp_path)
    yield t
    for watcher in t.watchers:      # a failed test's watcher and its depmod: by its own group
        if watcher.poll() is None:
            os.killpg(watcher.pid, signal.SIGKILL)
            watcher.wait()


def test_a_tree_seen_before_gets_the_same_bytes_without_running_depmod(tree):
    first = tree.depmod(VERSION)
    assert first.returncode == 0, first.stderr
    assert "stored in nfsroot-build's cache" in first.stderr
    assert tree.real_calls() == [VERSION]
    computed = tree.outputs()
    assert set(computed) == {"modules.dep", "modules.alias"}
    [entry] = tree.entries()
    assert sorted(p.name for p in entry.iterdir()) == ["content.sha256", "modules.alias", "modules.dep"]

    tree.fresh_build()
    again = tree.depmod(VERSION)
    assert again.returncode == 0, again.stderr
    assert "taken from nfsroot-build's cache" in again.stderr
    assert tree.real_calls() == [VERSION]          # not run again
    assert tree.outputs() == computed              # the same bytes
    assert tree.entries() == [entry]


def test_other_module_bytes_with_the_same_names_sizes_and_mtimes_run_depmod(tree):
    tree.depmod(VERSION)
    before = tree.outputs()
    [entry] = tree.entries()
    stored = {p.name: p.read_bytes() for p in entry.iterdir()}
    module = tree.dir / "kernel/fs/nfs.ko.xz"
    module.write_bytes(b"NFS module")              # same size
    tree.stamp_all(1_700_000_000)                  # same mtime
    tree.fresh_build()
    result = tree.depmod(VERSION)
    assert result.returncode == 0, result.stderr
    assert tree.real_calls() == [VERSION, VERSION]
    assert tree.outputs()["modules.dep"] != before["modules.dep"]
    # The entry another build may be reading is never changed.
    assert {p.name: p.read_bytes() for p in entry.iterdir()} == stored


def test_an_added_module_is_a_new_entry(tree):
    tree.depmod(VERSION)
    (tree.dir / "kernel/fs/extra.ko").write_bytes(b"site module")
    result = tree.depmod(VERSION)
    assert "stored" in result.stderr
    assert tree.real_calls() == [VERSION, VERSION]
    assert len(tree.entries()) == 2


@pytest.mark.parametrize("args", [["-a", VERSION], ["-a"], [VERSION, "extra"], ["no-such-version"]])
def test_any_other_use_runs_the_real_depmod_with_its_arguments(tree, args):
    result = tree.depmod(*args)
    assert result.returncode == 0, result.stderr
    assert tree.real_calls() == [" ".join(args)]
    assert tree.entries() == []


def test_without_the_cache_mounted_depmod_runs_as_it_is(tree):
    assert tree.depmod(VERSION, cache=False).returncode == 0
    assert tree.real_calls() == [VERSION]
    assert tree.entries() == []


def test_a_failing_depmod_fails_the_same_and_stores_nothing(tree):
    result = tree.depmod(VERSION, fail=True)
    assert result.returncode == 3
    assert list(tree.cache.iterdir()) == []        # not even a temporary entry


def wait_for(path: Path, watcher: subprocess.Popen) -> None:
    """Until the watcher makes path (it polls every 0.1 s); a bound, not a timing."""
    for _ in range(300):
        if path.exists():
            return
        assert watcher.poll() is None, watcher.communicate()[1]
        time.sleep(0.1)
    raise AssertionError(f"the watcher never made {path.name}")


def unpacking(tree: Tree) -> list[Path]:
    """The tree as dpkg leaves it half-way through renaming its files into
    place: modules.order done, the modules still .dpkg-new."""
    files = [p for p in tree.dir.rglob("*") if p.is_file() and p.name != "modules.order"]
    for p in files:
        p.rename(p.with_name(p.name + ".dpkg-new"))
    return files


def test_the_watcher_computes_a_tree_once_unpacked_and_the_postinst_takes_its_output(tree):
    files = unpacking(tree)
    watcher = tree.watch()
    wait_for(tree.run / "watch.lock", watcher)
    time.sleep(0.5)                                # several polls: nothing is unpacked yet
    assert tree.real_calls() == []
    for p in files:
        p.with_name(p.name + ".dpkg-new").rename(p)
    wait_for(tree.run / f"computed-{VERSION}", watcher)
    assert tree.real_calls() == [VERSION]
    [entry] = tree.entries()

    postinst = tree.depmod(VERSION)
    assert postinst.returncode == 0, postinst.stderr
    assert "taken from nfsroot-build's cache" in postinst.stderr
    assert "computed in the background" in postinst.stderr
    assert tree.real_calls() == [VERSION]          # once, by the watcher
    assert "stored in nfsroot-build's cache" in tree.stop_watch(watcher)
    assert watcher.returncode == 0
    # The same bytes as depmod run by the postinst itself, without a watcher.
    (tree.tmp / "plain").mkdir()
    plain = Tree(tree.tmp / "plain")
    plain.depmod(VERSION)
    assert tree.outputs() == plain.outputs()
    assert tree.entries() == [entry]


def test_the_postinst_waits_for_the_watchers_depmod_instead_of_running_its_own(tree):
    watcher = tree.watch(SLOW="2")
    wait_for(tree.run / f"claim-{VERSION}", watcher)
    postinst = tree.depmod(VERSION)                # while the watcher's depmod sleeps
    assert postinst.returncode == 0, postinst.stderr
    assert "computed in the background" in postinst.stderr
    assert tree.real_calls() == [VERSION]
    assert set(tree.outputs()) == {"modules.dep", "modules.alias"}
    tree.stop_watch(watcher)


def test_a_version_the_postinst_claimed_is_left_to_it(tree):
    tree.run.mkdir()
    tree.depmod(VERSION)                           # the postinst came first
    (tree.dir / "modules.dep").unlink()            # looks unpacked and not computed again
    other = "6.13.0-test-amd64"                    # sorts after VERSION: same poll, later
    (tree.add_version(other) / "kernel/fs/extra.ko").write_bytes(b"another tree")
    watcher = tree.watch()
    wait_for(tree.run / f"computed-{other}", watcher)
    tree.stop_watch(watcher)
    assert tree.real_calls() == [VERSION, other]


def test_the_watcher_without_the_cache_mounted_ends_at_once(tree):
    watcher = tree.watch(cache=False)
    watcher.wait(timeout=30)
    assert tree.depmod(VERSION, cache=False).returncode == 0
    assert watcher.returncode == 0
    assert tree.real_calls() == [VERSION]


def test_the_watcher_ends_when_its_run_directory_is_removed(tree):
    unpacking(tree)                                # nothing for it to do meanwhile
    watcher = tree.watch()
    wait_for(tree.run / "watch.lock", watcher)
    shutil.rmtree(tree.run)
    assert watcher.wait(timeout=30) == 0
    assert tree.real_calls() == []


def test_a_tree_changed_while_depmod_reads_it_is_not_stored(tree):
    module = tree.dir / "kernel/fs/nfs.ko.xz"
    result = tree.depmod(VERSION, MUTATE=str(module))   # a new mtime mid-run
    assert result.returncode == 0, result.stderr
    assert tree.real_calls() == [VERSION]
    assert set(tree.outputs()) == {"modules.dep", "modules.alias"}
    assert list(tree.cache.iterdir()) == []


def test_a_built_roots_module_files_are_what_its_own_depmod_computes(mm, tmp_path):
    """The mm root's modules.* (from the cache or computed while it was
    built) against the root's depmod run again on a copy of its modules,
    in a private mount namespace (the shared root is not written)."""
    require("unshare", "chroot")
    kernel = mm.kernel()
    modules = mm.root / "lib/modules" / kernel
    entries = [p for p in (APT_CACHE.parent / debcache.DEPMOD).iterdir() if (p / "modules.dep").exists()]
    assert any((p / "modules.dep").read_bytes() == (modules / "modules.dep").read_bytes() for p in entries), \
        "no entry of the depmod cache holds this root's modules.dep"
    script = (f"mount -t tmpfs tmpfs {mm.root}/tmp && mkdir -p {mm.root}/tmp/b/lib/modules && "
              f"cp -a {modules} {mm.root}/tmp/b/lib/modules/ && "
              f"chroot {mm.root} /sbin/depmod -b /tmp/b {kernel} && "
              f"cp -a {mm.root}/tmp/b/lib/modules/{kernel} {tmp_path}/computed")
    subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], check=True)
    outputs = sorted(p.name for p in modules.glob("modules.*"))
    assert "modules.dep.bin" in outputs
    for name in outputs:
        assert (tmp_path / "computed" / name).read_bytes() == (modules / name).read_bytes(), name
    assert not (mm.root / "usr/local/sbin/depmod").exists()
    assert not (mm.root / "var/cache/nfsroot-build-depmod").exists()
    assert not (mm.root / "run/nfsroot-build-depmod").exists()
    assert not shutil.which("depmod", path=str(mm.root / "usr/local/sbin"))
