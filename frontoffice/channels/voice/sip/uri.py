"""SIP, SIPS and tel URIs (RFC 3261 §19.1, §25.1; RFC 3966), parsed into values and serialized back.

Components are stored unescaped; :meth:`Uri.__str__` escapes what the grammar requires, so
``sip:%75ser@host`` and ``sip:user@host`` parse to the same value (RFC 3261 §19.1.4 equivalence).
Other schemes are kept opaque: RFC 4475 §3.1.4.1 (unkscm) requires a parser to accept them.
"""

from __future__ import annotations

import ipaddress
import string
from dataclasses import dataclass, field, replace

from .exceptions import SipParseError

__all__ = ["Uri", "parse_uri"]

_ALNUM = frozenset(string.ascii_letters + string.digits)
# RFC 3261 §25.1: unreserved = alphanum / mark
_UNRESERVED = _ALNUM | frozenset("-_.!~*'()")
_USER_CHARS = _UNRESERVED | frozenset("&=+$,;?/")  # user-unreserved
_PASSWORD_CHARS = _UNRESERVED | frozenset("&=+$,")
_PARAM_CHARS = _UNRESERVED | frozenset("[]/:&+$")  # param-unreserved
_HEADER_CHARS = _UNRESERVED | frozenset("[]/?:+$")  # hnv-unreserved
_SCHEME_CHARS = _ALNUM | frozenset("+-.")
_HOSTNAME_CHARS = _ALNUM | frozenset("-.")
# An opaque URI of an unknown scheme: anything printable that cannot end a name-addr or a header.
_OPAQUE_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - frozenset('<>"\\`{}|^')
_HEX = frozenset(string.hexdigits)

MAX_PORT = 65_535  # RFC 793: ports are 16-bit
# RFC 3261 §19.1.4: these parameters make URIs differ even when only one side carries them.
_STRICT_PARAMS = frozenset({"user", "ttl", "method", "maddr", "transport"})


def _unescape(text: str, allowed: frozenset[str], what: str) -> str:
    """Validate ``text`` against ``allowed`` plus ``%HH`` escapes and return it decoded."""
    out = bytearray()
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "%":
            pair = text[i + 1 : i + 3]
            if len(pair) != 2 or not all(c in _HEX for c in pair):
                raise SipParseError(f"Bad escape in URI {what}")
            out.append(int(pair, 16))
            i += 3
            continue
        if ch not in allowed:
            raise SipParseError(f"Invalid character in URI {what}")
        out.append(ord(ch))
        i += 1
    return out.decode("utf-8", errors="surrogateescape")


def _escape(text: str, allowed: frozenset[str]) -> str:
    """Escape every octet of ``text`` that ``allowed`` does not permit (RFC 3261 §19.1.2)."""
    parts: list[str] = []
    for byte in text.encode("utf-8", errors="surrogateescape"):
        ch = chr(byte)
        parts.append(ch if byte < 0x80 and ch in allowed else f"%{byte:02X}")
    return "".join(parts)


