"""Server-side configuration files: dhcpd, Kea, dnsmasq, tftpd-hpa, NFS exports."""
from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence

from ..config import Config
from . import Served, header, node_dir, quote
from .ha import kea_ha, preferred_servers

# RFC 4578 client system architecture (DHCP option 93): 7 and 9 are x86-64 UEFI.
UEFI_X64 = (7, 9)

LOADER_FILES = {
    "grub": ("boot/grub/i386-pc/core.0", "boot/grub/x86_64-efi/core.efi"),
    "ipxe": ("undionly.kpxe", "ipxe.efi"),
    # lpxelinux.0, not pxelinux.0: see steps/boot_loader.py (PXELINUX_FILES).
    "pxelinux": ("lpxelinux.0", "syslinux.efi"),
}
# boot.secure_boot: UEFI nodes start Debian's signed chain at shim (signed_boot.py).
SHIM_FILE = "boot/shim/shimx64.efi"


def dhcpd_is_uefi() -> str:
    """dhcpd's test for an x86-64 UEFI client. `=` compares two data
    expressions byte for byte (dhcp-eval(5)), and a bare number there is
    read as one byte: `= 7` never matches the two bytes 00:07 a UEFI
    firmware sends, and every UEFI node got the BIOS loader. Hence 00:07."""
    return " or ".join(f"option nfsroot-build-client-arch = 00:{arch:02x}" for arch in UEFI_X64)


def dhcpd_block(cfg: Config, served: Served, root_paths: Mapping[str, str] | None = None) -> str:
    """The managed block for dhcpd.conf: the seed's four parts, for today's ISC dhcpd 4.

    root_paths: node name -> root path (config-level) of a node set to
    another root version than cfg.root.path (a canary, docs/versions.md):
    its host declaration sends that root-path, which wins over the group's
    (dhcpd.conf(5): the most specific scope's option is sent)."""
    net = cfg.network
    lines = [header(cfg).rstrip("\n")]
    # Part 1: generic. Declared names carry our prefix so they cannot clash
    # with an option the admin declared under another name.
    if cfg.boot.loader == "pxegrub":
        lines.append("option nfsroot-build-grub-menu code 150 = string;")
    else:
        lines.append("option nfsroot-build-client-arch code 93 = unsigned integer 16;")
        # iPXE's encapsulated options (option 175). no-pxedhcp: without it iPXE
        # waits for ProxyDHCP offers after our offer, ~10 s per boot
        # (https://ipxe.org/cfg/no-pxedhcp).
        lines.append("option space nfsroot-build-ipxe;")
        lines.append("option nfsroot-build-ipxe-encap code 175 = encapsulate nfsroot-build-ipxe;")
        lines.append("option nfsroot-build-ipxe.no-pxedhcp code 176 = unsigned integer 8;")
    # Part 3: the cluster subnet; part 2's site options live in its scope so
    # that the admin's global options for other subnets stay untouched.
    lines.append(f"subnet {net.network.network_address} netmask {net.network.netmask} {{")
    lines.append("  deny unknown-clients;")
    lines.append("  ignore bootp;")
    lines.append("  option dhcp-max-message-size 2048;")
    if net.router:
        lines.append(f"  option routers {net.router};")
    lines.append(f"  option broadcast-address {net.broadcast_address};")
    if net.domain:
        lines.append(f"  option domain-name {quote(net.domain)};")
    if net.dns_servers:
        lines.append(f"  option domain-name-servers {', '.join(net.dns_servers)};")
    if net.ntp_servers:
        lines.append(f"  option ntp-servers {', '.join(net.ntp_servers)};")
    lines.append("}")
    # Part 4: what the nodes boot.
    root = served.path(cfg.root.path)
    lines.append("group {")
    lines.append("  use-host-decl-names on;")
    lines.append(f"  next-server {cfg.server.address};")
    if cfg.boot.loader != "pxegrub":
        lines.append("  option nfsroot-build-ipxe.no-pxedhcp 1;")
    lines.append(f"  option root-path {quote(f'{cfg.server.address}:{root}')};")
    if cfg.boot.loader == "pxegrub":
        lines.append('  filename "/pxegrub";')
        lines.append('  option nfsroot-build-grub-menu = concat("(nd)/grub/", host-decl-name);')
    elif cfg.boot.loader == "ipxe":
        bios, uefi = LOADER_FILES["ipxe"]
        # Firmware PXE gets the iPXE binary; iPXE itself (QEMU's ROM, or the
        # chainloaded binary) gets the script that picks the node's menu.
        lines.append('  if exists user-class and option user-class = "iPXE" {')
        lines.append('    filename "ipxe/boot.ipxe";')
        lines.append(f"  }} elsif {dhcpd_is_uefi()} {{")
        lines.append(f"    filename {quote(uefi)};")
        lines.append("  } else {")
        lines.append(f"    filename {quote(bios)};")
        lines.append("  }")
    else:
        _ipxe, bios, uefi = boot_files(cfg)
        lines.append(f"  if {dhcpd_is_uefi()} {{")
        lines.append(f"    filename {quote(uefi)};")
        lines.append("  } else {")
        lines.append(f"    filename {quote(bios)};")
        lines.append("  }")
    own = root_paths or {}

    def host(node, indent: str, scope_path: str | None) -> str:
        path = own.get(node.name)
        extra = f" option root-path {quote(root_path(cfg, served, path))};" if path and path != scope_path else ""
        return f"{indent}host {node.name} {{ hardware ethernet {node.mac}; fixed-address {node.ip};{extra} }}"

    lines += [host(n, "  ", None) for n in cfg.nodes if not n.group]
    # A group {} per [[group]] (issue 11): its nodes' shared root-path once,
    # in the group's scope; a node sent elsewhere (a canary) keeps its own in
    # its host declaration, the more specific scope (dhcpd.conf(5)).
    for g in cfg.group:
        members = [n for n in cfg.nodes if n.group == g.name]
        if not members:
            continue
        paths = {own.get(n.name) for n in members}
        shared = paths.pop() if len(paths) == 1 else None
        lines.append(f"  group {{   # [[group]] {g.name}")
        if shared:
            lines.append(f"    option root-path {quote(root_path(cfg, served, shared))};")
        lines += [host(n, "    ", shared) for n in members]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def boot_files(cfg: Config) -> tuple[str | None, str, str]:
    """(file for iPXE clients or None, BIOS file, UEFI file) for the loader.

    iPXE (QEMU's ROM, or the chainloaded binary) identifies itself with
    user-class "iPXE" and option 175; it gets the script that picks the
    node's menu, the firmware's PXE gets the loader binary.
    """
    if cfg.boot.loader == "ipxe":
        return ("ipxe/boot.ipxe", *LOADER_FILES["ipxe"])
    if cfg.boot.secure_boot:   # UEFI nodes start Debian's signed chain at shim
        return (None, LOADER_FILES["grub"][0], SHIM_FILE)
    return (None, *LOADER_FILES["pxelinux" if cfg.boot.loader == "pxelinux" else "grub"])


