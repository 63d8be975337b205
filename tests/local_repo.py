"""A site's own apt repository, made by a test: flat (Suites: ./), packages
built with `dpkg-deb --build`, indexed with `apt-ftparchive`, its Release
signed (InRelease) with a throwaway gpg key in the test's own GNUPGHOME."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path


class LocalRepo:
    def __init__(self, base: Path):
        self.dir = base / "repo"
        self.dir.mkdir(parents=True)
        self.gnupg = base / "gnupg"
        self.gnupg.mkdir(mode=0o700)
        self.env = {**os.environ, "GNUPGHOME": str(self.gnupg)}
        self._gpg("--quick-gen-key", "nrb-test <nrb-test@example.invalid>", "future-default", "sign", "never")
        self.key = self._gpg("--armor", "--export").stdout

    def _gpg(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", *args],
                              env=self.env, capture_output=True, text=True, check=True)

    def add(self, name: str, version: str) -> None:
        """Build name_version_all.deb (it ships /usr/share/<name>/version) and re-index."""
        tree = self.dir.parent / f"build-{name}-{version}"
        (tree / "DEBIAN").mkdir(parents=True)
        (tree / "DEBIAN/control").write_text(
            f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: nrb test <t@example.invalid>\n"
            f"Description: nfsroot-build test package\n")
        (tree / f"usr/share/{name}").mkdir(parents=True)
        (tree / f"usr/share/{name}/version").write_text(version + "\n")
        subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree),
                        str(self.dir / f"{name}_{version}_all.deb")], check=True, capture_output=True)
        self.index()

    def index(self) -> None:
        packages = subprocess.run(["apt-ftparchive", "packages", "."], cwd=self.dir, check=True,
                                  capture_output=True, text=True).stdout
        (self.dir / "Packages").write_text(packages)
        for old in ("Release", "InRelease"):
            (self.dir / old).unlink(missing_ok=True)
        release = subprocess.run(["apt-ftparchive", "release", "."], cwd=self.dir, check=True,
                                 capture_output=True, text=True).stdout
        (self.dir / "Release").write_text(release)
        self._gpg("--clearsign", "-o", str(self.dir / "InRelease"), str(self.dir / "Release"))

    def stop(self) -> None:
        """Stop the gpg-agent this GNUPGHOME started (only that one)."""
        subprocess.run(["gpgconf", "--kill", "all"], env=self.env, check=False, capture_output=True)

    def toml(self, signed: bool = True) -> str:
        """The [[root.extra_sources]] entry for this repository."""
        stanza = f"Types: deb\nURIs: file:{self.dir}\nSuites: ./\n" + ("" if signed else "Trusted: yes\n")
        key = f"key = '''{self.key}'''\n" if signed else ""
        return f'[[root.extra_sources]]\nstanza = """{stanza}"""\n{key}'


def use_repo(build, repo: LocalRepo, packages: str = '["iproute2", "nrb-probe"]') -> None:
    """Give a root_builds build's config the repository and these root.packages."""
    text = build.cfg.read_text().replace('packages = ["iproute2"]', f"packages = {packages}", 1)
    build.cfg.write_text(text.replace("[tftp]\n", repo.toml() + "[tftp]\n", 1))
