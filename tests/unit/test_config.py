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


NEW_CASES = [
    # Issue 9 point 4: group MACs, a node on the router's address.
    ('mac = "52:54:00:00:00:04"', 'mac = "ff:ff:ff:ff:ff:ff"', "node[3].mac", "broadcast"),
    ('mac = "52:54:00:00:00:04"', 'mac = "01:00:5e:00:00:fb"', "node[3].mac", "multicast"),
    ('mac = "52:54:00:00:00:04"', 'mac = "53:54:00:00:00:04"', "node[3].mac", "first octet odd"),
    ('mac = "52:54:00:00:00:04"', 'mac = "00:00:00:00:00:00"', "node[3].mac", "not a NIC"),
    # Point 22: the server on the subnet's network/broadcast address, reserved node names, strict types.
    ('address = "192.168.0.1"', 'address = "192.168.0.255"', "server.address", "broadcast address"),
    ('address = "192.168.0.1"', 'address = "192.168.0.0"', "server.address", "network or broadcast"),
    ('name = "ssi4"', 'name = "localhost"', "node[3].name", "/etc/hosts"),
    ('name = "ssi4"', 'name = "server"', "node[3].name", "/etc/hosts"),
    ('timeout = 1', 'timeout = "1"', "boot.timeout", "valid integer (got '1')"),
    ('timeout = 1', 'timeout = 1.0', "boot.timeout", "integer"),
    ('timeout = 1', 'timeout = true', "boot.timeout", "integer"),
    ('clients = ""', 'clients = 24', "nfs.clients", "valid string (got 24)"),
    ('components = ["main"]', 'components = "main"', "root.components", "valid list"),
    # Point 16: system directories as root or TFTP root, and overlaps.
    ('path = "/NFSROOT/kerrighed"', 'path = "/"', "root.path", "system directory"),
    ('path = "/NFSROOT/kerrighed"', 'path = "/etc"', "root.path", "system directory"),
    ('path = "/NFSROOT/kerrighed"', 'path = "/etc/"', "root.path", "system directory"),
    ('path = "/NFSROOT/kerrighed"', 'path = "//var"', "root.path", "system directory"),
    ('path = "/NFSROOT/kerrighed"', 'path = "/srv"', "root.path", "system directory"),
    ('path = "/NFSROOT/kerrighed"', 'path = "/home"', "root.path", "system directory"),
    ('path = "/NFSROOT/kerrighed"', 'path = "/var/lib"', "root.path", "system directory"),
    ('path = "/NFSROOT/kerrighed"', 'path = "/usr/local/root"', "root.path", "inside /usr"),
    ('path = "/NFSROOT/kerrighed"', 'path = "/proc/1/root"', "root.path", "inside /proc"),
    ('path = "/NFSROOT/kerrighed"', 'path = "/lib64/x"', "root.path", "inside /lib64"),
    ('path = "/NFSROOT/kerrighed"', 'path = "/var/lib/nfsroot-build"', "root.path", "system directory"),
    ('root = "/srv/tftp"', 'root = "/"', "tftp.root", "system directory"),
    ('root = "/srv/tftp"', 'root = "/etc"', "tftp.root", "system directory"),
    ('root = "/srv/tftp"', 'root = "/boot/tftp"', "tftp.root", "inside /boot"),
    ('path = "/NFSROOT/kerrighed"', 'path = "/srv/tftp"', "root.path", "same directory as tftp.root"),
    ('path = "/NFSROOT/kerrighed"', 'path = "/srv/tftp/root"', "root.path", "inside tftp.root"),
    ('root = "/srv/tftp"', 'root = "/NFSROOT/kerrighed/boot"', "root.path", "rebuilding the root would remove it"),
]


@pytest.mark.parametrize("old,new,field,words", CASES + NEW_CASES,
                         ids=[c[2] + ":" + c[1] for c in CASES + NEW_CASES])
def test_error_names_field(seed_text, old, new, field, words):
    got = problems(edit(seed_text, old, new))
    assert field in got, got
    assert words.lower() in got[field].lower(), got[field]


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



@pytest.mark.parametrize("path", ["/srv/nfsroot/trixie", "/NFSROOT/kerrighed", "/srv/tftp-root", "/home/alice/root",
                                  "/var/lib/tftpboot", "/library/root", "/data/nfsroot"])
def test_own_directories_are_accepted(seed_text, path):
    cfg = config_mod.parse(edit(seed_text, 'path = "/NFSROOT/kerrighed"', f'path = "{path}"'))
    assert cfg.root.path == path


