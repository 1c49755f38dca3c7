"""What olivia-cli reports when it stops: every failure is one line
``olivia-cli: <message>`` on stderr and exit status 1 (2 for bad usage)."""

from __future__ import annotations

import sys
from typing import NoReturn

PROG = "olivia-cli"


class CliError(Exception):
    """A failure reported as one line ``olivia-cli: <message>``, exit status 1."""


class InputError(Exception):
    """Bad input at a line of an import file."""

    def __init__(self, line: int, what: str) -> None:
        super().__init__(what)
        self.line = line
        self.what = what


def fail(message: str, status: int = 1) -> NoReturn:
    print(f"{PROG}: {message}", file=sys.stderr)
    raise SystemExit(status)


def show(data: bytes) -> str:
    """A key quoted for a message, cut to 40 bytes."""
    text = data[:40].decode("utf-8", "backslashreplace")
    return repr(text + ("..." if len(data) > 40 else ""))
