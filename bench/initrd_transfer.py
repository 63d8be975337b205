"""Initrd transfer, TFTP against HTTP (boot.transport): the build's initrd
fetched inside the lab's network namespace from the lab's own in.tftpd and
nginx, by curl (tftp:// with 512-byte blocks, RFC 1350's default, and with
1432-byte blocks, what iPXE asks for; http://), timed with hyperfine. The
client runs in the namespace itself, so this is the servers' cost without a
wire: an upper bound of what a node sees. Reported, no target."""
from __future__ import annotations

import json
import shlex

from harness import BUILD_NAME, Harness, Result, load

KEYS = [("initrd-tftp-512", "initrd over TFTP (in.tftpd, 512-byte blocks)", "--tftp-blksize 512 tftp://"),
        ("initrd-tftp-1432", "initrd over TFTP (in.tftpd, 1432-byte blocks)", "--tftp-blksize 1432 tftp://"),
        ("initrd-http", "initrd over HTTP (nginx, boot.transport = \"http\")", "http://")]
SERVER = "10.0.0.1"   # gen_config's server.address


def initrd_transfer(h: Harness) -> None:
    reason = h.lab_unavailable()
    if reason:
        for key, title, _ in KEYS:
            h.skip(key, title, reason)
        return
    base_cfg = h.config("base", 2, name=BUILD_NAME)
    prefix = h.full_prefix or h.work / "initrd-transfer"
    http_cfg = base_cfg.with_name("initrd-http.toml")
    http_cfg.write_text(base_cfg.read_text().replace("timeout = 0\n", 'timeout = 0\ntransport = "http"\n', 1))
    h.say("initrd transfer: building with boot.transport = \"http\"")
    h.sh(h.nbq("all", "--resume", "-c", http_cfg, "--prefix", prefix))
    common = ["-c", http_cfg, "--prefix", prefix]
    try:
        h.sh(h.nbq("lab", "up", *common))
        ns = json.loads(h.sh(h.nbq("lab", "status", "--json", *common)).stdout)["namespace"]
        initrds = sorted((prefix / f"srv/tftp/{BUILD_NAME}/{BUILD_NAME}").glob("initrd.img-*"))
        if not initrds:
            raise RuntimeError("no initrd in the TFTP root")
        initrd = initrds[-1]
        size = initrd.stat().st_size
        path = f"/{BUILD_NAME}/{initrd.name}"
        for key, title, how in KEYS:
            opts, scheme = how.rsplit(" ", 1) if " " in how else ("", how)
            cmd = (f"ip netns exec {shlex.quote(ns)} curl -sS -f -o /dev/null {opts} "
                   f"{scheme}{SERVER}{path}")
            r = Result(key, title, cmd, load=load())
            r.times = h.hyperfine(cmd, h.runs, warmup=1)
            r.detail["bytes"] = size
            r.note = f"{size / 2**20:.1f} MiB, {size / 2**20 / r.median:.0f} MiB/s (median)"
            r.load += f" → {load()}"
            h.record(r)
    except RuntimeError as e:
        for key, title, _ in KEYS:
            if key not in h.results:
                h.skip(key, title, f"failed: {str(e)[-300:]}")
    finally:
        h.sh(h.nbq("lab", "down", *common), check=False)
        # The later benchmarks work on the base config's build again.
        h.sh(h.nbq("all", "--resume", "-c", base_cfg, "--prefix", prefix), check=False)
