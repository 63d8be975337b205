"""Root versions without builds (issue 10): which version a run builds, the
state's record, exports and menus per version, switch/pins, prune's refusals."""
from __future__ import annotations

import pytest

from nfsroot_builder import session, versions
from nfsroot_builder.errors import NfsrootError, UsageError
from nfsroot_builder.render import Served, base_root_path
from nfsroot_builder.render.server import export_id, exports, ganesha_exports
from nfsroot_builder.state import State

from fakes import FakeRunner


def ready(state: State, vid: int, cfg, current=True, **extra) -> None:
    state.set_version(vid, path=versions.path_of(cfg.root.path, vid), status="ready", created="t",
                      digest=versions.root_digest(cfg), identity=versions.bootstrap_identity(cfg),
                      clone_from=None, tftp_dir=versions.tftp_dir_of(cfg.name, vid), kernel="6.1",
                      kernel_path=f"/{versions.tftp_dir_of(cfg.name, vid)}/vmlinuz-6.1",
                      initrd_path=f"/{versions.tftp_dir_of(cfg.name, vid)}/initrd.img-6.1", **extra)
    if current:
        state.set_current(vid)


def changed(cfg, **root):
    return cfg.model_copy(update={"root": cfg.root.model_copy(update=root)})


def test_paths_of_versions_and_the_base_path(lab_config):
    base = lab_config.root.path
    assert versions.path_of(base, 1) == base
    assert versions.path_of(base, 7) == f"{base}.v7"
    assert base_root_path(f"{base}.v7") == base and base_root_path(base) == base
    assert versions.parse_id("v3") == 3 == versions.parse_id("3")
    with pytest.raises(UsageError, match="not a version"):
        versions.parse_id("current")


def test_first_build_is_v1_at_root_path(tmp_path, lab_config):
    t = versions.target(lab_config, State(tmp_path / "s.json"))
    assert (t.vid, t.path, t.new, t.clone_from) == (1, lab_config.root.path, True, None)


def test_same_config_targets_the_current_version(tmp_path, lab_config):
    st = State(tmp_path / "s.json")
    ready(st, 1, lab_config)
    t = versions.target(lab_config, st)
    assert (t.vid, t.new) == (1, False)


def test_a_package_change_clones_and_a_suite_change_bootstraps(tmp_path, lab_config):
    st = State(tmp_path / "s.json")
    ready(st, 1, lab_config)
    t = versions.target(changed(lab_config, packages=["hello"]), st)
    assert (t.vid, t.path, t.new, t.clone_from) == (2, lab_config.root.path + ".v2", True, 1)
    t = versions.target(changed(lab_config, suite="bookworm"), st)
    assert (t.vid, t.clone_from) == (2, None)


def test_an_unfinished_build_of_the_same_config_is_resumed(tmp_path, lab_config):
    st = State(tmp_path / "s.json")
    ready(st, 1, lab_config)
    new = changed(lab_config, packages=["hello"])
    t = versions.target(new, st)
    versions.begin(new, st, t, "t2")
    assert st.versions()[2]["status"] == "building" and st.current_version() == 1
    again = versions.target(new, st)
    assert (again.vid, again.new, again.clone_from) == (2, False, 1)
    # Another change meanwhile: a new number, the half-made v2 is not reused.
    assert versions.target(changed(lab_config, packages=["less"]), st).vid == 3


def test_state_keeps_current_previous_and_pins_across_save(tmp_path, lab_config):
    st = State(tmp_path / "s.json")
    ready(st, 1, lab_config)
    ready(st, 2, lab_config)
    st.set_pins({"lab2": 1})
    st.save()
    again = State.load(tmp_path / "s.json")
    assert (again.current_version(), again.previous_version(), again.pins()) == (2, 1, {"lab2": 1})
    assert sorted(again.versions()) == [1, 2]
    again.drop_version(1)
    assert again.pins() == {} and again.previous_version() is None


