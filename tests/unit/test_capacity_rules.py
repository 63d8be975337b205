"""The boot-storm model (nfsroot_builder/capacity.py): pure arithmetic on
made-up inputs, so every expected figure can be worked out by hand."""
from __future__ import annotations

import pytest

from nfsroot_builder import capacity
from nfsroot_builder.capacity import Inputs, boot_bytes, parse_link, storm

MB = 1e6


@pytest.mark.parametrize(("text", "bytes_per_s"), [
    ("10G", 1.25e9), ("1G", 125e6), ("25G", 3.125e9), ("100M", 12.5e6), ("2.5G", 312.5e6),
    ("100g", 1.25e10), ("10Gbit/s", 1.25e9), ("40Gbps", 5e9), ("1T", 1.25e11),
])
def test_link_speeds_are_bits_per_second(text, bytes_per_s):
    assert parse_link(text) == pytest.approx(bytes_per_s)


@pytest.mark.parametrize("text", ["", "10", "G", "10X", "-1G", "0G", "ten G", "10 GB/s", "1e3G"])
def test_a_bad_link_speed_is_refused(text):
    with pytest.raises(ValueError, match="not a link speed"):
        parse_link(text)


@pytest.mark.parametrize("text", ["1G", "10G", "25G", "100M", "2.5G"])
def test_link_label_is_parse_links_inverse(text):
    assert capacity.link_label(parse_link(text)) == text


def test_boot_bytes_by_mode_and_transport():
    kw = {"kernel": 10 * MB, "initrd": 30 * MB, "squashfs": 160 * MB, "loader": 1 * MB, "nfs_root": 50 * MB}
    assert boot_bytes("nfs", "tftp", **kw) == {"tftp": 41 * MB, "http": 0, "http-image": 0, "nfs": 50 * MB}
    assert boot_bytes("nfs", "http", **kw) == {"tftp": 1 * MB, "http": 40 * MB, "http-image": 0, "nfs": 50 * MB}
    # RAM image: the squashfs over HTTP, nothing over NFS, whatever the transport.
    assert boot_bytes("image", "tftp", **kw) == {"tftp": 41 * MB, "http": 0, "http-image": 160 * MB, "nfs": 0}
    assert boot_bytes("image", "http", **kw) == {"tftp": 1 * MB, "http": 40 * MB, "http-image": 160 * MB, "nfs": 0}
    # The wire's overhead applies to the files' sizes, not to the measured loader and NFS bytes.
    assert boot_bytes("image", "http", overhead=1.5, **kw) == {"tftp": 1 * MB, "http": 60 * MB,
                                                               "http-image": 240 * MB, "nfs": 0}
    with pytest.raises(ValueError, match="mode"):
        boot_bytes("disk", "http")
    with pytest.raises(ValueError, match="transport"):
        boot_bytes("nfs", "ftp")


INPUTS = Inputs(boot_bytes={"tftp": 1 * MB, "http": 40 * MB, "nfs": 50 * MB},
                throughput={"tftp": 10 * MB, "http": 1000 * MB, "nfs": 200 * MB}, boot_seconds=30)


def test_the_link_saturates_first_on_a_slow_link():
    # 1,000 nodes x 91 MB over 1 Gbit/s (125 MB/s) = 728 s; the daemons:
    # 1000 x (1/10 + 40/1000 + 50/200) = 390 s.
    s = storm(INPUTS, 1000, parse_link("1G"))
    assert s.link_seconds == pytest.approx(728)
    assert s.server_seconds == pytest.approx(390)
    assert s.daemon_seconds == pytest.approx({"tftp": 100, "http": 40, "nfs": 250})
    assert (s.seconds, s.bottleneck) == (pytest.approx(728), "link")


def test_the_busiest_daemon_is_named_when_the_server_saturates_first():
    # 10G: the link takes 72.8 s, the daemons still 390 s, NFS the most of it.
    s = storm(INPUTS, 1000, parse_link("10G"))
    assert (s.seconds, s.bottleneck) == (pytest.approx(390), "server (nfs)")


def test_more_servers_share_the_nodes():
    one, four = storm(INPUTS, 1000, parse_link("10G")), storm(INPUTS, 1000, parse_link("10G"), servers=4)
    assert four.seconds == pytest.approx(one.seconds / 4)
    assert four.servers == 4


