"""The dry-run transcript as a reviewer reads it (issue 14 point 7).

The steps emit the transcript line by line (runner: `$ argv`, files: `# write`,
unified diffs; pipeline: `### step`). A dry-run collects it here, then prints:
a summary first (on stderr), the transcript (stdout), and the footer (the
caller's, on stderr).

What a machine reads stays whole: when stdout is not a terminal the
transcript is printed exactly as emitted. Only on a terminal are repeated
file diffs folded ("3 more files like this one", each path still named) and
coloured; `--full` turns the folding off there too.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.text import Text

# A diff's lines with every MAC and number made alike: node 3's menu is "like"
# node 1's (a MAC's hex letters are no number: 52-54-00-00-00-0a).
_MACS = re.compile(r"\b[0-9a-fA-F]{2}(?:[-:][0-9a-fA-F]{2}){5,}\b")   # 5,: GRUB's 01-<mac> names
_NUMBERS = re.compile(r"\d+")


def _shape(block: list[str]) -> list[str]:
    return [_NUMBERS.sub("#", _MACS.sub("<mac>", line)) for line in block]
_FILE_OPS = ("# write ", "# rm ", "# mkdir ", "# ln ", "# install ", "# chmod ")
_RESTART = re.compile(r"^\$ (systemctl (restart|start|reload) \S+|/etc/init\.d/\S+ (restart|start)|exportfs -ra)$")


@dataclass
class Summary:
    host_files: set[str] = field(default_factory=set)
    root_files: set[str] = field(default_factory=set)
    packages: set[str] = field(default_factory=set)
    restarts: list[str] = field(default_factory=list)
    commands: int = 0

    def lines(self, staging: bool) -> list[str]:
        restarts = ", ".join(self.restarts) if self.restarts else \
            ("none (a staging prefix restarts no host daemon)" if staging else "none")
        return [f"plan: {len(self.host_files)} server file(s) changed, {len(self.root_files)} file(s) in the root, "
                f"{len(self.packages)} package(s) named for install, {self.commands} command(s)",
                f"plan: service restarts: {restarts}"]


def _installed_packages(argv: list[str]) -> list[str]:
    """The package names of an `apt-get install` / `apt install` / mmdebstrap --include."""
    out = []
    for word in argv:
        if word.startswith("--include="):
            out += [p for p in word.split("=", 1)[1].split(",") if p]
    if "install" in argv and any(a.endswith(("apt-get", "apt")) for a in argv):
        rest = argv[argv.index("install") + 1:]
        skip = False
        for word in rest:
            if skip:
                skip = False
            elif word == "-o":
                skip = True
            elif not word.startswith("-") and not word.startswith("/"):
                out.append(word)
    return out


def summarize(lines: list[str], root: Path) -> Summary:
    s = Summary()
    root_prefix = str(root).rstrip("/") + "/"

    def file(path: str) -> None:
        if path == "/dev/null":
            return
        (s.root_files if (path + "/").startswith(root_prefix) else s.host_files).add(path)

    for line in lines:
        if line.startswith("$ "):
            s.commands += 1
            if _RESTART.match(line.removesuffix(" &")):
                s.restarts.append(line[2:])
            try:
                s.packages.update(_installed_packages(shlex.split(line[2:])))
            except ValueError:
                pass
        elif line.startswith(("--- ", "+++ ")):
            file(line[4:].split("\t")[0])
        elif line.startswith(_FILE_OPS):
            words = line.split()
            # "# write PATH (N bytes)", "# install -m MODE SRC DST", "# ln -sfn TARGET PATH", ...
            path = words[2] if line.startswith("# write ") else words[-1]
            file(path)
    return s


_DIFF_BODY = ("+++ ", "@@", "+", "-", " ", "... (")


def _blocks(lines: list[str]) -> list[list[str]]:
    """Runs of lines: each file diff (from its `--- ` line) is a block of its own."""
    blocks: list[list[str]] = []
    in_diff = False
    for line in lines:
        if line.startswith("--- "):
            blocks.append([line])
            in_diff = True
            continue
        if in_diff and line.startswith(_DIFF_BODY):
            blocks[-1].append(line)
            continue
        if in_diff or not blocks:
            blocks.append([])
            in_diff = False
        blocks[-1].append(line)
    return blocks


def fold(lines: list[str]) -> list[str]:
    """Consecutive file diffs that differ only in numbers shown once, with
    the count and the other files' names."""
    out: list[str] = []
    blocks = _blocks(lines)
    i = 0
    while i < len(blocks):
        block = blocks[i]
        j = i + 1
        if block and block[0].startswith("--- "):
            shape = _shape(block)
            while j < len(blocks) and _shape(blocks[j]) == shape:
                j += 1
        out += block
        if j - i > 1:
            others = [b[1][4:] if len(b) > 1 else b[0][4:] for b in blocks[i + 1:j]]
            out.append(f"# ... and {j - i - 1} more file(s) like this one: {' '.join(others)}")
        i = j
    return out


STYLES = (("### ", "bold"), ("+++ ", "bold"), ("--- ", "bold"), ("@@", "cyan"), ("+", "green"),
          ("-", "red"), ("$ ", "yellow"), ("# ... and", "magenta"), ("# ", "dim"))


def print_transcript(lines: list[str], console: Console, *, full: bool) -> None:
    """On a terminal: folded (unless full) and coloured; elsewhere exactly as emitted."""
    if not console.is_terminal:
        for line in lines:
            print(line, file=console.file, flush=False)
        console.file.flush()
        return
    for line in (lines if full else fold(lines)):
        style = next((s for prefix, s in STYLES if line.startswith(prefix)), "")
        console.print(Text(line, style=style), soft_wrap=True)
