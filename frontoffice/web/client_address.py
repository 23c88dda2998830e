"""The client's address behind reverse proxies: ``X-Forwarded-For`` believed only from trusted ones.

Behind the recommended reverse proxy every connection comes from the proxy, so without this all
users share one address (the sign-in throttle, the audit log and sessions would see one client).
But ``X-Forwarded-For`` is a header anyone can send: it is read only when the connection comes from
an address of ``trusted_proxies`` (CIDR networks), and then from the right, skipping the trusted
proxies' own entries, so a client cannot name an address of its choosing by sending the header
itself (each proxy appends the address it saw at the end; the leftmost entries are the client's to
write). See docs/configuration.md.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache

__all__ = ["Network", "client_address", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def parse_networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    """The networks of ``trusted_proxies`` (a bare address is a /32 or /128); raises ``ValueError``
    naming an entry that is not an address or network."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an address or CIDR network: {cidr!r}") from None
    return tuple(networks)


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def client_address(peer: str | None, forwarded_for: Iterable[str], networks: Sequence[Network]) -> str | None:
    """The client's address: ``peer`` (the connection's), unless ``peer`` is a trusted proxy; then
    the rightmost address of the ``X-Forwarded-For`` headers (``forwarded_for``, in order) that is
    not itself a trusted proxy. An entry that is not an address ends the walk: what is left of it
    was written by someone untrusted, so the last trusted hop's word (the entry itself) is taken."""
    if peer is None or not networks or not _trusted(peer, networks):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops):
        client = hop
        if not _trusted(hop, networks):
            break
    return client