def kea_json(text: str) -> dict:
    """A Kea config as written by kea_config() (header comment lines, then JSON) as data."""
    return json.loads("\n".join(line for line in text.splitlines() if not line.startswith("#")))


def root_path(cfg: Config, served: Served, path: str | None = None) -> str:
    """DHCP option 17: server:path of cfg.root.path, or of path (another version's tree)."""
    return f"{cfg.server.address}:{served.path(path or cfg.root.path)}"


def kea_config(cfg: Config, served: Served, root_paths: Mapping[str, str] | None = None,
               ha: dict | None = None, preferred: Mapping[str, tuple[str, Served]] | None = None) -> str:
    """/etc/kea/kea-dhcp4-nfsroot-build.conf: a whole Kea DHCPv4 config (kea-dhcp4(8)).

    The same answers as dhcpd_block(): a subnet without pools, so only the
    reserved MACs get an address (dhcpd's deny unknown-clients), each with its
    host name; next-server, root-path, the site options; the boot file by
    client class (iPXE by user-class, UEFI by option 93, BIOS otherwise).
    root_paths (see dhcpd_block): a node set to another version gets its
    root-path in its reservation, whose options win over the subnet's.
    preferred: node -> (address, served paths) of the node's preferred
    server (render.ha.preferred_servers; by default cfg's, cfg taken as the
    base config): its reservation's next-server and root-path name that
    server, on every server.
    """
    net = cfg.network
    if preferred is None:
        preferred = preferred_servers(cfg, served)
    ipxe, bios, uefi = boot_files(cfg)
    is_ipxe = "option[77].hex == 'iPXE'"
    is_uefi = " or ".join(f"option[93].hex == 0x{arch:04x}" for arch in UEFI_X64)
    classes = []
    if ipxe:
        classes.append({"name": "nfsroot-build-ipxe", "test": is_ipxe, "boot-file-name": ipxe,
                        # iPXE's no-pxedhcp (see dhcpd_block): no wait for ProxyDHCP offers.
                        "option-data": [{"name": "nfsroot-build-ipxe-encap", "always-send": True},
                                        {"space": "nfsroot-build-ipxe", "name": "no-pxedhcp", "data": "1"}]})
        not_ipxe = f"not ({is_ipxe}) and "
    else:
        not_ipxe = ""
    classes.append({"name": "nfsroot-build-uefi", "test": f"{not_ipxe}({is_uefi})", "boot-file-name": uefi})
    classes.append({"name": "nfsroot-build-bios", "test": f"{not_ipxe}not ({is_uefi})", "boot-file-name": bios})
    # always-send: Kea answers only options a client asks for (its PRL) otherwise.
    options = [{"name": "root-path", "data": root_path(cfg, served), "always-send": True},
               {"name": "broadcast-address", "data": net.broadcast_address}]
    if net.router:
        options.append({"name": "routers", "data": net.router})
    if net.domain:
        options.append({"name": "domain-name", "data": net.domain})
    if net.dns_servers:
        options.append({"name": "domain-name-servers", "data": ", ".join(net.dns_servers)})
    if net.ntp_servers:
        options.append({"name": "ntp-servers", "data": ", ".join(net.ntp_servers)})
    dhcp4 = {
        "interfaces-config": {"interfaces": [cfg.server.interface]},
        "lease-database": {"type": "memfile", "lfc-interval": 3600},
        "valid-lifetime": 43200,
        "option-def": [
            {"space": "dhcp4", "name": "nfsroot-build-ipxe-encap", "code": 175, "type": "empty",
             "encapsulate": "nfsroot-build-ipxe"},
            {"space": "nfsroot-build-ipxe", "name": "no-pxedhcp", "code": 176, "type": "uint8"},
        ],
        "client-classes": classes,
        "subnet4": [{
            "id": 1,
            "subnet": str(net.network),
            "next-server": cfg.server.address,
            "option-data": options,
            "reservations-global": False, "reservations-in-subnet": True, "reservations-out-of-pool": True,
            "reservations": [_kea_reservation(cfg, served, n, (root_paths or {}).get(n.name), preferred.get(n.name))
                             for n in cfg.nodes],
        }],
        "loggers": [{"name": "kea-dhcp4", "severity": "INFO", "output_options": [{"output": "stdout"}]}],
    }
    if ha is None and cfg.servers:
        ha = kea_ha(cfg)
    if ha:
        dhcp4.update(ha)
    # Kea's parser takes #-comments (kea-dhcp4(8), "Configuration file").
    return header(cfg) + json.dumps({"Dhcp4": dhcp4}, indent=2) + "\n"


