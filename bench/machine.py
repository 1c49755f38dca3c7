"""What the bench reports say about the machine: version strings and /proc fields.

Each script lays out its own "Machine:" lines; these are the look-ups they share.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path


def first_line(cmd: Sequence[str]) -> str:
    """The first line a command prints (``redis-server --version``), or why there is none."""
    try:
        done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else "unavailable"


def proc_field(path: str, name: str, default: str = "unknown") -> str:
    """The value of a ``name: value`` line of a /proc file (``model name`` of
    /proc/cpuinfo, ``MemTotal`` of /proc/meminfo), or ``default``."""
    try:
        for line in Path(path).read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == name:
                return value.strip()
    except OSError:
        pass
    return default
