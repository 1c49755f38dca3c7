"""How each verb a user may type is written, and what it does: the one
table behind the registry's summaries, olivia-cli's ``help`` and its hints.

The syntax is the line protocol's (the reference is docs/protocol.md);
keep a row here for every verb in ``core_verbs`` and every peer verb an
operator uses by hand.
"""

from __future__ import annotations

from typing import NamedTuple


class VerbHelp(NamedTuple):
    syntax: str  # the arguments after the verb, as a hint shows them
    summary: str  # one line: what it does


VERB_HELP: dict[str, VerbHelp] = {
    "SET": VerbHelp("key:value[,key:value...]", "store values (clears their TTL)"),
    "SETEX": VerbHelp("key:value:ttl[,key:value:ttl...]",
                      "store values that expire after ttl seconds (decimals allowed)"),
    "GET": VerbHelp("key[,key...]", "the values of the keys found, on any node"),
    "DEL": VerbHelp("key[,key...]", "delete keys everywhere; lists those that existed"),
    "INCR": VerbHelp("key[:n][,key[:n]...]",
                     "add n (default 1) to integer values, atomically; a missing key is 0"),
    "DECR": VerbHelp("key[:n][,key[:n]...]", "subtract n (default 1), atomically"),
    "SETNX": VerbHelp("key:value[,key:value...]",
                      "store keys that exist nowhere yet (write-once); lists those stored"),
    "CAS": VerbHelp("key:old:new", "replace the value only if it is old (compare-and-set)"),
    "DELIFEQ": VerbHelp("key:value[,key:value...]",
                        "delete keys whose value is the one given; lists those deleted"),
    "GETDEL": VerbHelp("key[,key...]", "the values of the keys, which are deleted"),
    "RENAME": VerbHelp("old:new", "move a value and its TTL to another key (overwrites it)"),
    "EXISTS": VerbHelp("key[,key...]", "the keys that exist"),
    "TTL": VerbHelp("key[,key...]", "seconds left of each key (-1: no TTL); missing ones left out"),
    "EXPIRE": VerbHelp("key:ttl[,key:ttl...]", "give existing keys a TTL; lists them"),
    "PERSIST": VerbHelp("key[,key...]", "remove the TTL of keys; lists those that had one"),
    "SCAN": VerbHelp("cursor[:count[:pattern]]",
                     "iterate over every key of the cluster (cursor 0 starts and ends)"),
    "KEYS": VerbHelp("[pattern]", "every key of the cluster matching a glob (bounded; SCAN "
                     "for many)"),
    "COUNT": VerbHelp("", "the live keys of the cluster, each counted once"),
    "PING": VerbHelp("[text]", "answers PONG [text]"),
    "INFO": VerbHelp("", "the node's name=value fields"),
    "QUIT": VerbHelp("", "close the connection"),
    "AUTH": VerbHelp("password", "authenticate this connection (when the node has a password)"),
    "REQUEST PEERS": VerbHelp("", "addresses of the peers this node sees alive"),
    "REQUEST BLOOMFILTER": VerbHelp("", "this node's bloom filter, in its wire encoding"),
    "FORGET": VerbHelp("name", "forget a peer now (from a client on loopback only)"),
}


def help_for(verb: str) -> VerbHelp | None:
    """The row for ``verb`` (any case), or None."""
    return VERB_HELP.get(" ".join(verb.upper().split()))
