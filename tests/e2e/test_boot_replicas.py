"""Replicated boot servers in the lab (issue 13, point 3; docs/replicas.md):
the shared mmdebstrap build (GRUB, layout tmpfs) with Kea and a second
server `b` whose tree `nfsroot-build sync` filled. `lab up` runs both
servers' daemons, each on its own address, and Kea HA (load-balancing)
between them; the lab kills server A's daemons by PID; B goes to
partner-down; two nodes booted afterwards reach login with their root from
B (the report line's root names B's address and B's tree).

The config is put back afterwards by test_lab_boot's edit_config fixture.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from helpers import nfsroot_build
from test_lab_boot import boot, edit_config, lab, lab_up, namespaces, report_times  # noqa: F401 (fixtures)

REPLICA = "192.168.0.2"
LAST_NODE = 'ip = "192.168.0.102"\n'


def kea_log(build) -> Path:
    return build.stage / f"var/lib/nfsroot-build/{build.name}/lab/servers/b/lab/logs/kea-dhcp4.log"


def wait_for_state(build, state: str, timeout: float = 60) -> float:
    """Seconds until server b's Kea logs an HA transition to state (Kea's
    HA_STATE_TRANSITION message: "server transitions from X to Y state")."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        log = kea_log(build)
        if log.exists() and f"to {state} state" in log.read_text(errors="replace"):
            return time.monotonic() - t0
        time.sleep(0.5)
    tail = kea_log(build).read_text(errors="replace").splitlines()[-15:] if kea_log(build).exists() else []
    raise AssertionError(f"server b's Kea never went to {state}:\n" + "\n".join(tail))


def test_server_a_killed_two_nodes_boot_from_b(mm, lab_up, edit_config, tmp_path):  # noqa: F811
    b = mm
    tree = tmp_path / "b"
    edit_config(b, LAST_NODE, f'{LAST_NODE}\n[dhcp]\nserver = "kea"\n\n'
                              f'[[servers]]\nname = "b"\naddress = "{REPLICA}"\ntree = "{tree}"\n')
    nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, "--resume", check=True)
    row = json.loads(nfsroot_build("sync", "-c", b.cfg, "--prefix", b.stage, "--json", check=True).stdout)
    print(f"sync: {row}")
    lab_up(b)
    procs = json.loads(lab(b, "status", "--json").stdout)["procs"]
    assert {p["name"] for p in procs if p.get("server") == "b"} >= {"kea-dhcp4", "tftpd", "rpcbind", "ganesha"}
    print(f"HA load-balancing after {wait_for_state(b, 'LOAD-BALANCING'):.1f} s")

    res = lab(b, "kill-server", "primary")
    print(res.stderr.strip())
    st = json.loads(lab(b, "status", "--json").stdout)["procs"]
    assert not [p for p in st if p.get("server", "primary") == "primary" and p["alive"]], st
    assert all(p["alive"] for p in st if p.get("server") == "b"), st
    print(f"partner-down after {wait_for_state(b, 'PARTNER-DOWN'):.1f} s")

    res, results = boot(b, "n1", "n2")
    report_times(res)
    assert set(results) == {"n1", "n2"}, res.stderr
    for r in results.values():
        assert r["ok"], f"{r['name']}: {r['problem']}\n" + "\n".join(r["tail"])
        assert r["hostname"] == r["name"]
        # The report line's root: B's address and the copy in B's tree.
        assert r["facts"]["root"].startswith(f"nfs,{REPLICA}:{tree}/srv/nfsroot/mm"), r["facts"]
    assert res.returncode == 0
    # B's namespace goes with `lab down` (lab_up's teardown checks the lab's own and every PID).
    replica_ns = json.loads(lab(b, "status", "--json").stdout)["namespace"] + "-b"
    assert replica_ns in namespaces()
    lab(b, "down")
    assert replica_ns not in namespaces()
