"""From what the user typed to the request line sent, and back from a sent
line to the verb it names (the output and the hints need to know it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from olivia.core.help import help_for


def wire(text: str) -> bytes:
    """What the user typed, as bytes (undecodable terminal bytes kept)."""
    return text.encode("utf-8", "surrogateescape")


def takes_items(verb: str) -> bool:
    """Whether the verb's arguments are a comma-separated list of items.

    Read from the help table's syntax (``key[,key...]``), so a verb added
    there is joined the right way without a change here.
    """
    row = help_for(verb)
    return row is not None and "[," in row.syntax


def one_shot_line(words: Sequence[str]) -> str:
    """The request line for ``olivia-cli VERB ARG...``.

    The arguments of a verb that takes items are its items, as
    ``redis-cli GET a b`` takes two keys; any other verb's words (PING's
    text, REQUEST's words) are joined with spaces.
    """
    head, *args = words
    verb = head.partition(":")[2] if ":" in head else head  # TAG:VERB
    if args and " " not in head and takes_items(verb):
        return f"{head} {','.join(args)}"
    return " ".join(words)


class SentRequest(NamedTuple):
    """The parts of a request line, as the server splits them."""

    tag: bytes
    verb: str  # upper case; two words for REQUEST verbs (``REQUEST PEERS``)
    args: bytes

    @property
    def item_count(self) -> int:
        return self.args.count(b",") + 1 if self.args else 0


def parse_sent(line: bytes) -> SentRequest:
    """Split a request line at its first space, and its head at the first ``:``."""
    head, _, args = line.rstrip(b"\r\n").partition(b" ")
    tag, colon, verb = head.partition(b":")
    if not colon:
        tag, verb = b"", head
    name = verb.decode("utf-8", "replace").upper()
    if name == "REQUEST":
        word, _, args = args.partition(b" ")
        name = f"REQUEST {word.decode('utf-8', 'replace').upper()}"
    return SentRequest(tag, name, args)
