"""Does every package the config names exist? Asked of the suite's own
Packages index before anything is downloaded, so a typo fails in seconds
rather than ten minutes into a bootstrap.

The index is fetched over HTTP (no process: nothing to show in a dry-run,
and a dry-run should fail on a typo too), checked against the SHA256 in the
suite's InRelease file (Release where a repository has none; parsed with
python-debian), read for its Package and
Provides names (a byte-level scan: python-debian's paragraph parser took
6.6 s and 460 MB on the 57 MB main index), and the set of names is
cached next to the .deb cache keyed by that hash: an unchanged suite is
never fetched twice. (The cache is like apt's own lists: not part of the
build, so it is written directly, not through ctx.files; a dry-run and
`check` use it but never write it.)

The InRelease and the decompressed index are kept there too, under the
names apt gives them in /var/lib/apt/lists (apt_lists): mmdebstrap's
`apt-get update` finds them and downloads only InRelease, which it verifies
as always, instead of the 9.7 MB index again (its hashes in the old and the
new InRelease agree, so apt keeps the file it has).
"""
from __future__ import annotations

import hashlib
import json
import lzma
import os
import re
import time
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from . import aptsources
from .context import Context
from .errors import NfsrootError, UsageError
from .files import atomic_write

if TYPE_CHECKING:
    from collections.abc import Iterator

    from debian.deb822 import Release

TIMEOUT = 30


def mirror(ctx: Context) -> str:
    """root.mirror, or the host's own Debian mirror when it is empty."""
    url = ctx.config.root.mirror or aptsources.host_mirror()
    try:
        parts = urllib.parse.urlsplit(url)   # a malformed host (http://[::1) raises here
        if parts.port == 0:                   # ... and a malformed port in .port
            raise ValueError("port 0")
        if parts.scheme != "file" and not parts.hostname:
            raise ValueError("no host")
    except ValueError as e:
        raise UsageError(f"root.mirror {url!r} is not a valid URL ({e})") from None
    return url


class NotFound(NfsrootError):
    """The mirror has no such file (HTTP 404, or no such file: URL)."""


def _fetch(url: str, headers: dict[str, str] | None = None) -> bytes:
    """The file at url; headers, when given, receives the response's headers."""
    return b"".join(_fetch_chunks(url, headers))


def _fetch_chunks(url: str, headers: dict[str, str] | None = None) -> Iterator[bytes]:
    """The file at url, a MiB at a time as it arrives."""
    # Imported here: urllib.request (http, ssl) costs every command ~15 ms of start-up.
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as r:
            if headers is not None:
                headers.update(r.headers.items())
            while chunk := r.read(1 << 20):
                yield chunk
    except ValueError as e:   # urllib's answer to a malformed URL such as http://[::1
        raise UsageError(f"root.mirror: {url} is not a valid URL ({e})") from None
    except urllib.error.HTTPError as e:
        raise (NotFound if e.code == 404 else NfsrootError)(f"cannot fetch {url}: HTTP {e.code}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise (NotFound if isinstance(reason, FileNotFoundError) else NfsrootError)(
            f"cannot fetch {url}: {reason}") from None


# The compressed index read, in order of preference: zlib decompresses the
# 57 MB main index in ~0.15 s, xz in ~0.5 s, while the .gz (13.3 MB) is only
# 3.6 MB larger than the .xz; fetch, hash and decompress of trixie's main
# index took 0.20 s against 0.54 s here. (Streaming the download into the
# decompressor saved ~0.02 s more: kept, it needs no copy of the download.)
COMPRESSIONS = (".gz", ".xz")


def _index_entry(base: str, component: str, arch: str, release: Release) -> tuple[str, str]:
    """(path under dists/<suite>, sha256) of the component's compressed
    Packages index (.gz, else .xz), from the Release file."""
    listed = {e["name"]: e["sha256"] for e in release.get("SHA256", [])}
    for suffix in COMPRESSIONS:
        rel_path = f"{component}/binary-{arch}/Packages{suffix}"
        if rel_path in listed:
            return rel_path, listed[rel_path]
    raise UsageError(f"{base}/Release lists no {component}/binary-{arch}/Packages.xz: is '{arch}' an "
                     f"architecture and '{component}' a component of this suite?")