def _kea_reservation(cfg: Config, served: Served, node, own_root: str | None,
                     preferred: tuple[str, Served] | None = None) -> dict:
    res = {"hw-address": node.mac, "ip-address": node.ip, "hostname": node.name}
    if preferred:
        # A reservation's next-server wins over the subnet's (Kea ARM,
        # "Reserving Next Server, Server Hostname, and Boot File Name").
        address, where = preferred
        res["next-server"] = address
        data = f"{address}:{where.path(own_root or cfg.root.path)}"
        res["option-data"] = [{"name": "root-path", "data": data, "always-send": True}]
    elif own_root:
        res["option-data"] = [{"name": "root-path", "data": root_path(cfg, served, own_root), "always-send": True}]
    return res


def dnsmasq_dropin(cfg: Config, served: Served, root_paths: Mapping[str, str] | None = None) -> str:
    """/etc/dnsmasq.d/nfsroot-build-<name>.conf, for dhcp.server "dnsmasq" or "dnsmasq-proxy".

    Everything is tagged with the cluster's tag, so the admin's own ranges
    and options in the same dnsmasq stay as they are. "dnsmasq": a static
    range (only the dhcp-host MACs get an address, each with its name) with
    root-path and the site options, the boot file by tag (dhcp-boot).
    "dnsmasq-proxy": a proxy range: the site's DHCP server gives the address
    and name; we add only the PXE boot service (pxe-service: a filename with
    an extension is sent as it is, no ".0" added).
    root_paths (see dhcpd_block): a node set to another version is tagged
    by its dhcp-host line and gets that version's root-path; the cluster's
    root-path line excludes those tags, so no two lines compete.
    """
    net = cfg.network
    tag = f"nrb-{cfg.name}"
    ipxe, bios, uefi = boot_files(cfg)
    server = cfg.server.address
    out = [header(cfg).rstrip("\n")]
    # iPXE sends its encapsulated options (175) in every request.
    out.append("dhcp-match=set:nrb-ipxe,175")
    # RFC 4578 client system architecture (option 93): 7 and 9 are x86-64 UEFI.
    out += [f"dhcp-match=set:nrb-efi64,option:client-arch,{arch}" for arch in UEFI_X64]
    if cfg.dhcp.server == "dnsmasq-proxy":
        out.append(f"dhcp-range=set:{tag},{net.network.network_address},proxy,{net.network.netmask}")
        for csa, loader in (("x86PC", bios), ("X86-64_EFI", uefi)):
            if ipxe:
                out.append(f'pxe-service=tag:{tag},tag:nrb-ipxe,{csa},"nfsroot-build {cfg.name}",{ipxe},{server}')
                out.append(f'pxe-service=tag:{tag},tag:!nrb-ipxe,{csa},"nfsroot-build {cfg.name}",{loader},{server}')
            else:
                out.append(f'pxe-service=tag:{tag},{csa},"nfsroot-build {cfg.name}",{loader},{server}')
        return "\n".join(out) + "\n"
    out.append(f"dhcp-range=set:{tag},{net.network.network_address},static,{net.network.netmask},12h")
    own = root_paths or {}
    # One tag per other root (nrb-<name>-root1, ...), in the order of their paths.
    other = {path: f"{tag}-root{i}" for i, path in enumerate(sorted(set(own.values())), 1)}
    out += [f"dhcp-host={n.mac},{f'set:{other[own[n.name]]},' if n.name in own else ''}{n.ip},{n.name}"
            for n in cfg.nodes]
    unless = "".join(f"tag:!{t}," for t in other.values())
    out.append(f"dhcp-option=tag:{tag},{unless}option:root-path,{quote(root_path(cfg, served))}")
    out += [f"dhcp-option=tag:{t},option:root-path,{quote(root_path(cfg, served, path))}" for path, t in other.items()]
    out.append(f"dhcp-option=tag:{tag},28,{net.broadcast_address}")
    # dnsmasq sends itself as router and DNS unless told otherwise.
    out.append(f"dhcp-option=tag:{tag},option:router" + (f",{net.router}" if net.router else ""))
    out.append(f"dhcp-option=tag:{tag},option:dns-server" + "".join(f",{d}" for d in net.dns_servers))
    if net.domain:
        out.append(f"dhcp-option=tag:{tag},option:domain-name,{net.domain}")
    if net.ntp_servers:
        out.append(f"dhcp-option=tag:{tag},option:ntp-server," + ",".join(net.ntp_servers))
    if ipxe:
        # iPXE's no-pxedhcp (see dhcpd_block).
        out.append(f"dhcp-option=tag:{tag},tag:nrb-ipxe,encap:175,176,1")
        out.append(f"dhcp-boot=tag:{tag},tag:nrb-ipxe,{ipxe},,{server}")
        not_ipxe = "tag:!nrb-ipxe,"
    else:
        not_ipxe = ""
    out.append(f"dhcp-boot=tag:{tag},{not_ipxe}tag:nrb-efi64,{uefi},,{server}")
    out.append(f"dhcp-boot=tag:{tag},{not_ipxe}tag:!nrb-efi64,{bios},,{server}")
    return "\n".join(out) + "\n"


