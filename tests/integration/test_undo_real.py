"""undo for real: a staging tree with the admin's own dhcpd.conf, exports and
daemon defaults; the server steps (real dhcpd -t) and a doctor fix; then
undo -> the admin's files are byte for byte what they were, and no file the
tool wrote remains."""
from __future__ import annotations

import grp
import json
import os
import shutil
import subprocess

import pytest

from helpers import example_text, nfsroot_build, require, snapshot

# No final newline: the managed block must not leave one behind.
ADMIN = {
    "etc/dhcp/dhcpd.conf": b'# the admin\'s DHCP\noption domain-name "admin.example";\n'
                           b"subnet 10.9.0.0 netmask 255.255.0.0 {\n  range 10.9.0.10 10.9.0.20;\n}",
    "etc/exports": b"# the admin's own\n/home  10.1.0.0/16(rw,sync,no_subtree_check)\n",
    "etc/default/tftpd-hpa": b'TFTP_USERNAME="tftp"\nTFTP_DIRECTORY="/srv/tftp"\nTFTP_ADDRESS=":69"\n'
                             b'TFTP_OPTIONS="--secure"\n',
    "etc/default/nfs-kernel-server": b"# the package's\nRPCNFSDCOUNT=8\nRPCMOUNTDOPTS=\"--manage-gids\"\n",
    "etc/hosts": b"127.0.0.1 localhost\n",
}


@pytest.fixture
def staged(tmp_path):
    require(shutil.which("dhcpd") is not None, "isc-dhcp-server is not installed")
    stage = tmp_path / "stage"
    for rel, data in ADMIN.items():
        (stage / rel).parent.mkdir(parents=True, exist_ok=True)
        (stage / rel).write_bytes(data)
    os.chmod(stage / "etc/dhcp/dhcpd.conf", 0o640)
    cfg = tmp_path / "cluster.toml"
    # 32 threads: doctor --fix writes an nfs.conf.d drop-in and a managed block, undo takes them back.
    cfg.write_text(example_text("seed").replace('clients = ""', 'clients = ""\nthreads = 32'))
    return cfg, stage


def files_under(stage, skip_state=True):
    out = {}
    for p in sorted(stage.rglob("*")):
        rel = str(p.relative_to(stage))
        if skip_state and rel.startswith("var/lib/nfsroot-build"):
            continue
        if p.is_file() or p.is_symlink():
            out[rel] = p.read_bytes()
    return out


def test_all_then_undo_gives_back_the_admins_bytes(staged):
    cfg, stage = staged
    nfsroot_build("all", "-c", cfg, "--prefix", stage, "--to", "nfs-exports", check=True)
    res = nfsroot_build("doctor", "-c", cfg, "--prefix", stage, "--fix")
    assert "ok    nfs-threads: fixed" in res.stdout, res.stdout + res.stderr
    dhcpd_conf = stage / "etc/dhcp/dhcpd.conf"
    assert b"host ssi1" in dhcpd_conf.read_bytes()
    subprocess.run(["dhcpd", "-t", "-q", "-4", "-cf", dhcpd_conf], check=True)
    assert (stage / "etc/nfs.conf.d/nfsroot-build.conf").exists()
    assert b"RPCNFSDCOUNT=32" in (stage / "etc/default/nfs-kernel-server").read_bytes()

    # The plan first: printed, nothing changed.
    before = snapshot(stage)
    res = nfsroot_build("undo", "-c", cfg, "--prefix", stage, "--dry-run", check=True)
    assert snapshot(stage) == before
    assert f"# rm {stage}/etc/exports.d/nfsroot-build-kerrighed.exports" in res.stdout
    assert "-  host ssi1 { hardware ethernet 52:54:00:00:00:01; fixed-address 192.168.0.101; }" in res.stdout

    res = nfsroot_build("undo", "-c", cfg, "--prefix", stage, check=True)
    assert "0 problem(s)" in res.stderr
    assert files_under(stage) == ADMIN   # same files, same bytes: nothing of ours is left
    assert os.stat(dhcpd_conf).st_mode & 0o777 == 0o640
    assert not (stage / "srv/tftp").exists() and not (stage / "etc/exports.d").exists()
    state = json.loads((stage / "var/lib/nfsroot-build/kerrighed/state.json").read_text())
    assert state["files"] == {}
    status = json.loads(nfsroot_build("status", "-c", cfg, "--prefix", stage, "--json", check=True).stdout)
    assert {r["step"]: r["status"] for r in status["steps"]}["dhcp-server"] == "pending"

    # Again: the steps put it all back, undo takes it all away.
    nfsroot_build("all", "-c", cfg, "--prefix", stage, "--to", "nfs-exports", check=True)
    assert b"host ssi1" in dhcpd_conf.read_bytes()
    nfsroot_build("undo", "-c", cfg, "--prefix", stage, "--purge-root", check=True)
    assert files_under(stage, skip_state=False) == ADMIN
    assert not (stage / "var/lib/nfsroot-build/kerrighed").exists()


