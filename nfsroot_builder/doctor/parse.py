"""Read-only parsers for what the doctor inspects: exports(5), ganesha
EXPORT blocks, dhcpd.conf(5) host declarations, interfaces(5), shell-style
default files, nfs.conf(5), and the file list of an initramfs (newc cpio,
possibly compressed, possibly several archives in a row)."""
from __future__ import annotations

import bz2
import ipaddress
import lzma
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..files import split_block

# -- exports(5) ---------------------------------------------------------------


@dataclass
class Client:
    host: str                    # "*" or "" (world: options with no host before them)
    options: list[str] | None    # None: no options given (exports(5) defaults: ro, root_squash)
    spaced_after: str | None = None   # "host (opts)": the host the space cut these options from

    @property
    def world(self) -> bool:
        return self.host in ("", "*")

    def has(self, opt: str) -> bool:
        return opt in (self.options or [])

    @property
    def rw(self) -> bool:
        return self.has("rw")

    @property
    def root_squash(self) -> bool:
        # exports(5): root_squash is the default; no_root_squash / no_all_squash turn it off.
        return not self.has("no_root_squash")


@dataclass
class Export:
    file: Path
    line: int
    path: str
    clients: list[Client]
    text: str                    # the logical line (continuations joined)


def _logical_lines(text: str):
    buf, start = "", 0
    for n, line in enumerate(text.splitlines(), 1):
        if not buf:
            start = n
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        yield start, buf + line
        buf = ""
    if buf:
        yield start, buf


def parse_exports(text: str, file: Path) -> list[Export]:
    """exports(5): `path client(opts) client(opts)`; `-opts` sets defaults; a
    token starting with '(' has no host, so it applies to the world."""
    out: list[Export] = []
    for lineno, line in _logical_lines(text):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith('"'):
            end = line.find('"', 1)
            path, rest = (line[1:end], line[end + 1:]) if end > 0 else (line[1:], "")
        else:
            path, _, rest = line.partition(" ") if " " in line else line.partition("\t")
            if "\t" in path:
                path, _, more = path.partition("\t")
                rest = more + " " + rest
        defaults: list[str] = []
        clients: list[Client] = []
        for tok in rest.split():
            if tok.startswith("-") and not clients:
                defaults = tok[1:].split(",")
                continue
            if tok.startswith("("):
                prev = clients[-1] if clients and clients[-1].options is None else None
                clients.append(Client("", defaults + tok.strip("()").split(","),
                                      spaced_after=prev.host if prev else None))
                continue
            m = re.match(r"^([^()]*)(?:\((.*)\))?$", tok)
            host, opts = (m.group(1), m.group(2)) if m else (tok, None)
            clients.append(Client(host, defaults + opts.split(",") if opts is not None
                                  else (defaults or None)))
        if not clients:   # exports(5): a path alone is exported to the world, with defaults
            clients.append(Client("", defaults or None))
        out.append(Export(file, lineno, path.rstrip("/") or "/", clients, line))
    return out


def parse_ganesha(text: str, file: Path) -> list[Export]:
    """EXPORT blocks of ganesha-export-config(8) as Export entries: enough
    for 'who may write, and is root squashed' (the questions the checks ask)."""
    out: list[Export] = []
    for m in re.finditer(r"^\s*EXPORT\s*\{", text, re.MULTILINE | re.IGNORECASE):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        body = text[m.end():i - 1]
        line = text.count("\n", 0, m.start()) + 1
        path = re.search(r'\bPath\s*=\s*"?([^";]+)"?\s*;', body, re.IGNORECASE)
        squash = re.search(r"\bSquash\s*=\s*\"?(\w+)", body, re.IGNORECASE)
        no_squash = bool(squash) and squash.group(1).lower() in ("no_root_squash", "none", "noidsquash",
                                                                 "no_squash")
        outer = re.sub(r"CLIENT\s*\{[^}]*\}", "", body, flags=re.IGNORECASE)
        top_access = re.search(r"\bAccess_Type\s*=\s*(\w+)", outer, re.IGNORECASE)
        clients: list[Client] = []
        for c in re.finditer(r"CLIENT\s*\{([^}]*)\}", body, re.IGNORECASE):
            who = re.search(r'\bClients\s*=\s*"?([^";]+)"?\s*;', c.group(1), re.IGNORECASE)
            acc = re.search(r"\bAccess_Type\s*=\s*(\w+)", c.group(1), re.IGNORECASE)
            access = (acc or top_access).group(1).lower() if (acc or top_access) else "none"
            for host in (who.group(1) if who else "*").split(","):
                opts = ["rw" if access == "rw" else "ro"] + (["no_root_squash"] if no_squash else [])
                clients.append(Client(host.strip(), opts))
        if not clients and top_access and top_access.group(1).lower() != "none":
            clients.append(Client("*", ["rw" if top_access.group(1).lower() == "rw" else "ro"]
                                  + (["no_root_squash"] if no_squash else [])))
        if path:
            out.append(Export(file, line, path.group(1).strip().rstrip("/") or "/", clients,
                              f"EXPORT {{ Path = {path.group(1).strip()}; ... }}"))
    return out


