"""Which address peers should dial back, when the node listens on all of them.

A node on ``--host 0.0.0.0`` (or ``::``) without ``--advertise`` would
otherwise tell its peers to dial ``0.0.0.0:5454``, which is not a host.  It
advertises one of this machine's own addresses instead: the one the kernel
would use to reach other hosts, else the first non-loopback address of an
interface; and if there is none, it refuses to start and asks for
``--advertise``.  Nothing here sends a packet: connecting a UDP socket only
asks the kernel for a route.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct

WILDCARDS = frozenset({"0.0.0.0", "::", ""})
# TEST-NET-1 (RFC 5737): never a real host, so "the route to it" is the
# default route, whose source address is the machine's primary one.
_PROBE = ("192.0.2.1", 9)
_SIOCGIFADDR = 0x8915  # Linux: an interface's IPv4 address


class NoRoutableAddress(Exception):
    """No address of this machine could be advertised; the message says what to do."""


def advertised_address(host: str, port: int, configured: str) -> str:
    """``host:port`` for peers to dial back."""
    if configured:
        return configured
    if host not in WILDCARDS:
        return f"{host}:{port}"
    found = routable_address()
    if found is None:
        raise NoRoutableAddress(
            f"listening on {host or '*'} (every address), but no address of this machine "
            "can be told to peers: give the one they should dial with --advertise HOST:PORT")
    return f"{found}:{port}"


def routable_address() -> str | None:
    """One of this machine's IPv4 addresses other hosts could reach, or None."""
    for candidate in (_routed_source(), *_interface_addresses()):
        if candidate is not None and _usable(candidate):
            return candidate
    return None


def _usable(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not (ip.is_loopback or ip.is_unspecified or ip.is_link_local)


def _routed_source() -> str | None:
    """The source address of the route to other hosts (no packet is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(_PROBE)
            address: str = probe.getsockname()[0]
            return address
    except OSError:  # no route at all (a host with only local networks)
        return None


def _interface_addresses() -> list[str]:
    """The IPv4 address of each interface that has one (Linux)."""
    addresses = []
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for name in names:
            request = struct.pack("256s", name.encode()[:15])
            try:
                reply = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)
            except OSError:  # down, or no IPv4 address
                continue
            addresses.append(socket.inet_ntoa(reply[20:24]))
    return addresses