def _fetch_index(url: str, sha256: str) -> bytes:
    """The compressed index at url, decompressed while it downloads and
    checked against sha256 (the Release file's) before it is used."""
    import zlib
    unpack = zlib.decompressobj(16 + zlib.MAX_WBITS) if url.endswith(".gz") else lzma.LZMADecompressor()
    digest, parts = hashlib.sha256(), []
    try:
        for chunk in _fetch_chunks(url):
            digest.update(chunk)
            parts.append(unpack.decompress(chunk))
    except (zlib.error, lzma.LZMAError, EOFError) as e:
        if digest.hexdigest() == sha256:
            raise NfsrootError(f"cannot decompress {url}: {e}") from None
    if digest.hexdigest() != sha256:
        raise NfsrootError(f"{url} does not match its Release checksum (mirror syncing?)")
    return b"".join(parts)


def _plain_sha256(component: str, arch: str, release: Release) -> str | None:
    """The Release file's SHA256 of the decompressed index (what apt keeps and
    checks), or None where it lists none or lists it more than once."""
    rel_path = f"{component}/binary-{arch}/Packages"
    found = [e["sha256"] for e in release.get("SHA256", []) if e["name"] == rel_path]
    return found[0] if len(found) == 1 else None


def _index(ctx: Context, base: str, component: str, arch: str, release: Release,
           entry: tuple[str, str]) -> bytes:
    """The Packages index at entry (_index_entry's), decompressed, checked
    against the Release file's hashes (of the .gz or .xz, and of the
    decompressed index where it lists one). A real run keeps it for apt
    (apt_lists): apt then does not fetch it again."""
    rel_path, sha256 = entry
    index = _fetch_index(f"{base}/{rel_path}", sha256)
    plain = _plain_sha256(component, arch, release)
    if plain is not None:
        if hashlib.sha256(index).hexdigest() != plain:
            raise NfsrootError(f"{base}/{rel_path} decompressed does not match its Release checksum")
        if not ctx.files.dry_run:
            kept = _kept_index(ctx, component, arch, plain)
            _keep(ctx, kept, index)
            ctx.__dict__.setdefault("_verified_lists", {})[kept] = True
    return index


def _names(ctx: Context, base: str, component: str, arch: str, release: Release) -> set[str]:
    entry = _index_entry(base, component, arch, release)
    cache = _lists_dir(ctx) / f"{component}_{arch}_{entry[1][:20]}.json"
    if cache.exists():
        return set(json.loads(cache.read_text()))
    names = package_names(_index(ctx, base, component, arch, release, entry))
    if not ctx.files.dry_run:   # a dry-run (and check) writes nothing, not even this cache
        atomic_write(cache, json.dumps(sorted(names)).encode(), 0o644)
    return names


def _lists_dir(ctx: Context) -> Path:
    return ctx.apt_cache.parent / "lists"


def _kept_index(ctx: Context, component: str, arch: str, plain_sha256: str) -> Path:
    return _lists_dir(ctx) / f"{component}_{arch}_{plain_sha256[:20]}.Packages"


# Kept InRelease and index files not linked into a root (which changes their
# ctime) for this long are removed when a newer one is kept: a suite such as
# sid changes its 57 MB index four times a day.
KEEP_UNUSED_SECONDS = 3600


def _keep(ctx: Context, path: Path, data: bytes, mtime: float | None = None) -> None:
    """Write a file apt will be handed (written whole and synced, then
    renamed: apt trusts a list file whose hash the new InRelease confirms
    without reading it), and remove older unused ones of its kind."""
    atomic_write(path, data, 0o644)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    kind = path.name.rsplit("_", 1)[0] + "_"
    now = time.time()
    for old in path.parent.glob(f"{kind}*{path.suffix}"):
        try:
            if old != path and now - old.stat().st_ctime > KEEP_UNUSED_SECONDS:
                old.unlink()
        except FileNotFoundError:   # another build removed it first
            pass


def _verified(path: Path, sha256: str, memo: dict) -> bool:
    """Is the kept file there and what the Release file lists? (Checked once
    a run before apt is handed it: 57 MB hashed in ~0.06 s.)"""
    if path not in memo:
        try:
            memo[path] = hashlib.sha256(path.read_bytes()).hexdigest() == sha256
        except FileNotFoundError:
            memo[path] = False
    return memo[path]


