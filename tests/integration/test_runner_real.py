"""The real runner with real processes: output tail on failure, the log file,
secrets kept off argv and logs, and a dry-run as an unprivileged user."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from nfsroot_builder.errors import CommandFailed
from nfsroot_builder.runner import Runner

from helpers import example_text, require


def test_failure_carries_last_40_lines_and_log(tmp_path):
    log = open(tmp_path / "step.log", "w")
    r = Runner(log=log)
    script = "for i in $(seq 1 100); do echo line $i; done; echo oops >&2; exit 3"
    with pytest.raises(CommandFailed) as exc:
        r.run(["sh", "-c", script])
    e = exc.value
    assert e.returncode == 3 and len(e.output_tail) == 40
    assert e.output_tail[-1] == "oops" and "line 100" in e.output_tail
    assert "line 60" not in e.output_tail
    log.close()
    text = (tmp_path / "step.log").read_text()
    assert "$ sh -c" in text and "line 1\n" in text and "# exit 3" in text


def test_secret_only_on_stdin(tmp_path):
    log = open(tmp_path / "step.log", "w")
    res = Runner(log=log).run(["sh", "-c", "cat > /dev/null; ps -o args= -p $$"],
                              input="root:$6$secret$hash\n", secret=True)
    log.close()
    assert "secret" not in res.stdout
    assert "secret" not in (tmp_path / "step.log").read_text()


def test_environment_is_merged(tmp_path):
    res = Runner().run(["sh", "-c", 'echo "$PATH|$NRB_TEST"'], env={"NRB_TEST": "x"})
    assert res.stdout.strip() == f"{os.environ['PATH']}|x"


def test_missing_command_is_a_clear_failure():
    with pytest.raises(CommandFailed) as exc:
        Runner().run(["nfsroot-build-no-such-tool", "--x"])
    assert exc.value.returncode == 127 and "command not found" in str(exc.value)


def test_dry_run_as_unprivileged_user_writes_nothing():
    require(shutil.which("runuser") is not None, "runuser (util-linux) missing")
    venv_bin = Path(sys.executable).parent / "nfsroot-build"
    require(venv_bin.exists(), f"{venv_bin} missing: run the tests from the venv (make test)")
    with tempfile.TemporaryDirectory(prefix="nrb-nonroot-") as d:
        os.chmod(d, 0o755)
        cfg = Path(d) / "c.toml"
        cfg.write_text(example_text("seed"))
        os.chmod(cfg, 0o644)
        # Under --prefix: on the host itself the seed's placeholders and an
        # interface without server.address stop even a dry-run (hostcheck.py).
        res = subprocess.run(["runuser", "-u", "nobody", "--", str(venv_bin), "all", "-c", str(cfg), "--dry-run",
                              "--prefix", f"{d}/stage"], capture_output=True, text=True, cwd=d, timeout=120)
        assert res.returncode == 0, res.stderr
        assert "### step services" in res.stdout and "host ssi1" in res.stdout
        assert sorted(os.listdir(d)) == ["c.toml"]
