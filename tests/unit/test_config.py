"""Every validation error names its field; all errors come at once."""
from __future__ import annotations

import pytest

from nfsroot_builder import config as config_mod
from nfsroot_builder.config import export_client_problem
from nfsroot_builder.errors import ConfigError


def problems(text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as exc:
        config_mod.parse(text)
    assert exc.value.exit_code == 2
    return dict(exc.value.problems)


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_seed_example_is_valid(seed_config):
    assert [n.name for n in seed_config.nodes] == ["ssi1", "ssi2", "ssi3", "ssi4"]
    assert seed_config.root.path == "/NFSROOT/kerrighed"
    assert seed_config.root.suite == "sid"
    assert seed_config.network.subnet == "192.168.0.0/24"
    assert seed_config.nfs_clients == "192.168.0.0/24"


def test_lab_example_is_valid():
    from helpers import example_text
    cfg = config_mod.parse(example_text("lab"))
    assert cfg.nfs.server == "ganesha" and len(cfg.nodes) == 2


CASES = [
    # (old, new, field, words in the message)
    ('interface = "eth0"', 'interface = "eth0"\ncolour = "blue"', "server.colour", "unknown key"),
    ('address = "192.168.0.1"', 'address = 17', "server.address", "string"),
    ('mac = "52:54:00:00:00:04"', 'mac = "52:54:00:00:00:zz"', "node[3].mac", "MAC"),
    ('ip = "192.168.0.103"', 'ip = "192.168.0.300"', "node[2].ip", "IPv4"),
    ('ip = "192.168.0.103"', 'ip = "10.0.0.3"', "node[2].ip", "not in network.subnet"),
    ('ip = "192.168.0.103"', 'ip = "192.168.0.1"', "node[2].ip", "server's own address"),
    ('ip = "192.168.0.103"', 'ip = "192.168.0.101"', "node[2].ip", "duplicate ip"),
    ('mac = "52:54:00:00:00:04"', 'mac = "52:54:00:00:00:01"', "node[3].mac", "duplicate mac"),
    ('name = "ssi4"', 'name = "ssi1"', "node[3].name", "duplicate name"),
    ('name = "ssi4"', 'name = "../x"', "node[3].name", "RFC 1123"),
    ('name = "ssi4"', 'name = "SSI_4"', "node[3].name", "RFC 1123"),
    ('path = "/NFSROOT/kerrighed"', 'path = "NFSROOT/kerrighed"', "root.path", "absolute"),
    ('path = "/NFSROOT/kerrighed"', 'path = "/NFSROOT/../etc"', "root.path", ".."),
    ('root = "/srv/tftp"', 'root = "srv/tftp"', "tftp.root", "absolute"),
    ('clients = ""', 'clients = "192.168.1.*"', "nfs.clients", "wildcards are not allowed in IP"),
    ('clients = ""', 'clients = "192.168.1.0/24 (ro)"', "nfs.clients", "space"),
    ('bootstrapper = "debootstrap"', 'bootstrapper = "cdebootstrap"', "root.bootstrapper", "cdebootstrap"),
    ('loader = "grub"', 'loader = "pxelinux-9"', "boot.loader", "pxelinux-9"),
    ('subnet = "192.168.0.0/24"', 'subnet = "192.168.0.7/24"', "network.subnet", "host bits"),
    ('password_hash = "!"', 'password_hash = "hunter2"', "root.password_hash", "crypt(5)"),
    ('packages = ["openssh-server"', 'packages = ["Open SSH"', "root.packages", "package name"),
    ('kernel_args = ["console=ttyS0,115200n8"', 'kernel_args = ["quiet; reboot"', "boot.kernel_args", "safe"),
    ('suite = "sid"', 'suite = "Sid Vicious"', "root.suite", "suite"),
]


@pytest.mark.parametrize("old,new,field,words", CASES, ids=[c[2] + ":" + c[3] for c in CASES])
def test_error_names_field(seed_text, old, new, field, words):
    got = problems(edit(seed_text, old, new))
    assert field in got, got
    assert words.lower() in got[field].lower()


def test_all_errors_reported_at_once(seed_text):
    text = edit(seed_text, 'mac = "52:54:00:00:00:04"', 'mac = "nope"')
    text = edit(text, 'path = "/NFSROOT/kerrighed"', 'path = "relative"')
    got = problems(text)
    assert {"node[3].mac", "root.path"} <= set(got)


def test_error_message_lists_fields(seed_text):
    with pytest.raises(ConfigError) as exc:
        config_mod.parse(edit(seed_text, 'mac = "52:54:00:00:00:04"', 'mac = "nope"'), "c.toml")
    assert "c.toml" in str(exc.value) and "node[3].mac" in str(exc.value)


@pytest.mark.parametrize("text,words", [("", "empty"), ("   \n", "empty"), ("[server\n", "not valid TOML")])
def test_broken_files(text, words):
    assert words in problems(text)["(file)"]


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError) as exc:
        config_mod.load(tmp_path / "missing.toml")
    assert "cannot be read" in str(exc.value)


def test_mac_normalised(seed_text):
    cfg = config_mod.parse(edit(seed_text, 'mac = "52:54:00:00:00:04"', 'mac = "52-54-00-00-00-AB"'))
    assert cfg.nodes[3].mac == "52:54:00:00:00:ab"


def test_seed_layout_needs_sysvinit(seed_text):
    got = problems(edit(seed_text, 'layout = "tmpfs"', 'layout = "seed"'))
    assert "sysvinit" in got["root"]


@pytest.mark.parametrize("spec,ok", [
    ("*", True), ("192.168.1.0/24", True), ("192.168.1.0/255.255.255.0", True), ("10.0.0.5", True),
    ("*.cluster.home", True), ("node?.home", True), ("@nodes", True),
    ("192.168.1.*", False), ("192.168.*.0/24", False), ("host (ro)", False), ("300.1.1.1", False),
    ("10.0.0.0/33", False), ("a;b", False),
])
def test_export_client_specs(spec, ok):
    assert (export_client_problem(spec) is None) == ok
