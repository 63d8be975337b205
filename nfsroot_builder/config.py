"""The cluster description: TOML in, a validated, frozen model out.

Everything is checked before any step runs, and all problems are reported at
once, each naming its field (``node[3].mac``), so an admin fixes a config in
one round trip.
"""
from __future__ import annotations

import ipaddress
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

# tomli is the stdlib tomllib's code compiled (mypyc): 2.5x faster on a
# 10,000-node config, the bulk of a no-op resume's own time after start-up.
import tomli as tomllib
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from . import pathguard
from .errors import ConfigError

# RFC 1123 host label: node names become file names (menus, per-node dirs),
# DHCP host declarations and /etc/hosts entries, so nothing else may pass.
HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
# Debian package names (Policy 5.6.1), optionally with an arch qualifier.
PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$")
# A DNS name as used for domain and NTP names.
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")
# exports(5) hostname wildcards: letters, digits, dots, dashes, * and ?.
EXPORT_WILDCARD_HOST = re.compile(r"^[A-Za-z0-9*?.-]+$")
SUITE = re.compile(r"^[a-z][a-z0-9.-]*$")
ARCH = re.compile(r"^[a-z0-9-]+$")
# Kernel command-line words end up in GRUB/iPXE menus: no quotes, no
# whitespace, no characters those script languages treat specially.
KERNEL_ARG = re.compile(r"^[A-Za-z0-9_.,:=/+@%-]+$")
HASH = re.compile(r"^(\$[0-9a-z]+\$[^\s:]+|!|\*)$")

# Paths (root, TFTP root, dhcpd.conf, local .debs) reach exports(5), fstab(5)
# (whitespace separates fields), GRUB/iPXE menus ($ expands), the kernel's
# nfsroot=<server>:<path>,<options> (a comma starts the options) and
# initramfs shell scripts: only characters that mean nothing to any of them.
SAFE_PATH = re.compile(r"^[A-Za-z0-9._+~/-]+$")

# Names the root's /etc/hosts already gives (render.root.hosts): a node of
# that name would shadow them.
RESERVED_HOST_NAMES = frozenset({"localhost", "server", "ip6-localhost", "ip6-loopback"})
# A cluster description is a few MB at 50,000 nodes; reading more is a mistake
# (-c /dev/zero read 3.8 GB before this limit).
MAX_CONFIG_BYTES = 16 * 1024 * 1024

# The seed page also exported /dev read-write: left out today (render.root.SEED_LEFT_OUT).
WRITABLE_DIRS = {"tmpfs": (), "overlay": (), "per-node": ("var",),
                 "seed": ("var", "tmp", "root")}


def _abs_path(v: str) -> str:
    p = PurePosixPath(v)
    if not p.is_absolute():
        raise ValueError(f"must be an absolute path, got {v!r}")
    if ".." in p.parts:
        raise ValueError(f"must not contain '..', got {v!r}")
    if not SAFE_PATH.match(v):
        raise ValueError(f"may hold only letters, digits and . _ + ~ - /, got {v!r} (paths end up "
                         "in exports(5), fstab(5), dhcpd.conf, boot menus, nfsroot=<server>:<path>,<opts> "
                         "on the kernel command line and shell scripts)")
    return str(p)


def _mac(v: str) -> str:
    v = v.strip().lower().replace("-", ":")
    if not MAC.match(v):
        raise ValueError(f"not a MAC address like 52:54:00:12:34:56: {v!r}")
    # The I/G bit (lowest bit of the first octet, IEEE 802-2014 8.2) marks a
    # group address: ff:ff:ff:ff:ff:ff and every multicast MAC. No NIC has one.
    if int(v[:2], 16) & 1:
        raise ValueError(f"{v} is a multicast or broadcast MAC (first octet odd); a NIC's MAC is unicast")
    if v == "00:00:00:00:00:00":
        raise ValueError("00:00:00:00:00:00 is not a NIC's MAC")
    return v


# A dotted quad exactly as ipaddress prints it (no leading zeros): the common
# case, checked without building an IPv4Address (50,000 nodes: 0.3 s less).
IPV4_CANONICAL = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                            r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")


def _ipv4(v: str) -> str:
    if IPV4_CANONICAL.fullmatch(v):
        return v
    try:
        return str(ipaddress.IPv4Address(v))
    except ValueError:
        raise ValueError(f"not an IPv4 address: {v!r}") from None


def _domain(v: str) -> str:
    if not DOMAIN.match(v.lower()):
        raise ValueError(f"not a DNS name: {v!r}")
    return v.lower()


def _node_name(v: str) -> str:
    if not HOST_LABEL.match(v):
        raise ValueError(f"not an RFC 1123 host label (a-z, 0-9, '-', at most 63): {v!r}")
    if v in RESERVED_HOST_NAMES:
        raise ValueError(f"{v!r} is already a name in the nodes' /etc/hosts "
                         f"({', '.join(sorted(RESERVED_HOST_NAMES))}); pick another")
    return v


def _short_name(v: str) -> str:
    """A build's or a group's name: it becomes part of file and directory names."""
    if not HOST_LABEL.match(v):
        raise ValueError(f"must be a short name (a-z, 0-9, '-'): {v!r}")
    return v


