"""Each doctor check against its broken situation, in-process with a fake
runner: it fails with its explanation, --fix repairs it (or says manual
fix and leaves it), and --fix --dry-run changes nothing."""
from __future__ import annotations

from pathlib import Path

import pytest

from nfsroot_builder import config as config_mod
from nfsroot_builder import session
from nfsroot_builder.doctor import CHECKS, apply_fixes, run_checks
from nfsroot_builder.doctor.parse import (
    comment_out_claims,
    covers,
    dhcpd_hosts,
    ifupdown_claims,
    initrd_names,
    parse_exports,
)

from doctor_scenes import (
    KERNEL,
    NFS_INITRD,
    SCENES,
    initrd,
    newc,
    scene_id,
    seed_layout,
)
from fakes import FakeRunner
from helpers import snapshot

BROKEN_MARKERS = ("deny unknown-clients\n", "option routers 10.9.0.1\n")


def fake_dhcpd(argv):
    """dhcpd -t that rejects the scenes' missing semicolons, like the real one."""
    if argv[0] == "dhcpd":
        text = Path(argv[-1]).read_text()
        if any(m in text for m in BROKEN_MARKERS):
            return 1, "", "dhcpd.conf line 12: semicolon expected.\nConfiguration file errors encountered\n"
        return 0, "", ""
    return None


def make(tmp_path, text, dry_run=False):
    out: list[str] = []
    runner = FakeRunner(hook=fake_dhcpd, emit=out.append)
    cfg = config_mod.parse(text)
    ctx = session.make_context(cfg, prefix=tmp_path / "stage", dry_run=dry_run, runner=runner, emit=out.append)
    return ctx, out


def built(tmp_path, text):
    ctx, _ = make(tmp_path, text)
    session.pipeline(ctx).run(to_step="nfs-exports")
    return ctx


def finding(ctx, name):
    return next(f for f in run_checks(ctx) if f.check == name)


def test_every_check_has_a_scene_and_the_order_puts_the_seed_first():
    from nfsroot_builder.doctor import ORDER
    names = {c.name for c in CHECKS}
    assert names == {s.check for s in SCENES} == set(ORDER)
    assert [c.seed for c in sorted(CHECKS, key=lambda c: ORDER.index(c.name))][:5] == list("abcde")


def test_clean_server_all_ok(tmp_path, seed_text):
    ctx = built(tmp_path, seed_text)
    bad = [(f.check, f.reason) for f in run_checks(ctx) if f.status != "ok"]
    assert bad == []


@pytest.mark.parametrize("scene", SCENES, ids=[scene_id(s) for s in SCENES])
def test_check_fails_then_fix(tmp_path, seed_text, scene):
    text = scene.config_edit(seed_text) if scene.config_edit else seed_text
    ctx = built(tmp_path, text)
    assert finding(ctx, scene.check).status == "ok"
    scene.build(ctx.prefix, ctx.config.root.path)
    f = finding(ctx, scene.check)
    assert f.status == scene.status, f
    assert scene.words in f.reason and f.fix
    assert f.manual == scene.manual

    # --fix --dry-run: the plan is printed, nothing on disk changes.
    before = snapshot(ctx.prefix)
    dctx, out = make(tmp_path, text, dry_run=True)
    outcome = apply_fixes(dctx, run_checks(dctx))
    assert snapshot(ctx.prefix) == before
    if not scene.manual:
        assert outcome[scene.check] == "fixed" and any(line.strip() for line in out)

    fctx, _ = make(tmp_path, text)
    outcome = apply_fixes(fctx, run_checks(fctx))
    after = finding(fctx, scene.check)
    if scene.manual:
        assert scene.check not in outcome and after.status == scene.status
    else:
        assert outcome[scene.check] == "fixed"
        assert after.status == "ok", after.reason


def test_fixed_interfaces_keep_loopback_and_comment_the_nic(tmp_path, seed_text):
    ctx = built(tmp_path, seed_text)
    SCENES[1].build(ctx.prefix, ctx.config.root.path)
    apply_fixes(ctx, run_checks(ctx))
    text = (ctx.root / "etc/network/interfaces").read_text()
    assert "\nauto lo\niface lo inet loopback\n" in text
    assert "#auto eth0\n#iface eth0 inet dhcp\n#  hostname node\n" in text
    assert (ctx.state_dir / "backup/root/etc/network/interfaces").read_text().endswith("iface eth0 inet dhcp\n  hostname node\n")


def test_nfs_state_fix_stops_and_starts_the_server(tmp_path, seed_text, monkeypatch):
    ctx = built(tmp_path, seed_text)
    SCENES[3].build(ctx.prefix, ctx.config.root.path)
    calls = []
    monkeypatch.setattr("nfsroot_builder.services.control", lambda c, s, a: calls.append((s, a)))
    apply_fixes(ctx, run_checks(ctx))
    assert calls == [("nfs-kernel-server", "stop"), ("nfs-kernel-server", "start")]
    d = ctx.prefix / "var/lib/nfs"
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in d.iterdir()} == {
        "etab": "0o644", "rmtab": "0o644", "state": "0o644", "xtab": "0o644"}
    # Daemon state, not configuration: undo must not remove or restore it.
    assert not any("/var/lib/nfs/" in p for p in ctx.state.files)


