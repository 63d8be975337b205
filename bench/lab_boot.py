"""Lab boot: power-on to login of virtual nodes on the finished mmdebstrap
build (`nfsroot-build lab up` / `lab boot --json` / `lab down`). Reported,
no target: QEMU runs under TCG on this kind of machine."""
from __future__ import annotations

import json

from harness import Harness, Result, load

KEYS = [("lab-boot-1", "lab boot: power-on to login, one node alone"),
        ("lab-boot-2", "lab boot: power-on to login, two nodes at once")]


def lab_boot(h: Harness) -> None:
    reason = h.lab_unavailable()
    if not reason and not h.full_prefix:
        reason = "needs the full build, which was not measured"
    if reason:
        for key, title in KEYS:
            h.skip(key, title, reason)
        return
    prefix, base_cfg = h.base_prefix()
    h.sh(h.nbq("all", "--resume", "-c", base_cfg, "--prefix", prefix))
    common = ["-c", base_cfg, "--prefix", prefix]
    try:
        h.sh(h.nbq("lab", "up", *common))
        for (key, title), nodes in zip(KEYS, (["n000001"], []), strict=True):
            cmd = h.nbq("lab", "boot", *nodes, "--json", "--timeout", h.a.lab_timeout, *common)
            r = Result(key, title, cmd, load=load())
            h.say(f"{title} ... (minutes under TCG)")
            p = h.sh(cmd, check=False)
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
            h.record(r)
    except RuntimeError as e:
        for key, title in KEYS:
            if key not in h.results:
                h.skip(key, title, f"lab up failed: {str(e)[-300:]}")
    finally:
        h.sh(h.nbq("lab", "down", *common), check=False)
