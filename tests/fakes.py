"""A Runner that records commands and answers from a script instead of running them."""
from __future__ import annotations

from collections.abc import Callable

from nfsroot_builder.runner import Runner


class FakeRunner(Runner):
    def __init__(self, answers: dict[str, tuple[int, str, str]] | None = None,
                 hook: Callable[[list[str]], tuple[int, str, str] | None] | None = None, **kw):
        super().__init__(**kw)
        self.answers = answers or {}
        self.hook = hook
        self.executed: list[list[str]] = []

    def _execute(self, argv, input, env, cwd, timeout, *_more, **_options):   # contained=, ... of the real one
        self.executed.append(list(argv))
        if self.hook and (ans := self.hook(list(argv))) is not None:
            return ans
        for key, ans in self.answers.items():
            if " ".join(argv).startswith(key):
                return ans
        if argv[0] == "dpkg-query":   # everything is installed
            return 0, "".join(f"{p} ii \n" for p in argv[4:]), ""
        return 0, "", ""


def fake_suite(monkeypatch) -> None:
    """The suite has every package the config asks for. The real lookup
    fetches the Release file and Packages index over HTTP, which the unit
    tests' socket guard refuses; a test about a missing package narrows this.
    The mirror's URL is still worked out and checked (packages_index.mirror)."""
    from nfsroot_builder import packages_index
    from nfsroot_builder.steps.root_packages import wanted
    monkeypatch.setattr(packages_index, "available",
                        lambda ctx: packages_index.mirror(ctx) and {p.split(":")[0] for p in wanted(ctx)})
    # No kept InRelease and indexes for mmdebstrap's apt (they come from the same fetch).
    monkeypatch.setattr(packages_index, "apt_lists", lambda ctx: [])
