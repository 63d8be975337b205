"""The build host's own Debian mirror, read from its apt sources.

Both formats are read: deb822 ``*.sources`` (Debian 12+ default) and
one-line ``sources.list``; parsed with python-debian. Security and
backports archives are skipped: a root is bootstrapped from the main archive.
"""
from __future__ import annotations

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


DEBIAN_SUITES = {"stable", "testing", "unstable", "sid", "oldstable", "experimental",
                 "buster", "bullseye", "bookworm", "trixie", "forky", "duke"}
