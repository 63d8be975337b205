"""boot.transport = "http" for real: the tftp-server step writes nginx's
drop-in under a staging prefix after the real `nginx -t` accepted it; the
lab's nginx.conf around it passes `nginx -t` too; `doctor` checks it; a
switch back to "tftp" removes it. PXELINUX's dhcpd.conf passes dhcpd -t."""
from __future__ import annotations

import json
import shutil
import subprocess

from nfsroot_builder.render.http import nginx_main

from helpers import example_text, nfsroot_build, require

DROPIN = "etc/nginx/conf.d/nfsroot-build-kerrighed.conf"


def seed_with(loader: str, transport: str) -> str:
    return example_text("seed").replace('loader = "grub"', f'loader = "{loader}"\ntransport = "{transport}"')


def test_nginx_accepts_the_dropin_and_a_switch_back_removes_it(tmp_path):
    require(shutil.which("nginx") is not None, "nginx not installed")
    cfg, stage = tmp_path / "cluster.toml", tmp_path / "stage"
    cfg.write_text(seed_with("pxelinux", "http"))
    res = nfsroot_build("all", "-c", cfg, "--prefix", stage, "--to", "dhcp-server", check=True)
    assert "changed: tftp-server, dhcp-server" in res.stderr, res.stderr
    dropin = stage / DROPIN
    assert f"root {stage}/srv/tftp;" in dropin.read_text()
    log = (stage / "var/lib/nfsroot-build/kerrighed/logs/last/tftp-server.log").read_text()
    assert "unshare --net nginx -t -q -c " in log, log
    # The whole of what the lab runs, checked by nginx itself (in a network
    # namespace of its own: the server address is not on this machine).
    work = tmp_path / "nginx"
    work.mkdir()
    copy = work / "dropin.conf"
    copy.write_text(dropin.read_text().replace("listen 192.168.0.1:80;", "listen 127.0.0.1:80;"))
    (work / "nginx.conf").write_text(nginx_main(str(copy), str(work), str(work / "access.log"), user="root"))
    t = subprocess.run(["unshare", "--net", "nginx", "-t", "-c", str(work / "nginx.conf"), "-p", str(work),
                        "-e", "stderr"], capture_output=True, text=True)
    assert t.returncode == 0, t.stderr
    # dhcpd.conf with lpxelinux.0 passed dhcpd -t (the step checks it too).
    assert 'filename "lpxelinux.0";' in (stage / "etc/dhcp/dhcpd.conf").read_text()
    doc = nfsroot_build("doctor", "-c", cfg, "--prefix", stage, "--json")
    checks = {c["check"]: c for c in json.loads(doc.stdout)["checks"]}
    assert checks["http-server"]["status"] == "ok", checks["http-server"]
    # Back to TFTP: the drop-in goes.
    cfg.write_text(seed_with("pxelinux", "tftp"))
    res = nfsroot_build("all", "-c", cfg, "--prefix", stage, "--to", "dhcp-server", check=True)
    assert not dropin.exists()