def test_export_ids_never_move_when_a_version_goes(lab_config):
    served = Served("/")
    both = ganesha_exports(lab_config, served, [(1, lab_config.root.path), (2, lab_config.root.path + ".v2")])
    only2 = ganesha_exports(lab_config, served, [(2, lab_config.root.path + ".v2")])
    assert "Export_Id = 100;" in both and f"Export_Id = {export_id(2, 0)};" in both
    assert f"Export_Id = {export_id(2, 0)};" in only2 and "Export_Id = 100;" not in only2
    k = exports(lab_config, served, [(1, lab_config.root.path), (3, lab_config.root.path + ".v3")])
    assert f"\n{lab_config.root.path} " in k and f"\n{lab_config.root.path}.v3 " in k
    # Without versions: 0.1's file, byte for byte.
    assert exports(lab_config, served) == exports(lab_config, served, [(1, lab_config.root.path)])


def ctx_with(tmp_path, cfg, version="build"):
    return session.make_context(cfg, prefix=tmp_path / "p", runner=FakeRunner(), emit=lambda s: None,
                                version=version)


def test_context_root_follows_the_target_and_menus_follow_pins(tmp_path, lab_config):
    ctx = ctx_with(tmp_path, lab_config)
    ready(ctx.state, 1, lab_config)
    ctx.state.save()
    new = changed(lab_config, packages=["hello"])
    ctx2 = ctx_with(tmp_path, new)
    assert ctx2.version_id == 2 and str(ctx2.root).endswith(".v2")
    assert ctx2.base_config.root.path == lab_config.root.path
    # Before v2 is ready no node may be pinned to... v1 while v2 builds: menus
    # of this run name v2 for unpinned nodes and v1 for the pinned one.
    ctx2.state.set_pins({lab_config.nodes[-1].name: 1})
    # v2's kernel is not published yet (`run node-menus` right after the
    # config change): every node stays on the current version.
    assert [vid for _c, _n, vid in versions.node_groups(ctx2)] == [1]
    ctx2.state.set_step("kernel-to-tftp", outputs={"kernel_path": f"/{versions.tftp_dir_of(lab_config.name, 2)}/k"})
    groups = versions.node_groups(ctx2)
    assert [(vid, [n.name for n in nodes]) for _c, nodes, vid in groups] == \
        [(2, [n.name for n in lab_config.nodes[:-1]]), (1, [lab_config.nodes[-1].name])]
    assert groups[1][0].root.path == lab_config.root.path


def test_switch_refuses_unfinished_and_unknown(tmp_path, lab_config):
    ctx = ctx_with(tmp_path, lab_config, version="current")
    ready(ctx.state, 1, lab_config)
    ctx.state.set_version(2, path="/x.v2", status="building")
    with pytest.raises(UsageError, match="building"):
        versions.switch(ctx, 2, [])
    with pytest.raises(UsageError, match="no root version v9"):
        versions.switch(ctx, 9, [])
    ready(ctx.state, 3, lab_config, current=False)
    with pytest.raises(UsageError, match="no node named zz"):
        versions.switch(ctx, 3, ["zz"])
    versions.switch(ctx, 3, [lab_config.nodes[0].name])
    assert ctx.state.pins() == {lab_config.nodes[0].name: 3} and ctx.state.current_version() == 1
    versions.switch(ctx, 3, [])
    assert ctx.state.pins() == {} and (ctx.state.current_version(), ctx.state.previous_version()) == (3, 1)


def test_prune_never_removes_current_previous_pinned_or_mounted(tmp_path, lab_config, monkeypatch):
    ctx = ctx_with(tmp_path, lab_config, version="current")
    for vid in (1, 2, 3, 4, 5):
        ready(ctx.state, vid, lab_config)
    ctx.state.set_pins({lab_config.nodes[0].name: 2})
    v3 = ctx.served.path(ctx.state.versions()[3]["path"])
    monkeypatch.setattr(versions, "nfs_clients", lambda c: {v3: ["192.168.0.102"]})
    removed, kept, refused = versions.prune(ctx, keep=1)
    assert removed == [1]
    assert dict(kept) == {5: "it is current", 4: "it is the previous version (`root rollback` goes back to it)"}
    assert dict(refused) == {2: f"node(s) {lab_config.nodes[0].name} are set to it",
                             3: "NFS client(s) 192.168.0.102 have it mounted"}
    assert sorted(ctx.state.versions()) == [2, 3, 4, 5]


