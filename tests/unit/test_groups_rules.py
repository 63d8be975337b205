"""Node groups (issue 11 point 1, docs/groups.md): the config rules, which
roots exist, what DHCP, the exports and the menus give each group's nodes,
and which root a run or `run STEP --group` works on."""
from __future__ import annotations

import pytest

from nfsroot_builder import config as config_mod
from nfsroot_builder import groups, session, versions
from nfsroot_builder.errors import ConfigError, UsageError
from nfsroot_builder.pipeline import Pipeline
from nfsroot_builder.render.server import dhcpd_block, ganesha_exports, group_export_ids
from nfsroot_builder.steps import STEPS
from nfsroot_builder.steps.nfs import group_paths
from nfsroot_builder.steps.node_menus import node_menu_files

from fakes import FakeRunner
from helpers import example_text

GROUPS = """
[[group]]
name = "compute"

[[group]]
name = "login"
root.packages = ["iproute2", "less"]
boot.kernel_args = ["console=ttyS0,115200n8", "nrb.group=login"]

"""


def lab_with(groups_text: str = GROUPS, n1: str = "compute", n2: str = "login") -> str:
    text = example_text("lab").replace("[[node]]", groups_text + "[[node]]", 1)
    text = text.replace('name = "lab1"\n', f'name = "lab1"\ngroup = "{n1}"\n' if n1 else 'name = "lab1"\n')
    return text.replace('name = "lab2"\n', f'name = "lab2"\ngroup = "{n2}"\n' if n2 else 'name = "lab2"\n')


def problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as e:
        config_mod.parse(text)
    return e.value.problems


def ctx_for(cfg, tmp_path):
    return session.make_context(cfg, prefix=tmp_path / "stage", state_dir=tmp_path / "state", dry_run=True,
                                runner=FakeRunner(), emit=lambda line: None)


# -- config ---------------------------------------------------------------------
def test_a_group_that_sets_no_root_key_shares_the_default_root():
    cfg = config_mod.parse(lab_with())
    assert cfg.group_root("compute") is cfg.root
    assert [n.name for n in groups.default_nodes(cfg)] == ["lab1"]


def test_a_group_with_root_keys_gets_its_own_root_beside_the_default():
    cfg = config_mod.parse(lab_with())
    login = cfg.group_root("login")
    assert login.path == cfg.root.path + "-login"
    assert login.packages == ["iproute2", "less"]
    # The keys it does not set come from [root].
    assert (login.suite, login.password_hash, login.layout) == (cfg.root.suite, cfg.root.password_hash, "tmpfs")
    assert cfg.group_boot("login").kernel_args == ["console=ttyS0,115200n8", "nrb.group=login"]
    assert cfg.group_boot("compute") == cfg.boot
    (gr,) = groups.group_roots(cfg)
    assert (gr.key, gr.groups, gr.config.name) == ("srv-nfsroot-lab-login", ("login",), "lab-srv-nfsroot-lab-login")


def test_an_unknown_group_names_the_node():
    assert ("node[1].group", "no [[group]] named 'logn' (groups: compute, login)") in problems(lab_with(n2="logn"))


def test_an_unknown_group_comes_with_the_field_errors():
    found = problems(lab_with(n2="logn").replace('mac = "52:54:00:12:34:01"', 'mac = "zz"'))
    assert {f for f, _ in found} >= {"node[0].mac", "node[1].group"}


def test_a_group_name_twice_is_refused():
    twice = GROUPS + '[[group]]\nname = "compute"\n\n'
    assert problems(lab_with(twice))[0] == ("group[2].name", "duplicate group name 'compute' (also group[0])")


def test_two_groups_on_one_path_need_one_root_config():
    same = GROUPS + '[[group]]\nname = "login2"\nroot.path = "/srv/nfsroot/lab-login"\nroot.packages = ["tree"]\n\n'
    (found,) = problems(lab_with(same))
    assert found[0] == "group[2].root.path" and "also the root of group 'login'" in found[1]


def test_a_root_shared_by_groups_is_built_once():
    same = GROUPS + ('[[group]]\nname = "login2"\nroot.path = "/srv/nfsroot/lab-login"\n'
                     'root.packages = ["iproute2", "less"]\n\n')
    cfg = config_mod.parse(lab_with(same))
    (gr,) = groups.group_roots(cfg)
    assert gr.groups == ("login", "login2")


