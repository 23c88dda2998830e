"""Where outgoing integrations may connect: public addresses, and the networks an operator allows
(``integrations_allowed_networks``; ``docs/integrations.md``, "Internal addresses").

The URLs of outgoing integrations — webhook subscriptions, screen-pop lookups, SMS HTTP gateways
(``sms.http.url``), Telegram Bot API servers (``telegram.base_url``) — and the SMS centers of SMPP
links (``sms.smpp.host``) are chosen by administrators through the API; without this check such an
address is a way to make the server send requests to itself, to the hosts of its own network, or to
a cloud's metadata service (``169.254.169.254``) — a server-side request forgery (SSRF). So:

* **At configuration time** (:meth:`EgressPolicy.check_url`) the URL's host is resolved and every
  address it names must be allowed; otherwise the API answers ``422`` at the field
  (:func:`url_refused`, in the request's language).
* **At every connection** (:class:`GuardedTransport`) the host is resolved again, every address is
  checked, and the connection is made to a checked address itself — so a name that resolved to a
  public address when it was configured and to ``127.0.0.1`` later (DNS rebinding) is refused. The
  request keeps its URL: the ``Host`` header and the TLS server name (SNI, and the certificate check)
  are the host's name, only the TCP connection goes to the checked address.

Every outgoing HTTP request of an integration goes through :class:`GuardedTransport`, those of
URLs from the settings file too (``screen_pop_url``, ``captcha_verify_url``): one rule for all, one
setting to allow a LAN server. The one integration that is not HTTP, an SMS entry point's SMPP link
(``sms.smpp.host``/``port``, a raw TCP connection), has the same two checks:
:meth:`EgressPolicy.check_host` when it is saved (:func:`host_refused`) and
:meth:`EgressPolicy.open_connection` at every connection. The operator's mail and telephony
settings (SMTP relay, IMAP, SIP trunks) are not integrations an administrator types in, and are not
checked.

An address is allowed when it is public (globally routable unicast) or inside one of the allowed
networks. Loopback, link-local, private (RFC 1918, RFC 4193), shared (RFC 6598), unspecified,
multicast, reserved and broadcast addresses are not public. An IPv4-mapped IPv6 address
(``::ffff:127.0.0.1``) is judged as the IPv4 address it maps.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from frontoffice.domain.exceptions import InvalidInput
from frontoffice.i18n import gettext

from .schemas import N_

__all__ = [
    "SETTING_NAME",
    "AddressRefused",
    "EgressPolicy",
    "GuardedTransport",
    "Resolver",
    "host_refused",
    "refusal_of",
    "refused_reason",
    "system_resolver",
    "url_refused",
]

# The setting that lists the networks (docs name it in every refusal, so an operator knows the fix).
SETTING_NAME = "integrations_allowed_networks"
# A configuration-time lookup slower than this is not waited for: the address is checked again at
# every connection anyway, and an admin's form should not hang on a slow DNS server.
CONFIG_RESOLVE_TIMEOUT_S = 3.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses the name resolves to (an address literal resolves to itself).
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of ``host`` from the system resolver (``getaddrinfo``, without blocking the loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in out:
            out.append(address)
    return out


class AddressRefused(httpcore.ConnectError):
    """A connection to an address that is neither public nor allowed. A ``ConnectError`` for
    httpcore (httpx raises ``httpx.ConnectError`` from it); its message says why and how to allow it."""

    def __init__(self, host: str, address: str, why: str) -> None:
        self.host = host
        self.address = address
        self.why = why
        named = address if host == address else f"{host} ({address})"
        super().__init__(
            f"refused: {named} is {why}; outgoing integrations reach public addresses and the "
            f"networks in the setting {SETTING_NAME}"
        )


def _unmapped(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def refusal_of(address: Address) -> str | None:
    """Why ``address`` is not public (a phrase: "a loopback address", a catalog message), or None
    when it is."""
    address = _unmapped(address)
    if address.is_unspecified:
        return N_("an unspecified address")
    if address.is_loopback:
        return N_("a loopback address")
    if address.is_link_local:
        return N_("a link-local address (cloud metadata services live there)")
    if address.is_multicast:
        return N_("a multicast address")
    if address in _SHARED:
        return N_("a shared (carrier-grade NAT) address")
    if address.is_private:
        return N_("a private network address")
    if address.is_reserved or not address.is_global:
        return N_("not a public address")
    return None


# RFC 6598 shared address space: not is_private in Python 3.11, not public either.
_SHARED = ipaddress.ip_network("100.64.0.0/10")


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """Which addresses outgoing integrations may connect to: public ones and ``allowed`` networks."""

    allowed: tuple[Network, ...] = ()
    resolver: Resolver = system_resolver

    @classmethod
    def from_setting(cls, networks: Iterable[str], *, resolver: Resolver = system_resolver) -> EgressPolicy:
        """From the setting's CIDR strings (an address alone is a /32 or /128 network)."""
        return cls(tuple(ipaddress.ip_network(n.strip(), strict=False) for n in networks), resolver)

    def why_refused(self, address: str) -> str | None:
        """Why a connection to ``address`` is refused, or None when it is allowed."""
        try:
            parsed = _unmapped(ipaddress.ip_address(address.split("%", 1)[0]))
        except ValueError:
            return N_("not an IP address")
        if any(parsed.version == n.version and parsed in n for n in self.allowed):
            return None
        return refusal_of(parsed)

    async def checked_addresses(self, host: str, port: int) -> list[str]:
        """The addresses of ``host``, all of them allowed; :class:`AddressRefused` when one is not (a
        name with a public and an internal address is refused: which one is used is not ours to say)."""
        addresses = await self.resolver(host.strip("[]"), port)
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            why = self.why_refused(address)
            if why is not None:
                raise AddressRefused(host, address, why)
        return addresses

    async def check_url(self, url: str) -> None:
        """Refuse (:class:`AddressRefused`) a URL whose host is or resolves to an address that is not
        allowed. A name that does not resolve now passes: it is checked again at every connection."""
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
        except ValueError:  # not a URL (an unclosed "[" of an IPv6 address): no connection can be made
            return
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            port = 80
        await self.check_host(host, port)

    async def check_host(self, host: str, port: int) -> None:
        """The configuration-time check of a TCP peer (an SMPP link's ``host``/``port``): refuse
        (:class:`AddressRefused`) a host that is or resolves to an address that is not allowed. A name
        that does not resolve now (or not within :data:`CONFIG_RESOLVE_TIMEOUT_S`) passes: it is
        checked again at every connection (:meth:`open_connection`)."""
        try:
            async with asyncio.timeout(CONFIG_RESOLVE_TIMEOUT_S):
                await self.checked_addresses(host, port)
        except AddressRefused:
            raise
        except (OSError, TimeoutError, httpcore.ConnectError, UnicodeError):
            return

    async def open_connection(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TCP connection (asyncio streams) to ``host``:``port``, made only to a checked address: the
        TCP counterpart of :class:`GuardedTransport`, for integrations that are not HTTP (an SMPP
        link). ``host`` is resolved once, every address is checked, and the connection goes to the
        address itself — never to the name, which a second lookup could resolve elsewhere (DNS
        rebinding). Addresses are tried in the resolver's order.

        Raises :class:`AddressRefused` (nothing was connected), ``httpcore.ConnectError`` (the name
        has no address) or ``OSError`` (the lookup or every connection failed; the last one's error).
        The caller bounds the time (``asyncio.wait_for``)."""
        addresses = await self.checked_addresses(host, port)
        last: OSError | None = None
        for address in addresses:
            try:
                return await asyncio.open_connection(address, port)
            except OSError as exc:
                last = exc
        assert last is not None
        raise last


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the check in front: resolves, checks, connects to the address."""

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self.policy.checked_addresses(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host}: {exc}") from exc
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("outgoing integrations do not use Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@functools.cache
def _trusted_context() -> ssl.SSLContext:
    # Built once: loading the CA bundle costs ~30 ms of CPU on the event loop, and the SMS and
    # Telegram senders make a transport per message. One context serves any number of connections.
    return httpx.create_ssl_context(verify=True, trust_env=True)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, connecting only where ``policy`` allows (module docstring). No proxy
    from the environment is used (a client given a transport takes none): a proxy would connect on
    our behalf, past the check. ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` still name the trusted CAs.
    Cheap to make (the default TLS context is shared): one per client is fine."""

    def __init__(self, policy: EgressPolicy, *, verify: ssl.SSLContext | bool = True) -> None:
        ssl_context = (
            _trusted_context() if verify is True else httpx.create_ssl_context(verify=verify, trust_env=True)
        )
        super().__init__(verify=ssl_context, trust_env=False)
        # httpx has no parameter for httpcore's network backend: the pool httpx just built is
        # replaced by the same pool (httpx's default limits) with the guarded backend.
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(policy),
        )


def refused_reason(exc: BaseException) -> str | None:
    """The refusal behind an httpx error (:class:`AddressRefused` raised by the transport), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, AddressRefused):
            return str(current)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def url_refused(exc: AddressRefused, field: str | Sequence[str] = "url") -> InvalidInput:
    """The API's answer to a URL of an internal address: 422 ``url-not-allowed`` at ``field`` (a
    name, or the path of a nested one: ``("sms", "http", "url")``), as a schema error is. The field's
    message is in the request's language (the admin console shows it under the field as it is)."""
    return _refused(
        exc, field, "url-not-allowed", N_("The URL points to an address outgoing integrations may not reach")
    )


def host_refused(exc: AddressRefused, field: str | Sequence[str] = "host") -> InvalidInput:
    """:func:`url_refused` for a host that is not a URL's (an SMPP link's ``("sms", "smpp", "host")``):
    422 ``host-not-allowed`` at ``field``, its message in the request's language."""
    return _refused(
        exc, field, "host-not-allowed", N_("The host is an address outgoing integrations may not reach")
    )


def _refused(exc: AddressRefused, field: str | Sequence[str], error_id: str, summary: str) -> InvalidInput:
    path = [field] if isinstance(field, str) else list(field)
    named = exc.address if exc.host == exc.address else f"{exc.host} ({exc.address})"
    message = gettext(
        "{address} is {why}: outgoing integrations reach public addresses and the networks in the "
        "setting {setting}"
    ).format(address=named, why=gettext(exc.why), setting=SETTING_NAME)
    return InvalidInput(
        summary,  # translated at the API's boundary, as every error's message is
        error_id=error_id,
        errors=[{"loc": ["body", *path], "type": error_id, "message": message}],
        address=exc.address,
        setting=SETTING_NAME,
    )