def test_purge_root_refuses_while_mounted(staged):
    cfg, stage = staged
    nfsroot_build("all", "-c", cfg, "--prefix", stage, "--to", "nfs-exports", check=True)
    proc = stage / "NFSROOT/kerrighed/proc"
    proc.mkdir(parents=True)
    marker = stage / "NFSROOT/kerrighed/etc/nfsroot-build/build.json"   # as bootstrap leaves it
    marker.parent.mkdir(parents=True)
    marker.write_text('{"build": "kerrighed"}\n')
    mounted = subprocess.run(["mount", "-t", "tmpfs", "nrb-test", proc], capture_output=True, check=False)
    require(mounted.returncode == 0, f"cannot mount tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        before = snapshot(stage / "etc")
        res = nfsroot_build("undo", "-c", cfg, "--prefix", stage, "--purge-root")
        assert res.returncode == 1 and "refusing --purge-root" in res.stderr and str(proc) in res.stderr
        assert "Traceback" not in res.stderr
        assert snapshot(stage / "etc") == before
    finally:
        subprocess.run(["umount", proc], check=True)
    nfsroot_build("undo", "-c", cfg, "--prefix", stage, "--purge-root", check=True)
    assert not (stage / "NFSROOT/kerrighed").exists()


def owner_mode_bytes(stage):
    out = {}
    for rel in ADMIN:
        st = os.stat(stage / rel)
        out[rel] = (st.st_uid, st.st_gid, st.st_mode & 0o7777, (stage / rel).read_bytes())
    return out


def test_undo_gives_back_group_mode_and_crlf_and_removes_the_dirs_it_made(staged):
    """root:adm 640 files with CRLF lines (an admin who edits on Windows): the
    server steps put managed blocks into them, undo gives back owner, group,
    mode and every byte; the /srv and /etc/exports.d directories the steps
    made are gone."""
    cfg, stage = staged
    adm = grp.getgrnam("adm").gr_gid
    for rel in ("etc/default/tftpd-hpa", "etc/hosts", "etc/default/nfs-kernel-server"):
        (stage / rel).write_bytes((stage / rel).read_bytes().replace(b"\n", b"\r\n"))
    for rel in ADMIN:
        os.chown(stage / rel, 0, adm)
        os.chmod(stage / rel, 0o640)
    before = owner_mode_bytes(stage)
    assert not (stage / "srv").exists()
    nfsroot_build("all", "-c", cfg, "--prefix", stage, "--to", "nfs-exports", check=True)
    changed = [rel for rel in ADMIN if (stage / rel).read_bytes() != before[rel][3]]
    assert "etc/default/tftpd-hpa" in changed and "etc/dhcp/dhcpd.conf" in changed, changed
    # While the blocks are in, the admin's owner, group and mode hold too.
    assert all(owner_mode_bytes(stage)[rel][:3] == before[rel][:3] for rel in ADMIN)
    assert (stage / "srv/tftp").is_dir()
    nfsroot_build("undo", "-c", cfg, "--prefix", stage, check=True)
    assert owner_mode_bytes(stage) == before
    assert not (stage / "srv").exists() and not (stage / "etc/exports.d").exists()
