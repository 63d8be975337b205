"""Exactness without a real root: verify() compares content (a hand edit makes
a step stale and --resume re-runs it), the preflight runs before the first
change, a dry-run plans against its own announced changes, and the defects
of issue 9 point 5 and 22 stay fixed."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from nfsroot_builder import chroot, packages_index, session
from nfsroot_builder.errors import NfsrootError, UsageError
from nfsroot_builder.files import FileOps
from nfsroot_builder.pipeline import Pipeline
from nfsroot_builder.steps.boot_loader import IPXE_FILES, BootLoader
from nfsroot_builder.steps.dhcp import DHCPD_DEFAULTS, DhcpServer, dhcpd_errors
from nfsroot_builder.steps.initramfs import Initramfs
from nfsroot_builder.steps.nfs import GANESHA_MAIN, NfsExports, exports_dropin, ganesha_dropin
from nfsroot_builder.steps.packages import ServerPackages
from nfsroot_builder.steps.services import Services
from nfsroot_builder.steps.tftp import TFTPD_DEFAULTS, TftpServer

from fakes import FakeRunner

SERVER = (ServerPackages, TftpServer, DhcpServer, NfsExports, BootLoader, Services)


def with_(cfg, section, **values):
    return cfg.model_copy(update={section: getattr(cfg, section).model_copy(update=values)})


def make(tmp_path, cfg, steps=SERVER, preflight=None):
    runner = FakeRunner(emit=lambda line: None)
    ctx = session.make_context(cfg, prefix=tmp_path / "stage", runner=runner, emit=lambda line: None)
    return ctx, Pipeline(ctx, steps, preflight=preflight)


def fake_grub(argv):
    """grub-mknetdir, faked: it leaves the platform's core image."""
    if argv[0] == "grub-mknetdir":
        platform = argv[-1].rsplit("/", 1)[-1]
        core = {"i386-pc": "core.0", "x86_64-efi": "core.efi"}[platform]
        path = Path(argv[1].split("=", 1)[1]) / "boot/grub" / platform / core
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"core")


# -- point 3: verify compares content ------------------------------------------

def hand_edits(cfg):
    """step -> (config, the file an admin empties by hand)"""
    kernel_nfs = with_(cfg, "nfs", server="kernel")
    ganesha = with_(cfg, "nfs", server="ganesha")
    return {
        "tftp-server": (cfg, TFTPD_DEFAULTS),
        "dhcp-server": (cfg, DHCPD_DEFAULTS),
        "nfs-exports (kernel)": (kernel_nfs, exports_dropin(cfg.name)),
        "nfs-exports (ganesha drop-in)": (ganesha, ganesha_dropin(cfg.name)),
        "nfs-exports (ganesha.conf include)": (ganesha, GANESHA_MAIN),
        "boot-loader (grub)": (with_(cfg, "boot", loader="grub"), "<tftp>/boot/grub/grub.cfg"),
        "boot-loader (ipxe)": (with_(cfg, "boot", loader="ipxe"), "<tftp>/ipxe/boot.ipxe"),
    }


@pytest.mark.parametrize("case", [
    "tftp-server", "dhcp-server", "nfs-exports (kernel)", "nfs-exports (ganesha drop-in)",
    "nfs-exports (ganesha.conf include)", "boot-loader (grub)", "boot-loader (ipxe)"])
def test_an_emptied_file_makes_its_step_stale_and_resume_reruns_it(tmp_path, seed_config, monkeypatch, case):
    monkeypatch.setattr(packages_index, "check_exist", lambda ctx, names: None)
    cfg, rel = hand_edits(seed_config)[case]
    step = case.split(" ")[0]
    ctx, pipe = make(tmp_path, cfg)
    ctx.runner.hook = fake_grub
    if cfg.boot.loader == "ipxe":   # the host's iPXE binaries, faked
        monkeypatch.setattr("nfsroot_builder.steps.boot_loader.IPXE_FILES",
                            {n: str(tmp_path / n) for n in IPXE_FILES})
        for n in IPXE_FILES:
            (tmp_path / n).write_bytes(b"ipxe " + n.encode())
    pipe.run()
    assert {p.step.name: p.status for p in pipe.plan()}[step] == "done"
    path = ctx.tftp_root / rel.removeprefix("<tftp>/") if rel.startswith("<tftp>") else ctx.host(rel)
    path.write_text("")   # an admin empties it
    ctx, pipe = make(tmp_path, cfg)
    ctx.runner.hook = fake_grub
    plans = {p.step.name: p for p in pipe.plan()}
    assert plans[step].status == "stale" and str(path) in plans[step].why
    report = dict(pipe.run(resume=True))
    assert report[step] == "changed"
    assert path.read_text() != ""
    assert {p.step.name: p.status for p in make(tmp_path, cfg)[1].plan()}[step] == "done"