def _parse_host_port(text: str) -> tuple[str, int | None]:
    """Parse ``host [":" port]`` where host is a hostname, IPv4 address or IPv6 reference."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError("Unterminated IPv6 reference")
        host = text[: end + 1]
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise SipParseError("Invalid IPv6 reference") from None
        rest = text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise SipParseError("Garbage after IPv6 reference")
        port_text = rest[1:] if rest else None
    else:
        host, sep, port_text_raw = text.partition(":")
        port_text = port_text_raw if sep else None
        if not host or not all(c in _HOSTNAME_CHARS for c in host):
            raise SipParseError("Invalid host")
    port: int | None = None
    if port_text is not None:
        if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
            raise SipParseError("Invalid port")
        port = int(port_text)
        if port > MAX_PORT:
            raise SipParseError("Port out of range")
    return host, port


def _parse_params(text: str) -> tuple[tuple[str, str | None], ...]:
    params: list[tuple[str, str | None]] = []
    for item in text.split(";"):
        name, eq, value = item.partition("=")
        if not name:
            raise SipParseError("Empty URI parameter")
        dec_name = _unescape(name, _PARAM_CHARS, "parameter")
        dec_value = _unescape(value, _PARAM_CHARS, "parameter") if eq else None
        params.append((dec_name, dec_value))
    return tuple(params)


def _parse_headers(text: str) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    for item in text.split("&"):
        name, eq, value = item.partition("=")
        if not name or not eq:
            raise SipParseError("Malformed URI header")
        headers.append((_unescape(name, _HEADER_CHARS, "header"), _unescape(value, _HEADER_CHARS, "header")))
    return tuple(headers)


@dataclass(frozen=True, slots=True)
class Uri:
    """A URI as used in SIP: ``sip``/``sips`` (structured), ``tel`` (number + params) or opaque.

    For ``tel`` the number is in ``user`` and ``host`` is empty; for other schemes only ``opaque``
    (everything after the colon) is set.
    """

    scheme: str
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: tuple[tuple[str, str | None], ...] = field(default=())
    headers: tuple[tuple[str, str], ...] = field(default=())
    opaque: str | None = None

    @property
    def is_sip(self) -> bool:
        """True for ``sip:`` and ``sips:`` URIs."""
        return self.scheme in ("sip", "sips")

    def param(self, name: str) -> str | None:
        """Value of URI parameter ``name`` (case-insensitive); ``None`` if absent or valueless."""
        lname = name.lower()
        for key, value in self.params:
            if key.lower() == lname:
                return value
        return None

    def has_param(self, name: str) -> bool:
        """True if the URI carries parameter ``name`` (with or without a value)."""
        lname = name.lower()
        return any(key.lower() == lname for key, _ in self.params)

    def with_param(self, name: str, value: str | None = None) -> Uri:
        """Copy with parameter ``name`` set (replacing an existing one)."""
        lname = name.lower()
        kept = tuple((k, v) for k, v in self.params if k.lower() != lname)
        return replace(self, params=(*kept, (name, value)))

    def without_param(self, name: str) -> Uri:
        """Copy without parameter ``name``."""
        lname = name.lower()
        return replace(self, params=tuple((k, v) for k, v in self.params if k.lower() != lname))

    def without_headers(self) -> Uri:
        """Copy with the ``?headers`` component removed (RFC 3261 §19.1.5 for Request-URIs)."""
        return replace(self, headers=())

    def equivalent(self, other: Uri) -> bool:
        """URI comparison of RFC 3261 §19.1.4.

        Escapes are already decoded; user and password compare case-sensitively, host and parameter
        names case-insensitively; user, ttl, method, maddr and transport must agree when either side
        has them, other parameters only when both do; headers must match exactly.
        """
        if self.scheme != other.scheme:
            return False
        if self.opaque is not None or other.opaque is not None:
            return self.opaque == other.opaque
        if (self.user, self.password, self.port) != (other.user, other.password, other.port):
            return False
        if self.host.lower() != other.host.lower():
            return False
        mine = {k.lower(): (v or "").lower() for k, v in self.params}
        theirs = {k.lower(): (v or "").lower() for k, v in other.params}
        for name in set(mine) | set(theirs):
            if name in _STRICT_PARAMS and mine.get(name) != theirs.get(name):
                return False
            if name in mine and name in theirs and mine[name] != theirs[name]:
                return False
        return {(k.lower(), v) for k, v in self.headers} == {(k.lower(), v) for k, v in other.headers}

    @property
    def transport(self) -> str | None:
        """The ``transport`` URI parameter, lower-cased."""
        value = self.param("transport")
        return value.lower() if value else None

    @property
    def host_port(self) -> str:
        """``host[:port]`` as it appears in the URI."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        if self.opaque is not None:
            return f"{self.scheme}:{self.opaque}"
        out = [self.scheme, ":"]
        if self.scheme == "tel":
            out.append(_escape(self.user or "", _USER_CHARS))
        else:
            if self.user is not None:
                out.append(_escape(self.user, _USER_CHARS))
                if self.password is not None:
                    out.append(":" + _escape(self.password, _PASSWORD_CHARS))
                out.append("@")
            out.append(self.host_port)
        for name, value in self.params:
            out.append(";" + _escape(name, _PARAM_CHARS))
            if value is not None:
                out.append("=" + _escape(value, _PARAM_CHARS))
        if self.headers:
            out.append("?")
            out.append(
                "&".join(f"{_escape(k, _HEADER_CHARS)}={_escape(v, _HEADER_CHARS)}" for k, v in self.headers)
            )
        return "".join(out)


def parse_uri(text: str) -> Uri:
    """Parse a URI; raise :class:`SipParseError` if it is malformed.

    Whitespace is never part of a URI (RFC 4475 §3.1.2.14 badaspec, §3.1.2.8 lwsruri).
    """
    scheme, colon, rest = text.partition(":")
    if not colon or not scheme or not scheme[0].isascii() or not scheme[0].isalpha():
        raise SipParseError("Malformed URI scheme")
    if not all(c in _SCHEME_CHARS for c in scheme):
        raise SipParseError("Malformed URI scheme")
    scheme = scheme.lower()
    if not rest:
        raise SipParseError("Empty URI")
    if scheme in ("sip", "sips"):
        return _parse_sip(scheme, rest)
    if scheme == "tel":
        number, semi, params = rest.partition(";")
        if not number:
            raise SipParseError("Empty telephone number")
        return Uri(
            scheme="tel",
            user=_unescape(number, _USER_CHARS - frozenset(";?"), "number"),
            params=_parse_params(params) if semi else (),
        )
    if not all(c in _OPAQUE_CHARS or c == "%" for c in rest):
        raise SipParseError("Invalid character in URI")
    return Uri(scheme=scheme, opaque=rest)


def _parse_sip(scheme: str, rest: str) -> Uri:
    user: str | None = None
    password: str | None = None
    # RFC 3261 §25.1: "@" cannot appear unescaped in params or headers, so the first one ends userinfo;
    # the user part itself may contain ";" and "?" (RFC 4475 §3.1.1.2 intmeth, §3.1.1.9 semiuri).
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        raw_user, has_pw, raw_pw = userinfo.partition(":")
        if not raw_user:
            raise SipParseError("Empty URI user")
        user = _unescape(raw_user, _USER_CHARS, "user")
        password = _unescape(raw_pw, _PASSWORD_CHARS, "password") if has_pw else None
    rest, has_headers, raw_headers = rest.partition("?")
    hostport, has_params, raw_params = rest.partition(";")
    host, port = _parse_host_port(hostport)
    return Uri(
        scheme=scheme,
        user=user,
        password=password,
        host=host,
        port=port,
        params=_parse_params(raw_params) if has_params else (),
        headers=_parse_headers(raw_headers) if has_headers else (),
    )