def covers(spec: str, target: str) -> bool:
    """Does exports(5) client spec `spec` include the client `target` (an
    address, a network, or a literal spec)? Host names only match literally."""
    if spec in ("", "*") or spec == target:
        return True
    try:
        want = ipaddress.IPv4Network(target, strict=False)
        have = ipaddress.IPv4Network(spec, strict=False)
    except ValueError:
        return False
    return want.subnet_of(have)


# -- dhcpd.conf(5) --------------------------------------------------------------


@dataclass
class DhcpHost:
    name: str
    macs: list[str]
    addresses: list[str]
    line: int
    ours: bool               # inside our managed block


def _strip_comments(text: str) -> str:
    """Remove '#' comments (dhcpd.conf(5)) but not a '#' inside a quoted string."""
    out, quoted = [], False
    i = 0
    while i < len(text):
        c = text[i]
        if c == '"' and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        if c == "#" and not quoted:
            j = text.find("\n", i)
            i = len(text) if j < 0 else j
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _hosts_in(text: str, ours: bool, line_offset: int) -> list[DhcpHost]:
    # Strings go too (same length, so offsets and line numbers hold): a
    # "host x {" inside an option's string is not a declaration.
    clean = re.sub(r'"(?:[^"\\\n]|\\.)*"', lambda m: '"' + " " * (len(m.group()) - 2) + '"',
                   _strip_comments(text))
    hosts = []
    for m in re.finditer(r"\bhost\s+(\"[^\"]+\"|[^\s{]+)\s*\{", clean):
        depth, i = 1, m.end()
        while i < len(clean) and depth:
            depth += {"{": 1, "}": -1}.get(clean[i], 0)
            i += 1
        body = clean[m.end():i - 1]
        macs = [x.lower() for x in re.findall(r"hardware\s+ethernet\s+([0-9A-Fa-f:]+)\s*;", body)]
        addrs = []
        for fa in re.findall(r"fixed-address\s+([^;]+);", body):
            addrs += [a.strip() for a in fa.split(",")]
        hosts.append(DhcpHost(m.group(1).strip('"'), macs, addrs,
                              line_offset + clean.count("\n", 0, m.start()), ours))
    return hosts


def dhcpd_hosts(text: str, build: str | None = None) -> list[DhcpHost]:
    """Every host declaration of a dhcpd.conf, marked as ours (build's
    managed block) or not (the admin's, or another build's block)."""
    before, body, after = split_block(text, "#", build, legacy=True)
    hosts = _hosts_in(before, False, 1)
    if body is not None:
        start = before.count("\n") + 2
        hosts += _hosts_in(body, True, start)
        hosts += _hosts_in(after, False, start + body.count("\n") + 1)
    return hosts


# -- interfaces(5) --------------------------------------------------------------

STANZAS = ("iface", "mapping", "auto", "source", "source-directory", "no-auto-down", "no-scripts")


def _is_stanza(word: str) -> bool:
    return word in STANZAS or word.startswith("allow-")


def ifupdown_claims(text: str) -> list[tuple[int, str]]:
    """(line number, interface) of every line that makes ifupdown bring up or
    DHCP-configure a non-loopback interface: `auto X`, `allow-hotplug X`,
    `iface X inet dhcp` (interfaces(5))."""
    found = []
    for n, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] == "auto" or words[0].startswith("allow-"):
            found += [(n, w) for w in words[1:] if w != "lo"]
        elif words[0] == "iface" and len(words) >= 4 and words[1] != "lo" and words[3] == "dhcp":
            found.append((n, words[1]))
    return found


