"""The node inventory of a config file, edited in place.

tomlkit keeps every comment, blank line and key order the admin wrote
around the nodes it adds, changes or removes (the tool's own config reading
stays on tomli: config.py). Nothing here writes: the CLI (cli/node.py)
validates the whole edited text with config.parse and hands it to FileOps.
"""
from __future__ import annotations

import csv
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

import tomli as tomllib  # what config.py reads with (tomlkit: 25x slower)
import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, Array, Comment, Table

from . import config as config_mod
from .errors import ConfigError, UsageError

# n[001-064]: one bracket pair of decimal bounds, anything before and after it.
RANGE = re.compile(r"(?P<head>[^\[\]]*)\[(?P<low>[0-9]+)-(?P<high>[0-9]+)\](?P<tail>[^\[\]]*)")
# More nodes than one range makes is a typo (n[1-100000] for n[1-1000]).
MAX_RANGE = 65536
# dhcpd(8) logs a client it gives no address as
#   DHCPDISCOVER from 52:54:00:12:34:56 (name) via eth0: network 192.168.0.0/24: no free leases
#   DHCPDISCOVER from 52:54:00:12:34:56 via eth0: unknown client
# (server/dhcp.c, "no free leases" when no pool or host entry matches, "unknown
# client" under deny unknown-clients); the "(name)" is the client's hostname option.
DISCOVER = re.compile(r"DHCPDISCOVER from (?P<mac>[0-9a-fA-F]{1,2}(?::[0-9a-fA-F]{1,2}){5})(?: \([^)]*\))?"
                      r" via (?P<iface>\S+?):? .*?(?P<why>no free leases|unknown client)")


def expand_names(pattern: str) -> list[str]:
    """'n[001-064]' -> n001 ... n064 (a leading zero in the low bound keeps
    that width); a name without brackets is itself."""
    if "[" not in pattern and "]" not in pattern:
        return [pattern]
    m = RANGE.fullmatch(pattern)
    if not m:
        raise UsageError(f"NAME {pattern!r}: a range is one bracket pair of numbers, like 'n[001-064]'")
    low, high = int(m["low"]), int(m["high"])
    if low > high:
        raise UsageError(f"NAME {pattern!r}: the range runs backwards ({low} > {high})")
    if high - low + 1 > MAX_RANGE:
        raise UsageError(f"NAME {pattern!r}: {high - low + 1} nodes; a range makes at most {MAX_RANGE}")
    width = len(m["low"]) if m["low"].startswith("0") else 0
    return [f"{m['head']}{i:0{width}d}{m['tail']}" for i in range(low, high + 1)]