def _subnet(v: str) -> str:
    try:
        return str(ipaddress.IPv4Network(v, strict=True))
    except ValueError as e:
        raise ValueError(f"not a network like 192.168.0.0/24: {e}") from None


def _data_dir(v: str) -> str:
    if why := pathguard.system_path_problem(v):
        raise ValueError(why)
    return v


def _base_dir(info: ValidationInfo) -> Path:
    """Where relative paths of the config point from: the config file's directory."""
    return Path((info.context or {}).get("base_dir") or ".").absolute()


def _site_dir(v: str, info: ValidationInfo) -> str:
    """root.files: a directory, relative to the config file's or absolute."""
    if not v:
        return v
    p = _base_dir(info) / v
    if not p.is_dir():
        raise ValueError(f"{str(p)!r} is not a directory" + ("" if p.exists() else " (it does not exist)"))
    return os.path.normpath(p)


def _hook(v: str, info: ValidationInfo) -> str:
    """One of root.hooks: an executable file, relative to the config file's directory or absolute."""
    p = _base_dir(info) / v
    if not p.is_file():
        raise ValueError(f"{str(p)!r} is not a file" + ("" if p.exists() else " (it does not exist)"))
    if not os.access(p, os.X_OK):
        raise ValueError(f"{str(p)!r} is not executable (chmod +x; it runs in the root's chroot)")
    return os.path.normpath(p)


AbsPath = Annotated[str, AfterValidator(_abs_path)]
SiteDir = Annotated[str, AfterValidator(_site_dir)]
Hook = Annotated[str, AfterValidator(_hook)]
# A directory the build fills (and, for the root, removes whole on a rebuild).
DataDir = Annotated[str, AfterValidator(_abs_path), AfterValidator(_data_dir)]
Mac = Annotated[str, AfterValidator(_mac)]
IPv4 = Annotated[str, AfterValidator(_ipv4)]
DnsName = Annotated[str, AfterValidator(_domain)]


def export_client_problem(spec: str) -> str | None:
    """Why exports(5) would reject or misread a client spec, or None if fine.

    The seed's last "common problem": ``192.168.1.*`` is not valid, because
    wildcards only work in host names (exports(5), "Machine Name Formats").
    """
    if spec == "*":
        return None
    if any(c.isspace() for c in spec) or "(" in spec:
        return "must not contain spaces or options; a space before '(' exports to the world"
    if spec.startswith("@"):
        return None if DOMAIN.match(spec[1:].lower()) else "not a valid @netgroup"
    head = spec.split("/")[0]
    if re.fullmatch(r"[0-9.*?]+", head) and any(c in head for c in "*?"):
        return (f"wildcards are not allowed in IP addresses ({spec!r}); "
                "use a network like 192.168.1.0/24")
    if "/" in spec:
        try:
            ipaddress.IPv4Network(spec, strict=False)
        except ValueError:
            return f"not a network in CIDR or address/netmask form: {spec!r}"
        return None
    if re.fullmatch(r"[0-9.]+", spec):
        try:
            ipaddress.IPv4Address(spec)
        except ValueError:
            return f"not an IPv4 address: {spec!r}"
        return None
    if not EXPORT_WILDCARD_HOST.match(spec):
        return f"not a host name, wildcard, network or @netgroup: {spec!r}"
    return None


class Model(BaseModel):
    # strict: TOML has types; timeout = "1" is a mistake to report, not to coerce.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Server(Model):
    address: IPv4 = Field(description="the boot server's address on the cluster network")
    interface: str = Field("eth0", description="the interface dhcpd listens on")

    @field_validator("interface")
    @classmethod
    def _iface(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,15}", v):
            raise ValueError(f"not a network interface name: {v!r}")
        return v


# The HA name of the [server] table in Kea's high-availability hook (a
# replica may not take it): docs/replicas.md.
PRIMARY_SERVER = "primary"
# Where a replica's trees live: a local directory, served as a staging
# prefix (the lab, a test), or [user@]host:/path reached by rsync over ssh.
REMOTE_TREE = re.compile(r"^(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+:/[^\s:]*$")


class Replica(Model):
    """A boot server beyond [server] ([[servers]]): it serves the same root
    versions (`nfsroot-build sync` copies them) with itself as next-server
    and NFS server, and answers DHCP as Kea HA peer (docs/replicas.md)."""
    name: str = Field(description="the server's short name (Kea HA server-name)")
    address: IPv4 = Field(description="its address on the cluster network")
    interface: str | None = Field(None, description="its cluster interface (default: server.interface)")
    tree: str = Field(description="where its trees live: a local directory or [user@]host:/path (rsync over ssh)")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not HOST_LABEL.match(v) or v == PRIMARY_SERVER:
            raise ValueError(f"must be a short name (a-z, 0-9, '-'), not {PRIMARY_SERVER!r}: {v!r}")
        return v

    @field_validator("tree")
    @classmethod
    def _tree(cls, v: str) -> str:
        if v.startswith("/"):
            return _abs_path(v)
        if not REMOTE_TREE.match(v):
            raise ValueError(f"not an absolute directory or [user@]host:/path: {v!r}")
        return v

    @field_validator("interface")
    @classmethod
    def _iface(cls, v: str | None) -> str | None:
        return None if v is None else Server._iface(v)


