"""The peer handshake's proofs: pure functions over bytes (no I/O, no clock).

A node that dials another (A dials B) proves, and checks, that both know the
cluster's key (``cluster.secret``; without one, ``auth.password``; without
either, the empty key), by HMAC-SHA256 challenge-response both ways; neither
side ever sends the key::

    A -> B  REQUEST CONNECT <A> <A's address> <A's incarnation> <nonce A>
    B -> A  FULFILLED <B> <B's address> <B's incarnation> <nonce B> <proof B> <vouch>
    A -> B  REQUEST PROVE <proof A>
    B -> A  FULFILLED                      (the connection is now A's peer link)

``proof B = HMAC(key, "answer" | nonce A | nonce B | A | B)`` shows A that B
holds the key; ``proof A = HMAC(key, "dial" | nonce A | nonce B | A | B)``
shows B the same of A.  Fresh nonces on both sides make a recorded proof
useless for any other connection.

With no cluster secret, a matching proof shows little (the key is the
password, or empty), so B also *dials A back* before answering PROVE: it
opens a probe connection to the address A claimed and sends its own CONNECT
with a fresh nonce P.  A answers with ``vouch = SHA-256(nonce A | P)``,
computed from the nonce of its own handshake under way with B; B checks it
against the nonce A sent on the first connection.  Only the node that
listens at the claimed address and really dialled B can vouch, so a client
cannot borrow a live node's name or address (docs/design.md, "Security").
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import NamedTuple

from olivia.core.requests import Hello
from olivia.protocols.line.peer import NONCE_HEX

NO_VOUCH = b"-"
ANSWER = b"answer"
DIAL = b"dial"


def new_nonce() -> bytes:
    return secrets.token_hex(NONCE_HEX // 2).encode()


def proof(key: bytes, role: bytes, dialer_nonce: bytes, answer_nonce: bytes,
          dialer: str, answerer: str) -> bytes:
    """The HMAC one side shows the other (``role`` is ANSWER or DIAL)."""
    message = b"|".join((b"olivia-peer", role, dialer_nonce, answer_nonce,
                         dialer.encode(), answerer.encode()))
    return hmac.new(key, message, hashlib.sha256).hexdigest().encode()


def proof_matches(given: bytes, expected: bytes) -> bool:
    return hmac.compare_digest(given, expected)


def vouch(dialer_nonce: bytes, probe_nonce: bytes) -> bytes:
    """What the dialler answers a dial-back probe with: it knows its own nonce."""
    return hashlib.sha256(dialer_nonce + b"|" + probe_nonce).hexdigest().encode()


class Handshake(NamedTuple):
    """The answering side's handshake under way on one connection (kept in
    the connection's Session until REQUEST PROVE)."""

    hello: Hello  # who the dialler says it is
    dialer_nonce: bytes
    answer_nonce: bytes