def test_ipxe_binary_changed_by_hand_is_stale(tmp_path, seed_config, monkeypatch):
    cfg = with_(seed_config, "boot", loader="ipxe")
    monkeypatch.setattr("nfsroot_builder.steps.boot_loader.IPXE_FILES",
                        {n: str(tmp_path / n) for n in IPXE_FILES})
    for n in IPXE_FILES:
        (tmp_path / n).write_bytes(b"ipxe " + n.encode())
    ctx, pipe = make(tmp_path, cfg, steps=(TftpServer, BootLoader))
    pipe.run()
    (ctx.tftp_root / "undionly.kpxe").write_bytes(b"ipxe undionly.kpxX")   # same size, other bytes
    assert BootLoader().verify(ctx) and "undionly.kpxe" in BootLoader().verify(ctx)[0]


# -- point 2: check before the first change ---------------------------------------

def test_failing_preflight_stops_the_run_before_any_change(tmp_path, seed_config, monkeypatch):
    def no_such_package(ctx, names):
        raise UsageError("package(s) not in trixie/main for amd64: linux-image-amd46")
    monkeypatch.setattr(packages_index, "check_exist", no_such_package)
    runner = FakeRunner(emit=lambda line: None)
    ctx = session.make_context(seed_config, prefix=tmp_path / "stage", runner=runner, emit=lambda line: None)
    pipe = session.pipeline(ctx)
    with pytest.raises(NfsrootError, match="(?s)preflight failed.*linux-image-amd46"):
        pipe.run()
    assert not (tmp_path / "stage").exists()
    assert all(argv[0] in ("dpkg-query", "ip") for argv in runner.executed)   # read-only probes only
    assert all(not ctx.state.step(s.name) for s in pipe.steps)   # no step started


def test_preflight_probes_the_mirror_only_when_a_step_downloads(tmp_path, seed_config, monkeypatch):
    asked = []
    monkeypatch.setattr(packages_index, "check_exist", lambda ctx, names: asked.append(names))
    ctx = session.make_context(seed_config, prefix=tmp_path / "stage", runner=FakeRunner(emit=lambda line: None),
                               emit=lambda line: None)
    session.pipeline(ctx).run(only="tftp-server")
    assert asked == []
    monkeypatch.setattr(chroot, "mounts_under", lambda root: [])
    monkeypatch.setattr(chroot, "stop_processes", lambda ctx, root: None)
    session.pipeline(ctx).run(only="root-packages")
    assert asked and "linux-image-amd64" in asked[0]


def test_preflight_is_not_run_when_resume_has_nothing_to_do(tmp_path, seed_config):
    calls = []
    ctx, pipe = make(tmp_path, seed_config, steps=(TftpServer,), preflight=calls.append)
    pipe.run()
    assert len(calls) == 1 and [s.name for s in calls[0]] == ["tftp-server"]
    make(tmp_path, seed_config, steps=(TftpServer,), preflight=calls.append)[1].run(resume=True)
    assert len(calls) == 1


# -- point 22: bad input found by check -----------------------------------------

def test_malformed_mirror_url_is_a_usage_error_naming_the_field(tmp_path, seed_config):
    cfg = with_(seed_config, "root", mirror="http://[::1")
    ctx = session.make_context(cfg, prefix=tmp_path / "stage", runner=FakeRunner(), emit=lambda line: None)
    with pytest.raises(UsageError, match=r"root.mirror 'http://\[::1' is not a valid URL \(Invalid IPv6 URL\)"):
        packages_index.check_exist(ctx, ["bash"])
    from nfsroot_builder.preflight import preflight
    fails = [msg for level, msg in preflight(ctx) if level == "fail"]
    assert fails and "root.mirror" in fails[0]


