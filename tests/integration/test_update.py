"""`nfsroot-build update` (issue 10's acceptance): a root built while a local
file: repository held nrb-probe 1.0; the repository gets 1.1; `update` makes
a new version with 1.1 and makes it current; `root diff` shows
`nrb-probe 1.0 -> 1.1`; a second `update` makes no version. Before it,
`update --dry-run` changes nothing and announces exactly the clone and the
upgrade commands the real update then runs."""
from __future__ import annotations

import json
import time

from local_repo import use_repo
from test_dry_run_exact import differences, log_dir, performed, planned

from helpers import nfsroot_build, snapshot
from root_builds import installed, new_build, remove_stage


def versions_of(b) -> dict[str, dict]:
    res = nfsroot_build("root", "list", "-c", b.cfg, "--prefix", b.stage, "--json", check=True)
    return {v["id"]: v for v in json.loads(res.stdout)["versions"]}


def test_update_makes_a_version_with_the_upgrade_then_none(tmp_path_factory, probe_repo):
    repo = probe_repo
    b = new_build(tmp_path_factory, "upd", bootstrapper="mmdebstrap", layout="tmpfs", loader="grub")
    use_repo(b, repo)
    try:
        nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, check=True)
        assert list(versions_of(b)) == ["v1"]
        repo.add("nrb-probe", "1.1")
        # The dry-run first: it changes nothing (no state write, no tree, no TFTP file).
        untouched = snapshot(b.stage)
        dry = nfsroot_build("update", "--dry-run", "-c", b.cfg, "--prefix", b.stage, check=True)
        assert snapshot(b.stage) == untouched
        assert "dry-run: update would make v2 from v1" in dry.stderr, dry.stderr
        assert f"$ cp -a -x --reflink=auto {b.root}/. {b.root}.v2.part" in dry.stdout.splitlines(), dry.stdout
        assert "apt-get dist-upgrade" in dry.stdout and "### step node-menus" in dry.stdout, dry.stdout

        t0 = time.monotonic()
        res = nfsroot_build("update", "-c", b.cfg, "--prefix", b.stage, "--json", check=True)
        print(f"update with upgrades: {time.monotonic() - t0:.1f} s\n{res.stderr}")
        out = json.loads(res.stdout)
        assert out["version"] == "v2" and out["from"] == "v1"
        assert {"package": "nrb-probe", "from": "1.0", "to": "1.1"} in out["packages"]["upgraded"]
        assert "  nrb-probe 1.0 -> 1.1" in res.stderr
        # The clone and the upgrade were exactly what the dry-run said (their step logs).
        # (The steps after them are planned against no tree yet: docs/versions.md, known limits.)
        plan = {k: v for k, v in planned(dry.stdout).items() if k in ("bootstrap", "update-upgrade")}
        assert list(plan) == ["bootstrap", "update-upgrade"], dry.stdout
        problems = differences(plan, performed(log_dir(b.stage / "var/lib/nfsroot-build/upd"), list(plan)))
        assert not problems, "\n".join(problems)
        vs = versions_of(b)
        assert vs["v2"]["state"] == "current" and vs["v1"]["state"] == "previous", vs
        assert "nrb-probe\t1.0" in installed(b.stage / vs["v1"]["path"].lstrip("/"))   # v1 untouched
        assert "nrb-probe\t1.1" in installed(b.stage / vs["v2"]["path"].lstrip("/"))

        diff = nfsroot_build("root", "diff", "v1", "v2", "-c", b.cfg, "--prefix", b.stage, check=True)
        assert "  nrb-probe 1.0 -> 1.1" in diff.stdout.splitlines(), diff.stdout

        t0 = time.monotonic()
        again = nfsroot_build("update", "-c", b.cfg, "--prefix", b.stage, check=True)
        print(f"update with nothing to upgrade: {time.monotonic() - t0:.1f} s")
        assert "nothing to upgrade" in again.stderr, again.stderr
        assert sorted(versions_of(b)) == ["v1", "v2"]
        st = nfsroot_build("status", "-c", b.cfg, "--prefix", b.stage, "--json", check=True)
        assert '"stale"' not in st.stdout, st.stdout
    finally:
        remove_stage(b.stage)