def test_exports_syntax_manual_fix_names_the_corrected_line(tmp_path, seed_text):
    ctx = built(tmp_path, seed_text)
    SCENES[4].build(ctx.prefix, ctx.config.root.path)
    f = finding(ctx, "exports-syntax")
    assert "exports /NFSROOT/kerrighed to the world" in f.reason
    assert "write '/NFSROOT/kerrighed 192.168.1.0/24(ro,async,no_root_squash,no_subtree_check)'" in f.fix


def test_threads_fix_writes_block_and_dropin_and_restarts(tmp_path, seed_text, monkeypatch):
    text = SCENES[-1].config_edit(seed_text)
    ctx = built(tmp_path, text)
    SCENES[-1].build(ctx.prefix, ctx.config.root.path)
    restarted = []
    monkeypatch.setattr("nfsroot_builder.services.restart", lambda c, s: restarted.append(s))
    apply_fixes(ctx, run_checks(ctx))
    default = (ctx.prefix / "etc/default/nfs-kernel-server").read_text()
    assert default.startswith("# the package's\nRPCNFSDCOUNT=2\n") and default.count("RPCNFSDCOUNT=4") == 1
    assert "threads = 4" in (ctx.prefix / "etc/nfs.conf.d/nfsroot-build.conf").read_text()
    assert restarted == ["nfs-kernel-server"]
    # Recorded, so that undo takes them back.
    assert ctx.state.files[str(ctx.prefix / "etc/nfs.conf.d/nfsroot-build.conf")]["kind"] == "owned"


def test_check_that_crashes_on_a_bad_file_reports_it(tmp_path, seed_text):
    ctx = built(tmp_path, seed_text)
    conf = ctx.prefix / "etc/dhcp/dhcpd.conf"
    conf.write_bytes(b"\xff\xfe not utf-8")
    f = finding(ctx, "dhcp-nodes")
    assert f.status == "fail" and "could not check" in f.reason


# -- parsers ---------------------------------------------------------------------


def test_parse_exports_space_is_a_world_export(tmp_path):
    [e] = parse_exports("/x 10.0.0.0/8 (rw,no_root_squash)\n", tmp_path)
    assert [(c.host, c.options, c.spaced_after) for c in e.clients] == [
        ("10.0.0.0/8", None, None), ("", ["rw", "no_root_squash"], "10.0.0.0/8")]
    assert e.clients[1].world and not e.clients[1].root_squash and e.clients[0].root_squash


def test_parse_exports_continuation_defaults_and_quotes(tmp_path):
    es = parse_exports('"/a b" -rw h1 \\\n h2(ro)\n# c\n/c\n', tmp_path)
    assert es[0].path == "/a b" and [c.options for c in es[0].clients] == [["rw"], ["rw", "ro"]]
    assert es[1].path == "/c" and es[1].clients[0].world and es[1].line == 4


@pytest.mark.parametrize("spec,target,ok", [("*", "10.0.0.1", True), ("10.0.0.0/8", "10.1.0.0/16", True),
                                            ("10.1.0.0/16", "10.0.0.0/8", False), ("h1", "10.0.0.1", False)])
def test_covers(spec, target, ok):
    assert covers(spec, target) == ok


def test_dhcpd_hosts_ours_and_admins():
    text = ('host a { hardware ethernet AA:BB:CC:DD:EE:FF; fixed-address 10.0.0.1; } # host z {}\n'
            '# BEGIN nfsroot-build managed block\nhost b { fixed-address 10.0.0.2, 10.0.0.3; }\n'
            '# END nfsroot-build managed block\noption x "#host q {";\n')
    hosts = dhcpd_hosts(text)
    assert [(h.name, h.ours, h.macs, h.addresses) for h in hosts] == [
        ("a", False, ["aa:bb:cc:dd:ee:ff"], ["10.0.0.1"]), ("b", True, [], ["10.0.0.2", "10.0.0.3"])]


def test_interfaces_claims_and_comment_out():
    text = "auto lo eth1\nallow-hotplug ens3\niface ens3 inet dhcp\niface lo inet loopback\n"
    assert ifupdown_claims(text) == [(1, "eth1"), (2, "ens3"), (3, "ens3")]
    assert comment_out_claims(text) == ("auto lo\n#auto lo eth1\n#allow-hotplug ens3\n"
                                        "#iface ens3 inet dhcp\niface lo inet loopback\n")
    assert ifupdown_claims(comment_out_claims(text)) == []


def test_initrd_names_early_and_compressed():
    names = initrd_names(initrd(NFS_INITRD))
    assert "scripts/nfs" in names and "kernel/x86/microcode" in names
    assert f"usr/lib/modules/{KERNEL}/kernel/fs/nfs/nfs.ko" in names
    assert initrd_names(newc(["a", "b/c"])) == {"a", "b/c"}
    with pytest.raises(ValueError):
        initrd_names(b"garbage that is not an initrd")


def test_seed_layout_scene_config_is_valid(seed_text):
    assert config_mod.parse(seed_layout(seed_text)).root.layout == "seed"
