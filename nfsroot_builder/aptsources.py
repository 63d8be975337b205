"""The build host's own Debian mirror, read from its apt sources.

Both formats are read: deb822 ``*.sources`` (Debian 12+ default) and
one-line ``sources.list``; parsed with python-debian. Security and
backports archives are skipped: a root is bootstrapped from the main archive.
"""
from __future__ import annotations

import base64
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError


def _candidates(etc_apt: Path):
    from debian.deb822 import Deb822  # here: python-debian is ~12 ms of every command's start-up
    lists = [etc_apt / "sources.list"] + sorted((etc_apt / "sources.list.d").glob("*.list"))
    for path in sorted((etc_apt / "sources.list.d").glob("*.sources")):
        with open(path) as f:
            for para in Deb822.iter_paragraphs(f):
                if "deb" not in para.get("Types", "").split() or para.get("Enabled", "yes") == "no":
                    continue
                for uri in para.get("URIs", "").split():
                    yield uri, para.get("Suites", "").split()
    for path in lists:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) < 3 or words[0] != "deb":
                continue
            words = _without_options(words[1:])
            if len(words) >= 2:
                yield words[0], [words[1]]


def host_security_uri(etc_apt: Path = Path("/etc/apt")) -> str | None:
    """The first security archive URI in the host's apt sources (a *-security suite)."""
    for uri, suites in _candidates(etc_apt):
        if any(s.endswith("-security") for s in suites):
            return uri.rstrip("/")
    return None


def _without_options(words: list[str]) -> list[str]:
    """The words after "deb" without the option group: sources.list(5)'s
    one-line format allows `[ opt=v opt=v ... ]`, any number of options,
    with or without blanks inside the brackets."""
    if not words or not words[0].startswith("["):
        return words
    for i, word in enumerate(words):
        if word.endswith("]"):
            return words[i + 1:]
    return []   # "[" never closed: not a line apt would accept either


def host_mirror(etc_apt: Path = Path("/etc/apt")) -> str:
    """The first Debian main-archive URI in the host's apt sources."""
    for uri, suites in _candidates(etc_apt):
        if any(s.endswith(("-security", "/updates")) for s in suites) or "security" in uri:
            continue
        if not any(s.split("-")[0] in DEBIAN_SUITES for s in suites):
            continue
        return uri.rstrip("/")
    raise UsageError(f"no Debian mirror found in {etc_apt}/sources.list or sources.list.d; "
                     "set root.mirror in the config")


# -- the keys the build host's apt trusts (for debootstrap) ---------------------------

DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


def dearmor(text: str) -> bytes:
    """The binary packets of an ASCII-armored OpenPGP block (RFC 4880, 6.2):
    the base64 lines between the header's blank line and the "=" checksum."""
    body, started, in_block = [], False, False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("-----BEGIN PGP"):
            in_block, started = True, False
        elif line.startswith("-----END PGP"):
            in_block = False
        elif in_block and not started:
            started = line == ""        # the armor headers end at the first blank line
        elif in_block and not line.startswith("="):
            body.append(line)
    return base64.b64decode("".join(body))


def host_keyring(etc_apt: Path = Path("/etc/apt"), debian_keyring: Path = DEBIAN_KEYRING) -> bytes:
    """Every key the host's apt trusts as one binary keyring: trusted.gpg,
    trusted.gpg.d/*.gpg and *.asc, the Signed-By keyrings of its deb822
    sources, and Debian's archive keyring. mmdebstrap verifies the mirror
    with apt's own trust; debootstrap only with Debian's keyring unless given
    --keyring (debootstrap(8)), so a site's signed mirror (an air-gapped
    repository, a local snapshot) fails "Invalid Release signature" without
    this. gpgv(1), which debootstrap calls, reads concatenated keys as one
    keyring."""
    files = [etc_apt / "trusted.gpg", *sorted((etc_apt / "trusted.gpg.d").glob("*")), debian_keyring]
    inline: list[str] = []
    for path in sorted((etc_apt / "sources.list.d").glob("*.sources")):
        for signed_by in re.findall(r"^Signed-By:[ \t]*(.*(?:\n[ \t].*)*)", path.read_text(errors="replace"),
                                    re.MULTILINE | re.IGNORECASE):
            if ARMORED_KEY in signed_by:
                # deb822(5): an empty line of the key is written " ."
                inline.append("\n".join("" if line.strip() == "." else line.strip()
                                        for line in signed_by.splitlines()))
            else:
                files += [Path(p) for p in signed_by.split()]
    out, seen = [], set()
    for f in files:
        if f in seen or not f.is_file():
            continue
        seen.add(f)
        data = f.read_bytes()
        if data[8:12] == b"KBXf":
            continue   # a GnuPG keybox, which neither apt nor gpgv's --keyring reads as a keyring
        out.append(dearmor(data.decode(errors="replace")) if data.lstrip().startswith(b"-----BEGIN") else data)
    return b"".join(out) + b"".join(dearmor(text) for text in inline)


