"""Node groups booted (issue 11, point 1): the shared mm build gets two
groups. `compute` sets nothing, so it boots the default root (mm's own,
not rebuilt); `login` sets root.packages (one more: less) and root.files
(a file and a unit that prints it and less's path), so it gets its own
root at <root.path>-login, built once with its own state and versions.
n1 (compute) and n2 (login) boot at once; each report line shows its own
root path and version, and n2's console the file and the package."""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

from nfsroot_builder.groups import ROOT_STEPS

from helpers import console_unit, nfsroot_build
from test_lab_boot import SERVER, boot, edit_config, lab_up, report_times  # noqa: F401 (fixtures)

# The dry-run comparison of tests/integration (on sys.path there only when that directory is collected too).
sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from test_dry_run_exact import differences, log_dir, performed, planned  # noqa: E402

UNIT = console_unit("prints what the login group's root brings",
                    'echo "NRB-LOGIN $(cat /etc/login/banner) $(command -v less)"')


def login_files(tmp_path):
    files = tmp_path / "login-files"
    (files / "etc/login").mkdir(parents=True)
    (files / "etc/login/banner").write_text("login-group-file\n")
    units = files / "etc/systemd/system"
    (units / "multi-user.target.wants").mkdir(parents=True)
    (units / "nrb-login.service").write_text(UNIT)
    (units / "multi-user.target.wants/nrb-login.service").symlink_to("/etc/systemd/system/nrb-login.service")
    return files


def test_compute_and_login_groups_boot_at_once(mm, lab_up, edit_config, tmp_path):  # noqa: F811
    files = login_files(tmp_path)
    text = mm.cfg.read_text()
    groups = ('[[group]]\nname = "compute"\n\n[[group]]\nname = "login"\n'
              f'root.packages = ["iproute2", "less"]\nroot.files = "{files}"\n\n')
    new = text.replace("[[node]]", groups + "[[node]]", 1)
    new = new.replace('name = "n1"\n', 'name = "n1"\ngroup = "compute"\n')
    new = new.replace('name = "n2"\n', 'name = "n2"\ngroup = "login"\n')
    edit_config(mm, text, new)

    dry = nfsroot_build("all", "-c", mm.cfg, "--prefix", mm.stage, "--resume", "--dry-run", check=True).stdout
    t0 = time.monotonic()
    res = nfsroot_build("all", "-c", mm.cfg, "--prefix", mm.stage, "--resume", check=True)
    print(f"login root built (all --resume) in {time.monotonic() - t0:.1f} s")
    # The dry-run was exact: the login root's steps (its own logs) and the server steps that name it.
    state = mm.stage / f"var/lib/nfsroot-build/{mm.name}"
    plan = planned(dry)
    real = {}
    for step in plan:
        real.update(performed(log_dir(state / "roots/srv-nfsroot-mm-login" if step in ROOT_STEPS else state), [step]))
    assert not differences(plan, real), "\n".join(differences(plan, real))
    assert "bootstrap" in plan and "dhcp-server" in plan and "node-menus" in plan, list(plan)
    # The default root is not rebuilt: only the server steps that name the groups re-run on it.
    ran = re.search(r"changed: (.*)", res.stderr).group(1).split(", ")
    assert not [s for s in ran if "@" not in s and s in ("bootstrap", "root-packages", "initramfs")], res.stderr
    assert "bootstrap@srv-nfsroot-mm-login" in ran, res.stderr

    listing = json.loads(nfsroot_build("root", "list", "-c", mm.cfg, "--prefix", mm.stage, "--json",
                                       check=True).stdout)
    default = next(r for r in listing["versions"] if r["state"] == "current")
    (login,) = listing["group_roots"]
    assert (login["group_root"], login["groups"], login["path"]) == \
        ("srv-nfsroot-mm-login", ["login"], "/srv/nfsroot/mm-login"), listing
    assert [(r["id"], r["state"], r["nodes"]) for r in login["versions"]] == [("v1", "current", ["n2"])], listing
    assert "n2" not in default["nodes"] and "n1" in default["nodes"], listing
    compute_root, login_root = f"{mm.stage}{default['path']}", f"{mm.stage}/srv/nfsroot/mm-login"

    # undo takes back what the login root's build wrote on the server too (planned only: mm is shared).
    plan = nfsroot_build("undo", "-c", mm.cfg, "--prefix", mm.stage, "--dry-run", check=True)
    assert f"{mm.tftp}/mm-srv-nfsroot-mm-login/vmlinuz-" in plan.stdout + plan.stderr, plan.stdout + plan.stderr

    lab_up(mm)
    res, results = boot(mm, "n1", "n2")
    report_times(res)
    assert set(results) == {"n1", "n2"}, res.stderr
    for r in results.values():
        assert r["ok"], f"{r['name']}: {r['problem']}\n" + "\n".join(r["tail"]) + res.stderr
    n1, n2 = results["n1"]["facts"], results["n2"]["facts"]
    assert n1["root"] in (f"nfs,{SERVER}:{compute_root}", f"nfs4,{SERVER}:{compute_root}"), n1
    assert n1["version"] == default["id"], n1
    assert n2["root"] in (f"nfs,{SERVER}:{login_root}", f"nfs4,{SERVER}:{login_root}"), n2
    assert n2["version"] == "v1", n2
    assert int(n2["pkgs"]) == int(n1["pkgs"]) + 1, (n1, n2)   # less, nothing else
    console = (mm.stage / f"var/lib/nfsroot-build/{mm.name}/lab/consoles/n2.log").read_text(errors="replace")
    assert "NRB-LOGIN login-group-file /usr/bin/less" in console, console[-3000:]
    n1_console = (mm.stage / f"var/lib/nfsroot-build/{mm.name}/lab/consoles/n1.log").read_text(errors="replace")
    assert "NRB-LOGIN" not in n1_console