# apt's QuoteString (apt-pkg/contrib/strutl.cc) as URItoFileName calls it:
# these characters, '%', and everything outside printable ASCII become %xx.
_APT_QUOTED = set('\\|{}[]<>"^~_=!@#$%&*')


def apt_list_name(uri: str) -> str:
    """The name apt gives a file of uri in /var/lib/apt/lists: URItoFileName
    (apt-pkg/contrib/strutl.cc): no scheme, user or password, some
    characters %-quoted, '/' -> '_'.
    http://deb.debian.org/debian/dists/trixie/InRelease ->
    deb.debian.org_debian_dists_trixie_InRelease."""
    parts = urllib.parse.urlsplit(uri)
    text = parts.netloc.rpartition("@")[2] + (parts.path or "/")
    quoted = "".join(f"%{b:02x}" if chr(b) in _APT_QUOTED or b <= 0x20 or b >= 0x7F else chr(b)
                     for b in text.encode())
    return quoted.replace("/", "_")


def apt_lists(ctx: Context) -> list[tuple[Path, str]]:
    """(kept file, its name in the root's /var/lib/apt/lists) of the suite's
    InRelease and of each component's decompressed index, for mmdebstrap's
    `apt-get update` to find (bootstrap's setup hook links them in).

    apt verifies the InRelease's signature whether it is fetched again or an
    If-Modified-Since hit (the file keeps the server's Last-Modified as its
    mtime, as apt's own does), and keeps an index without downloading it only
    when the new InRelease lists the same hashes as the old one: every index
    handed over was checked here against the SHA256 that the kept InRelease
    lists for it. When the mirror changed in between, apt fetches the new
    index. None for a file: mirror (apt reads it in place) or a suite
    without InRelease. A real run fetches and keeps what is missing; a
    dry-run names the same files and writes nothing.
    """
    r = ctx.config.root
    base, release = _release(ctx)
    raw, mtime = ctx.__dict__.get("_inrelease", {}).get(base, (None, None))
    if raw is None or base.startswith("file:"):
        return []
    memo = ctx.__dict__.setdefault("_verified_lists", {})
    sha = hashlib.sha256(raw).hexdigest()
    kept = _lists_dir(ctx) / f"InRelease_{sha[:20]}"
    if not ctx.files.dry_run and not _verified(kept, sha, memo):
        _keep(ctx, kept, raw, mtime)
        memo[kept] = True
    apt_base = f"{mirror(ctx).rstrip('/')}/dists/{r.suite}"
    out = [(kept, apt_list_name(f"{apt_base}/InRelease"))]
    for component in r.components:
        plain = _plain_sha256(component, r.architecture, release)
        if plain is None:
            continue   # apt downloads this one itself
        path = _kept_index(ctx, component, r.architecture, plain)
        if not ctx.files.dry_run and not _verified(path, plain, memo):
            _index(ctx, base, component, r.architecture, release,   # keeps it
                   _index_entry(base, component, r.architecture, release))
            memo[path] = True
        out.append((path, apt_list_name(f"{apt_base}/{component}/binary-{r.architecture}/Packages")))
    return out


def package_names(index: bytes) -> set[str]:
    """Every Package, and every name in a Provides (a virtual package such as
    mail-transport-agent is installable through a provider), of a Packages file.

    Regular expressions over the bytes: the same names as python-debian's
    Packages paragraphs and relations, 6x faster (a suite's main index is
    57 MB: 6.6 s -> about 1 s), and no copy of the text in memory.
    """
    names = {m.decode("utf-8", "replace") for m in _PACKAGE.findall(index)}
    for field in _PROVIDES.findall(index):
        _provided(field.decode("utf-8", "replace").replace("\n", " "), names)
    return names


_PACKAGE = re.compile(rb"^Package:[ \t]*(\S+)", re.MULTILINE)
# The field with its continuation lines (lines that start with a blank).
_PROVIDES = re.compile(rb"^Provides:(.*(?:\n[ \t].*)*)", re.MULTILINE)