def test_dhcpd_errors_keep_dhcpd_s_reason_without_its_banner():
    out = ("Internet Systems Consortium DHCP Server 4.4.3-P1\nCopyright 2004-2022 Internet Systems Consortium.\n"
           "/s/etc/dhcp/.dhcpd.conf.check.x1 line 2: semicolon expected.\n}\n ^\n"
           "Configuration file errors encountered -- exiting\n\nIf you think you have received this message\n")
    assert dhcpd_errors(out, "/s/etc/dhcp/.dhcpd.conf.check.x1", "/s/etc/dhcp/dhcpd.conf") == \
        ["/s/etc/dhcp/dhcpd.conf line 2: semicolon expected."]


# -- point 5: an empty lsinitramfs listing is a broken initrd --------------------

def test_empty_initrd_listing_fails_in_a_real_run(tmp_path, seed_config, monkeypatch):
    monkeypatch.setattr(chroot, "mounts_under", lambda root: [])
    monkeypatch.setattr(chroot, "stop_processes", lambda ctx, root: None)
    ctx = session.make_context(seed_config, prefix=tmp_path / "stage", runner=FakeRunner(),
                               emit=lambda line: None)
    (ctx.root / "boot").mkdir(parents=True)
    (ctx.root / "boot/vmlinuz-6.12.1-amd64").write_bytes(b"k")
    (ctx.root / "boot/initrd.img-6.12.1-amd64").write_bytes(b"i")
    with pytest.raises(NfsrootError, match="cannot boot this NFS root"):
        Initramfs().run(ctx)   # the fake lsinitramfs lists nothing


# -- the dry-run plans against what it announced ----------------------------------

def test_dry_run_plans_removal_of_a_file_it_would_create(tmp_path):
    lines: list[str] = []
    files = FileOps(dry_run=True, emit=lines.append)
    f = tmp_path / "usr/sbin/policy-rc.d"
    assert files.ensure_file(f, "exit 101\n", 0o755)
    assert files.exists(f) and not f.exists()
    assert files.ensure_absent(f)
    assert f"# rm {f}" in lines and not files.exists(f)


def test_dry_run_announces_an_empty_file(tmp_path):
    lines: list[str] = []
    files = FileOps(dry_run=True, emit=lines.append)
    assert files.ensure_file(tmp_path / "etc/machine-id", "", 0o444)
    assert lines == [f"# write {tmp_path}/etc/machine-id (0 bytes, mode 444)"]


def test_expect_lets_a_dry_run_plan_with_what_a_command_made(tmp_path):
    lines: list[str] = []
    files = FileOps(dry_run=True, emit=lines.append)
    files.expect(tmp_path / "etc/hostname", "buildhost\n")
    files.expect(tmp_path / "var/log")
    files.expect(tmp_path / "wants/remote-fs.target", link="/usr/lib/remote-fs.target")
    assert lines == []   # an expectation is no change
    assert files.ensure_absent(tmp_path / "etc/hostname") and lines == [f"# rm {tmp_path}/etc/hostname"]
    assert files.is_dir(tmp_path / "var/log")
    assert not files.ensure_symlink(tmp_path / "wants/remote-fs.target", "/usr/lib/remote-fs.target")
    assert not (tmp_path / "etc").exists()


def test_expect_changes_nothing_in_a_real_run(tmp_path):
    files = FileOps()
    files.expect(tmp_path / "etc/hostname", "buildhost\n")
    assert not files.exists(tmp_path / "etc/hostname")


def test_real_run_logs_each_change_as_the_dry_run_prints_it(tmp_path):
    printed: list[str] = []
    logged: list[str] = []
    dry = FileOps(dry_run=True, emit=printed.append)
    real = FileOps(log=logged.append)
    for files in (dry, real):
        files.ensure_dir(tmp_path / "d", 0o755)
        files.ensure_file(tmp_path / "d/f", "x\n", 0o644)
        files.ensure_symlink(tmp_path / "d/l", "f")
        files.ensure_absent(tmp_path / "d/f")
    changes = [line for line in printed if line.startswith("# ")]
    assert changes == logged == [f"# mkdir -p -m 755 {tmp_path}/d", f"# write {tmp_path}/d/f (2 bytes, mode 644)",
                                 f"# ln -sfn f {tmp_path}/d/l", f"# rm {tmp_path}/d/f"]