class Network(Model):
    subnet: str
    router: IPv4 | None = None
    broadcast: IPv4 | None = None
    domain: DnsName | None = None
    dns_servers: list[IPv4] = []
    # Addresses only: a host name would make dhcpd query DNS at start-up.
    ntp_servers: list[IPv4] = []

    @field_validator("subnet")
    @classmethod
    def _subnet(cls, v: str) -> str:
        return _subnet(v)

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    @property
    def broadcast_address(self) -> str:
        return self.broadcast or str(self.network.broadcast_address)


def default_root_path(root: dict) -> str:
    """root.path when the config gives none: one directory per suite, so that
    suite = "bookworm" alone does not build into /srv/nfsroot/trixie."""
    suite = root.get("suite", "trixie")
    return f"/srv/nfsroot/{suite}" if isinstance(suite, str) and SUITE.match(suite) else "/srv/nfsroot/trixie"


class ExtraSource(Model):
    """A site's own apt repository: a deb822 stanza (sources.list(5)) and its armored key."""
    stanza: str
    key: str = ""

    @model_validator(mode="after")
    def _valid(self):
        from .aptsources import parse_extra_source
        parse_extra_source(self.stanza, self.key)
        return self

    @property
    def parsed(self):
        from .aptsources import parse_extra_source
        return parse_extra_source(self.stanza, self.key)


