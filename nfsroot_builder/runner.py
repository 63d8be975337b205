"""The only place that starts processes.

Every command is an argv list (never a shell string built from config). In
dry-run mode a command that would change something is printed, shell-quoted,
to the transcript instead of run; read-only probes (``probe=True``) still run
so the plan reflects the machine as it is. Secrets only ever travel on stdin
and are shown as ``<redacted>``.
"""
from __future__ import annotations

import collections
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from . import procs
from .errors import CommandFailed

TAIL_LINES = 40


@dataclass
class Result:
    argv: list[str]
    exit_code: int
    stdout: str = ""
    stderr: str = ""
    dry: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass
class Runner:
    dry_run: bool = False
    emit: Callable[[str], None] = print          # the dry-run transcript (stdout)
    log: IO[str] | None = None                    # the current step's log file
    commands: list[list[str]] = field(default_factory=list)  # every command, in order
    # Called with each output line of a running command (the CLI's live status line).
    on_line: Callable[[str], None] | None = None

    def log_line(self, text: str) -> None:
        """A line in the current step's log (FileOps logs its changes here)."""
        self._log(text)

    def _log(self, text: str) -> None:
        if self.log:
            self.log.write(text if text.endswith("\n") else text + "\n")
            self.log.flush()

    def show(self, argv: Sequence[str], input: str | None, secret: bool) -> str:
        shown = shlex.join(argv)
        if input is not None:
            shown += " <<< " + ("<redacted>" if secret else shlex.quote(input))
        return shown

    def run(self, argv: Sequence[str], *, input: str | None = None, secret: bool = False,
            check: bool = True, probe: bool = False, env: dict[str, str] | None = None,
            cwd: str | Path | None = None, timeout: float | None = None,
            contained: bool = False) -> Result:
        """Run argv. ``probe``: read-only, runs in dry-run too. ``secret``: stdin is redacted.

        ``contained``: argv and everything it starts die with this process,
        even when it is SIGKILLed (procs.CONTAIN); for commands that build
        the root (a bootstrapper, apt-get in the chroot), never for one that
        starts a daemon or mounts proc. The transcript shows argv as given.
        """
        argv = [str(a) for a in argv]
        shown = self.show(argv, input, secret)
        self.commands.append(argv)
        if self.dry_run and not probe:
            self.emit(f"$ {shown}")
            self._log(f"(dry-run) $ {shown}")
            return Result(argv, 0, dry=True)
        if probe:   # marks the next command read-only: a dry-run runs it too and does not list it
            self._log("# read-only:")
        self._log(f"$ {shown}")
        started = time.monotonic()
        code, out, err = self._execute(argv, input, env, cwd, timeout, contained, probe)
        self._log(f"# exit {code} after {time.monotonic() - started:.1f}s")
        result = Result(argv, code, out, err)
        if check and code != 0:
            tail = (out + err).splitlines()[-TAIL_LINES:]
            raise CommandFailed(shown, code, tail, self.log.name if self.log else None)
        return result

    def _probe(self, argv, input, env, cwd, timeout) -> tuple[int, str, str]:
        """A read-only probe (dpkg-query, ip -j, ...) that nobody watches live
        (no on_line: the plan, the checks), so subprocess.run, with the lines
        logged afterwards.
        Through sh (its import and its reader threads) each probe cost ~50 ms:
        a no-op resume runs one (server-packages' dpkg-query)."""
        try:
            p = subprocess.run(argv, input=input or "", capture_output=True, text=True, errors="replace",
                               env={**os.environ, **(env or {})}, cwd=str(cwd) if cwd else None, timeout=timeout)
        except FileNotFoundError:
            return 127, "", f"{argv[0]}: command not found\n"
        except OSError as e:   # not executable, ...: the shell's 126
            return 126, "", f"{argv[0]}: {e.strerror}\n"
        except subprocess.TimeoutExpired as e:   # run() has killed it
            out, err = (x.decode(errors="replace") if isinstance(x, bytes) else (x or "") for x in (e.stdout, e.stderr))
            code, err = 124, err + f"timed out after {timeout}s\n"
        else:
            # A signal's death: 128 + its number, as _execute and the shell say it.
            code, out, err = (p.returncode if p.returncode >= 0 else 128 - p.returncode), p.stdout, p.stderr
        for line in (out + err).splitlines(keepends=True):
            if self.log:
                self.log.write(line)
            if self.on_line:
                self.on_line(line)
        if self.log:
            self.log.flush()
        return code, out, err

    def _execute(self, argv, input, env, cwd, timeout, contained=False, probe=False) -> tuple[int, str, str]:
        # A probe while a step runs streams like any command: the live
        # progress line shows its last output (dhcpd -t's "parsing line N").
        if probe and not contained and self.on_line is None:
            return self._probe(argv, input, env, cwd, timeout)
        out_lines: collections.deque[str] = collections.deque()
        err_lines: collections.deque[str] = collections.deque()

        def sink(store):
            def cb(line):
                store.append(line)
                if self.log:
                    self.log.write(line)
                if self.on_line:
                    self.on_line(line)
            return cb

        import sh  # here, not at the top: it pulls in asyncio, 45 ms of every command's start-up
        try:
            sh.Command(argv[0])
            cmd = sh.Command(procs.CONTAIN[0]) if contained else sh.Command(argv[0])
        except sh.CommandNotFound:
            return 127, "", f"{argv[0]}: command not found\n"
        args = [*procs.CONTAIN[1:], *argv] if contained else argv[1:]
        # No input: an empty stdin (EOF at once), not sh's default stdin queue,
        # which costs every command 0.1 s in sh's polling (a dry-run's probes,
        # a resume's checks) and would leave a command that reads stdin hanging.
        proc = cmd(*args, _in=input if input is not None else "", _out=sink(out_lines), _err=sink(err_lines),
                   _env={**os.environ, **(env or {})}, _cwd=str(cwd) if cwd else None,
                   _tty_out=False, _truncate_exc=False, _ok_code=range(256),
                   _timeout=timeout, _bg=True, _bg_exc=False, _return_cmd=True,
                   _preexec_fn=procs.die_with_parent() if contained else None)
        try:
            proc.wait()
            code = proc.exit_code
        except sh.TimeoutException:
            code = 124
            err_lines.append(f"timed out after {timeout}s\n")
        except sh.SignalException as e:   # the command was killed by a signal
            code = 128 + abs(e.exit_code)
        except BaseException:
            # Ctrl-C / SIGTERM reached us: stop the child too, so that nothing
            # keeps files open under a mount we are about to undo.
            self._stop(proc, contained)
            raise
        if self.log:
            self.log.flush()
        return code, "".join(out_lines), "".join(err_lines)

    @staticmethod
    def _stop(proc, contained: bool) -> None:
        if contained:
            # unshare ignores SIGTERM while it waits; its death takes the
            # whole namespace with it at once (procs.CONTAIN).
            procs.stop([proc.pid], grace=0, reap_children=False)
        else:
            procs.stop([proc.pid], grace=5.0, reap_children=False)

    def stop(self, pids: list[int], *, why: str, kill_wait: float = 5.0) -> None:
        """SIGTERM, then SIGKILL, processes we did not start in this run (left
        by an interrupted one: procs.stop). A dry-run says so instead: a
        signal cannot be previewed."""
        if not pids:
            return
        line = f"# stop {why}: kill -TERM, then -KILL, {' '.join(map(str, pids))}"
        if self.dry_run:
            self.emit(line)
            return
        self._log(line)
        procs.stop(pids, kill_wait=kill_wait)

    def spawn(self, argv: Sequence[str], *, log_path: Path, env: dict[str, str] | None = None) -> int:
        """Start a long-running daemon detached from us and return its own PID.

        sh's background commands belong to the calling process (they are
        reaped and signalled with it); lab daemons must outlive the CLI run
        that started them, so this one case uses a new session via Popen.
        """
        argv = [str(a) for a in argv]
        shown = shlex.join(argv)
        self.commands.append(argv)
        if self.dry_run:
            self.emit(f"$ {shown} &")
            return 0
        self._log(f"$ {shown} &")
        with open(log_path, "ab") as logf:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                    env={**os.environ, **(env or {})}, start_new_session=True)
        return proc.pid
