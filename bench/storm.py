#!/usr/bin/env python3
"""Boot-storm figures: what one boot costs each daemon, and what each daemon serves.

    /work/wt/heavy .venv/bin/python bench/storm.py [--nodes 4] [--out bench/RESULTS.md]
                   [--work DIR] [--only lab|loopback] [--keep]

Two measurements, both as root, never part of `make test`:

- **lab**: a cluster of --nodes nodes (bench/gen_config.py, boot.transport
  "http": GRUB over TFTP, kernel and initrd over HTTP, / over NFS) is built
  under a scratch prefix, `lab up`, and every node powered on at once
  (`lab boot --json`). Inside the lab's own namespace (never the host's), an
  nftables table counts packets and bytes per protocol in both directions:
  TFTP (requests to udp 69; in.tftpd answers each transfer from a port of
  its own, so the server's other udp is TFTP), HTTP (tcp 80), NFS (tcp
  2049), RPC (111, mountd 20048), DHCP (67). Beside the counters: nginx's
  access log (requests, body bytes), the CPU time each daemon used (/proc)
  and each node's power-on-to-login time.
- **loopback**: in a network namespace of its own (loopback only), nginx
  serving the initrd and a file the size of the squashfs image (RAM-image
  mode) to 1, 4 and 16 parallel curl clients, and in.tftpd serving the
  kernel and initrd with 1468- and 65464-byte blocks to 1 and 4 clients;
  hyperfine medians, aggregate MB/s. The clients run on the same 2 cores as
  the server: the figures are lower bounds of the daemon's throughput.

The figures are written as JSON (--json) and as a section of --out between
`<!-- storm:begin -->` and `<!-- storm:end -->` (the rest of the file is
kept). nfsroot_builder/capacity.py's MEASURED defaults come from this run.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gen_config  # noqa: E402
from harness import load  # noqa: E402

NAME = "storm"
# img2's squashfs (zstd level 3) of the minbase trixie root: the image a
# RAM-image node fetches.
SQUASHFS_BYTES = 167_700_000
BEGIN, END = "<!-- storm:begin -->", "<!-- storm:end -->"

# Counted inside the lab's namespace only (the table goes with it at `lab down`).
# The server's own address is on the bridge, so the nodes' packets to it pass
# the input hook and its answers the output hook.
NFT_RULES = """
table inet storm {
  counter tftp_in {}
  counter tftp_out {}
  counter dhcp_in {}
  counter dhcp_out {}
  counter http_in {}
  counter http_out {}
  counter nfs_in {}
  counter nfs_out {}
  counter rpc_in {}
  counter rpc_out {}
  chain input {
    type filter hook input priority 0; policy accept;
    udp dport 69 counter name tftp_in
    udp dport 67 counter name dhcp_in
    tcp dport 80 counter name http_in
    tcp dport 2049 counter name nfs_in
    meta l4proto { tcp, udp } th dport { 111, 20048 } counter name rpc_in
    udp dport != { 67, 69, 111, 2049, 20048 } counter name tftp_in
  }
  chain output {
    type filter hook output priority 0; policy accept;
    udp sport 67 counter name dhcp_out
    tcp sport 80 counter name http_out
    tcp sport 2049 counter name nfs_out
    meta l4proto { tcp, udp } th sport { 111, 20048 } counter name rpc_out
    udp sport != { 67, 111, 2049, 20048 } counter name tftp_out
  }
}
"""


def say(msg: str) -> None:
    print(f"storm: {msg}", file=sys.stderr, flush=True)


def sh(argv: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run([str(a) for a in argv], text=True, capture_output=True, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"failed ({p.returncode}): {shlex.join(map(str, argv))}\n{p.stdout[-1500:]}{p.stderr[-2500:]}")
    return p


def counters(ns: str) -> dict[str, dict[str, int]]:
    data = json.loads(sh(["ip", "netns", "exec", ns, "nft", "-j", "list", "counters", "table", "inet", "storm"]).stdout)
    out = {}
    for item in data["nftables"]:
        c = item.get("counter")
        if c:
            out[c["name"]] = {"packets": c["packets"], "bytes": c["bytes"]}
    return out


def cpu_seconds(pid: int) -> float:
    """CPU time of a process, its reaped children (in.tftpd forks one per
    transfer) and its live children (nginx's workers), from /proc (proc(5))."""
    tick = os.sysconf("SC_CLK_TCK")

    def own(p: int, with_reaped: bool) -> float:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        # utime, stime, cutime, cstime are fields 14-17 (1-based; [11:15] after the comm)
        return sum(int(x) for x in fields[11:15 if with_reaped else 13]) / tick
    total = own(pid, True)
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        total += sum(own(int(c), True) for c in children)
    return total


def daemon_cpu(procs: list[dict]) -> dict[str, float]:
    return {p["name"]: cpu_seconds(p["pid"]) for p in procs
            if p["name"] in ("tftpd", "nginx", "ganesha", "rpcbind", "dhcpd", "kea-dhcp4")}


# NFS-Ganesha's operation counters over D-Bus (the lab runs its own bus):
# GetGlobalOPS answers the NFSv3, v4.0, v4.1, v4.2 (and NLM, MNT, RQUOTA)
# operation totals since start (nfs-ganesha's dbus_stats_reply).
GANESHA_OPS = ["dbus-send", "--system", "--print-reply", "--dest=org.ganesha.nfsd",
               "/org/ganesha/nfsd/ExportMgr", "org.ganesha.nfsd.exportstats.GetGlobalOPS"]


def ganesha_ops(lab_dir: Path) -> dict:
    """The reply's numbers in order, with its text; or why there is none."""
    bus = lab_dir / "run/dbus/system_bus_socket"
    if not bus.exists() or not shutil.which("dbus-send"):
        return {"error": "no lab bus or no dbus-send"}
    # Relative to its directory: libdbus refuses socket paths over 99 bytes.
    p = sh(GANESHA_OPS, check=False, cwd=bus.parent, env={**os.environ, "DBUS_SYSTEM_BUS_ADDRESS":
                                                          f"unix:path={bus.name}"})
    if p.returncode != 0:
        return {"error": (p.stderr or p.stdout).strip()[-300:]}
    return {"ops": ops_of(p.stdout), "reply": p.stdout.strip()[-1500:]}


def ops_of(reply: str) -> dict[str, int]:
    """GetGlobalOPS' reply: 'string "NFSv3"' followed by 'uint64 N', per protocol."""
    return {name: int(n) for name, n in re.findall(r'string "(\w+)"\s+uint64 (\d+)', reply)}


def nginx_log(path: Path, since: int = 0) -> dict:
    """Requests and body bytes by file name, from the lab's access log
    ('$remote_addr [$time] "$request" $status $body_bytes_sent $request_time')
    after byte `since` (the log is appended to across `lab up`s)."""
    files: dict[str, dict] = {}
    if path.is_file():
        with open(path, "rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
        for line in text.splitlines():
            m = re.match(r'(\S+) \[[^]]*\] "\S+ (\S+) [^"]*" (\d+) (\d+) ([\d.]+)', line)
            if not m:
                continue
            f = files.setdefault(Path(m.group(2)).name, {"requests": 0, "bytes": 0, "seconds": []})
            f["requests"] += 1
            f["bytes"] += int(m.group(4))
            f["seconds"].append(float(m.group(5)))
    return files


def lab_storm(a, nb: str, work: Path) -> dict:
    cfg = work / f"{NAME}.toml"
    text = gen_config.render(a.nodes, name=NAME)
    cfg.write_text(text.replace("timeout = 0\n", 'timeout = 0\ntransport = "http"\n', 1))
    prefix = work / "prefix"
    common = ["-c", cfg, "--prefix", prefix]
    say(f"building {NAME} ({a.nodes} nodes, transport http) under {prefix}")
    t0 = time.monotonic()
    sh([nb, "all", "--resume", *common])
    build_s = round(time.monotonic() - t0, 1)
    tftp_root = prefix / f"srv/tftp/{NAME}"
    sizes = {p.name: p.stat().st_size for p in tftp_root.rglob("*") if p.is_file()}
    lab_dir = prefix / f"var/lib/nfsroot-build/{NAME}/lab"
    try:
        sh([nb, "lab", "up", *common])
        status = json.loads(sh([nb, "lab", "status", "--json", *common]).stdout)
        ns = status["namespace"]
        sh(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=NFT_RULES)
        say(f"{a.nodes} nodes powered on at once in {ns} (minutes under TCG) ...")
        access_log = lab_dir / "logs/nginx-access.log"
        access_start = access_log.stat().st_size if access_log.exists() else 0
        cpu_before = daemon_cpu(status["procs"])
        ops_before = ganesha_ops(lab_dir)
        t0 = time.monotonic()
        p = sh([nb, "lab", "boot", "--json", "--timeout", a.timeout, *common], check=False)
        storm_s = round(time.monotonic() - t0, 1)
        cpu_after = daemon_cpu(status["procs"])
        try:
            booted = json.loads(p.stdout)
        except ValueError:
            booted = []
        result = {
            "nodes": a.nodes, "build_seconds": build_s, "storm_seconds": storm_s, "load": load(),
            "boot": [{k: b.get(k) for k in ("name", "ok", "seconds", "problem")} for b in booted],
            "counters": counters(ns),
            "daemon_cpu_seconds": {k: round(cpu_after[k] - cpu_before.get(k, 0), 2) for k in cpu_after},
            "ganesha_ops": {"before": ops_before, "after": ganesha_ops(lab_dir)},
            "http": nginx_log(access_log, access_start),
            "sizes": {k: v for k, v in sizes.items() if k.startswith(("vmlinuz", "initrd"))},
            "rc": p.returncode, "stderr_tail": p.stderr.strip().splitlines()[-6:],
        }
        say(json.dumps({k: result[k] for k in ("boot", "counters")}))
        return result
    finally:
        sh([nb, "lab", "down", *common], check=False)


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def hyperfine(cmd: str, runs: int, out: Path) -> list[float]:
    sh(["hyperfine", "--runs", str(runs), "--warmup", "1", "--export-json", out, "--style", "none", cmd])
    return json.loads(out.read_text())["results"][0]["times"]


NGINX_CONF = """worker_processes auto;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    access_log off;
    client_body_temp_path {d}/tmp;
    proxy_temp_path {d}/tmp;
    fastcgi_temp_path {d}/tmp;
    uwsgi_temp_path {d}/tmp;
    scgi_temp_path {d}/tmp;
    server {{ listen 127.0.0.1:8080; root {files}; }}
}}
"""


def loopback(a, work: Path, initrd: Path | None, kernel: Path | None) -> list[dict]:
    ns = f"storm-{os.getpid()}"
    files = work / "files"
    files.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o755)
    os.chmod(files, 0o755)
    # Stand-ins when no lab build ran: files of the trixie initrd's and kernel's sizes.
    for src, name, size in ((initrd, "initrd.img", 28_400_000), (kernel, "vmlinuz", 12_200_000),
                            (None, "root.squashfs", SQUASHFS_BYTES)):
        dst = files / name
        if src:
            shutil.copyfile(src, dst)
        elif not dst.exists():
            with open(dst, "wb") as f:
                f.write(os.urandom(size))
        os.chmod(dst, 0o644)
    sizes = {p.name: p.stat().st_size for p in files.iterdir()}
    ngx = work / "nginx"
    (ngx / "tmp").mkdir(parents=True, exist_ok=True)
    (ngx / "nginx.conf").write_text(NGINX_CONF.format(d=ngx, files=files))
    rows = []
    procs: list[subprocess.Popen] = []
    sh(["ip", "netns", "add", ns])
    try:
        sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        # in.tftpd resolves its -a address with AI_ADDRCONFIG, which ignores
        # loopback addresses (getaddrinfo(3)): with lo alone it finds no IPv4
        # and exits 66. An address on a dummy link in this namespace (never
        # the host's) satisfies it; the traffic still stays on loopback.
        sh(["ip", "-n", ns, "link", "add", "storm0", "type", "bridge"])
        sh(["ip", "-n", ns, "addr", "add", "192.0.2.1/32", "dev", "storm0"])
        sh(["ip", "-n", ns, "link", "set", "storm0", "up"])
        procs.append(subprocess.Popen(["ip", "netns", "exec", ns, "nginx", "-c", ngx / "nginx.conf", "-p", ngx,
                                       "-e", ngx / "error.log", "-g", "daemon off;"]))
        procs.append(subprocess.Popen(["ip", "netns", "exec", ns, "in.tftpd", "-L", "-s", files,
                                       "-a", "127.0.0.1:69"], stderr=subprocess.DEVNULL))
        time.sleep(1.5)
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{p.args[4]} exited at start ({p.returncode})")
        cases = [("nginx", "http", f, n, "") for f in ("initrd.img", "root.squashfs") for n in (1, 4, 16)]
        cases += [("in.tftpd", "tftp", f, n, f"--tftp-blksize {bs} ")
                  for f in ("vmlinuz", "initrd.img") for bs in (1468, 65464) for n in (1, 4)]
        for daemon, scheme, fname, n, opts in cases:
            port = ":8080" if scheme == "http" else ""
            one = f"curl -sS -f -o /dev/null {opts}{scheme}://127.0.0.1{port}/{fname}"
            inner = " & ".join([one] * n) + " & wait" if n > 1 else one
            cmd = f"ip netns exec {ns} sh -c {shlex.quote(inner)}"
            runs = a.runs if sizes[fname] * n < 1_000_000_000 else max(3, a.runs // 2)
            times = hyperfine(cmd, runs, work / "hf.json")
            med = median(times)
            row = {"daemon": daemon, "file": fname, "bytes": sizes[fname], "clients": n,
                   "blksize": int(opts.split()[1]) if opts else None, "times": [round(t, 4) for t in times],
                   "median_s": round(med, 4), "mb_per_s": round(sizes[fname] * n / med / 1e6, 1), "load": load()}
            say(f"{daemon} {fname} x{n} {opts.strip()}: {row['median_s']} s, {row['mb_per_s']} MB/s")
            rows.append(row)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        sh(["ip", "netns", "delete", ns], check=False)
    return rows


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def per_boot(lab: dict) -> dict[str, dict[str, float]]:
    """Bytes and packets each protocol carried per boot (both directions), from the counters."""
    c, n = lab["counters"], lab["nodes"]
    out = {}
    for proto in ("dhcp", "tftp", "http", "nfs", "rpc"):
        i, o = c.get(f"{proto}_in", {}), c.get(f"{proto}_out", {})
        out[proto] = {"to_nodes": o.get("bytes", 0) / n, "from_nodes": i.get("bytes", 0) / n,
                      "packets": (o.get("packets", 0) + i.get("packets", 0)) / n}
    return out


def markdown(res: dict) -> str:
    lab = res.get("lab")
    runs = f"The run of {res['date']}" if not (lab and "date" in lab) else \
        f"Two runs: the lab's on {lab['date']} (git {lab['git']}), the loopback figures' on {res['date']}"
    lines = [BEGIN, "## Boot storm (`bench/storm.py`)", "",
             f"{runs} (git {res['git']}, shared machine, one heavy slot; raw figures: bench/storm-results.json). "
             "The model built on them is in docs/scale.md and `nfsroot-build plan-capacity`.", ""]
    if lab:
        ok = [b for b in lab["boot"] if b.get("ok")]
        secs = sorted(b["seconds"] for b in ok if b.get("seconds") is not None)
        lines += [f"### {lab['nodes']} nodes powered on at once (lab, QEMU under TCG, boot.transport \"http\")", "",
                  f"{len(ok)} of {lab['nodes']} reached login; power-on to login: "
                  + (", ".join(f"{s:.1f} s" for s in secs) or "none")
                  + f" (the whole storm {lab['storm_seconds']} s, load {lab['load']}).", ""]
        failed = [f"- {b['name']}: {b.get('problem')}" for b in lab["boot"] if not b.get("ok")]
        lines += [*failed, *([""] if failed else []),
                  "Per boot (nftables counters in the lab's namespace, divided by the nodes; bytes on the wire, "
                  "headers included; dhcpd answers through a raw socket, which the counters do not see):", "",
                  "| protocol | to the node | from the node | packets (both ways) |", "| --- | --- | --- | --- |"]
        for proto, v in per_boot(lab).items():
            lines.append(f"| {proto.upper()} | {mb(v['to_nodes'])} | {mb(v['from_nodes'])} | {v['packets']:.0f} |")
        lines += ["", "What the daemons' own logs say (whole storm):", ""]
        for fname, f in sorted(lab["http"].items()):
            lines.append(f"- nginx: {fname}: {f['requests']} requests, {mb(f['bytes'])} body bytes, "
                         f"request time {min(f['seconds']):.1f}–{max(f['seconds']):.1f} s")
        ops = lab.get("ganesha_ops", {})
        before, after = (ops_of(ops.get(k, {}).get("reply", "")) for k in ("before", "after"))
        if after:
            grown = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
            lines.append("- NFS-Ganesha's operations (GetGlobalOPS on the lab's D-Bus), the storm's: "
                         + (", ".join(f"{k} {v:,} ({v / lab['nodes']:,.0f} a boot)" for k, v in grown.items())
                            or "none"))
        elif ops:
            lines.append(f"- NFS-Ganesha's operations (GetGlobalOPS, D-Bus): not read: "
                         f"{ops.get('after', {}).get('error', 'no figures')}")
        cpu = ", ".join(f"{k} {v:.2f} s" for k, v in sorted(lab.get("daemon_cpu_seconds", {}).items()))
        lines.append(f"- CPU time the daemons used during the storm (/proc, children included): {cpu}")
        lines.append("- in.tftpd: its -v log goes to syslog, which does not run here; the counters above "
                     "have its packets")
        lines.append(f"- the built kernel and initrd: {', '.join(f'{k} {mb(v)}' for k, v in sorted(lab['sizes'].items()))}")
        lines.append("")
    earlier = res.get("earlier_run")
    if earlier:   # a previous run's figures, kept by hand in the JSON: the run-to-run spread
        b = earlier["per_boot_bytes_to_node"]
        lines += [f"An earlier run (lab {earlier['lab']}, loopback {earlier['loopback']}, git {earlier['git']}): "
                  f"per boot TFTP {mb(b['tftp'])}, HTTP {mb(b['http'])}, NFS {mb(b['nfs'])}; login "
                  + ", ".join(f"{s:.1f} s" for s in earlier["login_seconds"]) + "; CPU "
                  + ", ".join(f"{k} {v:.2f} s" for k, v in earlier["daemon_cpu_seconds"].items()) + "; best "
                  + ", ".join(f"{k} {v:,.0f} MB/s" for k, v in earlier["best_mb_per_s"].items()) + ".", ""]
    rows = res.get("loopback") or []
    if rows:
        lines += ["### Server throughput on loopback (a namespace of its own; clients on the same 2 cores)", "",
                  "| daemon | file | size | clients | block | median | aggregate |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in rows:
            lines.append(f"| {r['daemon']} | {r['file']} | {mb(r['bytes'])} | {r['clients']} | "
                         f"{r['blksize'] or '-'} | {r['median_s']:.3f} s | {r['mb_per_s']:.0f} MB/s |")
        lines.append("")
    lines.append(END)
    return "\n".join(lines) + "\n"


def section_of(text: str) -> str:
    """The storm section of a RESULTS.md text (markers included), or ""."""
    if BEGIN not in text or END not in text:
        return ""
    return text[text.index(BEGIN):text.index(END) + len(END)] + "\n"


def with_section(text: str, section: str) -> str:
    """text with its storm section replaced by section (appended if it has none)."""
    if not section:
        return text
    old = section_of(text)
    if old:
        return text.replace(old, section, 1)
    return text.rstrip("\n") + "\n\n" + section


def write_section(out: Path, section: str) -> None:
    out.write_text(with_section(out.read_text() if out.exists() else "", section))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--timeout", default="1200", help="seconds a node may take to reach login")
    ap.add_argument("--runs", type=int, default=5, help="hyperfine runs per loopback case")
    ap.add_argument("--work", default=f"/var/tmp/nfsroot-storm-{os.getpid()}")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    ap.add_argument("--json", default=None, help="also write the raw figures here")
    ap.add_argument("--only", choices=["lab", "loopback"])
    ap.add_argument("--keep", action="store_true", help="keep --work")
    ap.add_argument("--lab-from", metavar="JSON", help="with --only loopback: the lab figures of an earlier "
                    "run's --json (reported with that run's date), the kernel and initrd from --work's build")
    ap.add_argument("--nfsroot-build", default=str(Path(sys.executable).with_name("nfsroot-build")))
    ap.add_argument("--render", metavar="JSON", help="measure nothing: write --out's section from an earlier --json")
    a = ap.parse_args(argv)
    if a.render:
        write_section(Path(a.out), markdown(json.loads(Path(a.render).read_text())))
        return 0
    if os.geteuid() != 0:
        ap.error("run as root (the lab, network namespaces)")
    needed = {"hyperfine": "hyperfine", "curl": "curl", "nginx": "nginx", "in.tftpd": "tftpd-hpa"}
    if a.only != "loopback":
        needed["nft"] = "nftables"
    missing = [pkg for tool, pkg in needed.items() if not shutil.which(tool)]
    if missing:
        ap.error(f"apt-get install {' '.join(missing)}")
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    git = sh(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], check=False).stdout.strip() or "?"
    res: dict = {"date": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", "git": git, "cores": os.cpu_count()}
    try:
        if a.only != "loopback":
            res["lab"] = lab_storm(a, a.nfsroot_build, work)
        elif a.lab_from:
            earlier = json.loads(Path(a.lab_from).read_text())
            res["lab"] = {**earlier["lab"], "date": earlier["date"], "git": earlier["git"]}
        tftp = work / f"prefix/srv/tftp/{NAME}"
        initrd = max(tftp.rglob("initrd.img-*"), default=None)
        kernel = max(tftp.rglob("vmlinuz-*"), default=None)
        if a.only != "lab":
            res["loopback"] = loopback(a, work, initrd, kernel)
    finally:
        if a.json:
            Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
        if not a.keep:
            mounts = [ln.split()[1] for ln in Path("/proc/mounts").read_text().splitlines()
                      if ln.split()[1].startswith(str(work) + "/")]
            for m in sorted(mounts, key=len, reverse=True):
                sh(["umount", "-l", m], check=False)
            sh(["rm", "-rf", "--one-file-system", work], check=False)
    write_section(Path(a.out), markdown(res))
    say(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
