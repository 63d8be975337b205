"""Replicated boot servers (issue 13, points 2-3; docs/replicas.md) without
root: [[servers]]' checks, Kea HA in each server's Kea config, and `sync`'s
commands and rendered files with a fake runner under tmp_path."""
from __future__ import annotations

import pytest
from test_lab import console

from nfsroot_builder import config as config_mod
from nfsroot_builder import replicas, session, versions
from nfsroot_builder.errors import ConfigError, UsageError
from nfsroot_builder.lab import Lab
from nfsroot_builder.lab.nodes import NodeResult, judge
from nfsroot_builder.render import Served
from nfsroot_builder.render.ha import kea_ha
from nfsroot_builder.render.server import kea_config, kea_json

from fakes import FakeRunner
from helpers import example_text

LAB = example_text("lab")


def with_servers(text: str = LAB, kind: str = "kea", **server) -> str:
    entry = {"name": "b", "address": "192.168.0.2", "tree": "/srv/replica-b", **server}
    lines = "".join(f'{k} = "{v}"\n' for k, v in entry.items())
    return text + f'\n[dhcp]\nserver = "{kind}"\n\n[[servers]]\n{lines}'


def problems(text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as e:
        config_mod.parse(text)
    return dict(e.value.problems)


def test_a_replica_is_parsed_with_its_interface_defaulting_to_the_servers():
    cfg = config_mod.parse(with_servers(tree="root@boot-b:/"))
    [r] = cfg.servers
    assert (r.name, r.address, r.interface, r.tree) == ("b", "192.168.0.2", None, "root@boot-b:/")
    assert replicas.replica_config(cfg, r).server.interface == "nrb-br0"
    assert replicas.location(r, "/srv/x") == "root@boot-b:/srv/x"
    assert replicas.served_prefix(r) == "/"


@pytest.mark.parametrize("change, field, words", [
    ({"name": "primary"}, "servers[0].name", "not 'primary'"),
    ({"address": "10.0.0.2"}, "servers[0].address", "not in network.subnet"),
    ({"address": "192.168.0.1"}, "servers[0].address", "server.address's address"),
    ({"tree": "boot-b:relative"}, "servers[0].tree", "[user@]host:/path"),
    ({"interface": "a bad name"}, "servers[0].interface", "not a network interface name"),
])
def test_a_bad_replica_is_refused_naming_its_field(change, field, words):
    got = problems(with_servers(**change))
    assert words in got[field], got


def test_replicas_need_kea_and_a_node_address_is_taken():
    text = with_servers(kind="isc-dhcp-server", address="192.168.0.101")
    got = problems(text)
    assert "must be \"kea\"" in got["dhcp.server"]
    assert "node lab1's address" in got["servers[0].address"], got


def test_kea_ha_load_balances_the_first_two_servers_and_names_this_one():
    cfg = config_mod.parse(with_servers())
    primary = kea_json(kea_config(cfg, Served()))["Dhcp4"]
    assert [h["library"].rsplit("/", 1)[1] for h in primary["hooks-libraries"]] == \
        ["libdhcp_lease_cmds.so", "libdhcp_ha.so"]
    ha = primary["hooks-libraries"][1]["parameters"]["high-availability"][0]
    assert (ha["this-server-name"], ha["mode"]) == ("primary", "load-balancing")
    assert [(p["name"], p["role"], p["url"]) for p in ha["peers"]] == [
        ("primary", "primary", "http://192.168.0.1:8647/"), ("b", "secondary", "http://192.168.0.2:8647/")]
    assert primary["multi-threading"]["enable-multi-threading"] is True
    assert kea_ha(cfg, "b")["hooks-libraries"][1]["parameters"]["high-availability"][0]["this-server-name"] == "b"
    # Without [[servers]], no hook: the single server's config is as before.
    assert "hooks-libraries" not in kea_json(kea_config(config_mod.parse(LAB), Served()))["Dhcp4"]


def test_rsync_stats_give_files_and_bytes():
    out = ("Number of files: 11,402 (reg: 9,001, dir: 1,000)\nNumber of regular files transferred: 1,234\n"
           "Total file size: 400,000,000 bytes\nTotal transferred file size: 40,552,609 bytes\n")
    assert replicas.stats(out) == replicas.Copied(1234, 40552609)
    assert replicas.stats("") == replicas.Copied(0, 0)


@pytest.fixture
def synced(tmp_path):
    """`sync` of a lab build with v1 and v2 ready and v3 building, fake rsync."""
    cfg = config_mod.parse(with_servers(tree=str(tmp_path / "b")))
    runner = FakeRunner(answers={"rsync": (0, "Number of regular files transferred: 2\n"
                                                "Total transferred file size: 100 bytes\n", "")})
    ctx = session.make_context(cfg, prefix=tmp_path / "stage", state_dir=tmp_path / "state", runner=runner,
                               version="current")
    st = ctx.state
    for vid, status in ((1, "ready"), (2, "ready"), (3, "building")):
        path = "/srv/nfsroot/lab" + ("" if vid == 1 else f".v{vid}")
        d = "lab" if vid == 1 else f"lab.v{vid}"
        st.set_version(vid, path=path, status=status, kernel="6.12", kernel_path=f"/{d}/vmlinuz-6.12",
                       initrd_path=f"/{d}/initrd.img-6.12")
    st.set_current(2)
    st.set_step("kernel-to-tftp", status="done", outputs={"kernel_path": "/lab.v2/vmlinuz-6.12",
                                                          "initrd_path": "/lab.v2/initrd.img-6.12"})
    # The context `sync` gets for the current version (v2).
    ctx.version_id = 2
    ctx.config = versions.with_root_path(cfg, "/srv/nfsroot/lab.v2")
    [row] = replicas.sync(ctx)
    return ctx, runner, row, tmp_path


def test_sync_copies_ready_versions_then_the_tftp_root_then_the_servers_own_files(synced):
    ctx, runner, row, tmp = synced
    rsyncs = [argv for argv in runner.executed if argv[0] == "rsync"]
    b = tmp / "b"
    assert [a[-1] for a in rsyncs] == [f"{b}/srv/nfsroot/lab/", f"{b}/srv/nfsroot/lab.v2/", f"{b}/srv/tftp/lab/",
                                       f"{b}"]
    # v2 is copied against v1 on the replica; the building v3 goes nowhere.
    assert f"--link-dest={b}/srv/nfsroot/lab" in rsyncs[1]
    assert "--filter=- /lab.v3/" in rsyncs[2] and "--filter=- /boot/grub/grub.cfg-01-*" in rsyncs[2]
    assert (row["files"], row["bytes"], row["versions"]) == (8, 400, ["v1", "v2"])
    staged = ctx.state_dir / "replicas/b"
    menu = next((staged / "srv/tftp/lab/boot/grub").glob("grub.cfg-01-*")).read_text()
    assert f"nfsroot=192.168.0.2:{b}/srv/nfsroot/lab.v2,tcp,v3" in menu
    kea = kea_json((staged / "etc/kea/kea-dhcp4-nfsroot-build.conf").read_text())["Dhcp4"]
    assert kea["subnet4"][0]["next-server"] == "192.168.0.2"
    assert ctx.state.replicas()["b"]["versions"] == ["v1", "v2"]
    assert replicas.status_lines(ctx)[0].startswith("server b (192.168.0.2): versions v1, v2")


def test_the_lab_judges_a_root_from_a_replica_good_and_one_from_elsewhere_bad(tmp_path):
    cfg = config_mod.parse(with_servers(tree=str(tmp_path / "b")))
    lab = Lab(session.make_context(cfg, prefix=tmp_path / "stage", state_dir=tmp_path / "state",
                                   runner=FakeRunner(), version="current"))
    [sub] = lab.replica_labs()
    assert (sub.ns, sub.server, sub.cfg.server.address) == (f"{lab.ns}-b", "b", "192.168.0.2")
    assert sub.ctx.tftp_root == tmp_path / "b/srv/tftp/lab"
    node = cfg.nodes[0]
    for source, ok in ((f"192.168.0.2:{tmp_path}/b/srv/nfsroot/lab", True),
                       (f"192.168.0.1:{tmp_path}/stage/srv/nfsroot/lab", True),
                       (f"192.168.0.2:{tmp_path}/stage/srv/nfsroot/lab", False)):
        r = NodeResult(node.name)
        assert judge(lab, node, console(root=f"nfs,{source}"), r)
        assert r.ok is ok, (source, r.problem)


def test_kill_server_names_the_servers_when_given_an_unknown_one(tmp_path):
    cfg = config_mod.parse(with_servers(tree=str(tmp_path / "b")))
    lab = Lab(session.make_context(cfg, prefix=tmp_path / "stage", state_dir=tmp_path / "state",
                                   runner=FakeRunner(), version="current"))
    with pytest.raises(UsageError) as e:
        lab.kill_server("c")
    assert "the servers are b, primary" in str(e.value)
    assert lab.kill_server("b") == []   # nothing recorded: nothing killed
    remote = config_mod.parse(with_servers(tree="root@boot-b:/"))
    assert Lab(session.make_context(remote, prefix=tmp_path / "stage", state_dir=tmp_path / "state",
                                    runner=FakeRunner(), version="current")).replica_labs() == []


def test_a_preview_runs_rsync_dry_run_only_and_writes_nothing(tmp_path):
    cfg = config_mod.parse(with_servers(tree=str(tmp_path / "b")))
    runner = FakeRunner(dry_run=True, answers={"rsync": (0, "Number of regular files transferred: 3\n"
                                                             "Total transferred file size: 7 bytes\n", "")})
    ctx = session.make_context(cfg, prefix=tmp_path / "stage", state_dir=tmp_path / "state", runner=runner,
                               dry_run=True, version="current")
    ctx.state.set_version(1, path="/srv/nfsroot/lab", status="ready", kernel="6.12",
                          kernel_path="/lab/vmlinuz-6.12", initrd_path="/lab/initrd.img-6.12")
    ctx.state.set_current(1)
    ctx.state.set_step("kernel-to-tftp", status="done", outputs={"kernel_path": "/lab/vmlinuz-6.12",
                                                                "initrd_path": "/lab/initrd.img-6.12"})
    [row] = replicas.sync(ctx, preview=True)
    rsyncs = [argv for argv in runner.executed if argv[0] == "rsync"]
    assert len(rsyncs) == 3 and all(argv[1] == "--dry-run" for argv in rsyncs)
    assert rsyncs[0][2] == "-aH"   # no -A -X in a dry-run (see sync_one)
    assert (row["files"], row["bytes"]) == (9, 21)
    assert not (tmp_path / "state/replicas").exists() and ctx.state.replicas() == {}
    assert not (tmp_path / "state/state.json").exists()


@pytest.mark.parametrize("layout", ['"per-node"', '"seed"\ninit = "sysvinit"'])
def test_replicas_refuse_a_layout_with_writable_nfs_directories(layout):
    text = with_servers(LAB.replace('layout = "tmpfs"', f"layout = {layout}", 1))
    assert "lives on one server" in problems(text)["root.layout"]