def test_kernel_copy_edited_by_hand_is_stale(tmp_path, seed_config):
    from nfsroot_builder.steps.kernel_tftp import KernelToTftp
    ctx = session.make_context(seed_config, prefix=tmp_path / "stage", runner=FakeRunner(), emit=lambda line: None)
    (ctx.root / "boot").mkdir(parents=True)
    (ctx.root / "boot/vmlinuz-6.12.1-amd64").write_bytes(b"kernel")
    (ctx.root / "boot/initrd.img-6.12.1-amd64").write_bytes(b"initrd")
    result = KernelToTftp().run(ctx)
    ctx.state.set_step("kernel-to-tftp", outputs=result.outputs)
    assert KernelToTftp().verify(ctx) == []
    copy = ctx.tftp_root / "kerrighed/initrd.img-6.12.1-amd64"
    before = copy.stat().st_mtime_ns
    copy.write_bytes(b"INITRD")   # same size, other bytes
    # ... a moment later (file times tick in jiffies: within a test they may not move)
    os.utime(copy, ns=(before + 10**9, before + 10**9))
    assert str(copy) in KernelToTftp().verify(ctx)[0]


def test_dry_run_chmod_of_a_directory_plans_the_new_mode(tmp_path):
    lines: list[str] = []
    files = FileOps(dry_run=True, emit=lines.append)
    (tmp_path / "d").mkdir(mode=0o700)
    assert files.ensure_mode(tmp_path / "d", 0o755)
    assert files.is_dir(tmp_path / "d") and files.mode(tmp_path / "d") == 0o755
    assert not files.ensure_mode(tmp_path / "d", 0o755)
    assert lines == [f"# chmod 755 {tmp_path}/d"] and (tmp_path / "d").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("url", ["http://[::1", "http://host:port/debian", "http://:80/debian", "http://h:0/d"])
def test_malformed_mirror_urls(tmp_path, seed_config, url):
    ctx = session.make_context(with_(seed_config, "root", mirror=url), prefix=tmp_path / "stage",
                               runner=FakeRunner(), emit=lambda line: None)
    with pytest.raises(UsageError, match="root.mirror .* is not a valid URL"):
        packages_index.mirror(ctx)


def test_file_mirror_needs_no_host(tmp_path, seed_config):
    ctx = session.make_context(with_(seed_config, "root", mirror="file:///srv/mirror/debian"),
                               prefix=tmp_path / "stage", runner=FakeRunner(), emit=lambda line: None)
    assert packages_index.mirror(ctx) == "file:///srv/mirror/debian"


def fake_archive(monkeypatch):
    import hashlib
    import lzma
    index = lzma.compress(b"Package: bash\n\nPackage: exim4\nProvides: mail-transport-agent\n")
    release = (f"Suite: trixie\nSHA256:\n {hashlib.sha256(index).hexdigest()} {len(index)} "
               "main/binary-amd64/Packages.xz\n").encode()
    fetched = []

    def fetch(url, headers=None):
        fetched.append(url)
        if url.endswith("/InRelease"):
            raise packages_index.NotFound(url)
        return release if url.endswith("/Release") else index
    monkeypatch.setattr(packages_index, "_fetch_chunks", lambda url, headers=None: iter([fetch(url, headers)]))
    return fetched


@pytest.mark.parametrize("dry_run", [True, False])
def test_package_name_cache_is_written_only_by_a_real_run(tmp_path, seed_config, monkeypatch, dry_run):
    fake_archive(monkeypatch)
    cfg = with_(seed_config, "root", mirror="http://mirror.invalid/debian")
    ctx = session.make_context(cfg, prefix=tmp_path / "stage", dry_run=dry_run, runner=FakeRunner(),
                               emit=lambda line: None)
    ctx.apt_cache = tmp_path / "cache/apt"
    packages_index.check_exist(ctx, ["bash", "mail-transport-agent"])
    with pytest.raises(UsageError, match="nfs-commn"):
        packages_index.check_exist(ctx, ["bash", "nfs-commn"])
    lists = tmp_path / "cache/lists"
    assert (lists.exists() and any(lists.iterdir())) is not dry_run
