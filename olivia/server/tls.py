"""TLS for a node's port and its links to peers (the standard library's ssl).

With ``tls.cert`` and ``tls.key`` set, the port speaks TLS only.  With
``tls.ca`` too, certificates are checked both ways among nodes (mutual
TLS): a node dialling a peer requires the peer's certificate to be signed by
that CA and presents its own; the port asks every client for a certificate,
verifies any it is given, and the peer handshake (``REQUEST CONNECT``) is
refused to a connection that presented none.  Plain clients need no
certificate of their own.  Host names are not checked between nodes: they
dial each other by address, and the CA is the cluster's own.
"""

from __future__ import annotations

import ssl

from olivia.config import Config, ConfigError


def server_context(config: Config) -> ssl.SSLContext | None:
    """The port's TLS context, or None when tls.cert is not set."""
    if not config.tls_cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load(context, config)
    if config.tls_ca:
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def peer_context(config: Config) -> ssl.SSLContext | None:
    """The context for dialling peers, or None when tls.cert is not set."""
    if not config.tls_cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    if config.tls_ca:
        _load(context, config)
        context.verify_mode = ssl.CERT_REQUIRED
    else:
        context.verify_mode = ssl.CERT_NONE  # encrypted, not authenticated: see tls.ca
    return context


def _load(context: ssl.SSLContext, config: Config) -> None:
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"tls.cert / tls.key: cannot load '{config.tls_cert}'"
                          f"{' / ' + repr(config.tls_key) if config.tls_key else ''}: "
                          f"{_reason(exc)}") from None
    if config.tls_ca:
        try:
            context.load_verify_locations(config.tls_ca)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"tls.ca: cannot load '{config.tls_ca}': {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