def dhcpd_defaults_block(cfg: Config) -> str:
    """For /etc/default/isc-dhcp-server (a shell file the init script
    sources): the cluster interface added to INTERFACESv4 unless it is in
    it already. Added, not assigned: each build side by side has a block
    here, and an assignment in a later block would drop the earlier build's
    interface. Debian's file sets INTERFACESv4="", so one build alone gets
    just its interface."""
    iface = cfg.server.interface
    return (f'case " $INTERFACESv4 " in *" {iface} "*) ;; '
            f'*) INTERFACESv4="${{INTERFACESv4:+$INTERFACESv4 }}{iface}" ;; esac\n')


def tftpd_defaults_block(cfg: Config, served: Served) -> str:
    """For /etc/default/tftpd-hpa (the seed's RUN_DAEMON/OPTIONS, today's names)."""
    return (
        'TFTP_USERNAME="tftp"\n'
        f'TFTP_DIRECTORY="{served.path(cfg.tftp.root)}"\n'
        'TFTP_ADDRESS=":69"\n'
        # --secure: chroot to the TFTP root, paths are relative to it (tftpd(8)).
        'TFTP_OPTIONS="--secure"\n'
    )


def _root_versions(cfg: Config, roots: list[tuple[int, str]] | None) -> list[tuple[int, str]]:
    """(version id, config-level path) of every root version to export; by
    default the config's root.path alone, as version 1."""
    return roots if roots else [(1, cfg.root.path)]


