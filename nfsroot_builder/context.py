"""What a step gets: the config, where things live, and the two tools it may
use to change the world (``runner`` for commands, ``files`` for files)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .config import Config
from .errors import NfsrootError
from .files import FileOps
from .runner import Runner
from .state import State

DEFAULT_STATE_ROOT = Path("/var/lib/nfsroot-build")
APT_CACHE = Path("/var/cache/nfsroot-build/apt")


@dataclass
class Context:
    config: Config
    runner: Runner
    files: FileOps
    state: State
    prefix: Path = Path("/")
    state_dir: Path = DEFAULT_STATE_ROOT
    emit: Callable[[str], None] = print
    note: Callable[[str], None] = lambda msg: None   # progress line for the admin (stderr)
    apt_cache: Path = APT_CACHE
    # The root version this run builds or serves (versions.py); config.root.path is its path.
    version_id: int = 1
    # The config as the admin wrote it (root.path: the configured base, i.e. version 1's).
    base_config: Config | None = None
    # The config file this run read (the CLI sets it): the dhcp-server step
    # records it, so that another build on this server can compare (sidebyside.py).
    config_file: Path | None = None
    # A group root's first version may start as a copy of this tree
    # (config-level path; groups.seed), else it is bootstrapped.
    seed_path: str | None = None
    # Set only by the pipeline; steps never read it (see placeholder()).
    _dry_run: bool = field(default=False, repr=False)

    def host(self, path: str | Path) -> Path:
        """A server path (/etc/dhcp/dhcpd.conf) as seen under the prefix."""
        return self.prefix / str(path).lstrip("/")

    @property
    def staging(self) -> bool:
        return self.prefix != Path("/")

    @property
    def root(self) -> Path:
        return self.host(self.config.root.path)

    @property
    def tftp_root(self) -> Path:
        return self.host(self.config.tftp.root)

    @property
    def served(self):
        from .render import Served
        return Served(str(self.prefix))

    def placeholder(self, what: str, found):
        """A value that only exists after an earlier step really ran.

        In a dry-run it stands as ``<what>`` in the transcript; in a real run
        its absence is an error.
        """
        if found:
            return found
        if self._dry_run:
            return f"<{what}>"
        raise NfsrootError(f"{what} not found (did the steps before this one run?)")

    def output(self, step: str, key: str, default=None):
        return self.state.outputs(step).get(key, default)
