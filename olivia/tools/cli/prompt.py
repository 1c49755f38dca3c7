"""The interactive prompt (readline: history, Tab completion, ``help``), and
the same loop without a terminal: one request per stdin line."""

from __future__ import annotations

import contextlib
import os
import sys
from types import ModuleType

from olivia.client import Client
from olivia.core.errors import ConnectionLostError
from olivia.tools.cli.errors import PROG
from olivia.tools.cli.output import ReplyPrinter
from olivia.tools.cli.request_lines import wire
from olivia.tools.cli.verb_help import Completion, complete, help_text

HISTORY_FILE = "~/.olivia_cli_history"
HISTORY_LENGTH = 1000


def run_interactive(client: Client, printer: ReplyPrinter) -> int:
    """The prompt (a terminal), or one request per stdin line (no terminal).

    Without a terminal the exit status is 1 if any reply was an error, or a
    request could not be sent, as for one request and --pipe.
    """
    with client:
        client.connect()
        if sys.stdin.isatty():
            return _prompt_loop(client, printer)
        failed = False
        for raw_line in sys.stdin.buffer:
            line = raw_line.rstrip(b"\n")
            if not line.rstrip(b"\r"):
                continue
            bye, lost = send_typed(client, printer, line)
            failed |= lost
            if bye:
                break
        return 1 if failed or printer.errors else 0


def send_typed(client: Client, printer: ReplyPrinter, line: bytes) -> tuple[bool, bool]:
    """Send one typed line and print its reply: (the server said BYE, the
    connection was lost).  A lost connection is reported; the next line
    reconnects."""
    try:
        reply = client.raw(line)
    except ConnectionLostError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr, flush=True)
        return False, True
    printer.show(line, reply)
    return reply.partition(b":")[2] == b"BYE", False


def _prompt_loop(client: Client, printer: ReplyPrinter) -> int:
    import readline  # only for a terminal: it may write escape codes

    history = os.path.expanduser(HISTORY_FILE)
    with contextlib.suppress(OSError):  # no history yet, or unreadable: start without
        readline.read_history_file(history)
    readline.set_history_length(HISTORY_LENGTH)
    prompt = f"{client.address}> "
    TabCompleter(readline, prompt).install()
    try:
        while (text := _read_line(prompt)) is not None:
            if not _run_typed(client, printer, text):
                break
    finally:
        with contextlib.suppress(OSError):  # a read-only home must not make leaving fail
            readline.write_history_file(history)
    return 0


def _read_line(prompt: str) -> str | None:
    """The next line typed (blank lines skipped); None at Ctrl-D."""
    while True:
        try:
            text = input(prompt)
        except EOFError:
            print()
            return None
        except KeyboardInterrupt:
            print("^C")
            continue
        if text.strip():
            return text


def _run_typed(client: Client, printer: ReplyPrinter, text: str) -> bool:
    """Run one typed line; False once it is time to leave."""
    words = text.split()
    command = words[0].lower()
    if command == "exit" and len(words) == 1:
        return False
    if command == "help":
        print(help_text(" ".join(words[1:])), flush=True)
        return True
    bye, _ = send_typed(client, printer, wire(text))
    return not bye


class TabCompleter:
    """Connects olivia.tools.cli.verb_help to readline.

    readline cannot draw a hint after the cursor as linenoise does, so the
    syntax of a typed verb is printed under the line when Tab is pressed
    (and the line drawn again), as the list of matches is.
    """

    def __init__(self, readline: ModuleType, prompt: str) -> None:
        self.readline = readline
        self.prompt = prompt
        self.last = Completion([], [], "")

    def install(self) -> None:
        readline = self.readline
        readline.set_completer_delims(" \t")
        readline.set_completer(self.complete)
        readline.set_completion_display_matches_hook(self.display)
        if "libedit" in (readline.__doc__ or ""):
            readline.parse_and_bind("bind ^I rl_complete")
        else:
            readline.parse_and_bind("tab: complete")
            # List the matches at the first Tab, not the second; ignore case in the prefix.
            readline.parse_and_bind("set show-all-if-ambiguous on")
            readline.parse_and_bind("set completion-ignore-case on")

    def complete(self, word: str, state: int) -> str | None:
        """readline's completer: the ``state``-th match for ``word``."""
        if state == 0:
            buffer = self.readline.get_line_buffer()
            self.last = complete(buffer[:self.readline.get_begidx()], word)
            if self.last.hint:
                self._print_below([self.last.hint])
        # A hint leaves the word as it is: as its one match, so readline does not ring.
        matches = [word] if self.last.hint else self.last.matches
        return matches[state] if state < len(matches) else None

    def display(self, substitution: str, matches: list[str], longest: int) -> None:
        """readline's hook for listing several matches: each with its syntax."""
        self._print_below(self.last.shown or ["  " + m for m in matches])

    def _print_below(self, lines: list[str]) -> None:
        """Print under the line being edited, then draw the prompt and the line
        again, the cursor where it was (readline does not redraw after a hook)."""
        buffer = self.readline.get_line_buffer()
        back = len(buffer) - self.readline.get_endidx()
        sys.stdout.write("\n" + "\n".join(lines) + "\n" + self.prompt + buffer + "\b" * back)
        sys.stdout.flush()