def export_id(vid: int, index: int) -> int:
    """Ganesha's Export_Id of a version's index-th export. It is part of every
    NFS file handle the server gives out, so it must never change while the
    version exists: derived from the version id, never from a position in the
    list. Version 1 keeps 0.1's ids (100 the root, then its writable trees or
    the nodes' directories: up to 10,100 for 10,000 nodes); version N >= 2
    gets 20000 + 10 N + index (Export_Id is 16 bits: up to version 4,550)."""
    return (100 if vid == 1 else 20000 + 10 * vid) + index


def exports(cfg: Config, served: Served, roots: list[tuple[int, str]] | None = None,
            group_roots: Sequence[str] = ()) -> str:
    """/etc/exports.d drop-in: read-only root, the layout's writable exports.
    group_roots: the config-level paths of the group roots' versions
    (groups.py), read-only exports too (their layouts have no writable tree).

    Options follow the seed: no_root_squash (root on the nodes owns the
    root's files), no_subtree_check; async for the read-only root, sync for
    writable trees so a node crash loses nothing acknowledged.
    """
    clients = cfg.nfs_clients
    out = [header(cfg).rstrip("\n")]
    for _vid, path in _root_versions(cfg, roots):
        root = served.path(path)
        out.append(f"{root} {clients}(ro,async,no_root_squash,no_subtree_check)")
        for d in cfg.root.writable_dirs:
            if cfg.root.layout == "per-node":
                continue
            out.append(f"{root}/{d} {clients}(rw,sync,no_root_squash,no_subtree_check)")
    if cfg.root.layout == "per-node":
        for node in cfg.nodes:
            out.append(f"{node_dir(cfg, served, node.name)} {node.ip}(rw,sync,no_root_squash,no_subtree_check)")
    out += [f"{served.path(path)} {clients}(ro,async,no_root_squash,no_subtree_check)" for path in group_roots]
    return "\n".join(out) + "\n"


# Group roots' Export_Ids: 40000 up, far above the default root's (export_id).
GROUP_EXPORT_IDS = (40000, 65535)


def group_export_ids(paths: Sequence[str]) -> dict[str, int]:
    """A group root version's Export_Id, from its path (crc32): like
    export_id, it must not change while the version exists, so it is not a
    position in the list. A clash (two paths, one id) takes the next free id."""
    low, high = GROUP_EXPORT_IDS
    out: dict[str, int] = {}
    for path in sorted(paths):
        eid = low + zlib.crc32(path.encode()) % (high - low)
        while eid in out.values():
            eid = low + (eid - low + 1) % (high - low)
        out[path] = eid
    return out


def ganesha_client(spec: str) -> str:
    """A client for ganesha.conf's Clients list: addresses, networks, host names
    and @netgroups as bare tokens (a quoted "10.0.0.0/16" is rejected: "Expected
    a client, got a double quoted string", and the export is dropped); only a
    wildcard pattern is quoted (ganesha.conf(5), EXPORT { CLIENT {} })."""
    return quote(spec) if any(c in spec for c in "*?[") else spec


def ganesha_exports(cfg: Config, served: Served, roots: list[tuple[int, str]] | None = None,
                    group_roots: Sequence[str] = ()) -> str:
    """NFS-Ganesha exports equivalent to exports(): NFSv3 (what the Debian
    initramfs mounts) and v4, no root squash, restricted to the clients."""
    clients = cfg.nfs_clients
    entries: list[tuple[int, str, str, str]] = []
    for vid, root in _root_versions(cfg, roots):
        entries.append((export_id(vid, 0), served.path(root), "RO", clients))
        if cfg.root.layout != "per-node":
            entries += [(export_id(vid, i), f"{served.path(root)}/{d}", "RW", clients)
                        for i, d in enumerate(cfg.root.writable_dirs, start=1)]
    if cfg.root.layout == "per-node":
        # The nodes' own directories follow version 1's root export (ids as in 0.1).
        entries += [(export_id(1, i), node_dir(cfg, served, n.name), "RW", n.ip)
                    for i, n in enumerate(cfg.nodes, start=1)]
    entries += [(eid, served.path(path), "RO", clients) for path, eid in group_export_ids(group_roots).items()]
    out = [header(cfg).rstrip("\n")]
    for export_id_, path, access, who in entries:
        out += [
            "EXPORT {",
            f"  Export_Id = {export_id_};",
            f"  Path = {quote(path)};",
            f"  Pseudo = {quote(path)};",
            "  Protocols = 3, 4;",
            "  Transports = TCP, UDP;",
            "  Access_Type = None;",
            "  Squash = No_Root_Squash;",
            "  SecType = sys;",
            "  FSAL { Name = VFS; }",
            f"  CLIENT {{ Clients = {ganesha_client(who)}; Access_Type = {access}; }}",
            "}",
        ]
    return "\n".join(out) + "\n"