DEBIAN_SUITES = {"stable", "testing", "unstable", "sid", "oldstable", "experimental",
                 "buster", "bullseye", "bookworm", "trixie", "forky", "duke"}


# -- root.extra_sources: a site's own repositories (sources.list(5), deb822) ----------

# The file the root's apt reads them from (written by root-packages).
EXTRA_SOURCES = "etc/apt/sources.list.d/nfsroot-build-extra.sources"
ARMORED_KEY = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
_URI = re.compile(r"^(file:/|https?://)[^\s\"'<>]+$")


@dataclass(frozen=True)
class ExtraSource:
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    trusted: bool
    fields: tuple[tuple[str, str], ...]   # the stanza's own fields, in order, Signed-By last

    def indexes(self, arch: str) -> list[str]:
        """URLs of the Packages indexes apt reads for this stanza (without the
        compression suffix): a flat repository (Suites: ./) or a dists/ tree."""
        out = []
        for uri in self.uris:
            for suite in self.suites:
                if suite.endswith("/"):
                    out.append(f"{uri.rstrip('/')}/{suite.rstrip('/')}/Packages".replace("/./", "/"))
                else:
                    out += [f"{uri.rstrip('/')}/dists/{suite}/{c}/binary-{arch}/Packages" for c in self.components]
        return out

    def file_dirs(self) -> list[str]:
        """Host directories of the file: URIs (bound into the root while apt runs)."""
        return [urllib.parse.urlsplit(u).path.rstrip("/") or "/" for u in self.uris if u.startswith("file:")]


def parse_extra_source(stanza: str, key: str = "") -> ExtraSource:
    """One [[root.extra_sources]] entry: a deb822 stanza (sources.list(5)) and
    the repository's armored public key. ValueError names what is wrong."""
    from debian.deb822 import Deb822  # here, not at start-up (see _candidates)
    paras = [p for p in Deb822.iter_paragraphs(stanza.strip().splitlines(True)) if p]
    if len(paras) != 1:
        raise ValueError(f"stanza must be one deb822 paragraph (Types, URIs, Suites, Components), "
                         f"found {len(paras)}")
    para = paras[0]
    types = para.get("Types", "").split()
    if "deb" not in types:
        raise ValueError("stanza needs 'Types: deb'")
    uris = tuple(para.get("URIs", "").split())
    if not uris:
        raise ValueError("stanza needs URIs: (file:/path, http:// or https://)")
    for uri in uris:
        if not _URI.match(uri):
            raise ValueError(f"URIs: {uri!r} is not a file:/, http:// or https:// URI")
    suites = tuple(para.get("Suites", "").split())
    if not suites:
        raise ValueError("stanza needs Suites: (a suite name, or ./ for a flat repository)")
    components = tuple(para.get("Components", "").split())
    flat = all(s.endswith("/") for s in suites)
    if flat and components:
        raise ValueError("Components: must be absent when Suites: is a path ending in / (a flat repository)")
    if not flat and not components:
        raise ValueError("stanza needs Components: (e.g. main)")
    trusted = para.get("Trusted", "no").strip().lower() == "yes"
    signed_by = para.get("Signed-By", "").strip()
    if signed_by and ARMORED_KEY not in signed_by:
        raise ValueError("Signed-By: a keyring path of the build host is not in the root; "
                         "give the armored key in `key` instead")
    key = key.strip()
    if key and signed_by:
        raise ValueError("both `key` and Signed-By: in the stanza; give one")
    if key and not (key.startswith(ARMORED_KEY) and "-----END PGP PUBLIC KEY BLOCK-----" in key):
        raise ValueError(f"key must be an ASCII-armored public key ({ARMORED_KEY} ..., "
                         "as `gpg --export --armor` prints it)")
    if not (key or signed_by or trusted):
        raise ValueError("no signing key: give `key` (the repository's armored public key), "
                         "or 'Trusted: yes' in the stanza for an unsigned repository")
    fields = [(k, v.strip()) for k, v in para.items() if k != "Signed-By"]
    armored = key or "\n".join(line.strip() for line in signed_by.splitlines())
    if armored:
        fields.append(("Signed-By", armored.replace("\n.\n", "\n\n")))
    return ExtraSource(uris, suites, components, trusted, tuple(fields))


def render_extra_sources(sources) -> str | None:
    """The root's nfsroot-build-extra.sources; the key inline in Signed-By
    (apt >= 2.3.10, sources.list(5): "an embedded ASCII-armored key"), its
    empty lines as " ." as deb822 continuation lines need."""
    if not sources:
        return None
    out = ["# Written by nfsroot-build from root.extra_sources; changes here are overwritten.\n"]
    for src in sources:
        lines = []
        for name, value in src.fields:
            if "\n" in value:
                cont = "".join(f"\n {line}" if line.strip() else "\n ." for line in value.splitlines())
                lines.append(f"{name}:{cont}")
            else:
                lines.append(f"{name}: {value}")
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)