def test_a_small_cluster_waits_for_its_own_boot():
    s = storm(INPUTS, 10, parse_link("10G"))
    assert (s.seconds, s.bottleneck) == (30, "node boot")


def test_a_protocol_a_boot_uses_needs_a_throughput():
    inputs = Inputs(boot_bytes={"tftp": 0, "http": 1 * MB, "nfs": 0}, throughput={"tftp": 1 * MB}, boot_seconds=1)
    with pytest.raises(ValueError, match="no measured throughput for http"):
        storm(inputs, 10, parse_link("1G"))
    # A protocol the boot does not use needs none (image mode: no NFS).
    assert storm(Inputs({"http": 1 * MB}, {"http": 2 * MB}, 0), 10, parse_link("10G")).daemon_seconds == {"http": 5}


@pytest.mark.parametrize(("nodes", "servers", "link"), [(0, 1, 1.0), (10, 0, 1.0), (10, 1, 0.0)])
def test_impossible_inputs_are_refused(nodes, servers, link):
    with pytest.raises(ValueError):
        storm(INPUTS, nodes, link, servers)


def test_the_table_grows_with_the_nodes_and_the_measured_defaults_are_figures():
    rows = capacity.table(Inputs(boot_bytes("nfs", "http")), parse_link("10G"))
    assert [r.nodes for r in rows] == [100, 1_000, 10_000]
    assert rows[0].seconds <= rows[1].seconds < rows[2].seconds
    # The defaults are measured numbers, not placeholders.
    for value in (capacity.TFTP_LOADER_BYTES, capacity.NFS_ROOT_BYTES, capacity.NGINX_BPS, capacity.NGINX_IMAGE_BPS,
                  capacity.TFTPD_BPS, capacity.GANESHA_BPS, capacity.BOOT_SECONDS):
        assert value > 0


def test_the_measured_defaults_are_the_storm_runs_figures():
    """capacity's constants are bench/storm-results.json's figures, worked
    out the way its docstrings say (a re-run of bench/storm.py that is not
    carried over fails here)."""
    import json
    from pathlib import Path
    res = json.loads((Path(__file__).parents[2] / "bench/storm-results.json").read_text())
    lab, rows = res["lab"], res["loopback"]
    c = lab["counters"]
    assert capacity.TFTP_LOADER_BYTES == round(c["tftp_out"]["bytes"] / lab["nodes"])
    assert capacity.NFS_ROOT_BYTES == round(c["nfs_out"]["bytes"] / lab["nodes"])
    files = sum(lab["sizes"].values())
    assert capacity.WIRE_OVERHEAD == pytest.approx(c["http_out"]["bytes"] / lab["nodes"] / files, abs=1e-4)
    assert res.get("cores", capacity.MEASURED_CORES) == capacity.MEASURED_CORES
    assert capacity.GANESHA_BPS == pytest.approx(
        c["nfs_out"]["bytes"] / lab["daemon_cpu_seconds"]["ganesha"] * capacity.MEASURED_CORES, rel=1e-3)

    def best(daemon, fname, blksize=None):
        return max(r["mb_per_s"] for r in rows if (r["daemon"], r["file"], r["blksize"]) == (daemon, fname, blksize))
    assert capacity.NGINX_BPS == pytest.approx(best("nginx", "initrd.img") * 1e6)
    assert capacity.NGINX_IMAGE_BPS == pytest.approx(best("nginx", "root.squashfs") * 1e6)
    assert capacity.TFTPD_BPS == pytest.approx(best("in.tftpd", "initrd.img", 1468) * 1e6)


@pytest.mark.parametrize(("seconds", "text"), [(59.6, "60 s"), (150, "2.5 min"), (7200, "2.0 h")])
def test_seconds_are_shown_in_a_readable_unit(seconds, text):
    assert capacity.fmt_seconds(seconds) == text


def test_docs_scale_md_shows_the_models_table():
    from pathlib import Path
    text = (Path(__file__).parents[2] / "docs/scale.md").read_text()
    shown = text.split("<!-- capacity-table:begin -->\n", 1)[1].split("<!-- capacity-table:end -->", 1)[0]
    assert shown == capacity.doc_table(), "docs/scale.md: paste capacity.doc_table() between the markers"