def _provided(field: str, names: set[str]) -> None:
    # "a (= 1.0), b:any, c [amd64]": the names, without version, arch or profile parts.
    for item in field.split(","):
        for alt in item.split("|"):
            name = alt.split("(")[0].split("[")[0].split("<")[0].strip().split(":")[0]
            if name:
                names.add(name)


def _release(ctx: Context) -> tuple[str, Release]:
    """(the suite's dists/ URL, its parsed InRelease, or Release where the
    repository has no InRelease). Asked by more than one step of a run
    (bootstrap, root-packages, boot-loader's signed chain): fetched and
    parsed once per run (0.17 s each time). The InRelease's bytes and
    Last-Modified are kept for apt_lists."""
    base = f"{mirror(ctx)}/dists/{ctx.config.root.suite}"
    memo = ctx.__dict__.setdefault("_release", {})
    if base not in memo:
        from debian.deb822 import Release  # here: python-debian is ~12 ms of start-up
        headers: dict[str, str] = {}
        try:
            raw = _fetch(f"{base}/InRelease", headers)
            ctx.__dict__.setdefault("_inrelease", {})[base] = (raw, _http_date(headers.get("Last-Modified")))
        except NotFound:
            raw = _fetch(f"{base}/Release")
        # python-debian reads the clearsigned text (the signature is apt's to check).
        memo[base] = Release(raw)
    return base, memo[base]


def _http_date(value: str | None) -> float | None:
    import email.utils  # here: it imports socket and more, every command's start-up
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() if value else None
    except (TypeError, ValueError):
        return None


def available(ctx: Context) -> set[str]:
    """Every package (and virtual package) name of the suite, all components."""
    r = ctx.config.root
    base, release = _release(ctx)
    memo = ctx.__dict__.setdefault("_available_names", {})
    key = (base, tuple(r.components), r.architecture)
    if key in memo:
        return memo[key]
    names: set[str] = set()
    for component in r.components:
        names |= _names(ctx, base, component, r.architecture, release)
    memo[key] = names
    return names


def _extra_index(url: str) -> bytes | None:
    """A Packages index of an extra source, as apt would find it: .xz, .gz or plain."""
    import gzip
    import urllib.error  # here, as in _fetch: urllib.request costs every command's start-up
    import urllib.request
    for suffix, unpack in ((".xz", lzma.decompress), (".gz", gzip.decompress), ("", bytes)):
        try:
            with urllib.request.urlopen(url + suffix, timeout=TIMEOUT) as r:
                return unpack(r.read())
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise NfsrootError(f"cannot fetch {url}{suffix}: HTTP {e.code}") from None
        except (urllib.error.URLError, OSError) as e:
            if not isinstance(getattr(e, "reason", e), FileNotFoundError):
                raise NfsrootError(f"cannot fetch {url}{suffix}: {getattr(e, 'reason', e)}") from None
    return None


def extra_names(ctx: Context) -> set[str]:
    """Every package name of root.extra_sources' indexes (read, never cached:
    a site's repository is small and changes under the same suite name)."""
    memo = ctx.__dict__.setdefault("_extra_names", {})
    if "names" in memo:
        return memo["names"]
    names: set[str] = set()
    for i, source in enumerate(ctx.config.root.extra_sources):
        for url in source.parsed.indexes(ctx.config.root.architecture):
            data = _extra_index(url)
            if data is None:
                raise UsageError(f"root.extra_sources[{i}]: no Packages index at {url}(.xz|.gz)")
            names |= package_names(data)
    memo["names"] = names
    return names


def only_in_extra(ctx: Context, packages: list[str]) -> list[str]:
    """The packages the suite lacks (root.extra_sources bring them)."""
    if not ctx.config.root.extra_sources:
        return []
    names = available(ctx)
    return [p for p in packages if p.split(":")[0] not in names]


