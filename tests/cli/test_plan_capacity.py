"""`nfsroot-build plan-capacity` in-process (issue 13 point 4): the model for
the config and the built version at hand, the measured defaults otherwise
(and which is which), and the usage errors."""
from __future__ import annotations

import json

import pytest

from nfsroot_builder import capacity
from nfsroot_builder import config as config_mod
from nfsroot_builder.cli import app
from nfsroot_builder.state import State

from helpers import example_text, write


def plan(cli, cfg_path, prefix, *args):
    return cli.invoke(app, ["plan-capacity", *args, "-c", str(cfg_path), "--prefix", str(prefix)])


def built(tmp_path, kernel=5_000_000, initrd=20_000_000, squashfs=None, text=None):
    """A config and a prefix whose current version v1 has a kernel and an
    initrd (and a squashfs) of these sizes in TFTP."""
    text = text or example_text("lab")
    cfg_path = write(tmp_path, text)
    cfg = config_mod.parse(text)
    prefix = tmp_path / "p"
    tftp = prefix / cfg.tftp.root.lstrip("/") / cfg.name
    tftp.mkdir(parents=True)
    (tftp / "vmlinuz-6.12").write_bytes(b"k" * kernel)
    (tftp / "initrd.img-6.12").write_bytes(b"i" * initrd)
    if squashfs:
        (tftp / "filesystem.squashfs").write_bytes(b"s" * squashfs)
    state = State(prefix / "var/lib/nfsroot-build" / cfg.name / "state.json")
    state.set_version(1, path=cfg.root.path, status="ready", created="t1", digest="d", tftp_dir=cfg.name,
                      identity={"suite": cfg.root.suite}, kernel="6.12", kernel_path=f"/{cfg.name}/vmlinuz-6.12",
                      initrd_path=f"/{cfg.name}/initrd.img-6.12")
    state.set_current(1)
    state.save()
    return cfg_path, prefix, cfg


def test_the_built_versions_sizes_are_used_and_named(cli, tmp_path):
    cfg_path, prefix, cfg = built(tmp_path)
    res = plan(cli, cfg_path, prefix, "--nodes", "1000", "--link", "10G", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert (out["nodes"], out["servers"], out["link"], out["mode"]) == (1000, 1, "10G", "nfs")
    assert out["sizes"]["kernel"] == 5_000_000 and out["sizes"]["initrd"] == 20_000_000
    assert out["sources"]["kernel"].startswith("built: ") and out["sources"]["kernel"].endswith("vmlinuz-6.12")
    assert "squashfs" not in out["sources"]          # not used by an NFS root
    # The lab example boots over TFTP: kernel and initrd are TFTP bytes, beside the boot loader's.
    assert cfg.boot.transport == "tftp"
    assert out["boot_bytes"]["tftp"] == pytest.approx(25_000_000 * capacity.WIRE_OVERHEAD + capacity.TFTP_LOADER_BYTES)
    assert out["boot_bytes"]["nfs"] == pytest.approx(capacity.NFS_ROOT_BYTES)
    expected = capacity.storm(capacity.Inputs(out["boot_bytes"]), 1000, capacity.parse_link("10G"))
    assert out["seconds"] == pytest.approx(round(expected.seconds, 1))
    assert out["bottleneck"] == expected.bottleneck
    assert [r["nodes"] for r in out["table"]] == [100, 1000, 10000]


def test_image_mode_adds_the_squashfs_and_drops_nfs(cli, tmp_path):
    cfg_path, prefix, _cfg = built(tmp_path, squashfs=3_000_000)
    res = plan(cli, cfg_path, prefix, "--nodes", "100", "--mode", "image", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["boot_bytes"]["http-image"] == pytest.approx(3_000_000 * capacity.WIRE_OVERHEAD)
    assert out["boot_bytes"]["nfs"] == 0
    assert out["sources"]["squashfs"].endswith("filesystem.squashfs")
    assert "nfs" not in out["daemon_seconds"]


def test_nothing_built_falls_back_to_the_measured_defaults_and_says_so(cli, tmp_path):
    cfg_path = write(tmp_path, example_text("lab").replace('loader = "grub"', 'loader = "grub"\ntransport = "http"'))
    res = plan(cli, cfg_path, tmp_path / "empty", "--nodes", "10000", "--link", "1G", "--servers", "4")
    assert res.exit_code == 0, res.output
    assert "10000 nodes at once, 4 server(s) with a 1G link each, mode nfs, boot.transport http" in res.stdout
    assert f"kernel {capacity.fmt_bytes(capacity.KERNEL_BYTES)}: measured default" in res.stdout
    assert "boot storm: " in res.stdout and "saturates first: " in res.stdout
    assert "10,000 nodes: " in res.stdout
    assert not (tmp_path / "empty").exists()          # planning writes nothing


def test_more_servers_make_the_storm_shorter(cli, tmp_path):
    cfg_path, prefix, _cfg = built(tmp_path)
    one, four = (json.loads(plan(cli, cfg_path, prefix, "--nodes", "10000", "--servers", k, "--json").stdout)
                 for k in ("1", "4"))
    assert four["seconds"] < one["seconds"]


@pytest.mark.parametrize(("args", "message"), [
    (["--nodes", "100", "--link", "10"], "--link '10' is not a link speed"),
    (["--nodes", "100", "--link", "fast"], "--link 'fast' is not a link speed"),
    (["--nodes", "100", "--link", "10GB/s"], "--link '10GB/s' is not a link speed"),
    (["--nodes", "0"], "--nodes 0: must be at least 1"),
    (["--nodes", "100", "--servers", "0"], "--servers 0: must be at least 1"),
    (["--nodes", "100", "--mode", "disk"], "--mode 'disk': nfs or image"),
])
def test_bad_input_exits_2_naming_the_option(cli, tmp_path, args, message):
    cfg_path, prefix, _cfg = built(tmp_path)
    res = plan(cli, cfg_path, prefix, *args)
    assert res.exit_code == 2, res.output
    assert message in res.output


def test_nodes_is_required(cli, tmp_path):
    cfg_path, prefix, _cfg = built(tmp_path)
    res = plan(cli, cfg_path, prefix)
    assert res.exit_code == 2 and "--nodes" in res.output
