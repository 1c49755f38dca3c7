"""The prompt's ``help`` and Tab completion, both read from the help table
(``olivia.core.help.VERB_HELP``), so a verb added there shows up here.

Completion is worked out here on plain strings; olivia.tools.cli.prompt
only wires it to readline.
"""

from __future__ import annotations

from typing import NamedTuple

from olivia.core.help import VERB_HELP, VerbHelp

LOCAL_COMMANDS = ("help", "exit")  # handled by olivia-cli, never sent

HELP_HEAD = """\
Type requests as protocol lines; inside keys and values write % , : CR LF
as %25 %2C %3A %0D %0A. A TAG: prefix (t1:GET key) comes back on the reply."""

HELP_TAIL = """\
help VERB shows one verb. Tab completes a verb; after a verb it shows its syntax.
exit, quit (sent as QUIT) or Ctrl-D leave. Reference: docs/protocol.md"""


def usage_of(verb: str, row: VerbHelp) -> str:
    """``SET key:value[,key:value...]``: the verb and its arguments."""
    return f"{verb} {row.syntax}".rstrip()


def verb_table(verbs: list[str] | None = None) -> list[str]:
    """One line per verb: its usage, then its summary, in aligned columns."""
    names = list(VERB_HELP) if verbs is None else verbs
    usages = [usage_of(name, VERB_HELP[name]) for name in names]
    width = max(map(len, usages), default=0)
    return [f"  {usage:<{width}}  {VERB_HELP[name].summary}"
            for name, usage in zip(names, usages, strict=True)]


def help_text(topic: str = "") -> str:
    """What ``help`` prints: every verb, or those named by ``topic`` (any case).

    A topic may be a verb (``get``, ``request peers``) or the first word of
    several (``request``).
    """
    words = topic.upper().split()
    if not words:
        return "\n".join([HELP_HEAD, *verb_table(), HELP_TAIL])
    matches = [name for name in VERB_HELP if name.split()[:len(words)] == words]
    if not matches:
        return f"no verb {' '.join(words)!r}; 'help' lists them"
    if len(matches) == 1:
        row = VERB_HELP[matches[0]]
        return f"  {usage_of(matches[0], row)}\n  summary: {row.summary}"
    return "\n".join(verb_table(matches))


class Completion(NamedTuple):
    """What Tab does: replace the word with one of ``matches`` (and list them,
    with ``shown``, when there are several), or show ``hint``."""

    matches: list[str]
    shown: list[str]  # one line per match, for the list
    hint: str


NOTHING = Completion([], [], "")


def complete(before: str, word: str) -> Completion:
    """Completion of ``word``, preceded on the line by ``before``.

    Verbs complete case-insensitively, to upper case; a ``TAG:`` before the
    first verb word is kept.  Once a whole verb is typed, Tab shows its
    syntax instead (there is nothing more to complete: keys cannot be
    listed).
    """
    words = before.split()
    if words and words[0].lower() == "help":
        return _complete_verb(words[1:], word, local=False)
    return _complete_verb(words, word, local=True)


def _complete_verb(words: list[str], word: str, local: bool) -> Completion:
    tag = ""
    if words and ":" in words[0]:
        tag, _, first = words[0].partition(":")
        words = [first, *words[1:]]
        tag += ":"
    elif not words and ":" in word:
        tag, _, word = word.partition(":")
        tag += ":"
    typed = [w.upper() for w in words]
    for length in range(len(typed), 0, -1):
        name = " ".join(typed[:length])
        if name in VERB_HELP:
            return Completion([], [], verb_table([name])[0])
    return _next_word(typed, word, tag, local and not words)


def _next_word(typed: list[str], word: str, tag: str, with_local: bool) -> Completion:
    """The verb words that may come after ``typed`` and start like ``word``."""
    depth = len(typed)
    verbs = [name for name in VERB_HELP
             if name.split()[:depth] == typed and len(name.split()) > depth]
    choices: dict[str, list[str]] = {}
    for name in verbs:
        choices.setdefault(name.split()[depth], []).append(name)
    if with_local and not tag:
        for command in LOCAL_COMMANDS:
            choices[command] = []
    wanted = word.upper()
    found = [choice for choice in choices if choice.upper().startswith(wanted)]
    matches = [tag + choice + " " for choice in found]
    shown = verb_table([name for choice in found for name in choices[choice]])
    shown += [f"  {choice}" for choice in found if not choices[choice]]
    return Completion(matches, shown, "")