def records(ctx: Context, packages: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """name -> {Version, Filename, SHA256} of each package in the suite's
    index (the first component that has it), for fetching a .deb without apt.

    Cached like the names, keyed by the index's hash: an unchanged suite is
    read once (a dry-run reads but never writes the cache).
    """
    r = ctx.config.root
    base, release = _release(ctx)
    found: dict[str, dict[str, str]] = {}
    for component in r.components:
        entry = _index_entry(base, component, r.architecture, release)
        cache = _lists_dir(ctx) / f"records_{component}_{r.architecture}_{entry[1][:20]}.json"
        known = json.loads(cache.read_text()) if cache.exists() else {}
        wanted = [p for p in packages if p not in found and p not in known]
        if wanted:
            known.update(package_records(_index(ctx, base, component, r.architecture, release, entry), wanted))
            if not ctx.files.dry_run:
                atomic_write(cache, json.dumps(known, sort_keys=True).encode(), 0o644)
        found.update({p: known[p] for p in packages if p not in found and known.get(p)})
    missing = [p for p in packages if p not in found]
    if missing:
        raise UsageError(f"package(s) not in {r.suite}/{','.join(r.components)} for {r.architecture}: "
                         f"{' '.join(missing)}")
    return found


RECORD_FIELDS = ("Version", "Filename", "SHA256")


def package_records(index: bytes, packages: list[str]) -> dict[str, dict[str, str] | None]:
    """The newest paragraph's Version, Filename and SHA256 of each package in
    a Packages index (None where it is absent). A suite's index holds one
    version of a package; by Debian ordering if it ever holds more."""
    from debian.debian_support import Version
    out: dict[str, dict[str, str] | None] = {}
    for name in packages:
        best = None
        for m in re.finditer(rb"^Package:[ \t]*" + re.escape(name.encode()) + rb"\n((?:.+\n?)*)", index, re.MULTILINE):
            fields = dict(re.findall(r"^([A-Za-z0-9-]+):[ \t]*(.*)$", m.group(1).decode("utf-8", "replace"),
                                     re.MULTILINE))
            rec = {k: fields.get(k, "") for k in RECORD_FIELDS}
            if all(rec.values()) and (best is None or Version(rec["Version"]) > Version(best["Version"])):
                best = rec
        out[name] = best
    return out


def check_exist(ctx: Context, packages: list[str]) -> None:
    """Fail, naming them, if any of packages is in neither the suite nor root.extra_sources."""
    names = available(ctx)
    missing = [p for p in packages if p.split(":")[0] not in names]
    if missing and ctx.config.root.extra_sources:
        extra = extra_names(ctx)
        missing = [p for p in missing if p.split(":")[0] not in extra]
    if missing:
        r = ctx.config.root
        where = " nor root.extra_sources" if r.extra_sources else ""
        raise UsageError(f"package(s) not in {r.suite}/{','.join(r.components)}{where} for {r.architecture}: "
                         f"{' '.join(missing)} (root.packages / root.kernel_package / root.kernel; nothing was downloaded)")


def installed(root: Path) -> dict[str, str]:
    """name -> version of the packages dpkg calls installed in root.

    A byte-level scan of the status file's paragraphs, like package_names:
    this runs on every resume, and importing python-debian for it cost ~12 ms
    of the no-op resume's start-up (deb-control(5): a field starts a line,
    its continuation lines start with a blank, paragraphs end at an empty line).
    """
    status = Path(root) / "var/lib/dpkg/status"
    if not status.exists():
        return {}
    out: dict[str, str] = {}
    for para in re.split(rb"\n[ \t]*\n", status.read_bytes()):
        fields = dict(_STATUS_FIELD.findall(para))
        if fields.get(b"Status", b"").rstrip().endswith(b" installed") and b"Package" in fields:
            out[fields[b"Package"].strip().decode()] = fields.get(b"Version", b"").strip().decode()
    return out


def status_field(root: Path, package: str, field: str) -> str | None:
    """One field of an installed package's record in the root's dpkg status."""
    status = Path(root) / "var/lib/dpkg/status"
    if not status.exists():
        return None
    from debian.deb822 import Deb822  # here: python-debian costs every command's start-up
    with open(status, "rb") as f:
        for para in Deb822.iter_paragraphs(f, fields=["Package", "Status", field], use_apt_pkg=False):
            if para.get("Package") == package and para.get("Status", "").endswith(" installed"):
                return para.get(field)
    return None


_STATUS_FIELD = re.compile(rb"^(Package|Status|Version):[ \t]*(.*)$", re.MULTILINE)