def comment_out_claims(text: str) -> str:
    """The seed's fix, for any NIC name: comment out `auto`/`allow-*` of
    non-loopback interfaces and their `iface ... dhcp` stanzas; lo stays."""
    out: list[str] = []
    in_stanza = False
    for line in text.splitlines(keepends=True):
        words = line.split("#", 1)[0].split()
        if words and _is_stanza(words[0]):
            in_stanza = False
        if not words:
            out.append(line)
            continue
        if words[0] == "auto" or words[0].startswith("allow-"):
            keep = [w for w in words[1:] if w == "lo"]
            if len(keep) != len(words) - 1:
                if keep:
                    out.append(f"{words[0]} {' '.join(keep)}\n")
                out.append("#" + line)
                continue
        elif words[0] == "iface" and len(words) >= 4 and words[1] != "lo" and words[3] == "dhcp":
            in_stanza = True
            out.append("#" + line)
            continue
        out.append("#" + line if in_stanza else line)
    return "".join(out)


# -- shell defaults, nfs.conf(5) -------------------------------------------------


def shell_var(text: str, name: str) -> str | None:
    """The last plain assignment NAME=value in a /etc/default file (a later one wins)."""
    value = None
    for m in re.finditer(rf"^\s*(?:export\s+)?{re.escape(name)}=(\"[^\"]*\"|'[^']*'|\S*)", text, re.MULTILINE):
        value = m.group(1).strip("\"'")
    return value


def ini_value(text: str, section: str, key: str) -> str | None:
    """nfs.conf(5) is ini-style: [section] then key = value; the last one wins."""
    value, current = None, None
    for line in text.splitlines():
        s = line.split("#", 1)[0].strip()
        if s.startswith("[") and s.endswith("]"):
            current = s[1:-1].strip().lower()
        elif "=" in s and current == section:
            k, _, v = s.partition("=")
            if k.strip().lower() == key:
                value = v.strip()
    return value


# -- initramfs -------------------------------------------------------------------

CPIO_MAGIC = (b"070701", b"070702")


def _cpio(data: bytes, pos: int, names: set[str]) -> int:
    """Read one newc archive from pos; return the offset after its trailer."""
    while pos + 110 <= len(data):
        if data[pos:pos + 6] not in CPIO_MAGIC:
            raise ValueError(f"bad cpio header at offset {pos}")
        fields = [int(data[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        filesize, namesize = fields[6], fields[11]
        name = data[pos + 110: pos + 110 + namesize - 1].decode(errors="replace")
        pos = (pos + 110 + namesize + 3) & ~3
        pos = (pos + filesize + 3) & ~3
        if name == "TRAILER!!!":
            return pos
        names.add(name.removeprefix("./"))
    return len(data)


def initrd_names(data: bytes, zstd: Callable[[bytes], bytes] | None = None) -> set[str]:
    """The file names in an initramfs image, like lsinitramfs(8): an optional
    uncompressed early cpio (microcode) followed by a compressed main one."""
    names: set[str] = set()
    pos = 0
    while pos < len(data):
        while pos < len(data) and data[pos] == 0:
            pos += 1
        if pos >= len(data):
            break
        head = data[pos:pos + 6]
        if head in CPIO_MAGIC:
            pos = _cpio(data, pos, names)
            continue
        rest = data[pos:]
        if rest[:2] == b"\x1f\x8b":
            inner = zlib.decompressobj(wbits=47).decompress(rest)
        elif rest[:6] == b"\xfd7zXZ\x00":
            inner = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(rest)
        elif rest[:3] == b"\x5d\x00\x00":
            inner = lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(rest)
        elif rest[:3] == b"BZh":
            inner = bz2.BZ2Decompressor().decompress(rest)
        elif rest[:4] == b"\x28\xb5\x2f\xfd":
            if zstd is None:
                raise ValueError("zstd-compressed and no zstd decompressor available")
            inner = zstd(rest)
        else:
            raise ValueError(f"unknown data at offset {pos} (not cpio, gzip, xz, lzma, bzip2 or zstd)")
        names |= initrd_names(inner, zstd)
        break
    return names