def test_a_group_root_on_the_default_path_must_be_the_default_root():
    other = '[[group]]\nname = "x"\nroot.path = "/srv/nfsroot/lab"\nroot.packages = ["tree"]\n\n'
    (found,) = problems(lab_with(other, n1="x", n2=""))
    assert found[0] == "group[0].root.path" and "also the root of [root]" in found[1]


def test_group_roots_inside_one_another_or_with_writable_layouts_are_refused():
    inside = '[[group]]\nname = "x"\nroot.path = "/srv/nfsroot/lab/x"\nroot.layout = "per-node"\n\n'
    found = dict(problems(lab_with(inside, n1="x", n2="")))
    assert "inside one another" in found["group[0].root.path"]
    assert "per-node and seed serve the default [root] only" in found["group[0].root.layout"]


def test_a_bad_group_root_key_names_its_field():
    bad = '[[group]]\nname = "x"\nroot.packages = ["Not A Package"]\nboot.kernel_args = ["a b"]\n\n'
    found = dict(problems(lab_with(bad, n1="x", n2="")))
    assert "not a Debian package name" in found["group[0].root.packages"]
    assert "not safe in a boot menu" in found["group[0].boot.kernel_args"]


def test_a_config_without_groups_has_no_group_root():
    cfg = config_mod.parse(example_text("lab"))
    assert groups.group_roots(cfg) == [] and groups.default_nodes(cfg) == cfg.nodes


# -- the server side --------------------------------------------------------------
def test_dhcp_sends_each_group_node_its_root(tmp_path):
    cfg = config_mod.parse(lab_with())
    ctx = ctx_for(cfg, tmp_path)
    paths = groups.node_root_paths(ctx)
    assert paths == {"lab2": "/srv/nfsroot/lab-login"}
    block = dhcpd_block(cfg, ctx.served, paths)
    stage = tmp_path / "stage"
    # A group {} per [[group]]: compute on the default root (no root-path of its
    # own), login with its root's path once in its scope.
    assert ("  group {   # [[group]] compute\n"
            "    host lab1 { hardware ethernet 52:54:00:12:34:01; fixed-address 192.168.0.101; }\n"
            "  }\n"
            "  group {   # [[group]] login\n"
            f'    option root-path "192.168.0.1:{stage}/srv/nfsroot/lab-login";\n'
            "    host lab2 { hardware ethernet 52:54:00:12:34:02; fixed-address 192.168.0.102; }\n"
            "  }\n") in block
    # A canary among the login nodes keeps its own root-path in its host declaration.
    block = dhcpd_block(cfg, ctx.served, {"lab2": "/srv/nfsroot/lab-login.v2"})
    assert ("  group {   # [[group]] login\n"
            f'    option root-path "192.168.0.1:{stage}/srv/nfsroot/lab-login.v2";\n') in block
    cfg.nodes.append(cfg.nodes[1].model_copy(update={"name": "lab3", "mac": "52:54:00:12:34:03",
                                                     "ip": "192.168.0.103"}))
    block = dhcpd_block(cfg, ctx.served, {"lab2": "/srv/nfsroot/lab-login.v2", "lab3": "/srv/nfsroot/lab-login"})
    assert "  group {   # [[group]] login\n    host lab2" in block
    assert f'fixed-address 192.168.0.103; option root-path "192.168.0.1:{stage}/srv/nfsroot/lab-login"; }}' in block


def test_exports_name_each_group_root_read_only(tmp_path):
    cfg = config_mod.parse(lab_with())
    ctx = ctx_for(cfg, tmp_path)
    assert group_paths(ctx) == ["/srv/nfsroot/lab-login"]
    text = ganesha_exports(cfg, ctx.served, versions.export_roots(ctx), group_paths(ctx))
    eid = group_export_ids(["/srv/nfsroot/lab-login"])["/srv/nfsroot/lab-login"]
    assert 40000 <= eid < 65536
    assert f'Export_Id = {eid};\n  Path = "{tmp_path}/stage/srv/nfsroot/lab-login";' in text
    login = text[text.index(f"Export_Id = {eid};"):]
    assert "Access_Type = RO;" in login.split("}")[1]


def test_group_export_ids_do_not_clash():
    paths = [f"/srv/nfsroot/g{i}" for i in range(300)]
    assert len(set(group_export_ids(paths).values())) == 300