def macs_from(text: str, source: str) -> list[tuple[str, str]]:
    """The MACs of a --macs file, one a line ('#' comments and blank lines
    ignored), each with where it came from ("macs.txt line 3")."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        value = line.split("#", 1)[0].strip()
        if value:
            out.append((value, f"{source} line {number}"))
    return out


@dataclass(frozen=True)
class Row:
    name: str
    mac: str
    ip: str | None
    origin: str
    group: str | None = None


def rows_from_csv(text: str, source: str) -> list[Row]:
    """`name,mac[,ip[,group]]` lines; a first line naming the columns is a
    header. Blank lines and lines starting with '#' are skipped."""
    rows = []
    first = True   # the first line that is not blank or a comment may be a header
    for number, cells in enumerate(csv.reader(text.splitlines()), 1):
        cells = [c.strip() for c in cells]
        if not any(cells) or cells[0].startswith("#"):
            continue
        header, first = first and [c.lower() for c in cells[:2]] == ["name", "mac"], False
        if header:
            continue
        if not 2 <= len(cells) <= 4:
            raise ConfigError(source, [(f"line {number}", f"has {len(cells)} column(s); "
                                                          "expected name,mac[,ip[,group]]")])
        # The group column names a [[group]]: the whole config's validation checks it (node[i].group).
        rows.append(Row(cells[0], cells[1], (cells[2] if len(cells) > 2 else "") or None, f"{source} line {number}",
                        (cells[3] if len(cells) > 3 else "") or None))
    return rows


def free_addresses(cfg: config_mod.Config, used: Iterable[str], count: int, source: str = "config") -> list[str]:
    """The first count addresses of network.subnet that no one has: not the
    network or broadcast address, the server, the router, or any address in used."""
    net = cfg.network.network
    taken = set()
    for address in (*used, cfg.server.address, cfg.network.broadcast_address,
                    *([cfg.network.router] if cfg.network.router else [])):
        try:
            taken.add(int(ipaddress.IPv4Address(address)))
        except ValueError:   # a CSV row's typo: the whole config's validation names it
            continue
    low, high = int(net.network_address), int(net.broadcast_address)
    if net.prefixlen < 31:   # RFC 3021: a /31 has no network or broadcast address
        low, high = low + 1, high - 1
    out: list[str] = []
    for value in range(low, high + 1):
        if len(out) == count:
            break
        if value not in taken:
            out.append(str(ipaddress.IPv4Address(value)))
    if len(out) < count:
        raise ConfigError(source, [("network.subnet", f"{net} has {len(out)} free address(es) left, "
                                                                f"{count} needed; give the nodes' ip")])
    return out


class Inventory:
    """A config file's text with its [[node]] entries editable.

    origin[i] says where node[i]'s values came from (a line of a file, the
    command line), so a problem config.parse finds with node[i] names it.
    """

    def __init__(self, text: str, source: str):
        self.source = source
        self.original = text
        self.origin: dict[int, str] = {}
        self._doc: tomlkit.TOMLDocument | None = None
        # Nodes added while the file is not parsed by tomlkit (1 s at 10,000
        # nodes): text() appends them to the original text (_appended_text).
        self._appended: list[dict] = []
        self._count: int | None = None   # node entries in the original text
        self._plain: dict | None = None

    def _data(self) -> dict:
        """The original text as plain data (tomli), read once."""
        if self._plain is None:
            self._plain = _loads(self.original, self.source)
        return self._plain

    @property
    def doc(self) -> tomlkit.TOMLDocument:
        """The file as tomlkit's document, parsed on first use."""
        if self._doc is None:
            try:
                self._doc = tomlkit.parse(self.original)
            except TOMLKitError as e:
                raise ConfigError(self.source, [("(file)", f"is not valid TOML: {e}")]) from None
            pending, self._appended = self._appended, []
            for values in pending:
                self._add_to_doc(values)
        return self._doc

    def _nodes(self) -> AoT | Array | None:
        nodes = self.doc.get("node")
        if nodes is not None and not isinstance(nodes, (AoT, Array)):
            raise ConfigError(self.source, [("node", "must be a list of [[node]] tables")])
        return nodes

    def index(self, name: str) -> int:
        for i, node in enumerate(self._nodes() or []):
            if node.get("name") == name:
                return i
        raise ConfigError(self.source, [("node.name", f"no node named {name!r} in the config")])

    def add(self, values: dict, origin: str) -> None:
        if self._doc is None:
            if self._count is None:
                nodes = self._data().get("node", [])
                self._count = len(nodes) if isinstance(nodes, list) else 0
            self._appended.append(values)
            self.origin[self._count + len(self._appended) - 1] = origin
        else:
            self.origin[self._add_to_doc(values)] = origin

    def _add_to_doc(self, values: dict) -> int:
        """Add a node to the tomlkit document; its index."""
        nodes = self._nodes()
        if nodes is None:
            nodes = tomlkit.aot()
            self.doc.append("node", nodes)
        if isinstance(nodes, Array):   # node = [{...}, ...] as written: add the same way
            entry = tomlkit.inline_table()
            entry.update(values)
        else:
            entry = tomlkit.table()
            entry.update(values)
            if len(nodes):
                # One blank line between [[node]] tables, as the examples write them.
                last = nodes[-1]
                if not last.as_string().endswith("\n\n"):
                    last.add(tomlkit.nl())
        nodes.append(entry)
        return len(nodes) - 1

    def remove(self, name: str) -> None:
        i = self.index(name)
        nodes = self._nodes()
        if isinstance(nodes, AoT):
            self._keep_comments_after(nodes, i)
        del nodes[i]
        if not len(nodes):
            del self.doc["node"]
        self.origin = {(k if k < i else k - 1): v for k, v in self.origin.items() if k != i}

    def _keep_comments_after(self, nodes: AoT, i: int) -> None:
        """tomlkit keeps the comment lines between two [[node]] tables at the
        end of the first: they stand above the next node (`# rack 2`) and
        must not go with the removed one, so they move to the table before it
        (the previous node, or the table above the first [[node]])."""
        body = nodes[i].value.body
        k = len(body)
        while k and body[k - 1][0] is None:
            k -= 1
        trailing = [item for _, item in body[k:]]
        if not any(isinstance(item, Comment) for item in trailing):
            return
        if i > 0:
            above = nodes[i - 1]
        else:
            items = [item for _, item in self.doc.body]
            at = next(j for j, item in enumerate(items) if item is nodes)
            above = items[at - 1] if at and isinstance(items[at - 1], Table) else None
        if above is None:   # [[node]] first in the file, under no table: nowhere to keep them
            return
        for item in trailing:
            above.value.append(None, item)

    def set(self, name: str, values: dict, origin: str) -> None:
        i = self.index(name)
        node = self._nodes()[i]
        for key, value in values.items():
            node[key] = value
        self.origin[i] = origin

    def text(self) -> str:
        if self._doc is None and self._appended and (fast := self._appended_text()) is not None:
            return fast
        return tomlkit.dumps(self.doc)

    def _appended_text(self) -> str | None:
        """The original text with the added nodes as [[node]] tables after it,
        the bytes tomlkit would write, when that is what the file means once
        read back (the original's last table is [[node]], or no table is
        named node); None otherwise (node = [...] inline: tomlkit's way)."""
        tables = "\n".join("[[node]]\n" + tomlkit.dumps(values) for values in self._appended)
        gap = "" if self.original.endswith("\n\n") or not self.original else \
            "\n" if self.original.endswith("\n") else "\n\n"
        text = self.original + gap + tables
        nodes = self._data().get("node", [])
        if not isinstance(nodes, list):
            return None
        want = {**self._data(), "node": nodes + self._appended}
        try:
            return text if tomllib.loads(text) == want else None
        except tomllib.TOMLDecodeError:
            return None

    def validated(self) -> tuple[str, config_mod.Config]:
        """The edited text and its Config, parsed whole by the tool's own
        validation; a problem with an edited node names where it came from."""
        text = self.text()
        try:
            return text, config_mod.parse(text, self.source)
        except ConfigError as e:
            nodes = (self._nodes() or []) if self._doc is not None else [*self._data().get("node", []), *self._appended]
            names = [n.get("name") if isinstance(n, dict) else None for n in nodes]
            problems = []
            for field, msg in e.problems:
                # "(also node[3])" says which entry; its name says which node.
                msg = re.sub(r"\(also node\[(\d+)\]\)", lambda m: f"(also node[{m[1]}], {names[int(m[1])]!r}"
                             + (f", from {self.origin[int(m[1])]})" if int(m[1]) in self.origin else ")"), msg)
                m = re.match(r"node\[(\d+)\]", field)
                where = self.origin.get(int(m[1])) if m else None
                problems.append((field, f"{msg} (from {where})" if where else msg))
            raise ConfigError(e.source, problems) from None


def _loads(text: str, source: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(source, [("(file)", f"is not valid TOML: {e}")]) from None


def discovered(log: str) -> list[dict]:
    """The clients dhcpd refused, from its log lines: one entry per MAC,
    in the order first seen, with the interface, why, how often and the last line."""
    seen: dict[str, dict] = {}
    for line in log.splitlines():
        m = DISCOVER.search(line)
        if not m:
            continue
        mac = ":".join(f"{int(part, 16):02x}" for part in m["mac"].split(":"))
        entry = seen.setdefault(mac, {"mac": mac, "via": m["iface"], "why": m["why"], "count": 0})
        entry["count"] += 1
        entry["last"] = line[:m.start()].strip()   # the syslog/journal time stamp and host
    return list(seen.values())