def test_finish_run_makes_current_only_a_verified_full_run(tmp_path, lab_config):
    ctx = ctx_with(tmp_path, lab_config)
    full = [("initramfs", "changed"), ("kernel-to-tftp", "changed"), ("node-menus", "changed")]
    assert versions.finish_run(ctx, full[:1]) is None
    assert ctx.state.versions()[1]["status"] == "building"
    ctx.state.set_step("kernel-to-tftp", outputs={"kernel": "6.1"})
    with pytest.raises(NfsrootError, match="vmlinuz-6.1 is missing"):
        versions.finish_run(ctx, full)
    assert ctx.state.versions()[1]["status"] == "failed" and ctx.state.current_version() is None
    boot = ctx.root / "boot"
    boot.mkdir(parents=True)
    (boot / "vmlinuz-6.1").write_text("k")
    (boot / "initrd.img-6.1").write_text("i")
    ctx.state.set_version(1, status="building")
    assert versions.finish_run(ctx, full) == "version v1 is current"
    assert ctx.state.current_version() == 1


def test_a_0_1_state_is_adopted_as_v1_in_place(tmp_path, lab_config):
    root = tmp_path / "p" / lab_config.root.path.lstrip("/")
    (root / "etc/nfsroot-build").mkdir(parents=True)
    (root / "etc/nfsroot-build/bootstrap.json").write_text("{}")
    st = State(tmp_path / "s.json")
    st.set_step("kernel-to-tftp", status="done", outputs={"kernel": "6.1", "kernel_path": "/lab/vmlinuz-6.1",
                                                          "initrd_path": "/lab/initrd.img-6.1"})
    assert versions.adopt_legacy(lab_config, st, root, "t")
    rec = st.versions()[1]
    assert rec["path"] == lab_config.root.path and rec["adopted"] and st.current_version() == 1
    assert not versions.adopt_legacy(lab_config, st, root, "t")   # once


@pytest.fixture
def lab_config():
    from nfsroot_builder import config as config_mod

    from helpers import example_text
    return config_mod.parse(example_text("lab"))


def test_nfs_clients_from_rmtab_and_nfsd_clients(tmp_path, lab_config, monkeypatch):
    rmtab = tmp_path / "rmtab"
    rmtab.write_text("192.168.0.102:/srv/nfsroot/lab.v2:0x00000001\n")
    clients = tmp_path / "clients"
    (clients / "7").mkdir(parents=True)
    (clients / "7/info").write_text('clientid: 0x1\naddress: "192.168.0.103:811"\nname: "Linux NFSv4.2 n3"\n')
    monkeypatch.setattr(versions, "RMTAB", rmtab)
    monkeypatch.setattr(versions, "NFSD_CLIENTS", clients)
    ctx = ctx_with(tmp_path, lab_config.model_copy(update={"nfs": lab_config.nfs.model_copy(
        update={"server": "kernel"})}), version="current")
    assert versions.nfs_clients(ctx) == {"/srv/nfsroot/lab.v2": ["192.168.0.102"], "*": ["192.168.0.103"]}


def test_prune_names_connected_clients_it_cannot_place(tmp_path, lab_config, monkeypatch):
    ctx = ctx_with(tmp_path, lab_config, version="current")
    for vid in (1, 2, 3):
        ready(ctx.state, vid, lab_config)
    monkeypatch.setattr(versions, "nfs_clients", lambda c: {"*": ["192.168.0.101"]})
    removed, _kept, refused = versions.prune(ctx, keep=1)
    assert removed == [] and refused == [
        (1, "NFS client(s) 192.168.0.101 are connected and the server does not say what they mount")]