def test_menus_give_each_node_its_root_and_its_groups_kernel_arguments(tmp_path):
    cfg = config_mod.parse(lab_with())
    ctx = ctx_for(cfg, tmp_path)
    files = node_menu_files(ctx)
    stage = tmp_path / "stage"
    n1, n2 = files["boot/grub/grub.cfg-01-52-54-00-12-34-01"], files["boot/grub/grub.cfg-01-52-54-00-12-34-02"]
    assert f"nfsroot=192.168.0.1:{stage}/srv/nfsroot/lab,tcp,v3" in n1 and "nrb.group" not in n1
    assert f"nfsroot=192.168.0.1:{stage}/srv/nfsroot/lab-login,tcp,v3" in n2
    assert n2.split("linux ", 1)[1].splitlines()[0].endswith("console=ttyS0,115200n8 nrb.group=login")


def test_a_group_on_the_default_root_with_its_own_kernel_arguments(tmp_path):
    text = GROUPS.replace('name = "compute"\n', 'name = "compute"\nboot.kernel_args = ["quiet"]\n')
    cfg = config_mod.parse(lab_with(text))
    files = node_menu_files(ctx_for(cfg, tmp_path))
    n1 = files["boot/grub/grub.cfg-01-52-54-00-12-34-01"]
    assert f"nfsroot=192.168.0.1:{tmp_path}/stage/srv/nfsroot/lab,tcp,v3" in n1 and n1.count(" quiet\n") == 1


# -- the pipeline -----------------------------------------------------------------
def test_run_addresses_one_root():
    cfg = config_mod.parse(lab_with())
    (gr,) = groups.group_roots(cfg)
    t = groups.run_targets(cfg, "login", None, None, "bootstrap")
    assert t.group_roots == [(gr, (None, None, "bootstrap"))] and not t.main
    # A group on the default root: the build's own step.
    assert groups.run_targets(cfg, "compute", None, None, "bootstrap") == groups.Targets([], True)
    assert groups.run_targets(cfg, None, None, None, "bootstrap") == groups.Targets([], True)
    with pytest.raises(UsageError, match="not a root step"):
        groups.run_targets(cfg, "login", None, None, "dhcp-server")
    with pytest.raises(UsageError, match="no \\[\\[group\\]\\] of that name"):
        groups.run_targets(cfg, "nope", None, None, "bootstrap")


def test_all_runs_the_group_roots_part_of_its_range():
    cfg = config_mod.parse(lab_with())
    (gr,) = groups.group_roots(cfg)
    assert groups.run_targets(cfg, None, None, None, None).group_roots == [(gr, (None, None, None))]
    assert groups.run_targets(cfg, None, "root-packages", "node-menus", None).group_roots == \
        [(gr, ("root-packages", None, None))]
    assert groups.run_targets(cfg, None, "node-menus", None, None).group_roots == []
    assert groups.run_targets(cfg, None, None, "dhcp-server", None).group_roots == []
    assert set(groups.ROOT_STEPS) <= {s.name for s in STEPS}


def test_editing_one_groups_packages_reruns_only_its_root(tmp_path):
    """The default root's steps keep their fingerprints; the login root's
    change, and it is a new version in its own series."""
    before, after = config_mod.parse(lab_with()), config_mod.parse(lab_with().replace('"less"]', '"less", "tree"]'))
    prints = {}
    for name, cfg in (("before", before), ("after", after)):
        ctx = ctx_for(cfg, tmp_path / name)
        main = Pipeline(ctx, STEPS)
        (gr,) = groups.group_roots(cfg)
        sub = groups.context(ctx, gr, dry_run=True)
        sub_pipe = Pipeline(sub, [s for s in STEPS if s.name in groups.ROOT_STEPS])
        prints[name] = ({s.name: main.fingerprint(s)[0] for s in main.steps if s.name in groups.ROOT_STEPS},
                        {s.name: sub_pipe.fingerprint(s)[0] for s in sub_pipe.steps},
                        versions.root_digest(ctx.config), versions.root_digest(sub.config))
        assert sub.state_dir == tmp_path / name / "state/roots/srv-nfsroot-lab-login"
    assert prints["before"][0] == prints["after"][0]
    assert prints["before"][2] == prints["after"][2]
    assert prints["before"][1]["root-packages"] != prints["after"][1]["root-packages"]
    assert prints["before"][3] != prints["after"][3]


