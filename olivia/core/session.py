"""Who is on the other end of a connection, and what it may do: sans-IO.

Every front end (the line protocol, RESP) keeps one :class:`Session` per
connection and asks the node's :class:`Guard` before each request
(:meth:`Guard.check`).  The rules (docs/protocol.md, "Security"):

* With ``auth.password`` set, a client must send ``AUTH password`` before
  anything but AUTH, QUIT and the peer handshake; others get ``ERR NOAUTH``
  (checked first, as Redis does: peer verbs too).
* In protected mode (the default) with no password, a client that is not on
  loopback gets ``ERR DENIED`` and is disconnected.
* Peer verbs other than the handshake (``REQUEST CONNECT`` / ``REQUEST
  PROVE``) and the read-only ``REQUEST PEERS`` / ``REQUEST BLOOMFILTER`` are
  accepted only on a connection that completed the handshake
  (:attr:`Session.peer_name` set); elsewhere ``ERR DENIED``.  A peer does not
  use AUTH: the handshake proves the cluster secret (or, without one, the
  password) instead.

Passwords are compared in constant time (:func:`hmac.compare_digest` of
their SHA-256, so not even their lengths leak); failures are counted
(INFO ``auth_failures``) and logged at most once a second.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import Any

from olivia.core.errors import BadItemError, DeniedError, NoAuthError, WrongPassError
from olivia.observe.stats import Stats

log = logging.getLogger(__name__)

#: Accepted before AUTH (a client's way in, and out).
BEFORE_AUTH = frozenset({"AUTH", "QUIT"})
#: The peer handshake: accepted on any connection (it proves itself).
HANDSHAKE = frozenset({"REQUEST CONNECT", "REQUEST PROVE"})
#: Peer verbs that only read, open to any client that may read.
OPEN_PEER_VERBS = frozenset({"REQUEST PEERS", "REQUEST BLOOMFILTER"})
# Failed logins are logged at most this often (a brute force must not fill the log).
_LOG_EVERY = 1.0


class Session:
    """One connection's standing: authenticated, a verified peer, or neither."""

    __slots__ = ("authenticated", "handshake", "loopback", "peer_name", "protected",
                 "tls_verified", "where")

    def __init__(self, where: str, loopback: bool, authenticated: bool, protected: bool,
                 tls_verified: bool = False) -> None:
        self.where = where  # host:port of the other end, for logs
        self.loopback = loopback
        self.authenticated = authenticated  # may use client verbs
        self.protected = protected  # refused outright unless it proves the cluster secret
        self.tls_verified = tls_verified  # presented a certificate tls.ca signed
        self.peer_name: str | None = None  # set once the peer handshake completed
        self.handshake: Any = None  # the peer handshake under way (olivia.cluster.handshake)

    @property
    def trusted(self) -> bool:
        """May use every client verb without further checks (the fast path)."""
        return self.authenticated or self.peer_name is not None


class Guard:
    """The node's access rules, over every session."""

    def __init__(self, password: str, protected_mode: bool, stats: Stats) -> None:
        self._digest = hashlib.sha256(password.encode()).digest() if password else None
        self.protected_mode = protected_mode
        self._stats = stats
        self._last_logged = -_LOG_EVERY
        self._unlogged = 0

    @property
    def has_password(self) -> bool:
        return self._digest is not None

    def change_password(self, password: str) -> None:
        """A new password (a reload): it is asked of connections opened from now
        on; those already authenticated stay so, as with Redis's CONFIG SET
        requirepass."""
        self._digest = hashlib.sha256(password.encode()).digest() if password else None

    def session(self, where: str, loopback: bool, tls_verified: bool = False) -> Session:
        protected = self.protected_mode and self._digest is None and not loopback
        return Session(where, loopback, self._digest is None and not protected, protected,
                       tls_verified)

    def check(self, session: Session, name: str, peer_verb: bool) -> None:
        """Raise NoAuthError or DeniedError if ``session`` may not run the verb ``name``."""
        if session.peer_name is not None or name in HANDSHAKE:
            return
        if not session.authenticated and name not in BEFORE_AUTH:
            if session.protected:
                raise self.protected_denial(session)
            raise NoAuthError("authentication required: send AUTH <password> first")
        if peer_verb and name not in OPEN_PEER_VERBS:
            raise DeniedError(f"{name} is a peer verb: it is accepted only on a connection "
                              "that completed the peer handshake (REQUEST CONNECT)")

    def protected_denial(self, session: Session) -> DeniedError:
        """The refusal of protected mode (counted in rejected_connections)."""
        self._stats.rejected_connections += 1
        log.warning("refused %s: protected mode, and no password is set", session.where)
        denial = DeniedError(
            "protected mode: this node has no password (auth.password) and accepts clients on "
            "loopback only; set auth.password (clients then send AUTH), or set "
            "protected_mode = false if the network is trusted")
        denial.closes = True
        return denial

    def authenticate(self, session: Session, password: bytes) -> None:
        """AUTH: WrongPassError (counted, logged) unless ``password`` is the node's."""
        if self._digest is None:
            raise BadItemError("AUTH takes no password here: this node has none set "
                               "(auth.password)")
        if not self.password_matches(password):
            self.failed(session.where, "client gave a wrong password")
            raise WrongPassError("invalid password")
        session.authenticated = True
        session.protected = False

    def password_matches(self, password: bytes) -> bool:
        given = hashlib.sha256(password).digest()
        return self._digest is not None and hmac.compare_digest(given, self._digest)

    def failed(self, where: str, what: str) -> None:
        """Count a failed authentication (a client's or a peer's); log it, rate-limited."""
        self._stats.auth_failures += 1
        now = time.monotonic()
        if now - self._last_logged < _LOG_EVERY:
            self._unlogged += 1
            return
        more = f" (and {self._unlogged} more failures since the last report)" \
            if self._unlogged else ""
        log.warning("authentication failed from %s: %s%s", where, what, more)
        self._last_logged, self._unlogged = now, 0
