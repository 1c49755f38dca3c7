"""The README's commands on a fresh clone: two ``build/run`` started at once
(the README's cluster recipe) both come up, installing once between them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import DEADLINE, LineClient, free_port, info_of, wait_until

ROOT = Path(__file__).resolve().parent.parent
INSTALL_DEADLINE = 240.0  # a first install downloads packages


def fresh_clone(target: Path) -> Path:
    """The working tree's files (tracked and new, as they are now), without .venv."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def base_python() -> str:
    """The interpreter the project's virtualenv was made from (not the venv itself)."""
    return getattr(sys, "_base_executable", sys.executable)


@pytest.mark.slow
def test_two_first_runs_at_once_both_come_up(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is needed to list the project's files")
    clone = fresh_clone(tmp_path / "clone")
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env["PYTHON"] = base_python()
    ports = free_port(), free_port()
    logs = [open(tmp_path / f"run{i}.log", "wb") for i in (0, 1)]  # noqa: SIM115 (closed below)
    commands = [["build/run", "--port", str(ports[0])],
                ["build/run", "--port", str(ports[1]), "--peers", f"127.0.0.1:{ports[0]}"]]
    runs = [subprocess.Popen(cmd, cwd=clone, env=env, stdin=subprocess.DEVNULL, stdout=log,
                             stderr=log) for cmd, log in zip(commands, logs, strict=True)]
    try:
        def log_of(i: int) -> str:
            return (tmp_path / f"run{i}.log").read_text(errors="replace")

        for i, run in enumerate(runs):
            wait_until(lambda i=i, run=run: run.poll() is not None  # type: ignore[misc]
                       or "listening on" in log_of(i), timeout=INSTALL_DEADLINE,
                       what=f"build/run {i} to come up")
            assert run.poll() is None, f"build/run {i} exited:\n{log_of(i)}"
        for port in ports:
            with LineClient(port) as client:
                wait_until(lambda c=client: info_of(c)["peers"] == "1",  # type: ignore[misc]
                           what="the two nodes to join")
        waited = [log_of(i) for i in (0, 1)]
        assert any("waiting for another build/ script" in text for text in waited), waited
        assert sum("installing olivia" in text for text in waited) == 1
    finally:
        for run in runs:
            if run.poll() is None:
                run.send_signal(signal.SIGTERM)
        for run in runs:
            try:
                run.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                run.kill()
                run.wait(DEADLINE)
        for log in logs:
            log.close()
    assert [run.returncode for run in runs] == [0, 0]
