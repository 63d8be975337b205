"""Builds side by side (issue 11, point 2): two builds, `prod` and `test`,
with different subnets and roots, configured on one server (one --prefix)
with ISC dhcpd and the kernel NFS server.

The server-side steps need no real root: each build gets a tiny root its
marker says it made, holding a stand-in kernel and initrd that
kernel-to-tftp copies and the menus name (nothing boots them here; the
boot paths are proven in tests/e2e). Everything else is real: the CLI,
grub-mknetdir, and `dhcpd -t` as each step's checker and on the result.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nfsroot_builder.steps.dhcp import dhcpd_test_argv

from helpers import mark_root, nfsroot_build, require

KERNEL = "6.12.9-amd64"
BUILDS = {"prod": ("10.50.0", "50"), "test": ("10.60.0", "60")}


def config_text(name: str, **change) -> str:
    net, mac = BUILDS[name]
    values = {"name": name, "address": f"{net}.1", "subnet": f"{net}.0/24", "root": f"/srv/nfsroot/{name}",
              "tftp": "/srv/tftp", "dhcp": "isc-dhcp-server", "nfs": "kernel",
              "nodes": [(f"{name[0]}{i}", f"52:54:00:{mac}:00:0{i}", f"{net}.10{i}") for i in (1, 2)]}
    values.update(change)
    nodes = "".join(f'[[node]]\nname = "{n}"\nmac = "{m}"\nip = "{ip}"\n' for n, m, ip in values["nodes"])
    return f"""name = "{values['name']}"
[server]
address = "{values['address']}"
interface = "nrb-br0"
[network]
subnet = "{values['subnet']}"
[root]
path = "{values['root']}"
suite = "trixie"
bootstrapper = "mmdebstrap"
variant = "minbase"
layout = "tmpfs"
[tftp]
root = "{values['tftp']}"
[boot]
loader = "grub"
[dhcp]
server = "{values['dhcp']}"
[nfs]
server = "{values['nfs']}"
{nodes}"""


@pytest.fixture
def server(tmp_path) -> tuple[dict[str, Path], Path]:
    """(name -> config file, the prefix both builds share), each build's tiny root in place."""
    require(os.geteuid() == 0, "needs root")
    require(shutil.which("dhcpd") is not None, "isc-dhcp-server is not installed")
    require(shutil.which("grub-mknetdir") is not None, "grub-common is not installed")
    stage = tmp_path / "stage"
    configs = {}
    for name in BUILDS:
        configs[name] = tmp_path / f"{name}.toml"
        configs[name].write_text(config_text(name))
        tiny_root(stage / f"srv/nfsroot/{name}", name)
    return configs, stage


def tiny_root(root: Path, build: str) -> None:
    mark_root(root, build)
    (root / "boot").mkdir(parents=True, exist_ok=True)
    (root / f"boot/vmlinuz-{KERNEL}").write_text(f"{build}'s kernel\n")
    (root / f"boot/initrd.img-{KERNEL}").write_text(f"{build}'s initrd\n")


# The server-side steps: before the root's steps, and after them.
PHASES = (("--to", "nfs-exports"), ("--from", "kernel-to-tftp"))


def configure(cfg: Path, stage: Path) -> None:
    for phase in PHASES:
        nfsroot_build("all", "-c", cfg, "--prefix", stage, *phase, check=True)


def server_tree(stage: Path, leave_out: tuple[str, ...] = ()) -> dict[str, tuple]:
    """Every path under the prefix outside the roots: its mode and bytes
    (a symlink: its target). leave_out: subtrees not compared."""
    roots = stage / "srv/nfsroot"
    out = {}
    for p in sorted(stage.rglob("*")):
        rel = str(p.relative_to(stage))
        if p.is_relative_to(roots) or any(rel == x or rel.startswith(x + "/") for x in leave_out):
            continue
        st = p.lstat()
        content = os.readlink(p) if p.is_symlink() else p.read_bytes() if p.is_file() else None
        out[rel] = (st.st_mode, content)
    return out


def dhcpd_accepts(conf: Path) -> subprocess.CompletedProcess:
    return subprocess.run(dhcpd_test_argv(conf), capture_output=True, text=True)


def assert_both_in_place(stage: Path) -> None:
    dhcpd = (stage / "etc/dhcp/dhcpd.conf").read_text()
    for name, (net, mac) in BUILDS.items():
        assert f"# BEGIN nfsroot-build managed block {name}\n" in dhcpd
        assert f"subnet {net}.0 netmask 255.255.255.0 {{" in dhcpd
        assert f"hardware ethernet 52:54:00:{mac}:00:01;" in dhcpd
        exports = (stage / f"etc/exports.d/nfsroot-build-{name}.exports").read_text()
        assert f"{stage}/srv/nfsroot/{name} {net}.0/24(ro," in exports
        assert (stage / f"srv/tftp/{name}/vmlinuz-{KERNEL}").read_text() == f"{name}'s kernel\n"
        menu = (stage / f"srv/tftp/boot/grub/grub.cfg-01-52-54-00-{mac}-00-01").read_text()
        assert f"for cluster '{name}'" in menu and f"/{name}/vmlinuz-{KERNEL}" in menu
        assert f"# BEGIN nfsroot-build managed block {name}\n" in (stage / "etc/default/tftpd-hpa").read_text()
    res = dhcpd_accepts(stage / "etc/dhcp/dhcpd.conf")
    assert res.returncode == 0, res.stdout + res.stderr