def _ready_default_root(ctx) -> None:
    ctx.state.set_version(1, path=ctx.config.root.path, status="ready", created="t", digest="d",
                          identity=versions.bootstrap_identity(ctx.config), clone_from=None, tftp_dir="lab")
    ctx.state.set_current(1)


def test_a_group_root_that_only_adds_starts_as_a_copy_of_the_default_root(tmp_path):
    cfg = config_mod.parse(lab_with())
    ctx = ctx_for(cfg, tmp_path)
    (gr,) = groups.group_roots(cfg)
    assert groups.seed(ctx, gr) is None   # no default root built yet: bootstrapped
    _ready_default_root(ctx)
    assert groups.seed(ctx, gr) == "/srv/nfsroot/lab"
    sub = groups.context(ctx, gr, dry_run=True)
    assert sub.state.versions()[1]["clone_path"] == "/srv/nfsroot/lab"
    assert versions.clone_source(sub) == tmp_path / "stage/srv/nfsroot/lab"


@pytest.mark.parametrize("login_root", [
    'root.packages = ["less"]',                           # drops [root]'s iproute2: a copy would keep it
    'root.packages = ["iproute2", "less"]\nroot.suite = "bookworm"',   # another bootstrap
    'root.packages = ["iproute2", "less"]\nroot.init = "sysvinit"',
])
def test_a_group_root_that_takes_away_is_bootstrapped(tmp_path, login_root):
    text = lab_with(GROUPS.replace('root.packages = ["iproute2", "less"]', login_root))
    cfg = config_mod.parse(text.replace("packages = []", 'packages = ["iproute2"]', 1))
    ctx = ctx_for(cfg, tmp_path)
    _ready_default_root(ctx)
    (gr,) = groups.group_roots(cfg)
    assert groups.seed(ctx, gr) is None
    assert versions.clone_source(groups.context(ctx, gr, dry_run=True)) is None


def test_kea_and_dnsmasq_send_each_group_node_its_root(tmp_path):
    from nfsroot_builder.render.server import dnsmasq_dropin, kea_config, kea_json
    cfg = config_mod.parse(lab_with())
    ctx = ctx_for(cfg, tmp_path)
    login = f"192.168.0.1:{tmp_path}/stage/srv/nfsroot/lab-login"
    kea = kea_json(kea_config(cfg, ctx.served, groups.node_root_paths(ctx)))
    res = {r["hostname"]: r for r in kea["Dhcp4"]["subnet4"][0]["reservations"]}
    assert res["lab2"]["option-data"] == [{"name": "root-path", "data": login, "always-send": True}]
    assert "option-data" not in res["lab1"]
    dropin = dnsmasq_dropin(cfg.model_copy(update={"dhcp": cfg.dhcp.model_copy(update={"server": "dnsmasq"})}),
                            ctx.served, groups.node_root_paths(ctx))
    assert "dhcp-host=52:54:00:12:34:02,set:nrb-lab-root1,192.168.0.102,lab2" in dropin
    assert f'dhcp-option=tag:nrb-lab-root1,option:root-path,"{login}"' in dropin


def test_two_group_roots_with_one_state_directory_name_are_refused():
    two = ('[[group]]\nname = "a"\nroot.path = "/srv/nfsroot/Login"\n\n'
           '[[group]]\nname = "b"\nroot.path = "/srv/nfsroot/login"\n\n')
    (found,) = problems(lab_with(two, n1="a", n2="b"))
    assert found[0] == "group[1].root.path" and "same state directory name 'srv-nfsroot-login'" in found[1]


def test_a_group_root_in_image_mode_needs_the_http_transport():
    """root.serve per group (tests/unit/test_groups_serve_rules.py), but the
    image comes from nginx, which only boot.transport = "http" configures."""
    text = lab_with(GROUPS.replace('root.packages = ["iproute2", "less"]',
                                   'root.packages = ["iproute2", "less"]\nroot.serve = "image"'))
    got = dict(problems(text))   # the lab example: boot.transport "tftp" (the default)
    assert 'set boot.transport = "http"' in got["group[1].root.serve"], got


def test_replicated_servers_with_a_group_root_of_its_own_are_accepted():
    # sync copies the group roots' versions too (replicas.series).
    text = lab_with() + ('\n[dhcp]\nserver = "kea"\n\n[[servers]]\nname = "b"\naddress = "192.168.0.2"\n'
                         'tree = "/srv/replica-b"\n')
    assert config_mod.parse(text).servers[0].name == "b"