# What `dbus-send --print-reply` prints for Ganesha's ShowClients: a timestamp,
# then one struct per client (its address IPv4-mapped) with its counters.
SHOW_CLIENTS_REPLY = """method return time=1796004300.1 sender=:1.0 -> destination=:1.3 serial=12 reply_serial=2
   struct {
      uint64 1796004300
      uint64 113000000
   }
   array [
      struct {
         string "::ffff:192.168.0.101"
         boolean true
         boolean false
         boolean true
         uint64 1796004290
      }
   ]
"""


def test_ganesha_clients_are_asked_on_the_labs_bus(tmp_path, lab_config, monkeypatch):
    monkeypatch.setattr(versions, "RMTAB", tmp_path / "no-rmtab")
    monkeypatch.setattr(versions, "NFSD_CLIENTS", tmp_path / "no-nfsd")
    monkeypatch.setattr(versions.shutil, "which", lambda name: f"/usr/bin/{name}")
    ctx = ctx_with(tmp_path, lab_config, version="current")
    seen = []

    def execute(argv, input, env, cwd, *_rest):
        seen.append((list(argv), env, cwd))
        return 0, SHOW_CLIENTS_REPLY, ""
    monkeypatch.setattr(ctx.runner, "_execute", execute)
    # A staged tree without the lab up: nobody serves it, nobody is asked.
    assert versions.nfs_clients(ctx) == {} and seen == []
    bus = ctx.state_dir / versions.LAB_SYSTEM_BUS
    bus.parent.mkdir(parents=True)
    bus.touch()
    assert versions.nfs_clients(ctx) == {"*": ["192.168.0.101"]}
    # Relative to its directory: libdbus refuses socket paths over 99 bytes.
    assert seen == [(versions.GANESHA_SHOW_CLIENTS, {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=system_bus_socket"},
                     bus.parent)]


def test_the_hosts_ganesha_is_asked_on_the_system_bus(tmp_path, lab_config, monkeypatch):
    monkeypatch.setattr(versions, "RMTAB", tmp_path / "no-rmtab")
    monkeypatch.setattr(versions, "NFSD_CLIENTS", tmp_path / "no-nfsd")
    monkeypatch.setattr(versions.shutil, "which", lambda name: f"/usr/bin/{name}")
    ctx = session.make_context(lab_config, runner=FakeRunner(), emit=lambda s: None, version="current",
                               state_dir=tmp_path / "state")
    seen = []
    monkeypatch.setattr(ctx.runner, "_execute", lambda argv, input, env, *_: seen.append(env) or
                        (0, SHOW_CLIENTS_REPLY, ""))
    assert versions.nfs_clients(ctx) == {"*": ["192.168.0.101"]} and seen == [None]


def test_a_ganesha_that_cannot_be_asked_keeps_every_version(tmp_path, lab_config, monkeypatch):
    monkeypatch.setattr(versions, "RMTAB", tmp_path / "no-rmtab")
    monkeypatch.setattr(versions, "NFSD_CLIENTS", tmp_path / "no-nfsd")
    monkeypatch.setattr(versions.shutil, "which", lambda name: f"/usr/bin/{name}")
    ctx = ctx_with(tmp_path, lab_config, version="current")
    (ctx.state_dir / versions.LAB_SYSTEM_BUS).parent.mkdir(parents=True)
    (ctx.state_dir / versions.LAB_SYSTEM_BUS).touch()
    monkeypatch.setattr(ctx.runner, "_execute", lambda *a: (
        1, "", "Error org.freedesktop.DBus.Error.ServiceUnknown: The name org.ganesha.nfsd was not provided"))
    with pytest.raises(versions.ServerNotAsked, match="ServiceUnknown"):
        versions.nfs_clients(ctx)
    for vid in (1, 2, 3):
        ready(ctx.state, vid, lab_config)
    removed, _kept, refused = versions.prune(ctx, keep=1)
    assert removed == [] and [vid for vid, _ in refused] == [1]
    assert refused[0][1].startswith("the NFS server could not be asked which clients mount it: ")