def statuses(cfg: Path, stage: Path) -> dict[str, str]:
    res = nfsroot_build("status", "-c", cfg, "--prefix", stage, "--json", check=True)
    return {s["step"]: s["status"] for s in json.loads(res.stdout)["steps"]}


# Done after configure(); kernel-to-tftp and node-menus are "stale" only because
# the tiny root's own steps (bootstrap ... initramfs) never ran.
SERVER_STEPS = ("tftp-server", "dhcp-server", "nfs-exports", "boot-loader")


def test_two_builds_one_after_the_other_both_stay_and_undo_of_test_gives_back_prod_alone(server):
    configs, stage = server
    configure(configs["prod"], stage)
    prod_alone = server_tree(stage)
    prod_status = statuses(configs["prod"], stage)
    assert all(prod_status[s] == "done" for s in SERVER_STEPS), prod_status

    res = nfsroot_build("check", "-c", configs["test"], "--prefix", stage)
    assert res.returncode == 0 and "fail:" not in res.stdout, res.stdout + res.stderr
    configure(configs["test"], stage)
    assert_both_in_place(stage)
    # The first build's steps still hold: the second replaced none of its files.
    assert statuses(configs["prod"], stage) == prod_status

    res = nfsroot_build("undo", "-c", configs["test"], "--prefix", stage, check=True)
    assert "kept" in res.stderr and "grub.cfg: build prod uses it too" in res.stderr, res.stderr
    # Byte for byte (and mode) what prod alone had, its state and logs
    # included; test's state dir stays (undo keeps its root and its record of it).
    assert server_tree(stage, leave_out=("var/lib/nfsroot-build/test",)) == prod_alone
    assert statuses(configs["prod"], stage)["dhcp-server"] == "done"


def test_check_names_both_builds_and_the_field_and_a_run_changes_nothing(server, tmp_path):
    configs, stage = server
    configure(configs["prod"], stage)
    before = server_tree(stage)
    clash = tmp_path / "clash.toml"
    clash.write_text(config_text("test", tftp="/srv/tftp/test",
                                 address="10.50.0.1", subnet="10.50.0.0/24",
                                 nodes=[("p1", "52:54:00:50:00:01", "10.50.0.201"),
                                        ("t2", "52:54:00:60:00:02", "10.50.0.102")]))
    res = nfsroot_build("check", "-c", clash, "--prefix", stage)
    assert res.returncode == 1, res.stdout + res.stderr
    fails = [line for line in res.stdout.splitlines() if line.startswith("fail:")]
    for field in ("node.mac 52:54:00:50:00:01", "node.name p1", "node.ip 10.50.0.102",
                  "tftp.root", "network.subnet 10.50.0.0/24"):
        assert any(line.startswith(f"fail: {field}") and "test" in line and "prod" in line for line in fails), \
            (field, fails)
    res = nfsroot_build("all", "-c", clash, "--prefix", stage, "--to", "nfs-exports")
    assert res.returncode == 1, res.stdout + res.stderr
    assert server_tree(stage, leave_out=("var/lib/nfsroot-build/test",)) == before

    # prod's root, built (marked) already: refused by the root's own marker, exit 2.
    same_root = tmp_path / "same-root.toml"
    same_root.write_text(config_text("test", root="/srv/nfsroot/prod"))
    res = nfsroot_build("check", "-c", same_root, "--prefix", stage)
    assert res.returncode == 2 and "holds the root of build 'prod'" in res.stderr, res.stdout + res.stderr

    # Kea keeps one kea-dhcp4 config: refused, naming dhcp.server.
    kea = tmp_path / "kea.toml"
    kea.write_text(config_text("test", dhcp="kea"))
    res = nfsroot_build("check", "-c", kea, "--prefix", stage)
    assert res.returncode == 1 and "fail: dhcp.server" in res.stdout, res.stdout + res.stderr


def test_both_builds_run_at_the_same_time_and_both_succeed(server):
    configs, stage = server
    for phase in PHASES:
        procs = [subprocess.Popen([sys.executable, "-m", "nfsroot_builder", "all", "-c", str(cfg),
                                   "--prefix", str(stage), *phase], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for cfg in configs.values()]
        for name, proc in zip(configs, procs, strict=True):
            _out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, f"{name} {phase}: {err[-3000:]}"
    assert_both_in_place(stage)
    for name, cfg in configs.items():
        done = statuses(cfg, stage)
        assert all(done[s] == "done" for s in SERVER_STEPS), (name, done)
