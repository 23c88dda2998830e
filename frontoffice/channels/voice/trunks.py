"""Carrier trunks at run time: who may send us calls, how numbers are dialled, how many calls each
trunk carries, and the registration we keep at carriers that want one.

Pure: no sockets, no clock reads (``now`` is passed in). The B2BUA side is :mod:`.outbound`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

from frontoffice.domain.exceptions import Conflict, NotFound

from .sip import Destination, RegistrationClient, RegistrationState

__all__ = [
    "InvalidNumber",
    "Trunk",
    "TrunkLine",
    "TrunkLines",
    "TrunkStatus",
    "dial_string",
    "normalize_number",
]

log = logging.getLogger("frontoffice.voice.trunks")

# E.164 allows 15 digits; anything longer typed into "number" is a paste error or an injection attempt.
MAX_NUMBER_LENGTH = 32


class InvalidNumber(ValueError):
    """The text is not a phone number we can dial."""


@dataclass(frozen=True, slots=True)
class Trunk:
    """One carrier trunk (see :class:`frontoffice.config_trunks.SipTrunk` for the meaning of fields)."""

    name: str
    host: str
    port: int = 5060
    transport: str = "udp"
    allowed_sources: tuple[str, ...] = ()
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    auth_username: str | None = None
    realm: str | None = None
    registers: bool = False
    register_expires: int = 600
    max_calls: int = 30
    caller_id: str | None = None
    from_domain: str | None = None
    region: str | None = None
    number_format: str = "e164"
    dial_prefix: str = ""
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(default=(), compare=False)

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> Trunk:
        """Build from a validated settings mapping (``SipTrunk.model_dump()`` with the password revealed)."""
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__ and k != "networks"}
        known["allowed_sources"] = tuple(known.get("allowed_sources") or ())
        trunk = cls(**known)
        sources = trunk.allowed_sources or _host_as_network(trunk.host)
        object.__setattr__(trunk, "networks", tuple(ipaddress.ip_network(n, strict=False) for n in sources))
        return trunk

    def accepts_from(self, host: str) -> bool:
        """True when an INVITE from ``host`` comes from this carrier."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    @property
    def sip_transport(self) -> str:
        return self.transport.upper()

    @property
    def digest_username(self) -> str | None:
        return self.auth_username or self.username


def _host_as_network(host: str) -> tuple[str, ...]:
    try:
        return (str(ipaddress.ip_network(host)),)
    except ValueError:
        return ()


def normalize_number(text: str, region: str) -> str:
    """The E.164 form (``+74951234567``) of a number as a person types it (``8 (495) 123-45-67``).

    Raises :class:`InvalidNumber` for anything that is not a possible phone number.
    """
    if not text or len(text) > MAX_NUMBER_LENGTH or not re.fullmatch(r"[0-9+()\-. ]+", text):
        raise InvalidNumber(f"not a phone number: {text[:MAX_NUMBER_LENGTH]!r}")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidNumber(f"not a phone number: {text!r}") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidNumber(f"not a possible phone number: {text!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def dial_string(e164: str, trunk: Trunk) -> str:
    """The Request-URI user part the carrier expects for ``e164``: its format, then the dial prefix."""
    number = phonenumbers.parse(e164, None)
    if trunk.number_format == "digits":
        body = e164.lstrip("+")
    elif trunk.number_format == "national":
        national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        body = re.sub(r"[^\d]", "", national)
    else:
        body = e164
    return trunk.dial_prefix + body


@dataclass(frozen=True, slots=True)
class TrunkStatus:
    """What ``GET /api/v1/voice/trunks`` shows of one trunk."""

    name: str
    host: str
    port: int
    transport: str
    registers: bool
    registered: bool
    registration_state: str
    registered_until: float | None
    last_error: str | None
    active_calls: int
    max_calls: int


@dataclass(eq=False)
class TrunkLine:
    """A trunk plus its live state: calls in and out, the registration (when it registers)."""

    trunk: Trunk
    registration: RegistrationClient | None = None
    # Call-IDs of the carrier's calls in progress: added when the INVITE is admitted, removed when
    # the call ends or is refused (404, bad SDP ...), so a refused call never holds a slot.
    inbound: set[str] = field(default_factory=set)
    outbound: set[str] = field(default_factory=set)  # Call-IDs of our legs through this trunk

    def active_calls(self) -> int:
        """Calls carried now, in and out."""
        return len(self.inbound) + len(self.outbound)

    def has_room(self) -> bool:
        return self.active_calls() < self.trunk.max_calls

    def release(self, call_id: str) -> None:
        """The call ``call_id`` is over (or was refused): its slot is free."""
        self.inbound.discard(call_id)
        self.outbound.discard(call_id)

    def status(self, now: float) -> TrunkStatus:
        reg = self.registration
        return TrunkStatus(
            name=self.trunk.name,
            host=self.trunk.host,
            port=self.trunk.port,
            transport=self.trunk.transport,
            registers=self.trunk.registers,
            registered=reg is not None and reg.is_registered(now),
            registration_state=reg.state.value if reg is not None else RegistrationState.UNREGISTERED.value,
            registered_until=reg.registered_until if reg is not None else None,
            last_error=reg.last_error if reg is not None else None,
            active_calls=self.active_calls(),
            max_calls=self.trunk.max_calls,
        )


class TrunkLines:
    """Every configured trunk with its live state: looked up by name or by a request's source, with
    the address each resolves to (once, at start) and its calls in progress."""

    def __init__(self, trunks: Sequence[Trunk] = ()) -> None:
        self.lines = [TrunkLine(t) for t in trunks]
        self._addresses: dict[str, str] = {}  # trunk name -> resolved IP

    def __iter__(self) -> Iterator[TrunkLine]:
        return iter(self.lines)

    def __bool__(self) -> bool:
        return bool(self.lines)

    def __getitem__(self, index: int) -> TrunkLine:
        return self.lines[index]

    async def resolve(self) -> None:
        """Resolve every trunk's host once (a failure keeps the name and is logged)."""
        loop = asyncio.get_running_loop()
        for line in self.lines:
            trunk = line.trunk
            try:
                infos = await loop.getaddrinfo(trunk.host, trunk.port, type=socket.SOCK_DGRAM)
                self._addresses[trunk.name] = str(infos[0][4][0])
            except OSError as exc:
                log.warning("trunk %s: cannot resolve %s: %s", trunk.name, trunk.host, exc)
                self._addresses[trunk.name] = trunk.host

    def line(self, name: str | None) -> TrunkLine:
        """The named trunk, or the first one; :class:`NotFound` when there is none."""
        if not self.lines:
            raise Conflict("No SIP trunk is configured", error_id="no-trunk")
        if name is None:
            return self.lines[0]
        for line in self.lines:
            if line.trunk.name == name:
                return line
        raise NotFound("No such trunk", error_id="no-such-trunk", trunk=name)

    def destination(self, trunk: Trunk) -> Destination:
        if trunk.sip_transport == "TLS":
            # TLS checks the certificate against the name we dialled, so keep the name.
            return Destination(trunk.host, trunk.port, "TLS")
        return Destination(self._addresses.get(trunk.name, trunk.host), trunk.port, trunk.sip_transport)

    def for_source(self, host: str) -> TrunkLine | None:
        """The trunk a request from ``host`` comes through, if any."""
        for line in self.lines:
            if line.trunk.accepts_from(host):
                return line
        return None

    def release(self, call_id: str) -> None:
        """The call ``call_id`` is over or was refused: it stops counting against its trunk."""
        for line in self.lines:
            line.release(call_id)