def test_cross_field_errors_come_with_field_errors_in_one_round(seed_text):
    text = edit(seed_text, 'mac = "52:54:00:00:00:04"', 'mac = "nope"')            # field error
    text = edit(text, 'name = "ssi4"', 'name = "ssi1"')                             # duplicate name
    text = edit(text, 'ip = "192.168.0.103"', 'ip = "192.168.0.101"')              # duplicate ip
    text = edit(text, 'address = "192.168.0.1"', 'address = "10.0.0.1"')           # not in subnet
    text = edit(text, 'timeout = 1', 'timeout = "1"')                               # strict type
    text = edit(text, 'path = "/NFSROOT/kerrighed"', 'path = "/srv/tftp/x"')        # overlap
    got = problems(text)
    assert "MAC" in got["node[3].mac"]
    assert "duplicate name 'ssi1'" in got["node[3].name"]
    assert "duplicate ip" in got["node[2].ip"]
    assert "not in network.subnet" in got["server.address"]
    assert "integer" in got["boot.timeout"]
    assert "inside tftp.root" in got["root.path"]


def test_cross_checks_skip_what_failed_its_own_check(seed_text):
    # An invalid subnet, node IP or MAC is reported once, by its own check, and
    # does not make the cross-field checks fail or repeat it.
    text = edit(seed_text, 'subnet = "192.168.0.0/24"', 'subnet = "nonsense"')
    text = edit(text, 'mac = "52:54:00:00:00:04"', 'mac = 7')
    text = edit(text, 'name = "ssi4"', 'name = "ssi1"')
    with pytest.raises(ConfigError) as exc:
        config_mod.parse(text)
    fields = [f for f, _ in exc.value.problems]
    assert fields.count("node[3].mac") == 1 and "network.subnet" in fields and "node[3].name" in fields
    assert not any("not in network.subnet" in m for _, m in exc.value.problems)


def test_duplicate_alone_is_reported(seed_text):
    got = problems(edit(seed_text, 'mac = "52:54:00:00:00:04"', 'mac = "52:54:00:00:00:01"'))
    assert list(got) == ["node[3].mac"]


@pytest.mark.parametrize("kind", ["fifo", "dir", "device", "big"])
def test_config_file_must_be_a_small_regular_file(tmp_path, kind):
    import os
    path = tmp_path / "c.toml"
    if kind == "fifo":
        os.mkfifo(path)            # without O_NONBLOCK, opening it waits for a writer forever
    elif kind == "dir":
        path.mkdir()
    elif kind == "device":
        path = "/dev/zero"          # read whole, it is endless
    else:
        with open(path, "wb") as f:
            f.truncate(config_mod.MAX_CONFIG_BYTES + 1)
    with pytest.raises(ConfigError) as exc:
        config_mod.load(path)
    assert exc.value.exit_code == 2
    (field, msg), = exc.value.problems
    assert field == "(file)"
    assert {"fifo": "not a regular file", "dir": "a directory", "device": "not a regular file",
            "big": "larger than 16 MiB"}[kind] in msg


def test_config_file_of_exactly_the_limit_is_read(tmp_path, seed_text):
    path = tmp_path / "c.toml"
    path.write_text(seed_text + "#" * (config_mod.MAX_CONFIG_BYTES - len(seed_text.encode()) - 1) + "\n")
    assert path.stat().st_size == config_mod.MAX_CONFIG_BYTES
    assert config_mod.load(path).name == "kerrighed"


def test_node_on_the_routers_address(seed_text):
    text = edit(seed_text, 'router = "192.168.0.1"', 'router = "192.168.0.254"')
    got = problems(edit(text, 'ip = "192.168.0.103"', 'ip = "192.168.0.254"'))
    assert got == {"node[2].ip": "192.168.0.254 is network.router's address"}


def test_wrong_type_shows_a_short_input(seed_text):
    got = problems(edit(seed_text, 'clients = ""', 'clients = [' + ", ".join(['"x"'] * 500) + "]"))
    assert got["nfs.clients"].startswith("Input should be a valid string (got ['x', ")
    assert got["nfs.clients"].endswith("...)") and len(got["nfs.clients"]) < 120


def test_root_path_follows_the_suite_when_not_given():
    base = '[server]\naddress = "10.0.0.1"\n[network]\nsubnet = "10.0.0.0/24"\n'
    assert config_mod.parse(base).root.path == "/srv/nfsroot/trixie"
    assert config_mod.parse(base + '[root]\nsuite = "bookworm"\n').root.path == "/srv/nfsroot/bookworm"
    assert config_mod.parse(base + '[root]\nsuite = "bookworm"\npath = "/x/y"\n').root.path == "/x/y"


def test_every_key_of_the_server_example_is_commented():
    """Each key line of `init`'s example follows a comment (issue 14 point 5)."""
    from helpers import example_text
    lines = example_text("server").splitlines()
    config_mod.parse("\n".join(lines))
    for i, line in enumerate(lines):
        if "=" in line and not line.startswith(("#", "[")) and lines[i - 1].strip():
            j = i - 1
            while not lines[j].startswith("#") and "=" in lines[j] and not lines[j].startswith("["):
                j -= 1   # keys of one comment (e.g. a node's name, mac, ip)
            assert lines[j].startswith("#") or lines[j].startswith("[["), f"uncommented key: {line}"