class Root(Model):
    path: DataDir = "/srv/nfsroot/trixie"
    suite: str = "trixie"
    mirror: str = ""
    bootstrapper: Literal["debootstrap", "mmdebstrap"] = "mmdebstrap"
    variant: Literal["minbase", "buildd", "important", "standard"] = "minbase"
    architecture: str = "amd64"
    components: list[str] = ["main"]
    kernel_package: str = "linux-image-amd64"
    # The kernel the nodes boot: "newest", a release (uname -r) or a package name (kernels.py).
    kernel: str = "newest"
    packages: list[str] = []
    local_debs: list[AbsPath] = []
    extra_sources: list[ExtraSource] = []
    # `update` adds the suite's -security archive for a stable suite (update.py).
    security: bool = True
    password_hash: str = "!"
    # A tree copied into the root (owner, mode, symlinks kept) and scripts run
    # in its chroot after the packages: the site-files and site-hooks steps.
    # Relative to the config file's directory; stored resolved.
    files: SiteDir = ""
    hooks: list[Hook] = []
    layout: Literal["tmpfs", "per-node", "overlay", "seed"] = "tmpfs"
    init: Literal["systemd", "sysvinit"] = "systemd"
    # nfs: the nodes run from the NFS export; image: each node fetches the
    # version's squashfs over HTTP into RAM at boot (docs/image-mode.md).
    serve: Literal["nfs", "image"] = "nfs"

    @model_validator(mode="before")
    @classmethod
    def _path_from_suite(cls, data):
        if isinstance(data, dict) and "path" not in data:
            return {**data, "path": default_root_path(data)}
        return data

    @field_validator("suite")
    @classmethod
    def _suite(cls, v: str) -> str:
        if not SUITE.match(v):
            raise ValueError(f"not a Debian suite name: {v!r}")
        return v

    @field_validator("architecture")
    @classmethod
    def _arch(cls, v: str) -> str:
        if not ARCH.match(v):
            raise ValueError(f"not a Debian architecture: {v!r}")
        return v

    @field_validator("components")
    @classmethod
    def _components(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("needs at least one archive component, e.g. [\"main\"]")
        for c in v:
            if not SUITE.match(c):
                raise ValueError(f"not an archive component such as main, contrib, non-free-firmware: {c!r}")
        return v

    @field_validator("local_debs")
    @classmethod
    def _debs(cls, v: list[str]) -> list[str]:
        for path in v:
            if not path.endswith(".deb"):
                raise ValueError(f"not a .deb file: {path!r}")
        return v

    @field_validator("mirror")
    @classmethod
    def _mirror(cls, v: str) -> str:
        if v and not re.fullmatch(r"(https?|file)://[^\s\"'<>]+", v):
            raise ValueError(f"must be an http(s):// or file:// URL, or empty for the host's mirror: {v!r}")
        return v.rstrip("/")

    @field_validator("packages", "kernel_package")
    @classmethod
    def _packages(cls, v):
        for name in ([v] if isinstance(v, str) else v):
            if not PACKAGE.match(name):
                raise ValueError(f"not a Debian package name: {name!r}")
        return v

    @field_validator("kernel")
    @classmethod
    def _kernel(cls, v: str) -> str:
        from .kernels import NEWEST, is_release
        if v != NEWEST and not is_release(v) and not PACKAGE.match(v):
            raise ValueError(f"must be \"newest\", a kernel release as `uname -r` prints it "
                             f"(6.1.0-57-amd64) or a Debian package name: {v!r}")
        return v

    @field_validator("password_hash")
    @classmethod
    def _hash(cls, v: str) -> str:
        # A crypt(5) hash, or "!"/"*" for a locked account. A plain password
        # is refused: it would sit in a config file in clear text.
        if not HASH.match(v):
            raise ValueError("must be a crypt(5) hash such as the output of "
                             "'mkpasswd -m yescrypt', or '!' for a locked account")
        return v

    @model_validator(mode="after")
    def _seed_needs_sysvinit(self):
        if self.layout == "seed" and self.init != "sysvinit":
            raise ValueError("layout 'seed' mounts NFS /var from fstab, which only "
                             "works with init = \"sysvinit\" (systemd drops it: ordering cycle)")
        return self

    @property
    def writable_dirs(self) -> tuple[str, ...]:
        return WRITABLE_DIRS[self.layout]


class Tftp(Model):
    root: DataDir = "/srv/tftp"


# What each boot.loader can fetch the kernel and initrd over: GRUB 2 (its
# http module), iPXE and lpxelinux.0 speak HTTP; the seed's GRUB legacy
# (pxegrub) only TFTP.
LOADER_TRANSPORTS = {"grub": ("tftp", "http"), "ipxe": ("tftp", "http"), "pxelinux": ("tftp", "http"),
                     "pxegrub": ("tftp",)}


def _kernel_args(v: list[str]) -> list[str]:
    for arg in v:
        if not KERNEL_ARG.match(arg):
            raise ValueError(f"kernel argument {arg!r} has characters that are not "
                             "safe in a boot menu (spaces, quotes, ;, $, ...)")
    return v


class Boot(Model):
    loader: Literal["grub", "ipxe", "pxelinux", "pxegrub"] = "grub"
    # http: kernel and initrd come from nginx on server.address (the loader
    # itself and the menus still come over TFTP).
    transport: Literal["tftp", "http"] = "tftp"
    kernel_args: list[str] = ["console=ttyS0,115200n8", "console=tty0"]
    timeout: int = Field(1, ge=0, le=3600)
    # Serve Debian's signed chain to UEFI nodes: shim (Microsoft-signed) ->
    # GRUB's signed netboot image -> the root's signed kernel (steps/boot_loader.py).
    secure_boot: bool = False

    @field_validator("kernel_args")
    @classmethod
    def _args(cls, v: list[str]) -> list[str]:
        return _kernel_args(v)

    @field_validator("transport")
    @classmethod
    def _transport(cls, v: str, info: ValidationInfo) -> str:
        loader = info.data.get("loader")   # absent when loader itself is invalid
        if loader and v not in LOADER_TRANSPORTS[loader]:
            raise ValueError(f'boot.loader "{loader}" fetches kernel and initrd over TFTP only: '
                             'use "tftp", or loader "grub", "ipxe" or "pxelinux" for "http"')
        return v


class Dhcp(Model):
    # isc-dhcp-server: a managed block in config_file; kea: a Kea config the
    # tool owns; dnsmasq: a drop-in in /etc/dnsmasq.d; dnsmasq-proxy: the same
    # drop-in as proxyDHCP beside the site's own DHCP server (which gives the
    # nodes their addresses and names).
    server: Literal["isc-dhcp-server", "kea", "dnsmasq", "dnsmasq-proxy"] = "isc-dhcp-server"
    config_file: AbsPath = "/etc/dhcp/dhcpd.conf"   # isc-dhcp-server only


class Nfs(Model):
    server: Literal["kernel", "ganesha"] = "kernel"
    clients: str = ""   # empty: the cluster subnet
    threads: int = Field(0, ge=0, le=1024)   # 0: one per node, at least 8

    @field_validator("clients")
    @classmethod
    def _clients(cls, v: str) -> str:
        if v and (why := export_client_problem(v)):
            raise ValueError(why)
        return v


class Node(Model):
    name: str
    mac: Mac
    ip: IPv4
    # What the node's firmware boots with. The DHCP config serves both kinds
    # at once (by the client's DHCP option 93), so this only tells the lab
    # which firmware to give the node's VM (OVMF for "uefi").
    firmware: Literal["bios", "uefi"] = "bios"
    # A [[group]]'s name (docs/groups.md); empty: the top-level [root] and [boot].
    group: str = ""
    # Its preferred boot server ([[servers]], docs/replicas.md): "primary"
    # or a [[servers]] name; every server's DHCP answer sends it there (it
    # then has no failover). Empty: whichever server Kea's HA answers with.
    server: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _node_name(v)


# The layouts a group's own root may have: the ones without writable
# exports (a per-node or seed group root would need its own writable trees
# and per-node directories, which the exports render for the default root only).
GROUP_ROOT_LAYOUTS = ("tmpfs", "overlay")


class GroupBoot(Model):
    """The [boot] keys a group may set for its nodes' menus (the loader and
    the transport stay the server's: one DHCP answer per firmware)."""
    kernel_args: list[str] | None = None
    timeout: int | None = Field(None, ge=0, le=3600)

    @field_validator("kernel_args")
    @classmethod
    def _args(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _kernel_args(v)


class Group(Model):
    """A [[group]]: nodes that boot their own root and/or kernel arguments.

    root: the [root] keys it sets (the others come from [root]); given
    without path, the root lives at <root.path>-<name>. No root keys: the
    group shares the default root (docs/groups.md)."""
    name: str
    root: Root | None = None
    boot: GroupBoot = GroupBoot()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _short_name(v)


class Config(Model):
    name: str = "cluster"
    server: Server
    network: Network
    root: Root = Root()
    tftp: Tftp = Tftp()
    boot: Boot = Boot()
    dhcp: Dhcp = Dhcp()
    nfs: Nfs = Nfs()
    group: list[Group] = []
    node: list[Node] = []
    servers: list[Replica] = []   # replicated boot servers (docs/replicas.md)

    @model_validator(mode="before")
    @classmethod
    def _group_root_paths(cls, data):
        """A group that sets root keys but no path gets <root.path>-<name>:
        its own tree, never the default root's path with other contents."""
        if not isinstance(data, dict) or not isinstance(data.get("group"), list):
            return data
        top = data.get("root") if isinstance(data.get("root"), dict) else {}
        base = top.get("path", default_root_path(top))
        groups = []
        for g in data["group"]:
            if isinstance(g, dict) and isinstance(g.get("root"), dict) and g["root"] and "path" not in g["root"] \
                    and isinstance(base, str) and isinstance(g.get("name"), str):
                g = {**g, "root": {**g["root"], "path": f"{base}-{g['name']}"}}
            groups.append(g)
        return {**data, "group": groups}

    @field_validator("name")
    @classmethod
    def _build_name(cls, v: str) -> str:
        return _short_name(v)

    @model_validator(mode="after")
    def _proxy_loader(self) -> Config:
        # proxyDHCP answers only PXE clients (dnsmasq(8), --dhcp-range proxy)
        # with a PXE boot service; pxegrub needs dhcpd's option 150.
        if self.dhcp.server == "dnsmasq-proxy" and self.boot.loader == "pxegrub":
            raise ValueError('dhcp.server "dnsmasq-proxy" cannot serve boot.loader "pxegrub" '
                             '(it needs DHCP option 150 from the address-giving server): use "grub" or "ipxe"')
        # GRUB 2.06's EFI network driver (Debian 12) takes its TFTP server and
        # prefix from the firmware's DHCP ACK only, never from a proxy offer:
        # booted in the lab, core.efi stops at "error: variable `root' isn't
        # set" / "grub rescue>". Its BIOS image and iPXE (either firmware) work.
        uefi = [n.name for n in self.node if n.firmware == "uefi"]
        if self.dhcp.server == "dnsmasq-proxy" and self.boot.loader == "grub" and uefi:
            raise ValueError(f'dhcp.server "dnsmasq-proxy" with boot.loader "grub" cannot boot UEFI nodes '
                             f'({", ".join(uefi[:3])}{", ..." if len(uefi) > 3 else ""}): GRUB\'s EFI image reads '
                             'its TFTP server from the DHCP ACK only, not from the proxy offer; '
                             'use boot.loader = "ipxe"')
        return self

    @property
    def nodes(self) -> list[Node]:
        return self.node

    def group_root(self, name: str) -> Root:
        """The root group name's nodes boot: [root] with the group's root keys over it."""
        group = self.group_named(name)
        if group is None or group.root is None:
            return self.root
        given = group.root.model_dump(exclude_unset=True)
        merged = {**self.root.model_dump(), **given}
        if merged == self.root.model_dump():
            return self.root
        # Validated again as a whole: the cross-field rules (seed needs sysvinit).
        return Root.model_validate(merged)

    def group_named(self, name: str) -> Group | None:
        return next((g for g in self.group if g.name == name), None) if name else None

    def group_boot(self, name: str) -> Boot:
        """[boot] with the group's boot keys over it."""
        group = self.group_named(name)
        if group is None:
            return self.boot
        update = group.boot.model_dump(exclude_none=True)
        return self.boot.model_copy(update=update) if update else self.boot

    @property
    def nfs_clients(self) -> str:
        return self.nfs.clients or self.network.subnet

    @property
    def nfs_threads(self) -> int:
        return self.nfs.threads or max(8, len(self.node))


@dataclass
class _Facts:
    """What the cross-field checks read; None where that field itself is invalid."""
    server: str | None
    subnet: ipaddress.IPv4Network | None
    router: str | None
    root_path: str | None
    tftp_root: str | None
    nodes: list[tuple[str | None, str | None, str | None]]   # (name, mac, ip)

    @classmethod
    def of(cls, cfg: Config) -> _Facts:
        return cls(cfg.server.address, cfg.network.network, cfg.network.router, cfg.root.path,
                   cfg.tftp.root, [(n.name, n.mac, n.ip) for n in cfg.node])

    @classmethod
    def of_raw(cls, data: dict) -> _Facts:
        """From TOML that failed validation: each value as its field's validator
        would leave it, or None, so one round reports every problem."""
        def section(name):
            value = data.get(name)
            return value if isinstance(value, dict) else {}

        def valid(check, value):
            if not isinstance(value, str):
                return None
            try:
                return check(value)
            except ValueError:
                return None

        subnet = valid(lambda v: ipaddress.IPv4Network(_subnet(v)), section("network").get("subnet"))
        nodes = data.get("node") if isinstance(data.get("node"), list) else []
        nodes = [n if isinstance(n, dict) else {} for n in nodes]
        return cls(valid(_ipv4, section("server").get("address")), subnet,
                   valid(_ipv4, section("network").get("router")),
                   valid(lambda v: _data_dir(_abs_path(v)), section("root").get("path", default_root_path(section("root")))),
                   valid(lambda v: _data_dir(_abs_path(v)), section("tftp").get("root", Tftp.model_fields["root"].default)),
                   [(valid(_node_name, n.get("name")), valid(_mac, n.get("mac")), valid(_ipv4, n.get("ip")))
                    for n in nodes])


def _cross_checks(facts: _Facts) -> list[tuple[str, str]]:
    """Checks that span fields; returns (field, message) pairs.

    Fields that failed their own validation are None in facts and skipped, so
    these run in the same round as the field errors.
    """
    errors: list[tuple[str, str]] = []
    if facts.root_path and facts.tftp_root and (why := pathguard.overlap_problem(facts.root_path, facts.tftp_root)):
        errors.append(("root.path", why))
    net = facts.subnet
    if net is None:
        errors += _duplicates(facts)
        return errors
    low, high = int(net.network_address), int(net.broadcast_address)
    for field, address in (("server.address", facts.server), ("network.router", facts.router)):
        if address is None:
            continue
        if ipaddress.IPv4Address(address) not in net:
            errors.append((field, f"{address} is not in network.subnet {net}"))
        elif int(ipaddress.IPv4Address(address)) in (low, high) and net.prefixlen < 31:
            errors.append((field, f"{address} is the network or broadcast address of {net}"))
    for i, (_, _, ip) in enumerate(facts.nodes):
        if ip is None:
            continue
        # Addresses as integers: an IPv4Address per node costs more than all the rest.
        a, b, c, d = ip.split(".")
        addr = (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)
        if not low <= addr <= high:
            errors.append((f"node[{i}].ip", f"{ip} is not in network.subnet {net}"))
        elif addr in (low, high):
            errors.append((f"node[{i}].ip", f"{ip} is the network or broadcast address"))
        if ip == facts.server:
            errors.append((f"node[{i}].ip", f"{ip} is the server's own address"))
        elif ip == facts.router:
            errors.append((f"node[{i}].ip", f"{ip} is network.router's address"))
    errors += _duplicates(facts)
    return errors


def _duplicates(facts: _Facts) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    keys = ("name", "mac", "ip")
    seen: tuple[dict[str, int], ...] = ({}, {}, {})
    for i, node in enumerate(facts.nodes):
        for key, value, first in zip(keys, node, seen, strict=True):
            if value is None:
                continue
            if value in first:
                errors.append((f"node[{i}].{key}", f"duplicate {key} {value!r} (also node[{first[value]}])"))
            else:
                first[value] = i
    return errors


def _secure_boot_problems(data: dict) -> list[tuple[str, str]]:
    """boot.secure_boot = true with what cannot boot under Secure Boot; read
    from the raw TOML so they come in the same round as the field errors
    (a value of the wrong type is left to its own field's error).

    Debian signs one network chain: shim (signed by Microsoft, the key
    firmware ships) loads GRUB signed by Debian, which loads a kernel signed
    by Debian. iPXE, PXELINUX and pxegrub are not signed by anyone firmware
    trusts, a BIOS has no Secure Boot, and Debian signs x86-64 only among the
    architectures this tool builds (shimx64, grubx64).
    """
    def section(name: str) -> dict:
        value = data.get(name)
        return value if isinstance(value, dict) else {}

    if section("boot").get("secure_boot") is not True:
        return []
    problems = []
    loader = section("boot").get("loader", Boot.model_fields["loader"].default)
    if isinstance(loader, str) and loader != "grub":
        problems.append(("boot.loader", f"{loader!r} cannot boot with boot.secure_boot = true: "
                                        "only Debian's signed GRUB (loader \"grub\") is loaded by shim"))
    arch = section("root").get("architecture", Root.model_fields["architecture"].default)
    if isinstance(arch, str) and arch != "amd64":
        problems.append(("root.architecture", f"{arch!r} with boot.secure_boot = true: this tool serves "
                                              "Debian's signed shimx64/grubx64 chain, amd64 only"))
    kernel = section("root").get("kernel_package", Root.model_fields["kernel_package"].default)
    if isinstance(kernel, str) and kernel.endswith("-unsigned"):
        problems.append(("root.kernel_package", f"{kernel!r} is not signed: with boot.secure_boot = true "
                                                "GRUB refuses it (use linux-image-amd64, the signed image)"))
    nodes = data.get("node") if isinstance(data.get("node"), list) else []
    for i, node in enumerate(nodes):
        firmware = node.get("firmware", "bios") if isinstance(node, dict) else None
        if firmware == "bios":
            problems.append((f"node[{i}].firmware", 'is "bios" (the default), which has no Secure Boot: '
                                                    'with boot.secure_boot = true set firmware = "uefi"'))
    return problems


# The layouts that keep a node on NFS after boot: meaningless in RAM-image mode.
IMAGE_MODE_NFS_LAYOUTS = {"per-node": "mounts each node's own /var over NFS",
                          "seed": "mounts /var, /tmp and /root over NFS from fstab"}


def _image_mode_problems(data: dict) -> list[tuple[str, str]]:
    """root.serve = "image" with what would keep a node tied to the server or
    leave nothing to fetch the image from; read from the raw TOML, like
    _secure_boot_problems, so they come in the same round as field errors."""
    def section(name: str) -> dict:
        value = data.get(name)
        return value if isinstance(value, dict) else {}

    if section("root").get("serve") != "image":
        return []
    problems = []
    layout = section("root").get("layout", Root.model_fields["layout"].default)
    if isinstance(layout, str) and layout in IMAGE_MODE_NFS_LAYOUTS:
        problems.append(("root.layout", f'"{layout}" {IMAGE_MODE_NFS_LAYOUTS[layout]}, but with root.serve = '
                                        '"image" a node runs from RAM and needs no server after boot: '
                                        'use layout "tmpfs" or "overlay"'))
    transport = section("boot").get("transport", Boot.model_fields["transport"].default)
    if transport == "tftp":
        problems.append(("boot.transport", 'is "tftp", but with root.serve = "image" the node fetches its root '
                                           'image from the server\'s nginx: set boot.transport = "http" '
                                           '(kernel, initrd and image then all come over HTTP)'))
    return problems


def _field_name(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        # pydantic's type tags ("str", "int", "function-after[...]") are not
        # fields; "interface" or "init" are, so compare whole words.
        elif not (part in ("str", "int") or str(part).startswith(("function-", "literal["))) or not out:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _did_you_mean(key: str) -> str:
    """ "; did you mean 'threads'?" for a key close to one of any section's keys."""
    import difflib
    known = {name for model in (Config, Server, Network, Root, Tftp, Boot, Dhcp, Nfs, Node, Replica)
             for name in model.model_fields}
    close = difflib.get_close_matches(key, sorted(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def parse(text: str, source: str = "config", base_dir: Path | None = None) -> Config:
    """Parse and validate TOML text; raise ConfigError listing every problem.

    Relative paths in it (root.files, root.hooks) are from base_dir, by
    default the directory of source (the config file's path)."""
    if not text.strip():
        raise ConfigError(source, [("(file)", "is empty")])
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(source, [("(file)", f"is not valid TOML: {e}")]) from None
    try:
        base = base_dir if base_dir is not None else Path(source).absolute().parent
        cfg = Config.model_validate(data, context={"base_dir": base})
    except ValidationError as e:
        problems = []
        for err in e.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key" + _did_you_mean(str(err["loc"][-1]))
            elif err["type"] == "literal_error" or err["type"].endswith("_type"):
                got = repr(err.get("input"))
                msg = f"{msg} (got {got if len(got) <= 60 else got[:57] + '...'})"
            problems.append((_field_name(err["loc"]), msg))
        seen = set(problems)
        problems += [p for p in _cross_checks(_Facts.of_raw(data)) + _secure_boot_problems(data)
                     + _group_name_problems(data) + _image_mode_problems(data) if p not in seen]
        raise ConfigError(source, problems) from None
    if cross := _cross_checks(_Facts.of(cfg)) + _secure_boot_problems(data) + _group_name_problems(data) \
            + _image_mode_problems(data) + _site_files_problems(cfg) + _group_root_problems(cfg) \
            + _replica_problems(cfg):
        raise ConfigError(source, cross)
    return cfg


def root_key(path: str) -> str:
    """A group root's key, from its path (its version series is keyed by
    it; docs/groups.md): /srv/nfsroot/login -> srv-nfsroot-login."""
    return re.sub(r"[^a-z0-9-]+", "-", path.strip("/").lower()).strip("-")


def _group_name_problems(data: dict) -> list[tuple[str, str]]:
    """node.group naming no [[group]], and a group name given twice; from
    the raw TOML, so they come in the same round as the field errors."""
    groups = data.get("group") if isinstance(data.get("group"), list) else []
    names: dict[str, int] = {}
    problems = []
    for i, g in enumerate(groups):
        name = g.get("name") if isinstance(g, dict) else None
        if isinstance(name, str):
            if name in names:
                problems.append((f"group[{i}].name", f"duplicate group name {name!r} (also group[{names[name]}])"))
            names.setdefault(name, i)
    nodes = data.get("node") if isinstance(data.get("node"), list) else []
    for i, n in enumerate(nodes):
        group = n.get("group") if isinstance(n, dict) else None
        if isinstance(group, str) and group and group not in names:
            known = ", ".join(sorted(names)) or "none: add a [[group]] with that name"
            problems.append((f"node[{i}].group", f"no [[group]] named {group!r} (groups: {known})"))
    return problems


def _group_root_problems(cfg: Config) -> list[tuple[str, str]]:
    """Group roots that cannot be built or served side by side: two roots
    on one path with different contents, a root inside another or the TFTP
    root, a layout with writable exports (GROUP_ROOT_LAYOUTS)."""
    problems: list[tuple[str, str]] = []
    by_path: dict[str, tuple[str, Root]] = {cfg.root.path: ("[root]", cfg.root)}
    for i, group in enumerate(cfg.group):
        try:
            root = cfg.group_root(group.name)
        except ValidationError as e:
            problems += [(f"group[{i}].root", err["msg"].removeprefix("Value error, ")) for err in e.errors()]
            continue
        if root is cfg.root:
            continue
        field = f"group[{i}].root"
        if root.serve == "image" and cfg.boot.transport != "http":
            # A group root may be served otherwise than [root] (its menus follow
            # its version's record), but the image comes from the server's nginx.
            problems.append((f"{field}.serve", f'"image", but boot.transport is "{cfg.boot.transport}": the node '
                                               "fetches its root image from the server's nginx: set "
                                               'boot.transport = "http"'))
        if root.layout not in GROUP_ROOT_LAYOUTS:
            problems.append((f"{field}.layout", f"{root.layout!r}: a group's own root may have layout "
                                                f"{' or '.join(map(repr, GROUP_ROOT_LAYOUTS))} (no writable "
                                                "exports); per-node and seed serve the default [root] only"))
        owner = by_path.get(root.path)
        other_key = next((p for p in by_path if p != root.path and root_key(p) == root_key(root.path)), None)
        if other_key is not None:
            problems.append((f"{field}.path", f"{root.path} and {other_key} make the same state directory "
                                              f"name {root_key(root.path)!r}: pick paths that differ in more "
                                              "than case or punctuation"))
        if owner is None:
            for path, (other, _) in by_path.items():
                mine, theirs = PurePosixPath(root.path), PurePosixPath(path)
                if mine in theirs.parents or theirs in mine.parents:
                    problems.append((f"{field}.path", f"{root.path} and {path}, the root of {other}, are "
                                                      "inside one another: rebuilding one would remove the other"))
            if why := pathguard.overlap_problem(root.path, cfg.tftp.root):
                problems.append((f"{field}.path", why))
            by_path[root.path] = (f"group {group.name!r}", root)
        elif owner[1] != root:
            problems.append((f"{field}.path", f"{root.path} is also the root of {owner[0]} with other "
                                              "root keys: a shared root has one config (give this group "
                                              "its own path, or the same root keys)"))
    return problems


def _replica_problems(cfg: Config) -> list[tuple[str, str]]:
    """[[servers]]: distinct names and addresses in the subnet, taken by no
    node; Kea, whose HA hook the servers answer DHCP through; a node's
    preferred server (node.server) one of them."""
    names = [PRIMARY_SERVER, *(r.name for r in cfg.servers)]
    problems = [(f"node[{i}].server", f"no server named {n.server!r} (servers: {', '.join(names)})")
                for i, n in enumerate(cfg.nodes) if n.server and n.server not in names]
    if not cfg.servers:
        return problems
    if cfg.dhcp.server != "kea":
        problems.append(("dhcp.server", f'must be "kea" with [[servers]] (their DHCP is Kea HA), '
                                        f'not {cfg.dhcp.server!r}'))
    if cfg.root.layout in IMAGE_MODE_NFS_LAYOUTS:
        # sync copies read-only versions; a node's writable NFS directories
        # would exist on one server only, and a node sent to another by Kea HA
        # would mount a missing (or stale) copy of them.
        problems.append(("root.layout", f'"{cfg.root.layout}" {IMAGE_MODE_NFS_LAYOUTS[cfg.root.layout]}, which '
                                        "lives on one server: with [[servers]] use layout \"tmpfs\" or \"overlay\""))
    taken = {cfg.server.address: "server.address", **{n.ip: f"node {n.name}" for n in cfg.nodes}}
    if cfg.network.router:
        taken[cfg.network.router] = "network.router"
    names = {PRIMARY_SERVER}
    for i, r in enumerate(cfg.servers):
        if r.name in names:
            problems.append((f"servers[{i}].name", f"{r.name!r} is taken"))
        names.add(r.name)
        if ipaddress.IPv4Address(r.address) not in cfg.network.network:
            problems.append((f"servers[{i}].address", f"{r.address} is not in network.subnet {cfg.network.subnet}"))
        elif r.address in taken:
            problems.append((f"servers[{i}].address", f"{r.address} is {taken[r.address]}'s address"))
        taken[r.address] = f"servers[{i}]"
    return problems


def _site_files_problems(cfg: Config) -> list[tuple[str, str]]:
    """What root.files' tree holds that cannot go where it says (sitefiles.problems)."""
    if not cfg.root.files:
        return []
    from .sitefiles import problems
    return [("root.files", why) for why in problems(cfg.root.files, cfg.root.layout, [n.name for n in cfg.node])]


def read_text(path: Path) -> str:
    """The config file's text: a regular file of at most MAX_CONFIG_BYTES.

    O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused
    after the fstat, like /dev/zero and directories).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise ConfigError(str(path), [("(file)", f"cannot be read: {e.strerror}")]) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise ConfigError(str(path), [("(file)", f"cannot be read: {kind}")])
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ConfigError(str(path), [("(file)", f"cannot be read: {e.strerror}")]) from None
    finally:
        os.close(fd)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(str(path), [("(file)", f"is larger than {MAX_CONFIG_BYTES // 2**20} MiB; "
                                                 "not a cluster description")])
    try:
        return data.decode()
    except UnicodeDecodeError as e:
        raise ConfigError(str(path), [("(file)", f"cannot be read: not UTF-8 text ({e.reason} "
                                                 f"at byte {e.start})")]) from None


def load(path: Path) -> Config:
    return parse(read_text(path), str(path))
