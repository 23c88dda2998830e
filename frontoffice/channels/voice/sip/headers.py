"""Header field values of RFC 3261 §20 / §25.1: names, compact forms, name-addr, Via, CSeq, params.

Values are parsed from the unfolded text the message parser hands over; each parser raises
:class:`SipParseError` on malformed input and nothing else.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field, replace

from .exceptions import SipParseError
from .uri import Uri, parse_uri

__all__ = [
    "COMPACT_FORMS",
    "CSeq",
    "NameAddress",
    "Via",
    "canonical_name",
    "format_params",
    "is_token",
    "parse_call_id",
    "parse_contact_list",
    "parse_cseq",
    "parse_name_addr",
    "parse_name_addr_list",
    "parse_params",
    "parse_uint",
    "parse_via_list",
    "quote",
    "split_list",
    "unquote",
]

# RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-.!%*_+`'~")
# RFC 3261 §25.1: word additionally allows ( ) < > : \ " / [ ] ? { }
WORD_CHARS = TOKEN_CHARS | frozenset('()<>:\\"/[]?{}')
WSP = " \t"

# RFC 3261 §7.3.3 and the IANA SIP parameters registry: single-letter compact forms.
COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_CANONICAL: dict[str, str] = {
    name.lower(): name
    for name in (
        *COMPACT_FORMS.values(),
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Authentication-Info",
        "Authorization",
        "Call-Info",
        "Content-Disposition",
        "Content-Language",
        "CSeq",
        "Date",
        "Error-Info",
        "Expires",
        "In-Reply-To",
        "Max-Forwards",
        "Min-Expires",
        "Min-SE",
        "MIME-Version",
        "Organization",
        "P-Asserted-Identity",
        "Priority",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Require",
        "RAck",
        "Reason",
        "Record-Route",
        "Replaces",
        "Reply-To",
        "Require",
        "Retry-After",
        "Route",
        "RSeq",
        "Server",
        "Subscription-State",
        "Timestamp",
        "Unsupported",
        "User-Agent",
        "Warning",
        "WWW-Authenticate",
    )
}


def is_token(text: str) -> bool:
    """True if ``text`` is a non-empty RFC 3261 token."""
    return bool(text) and all(c in TOKEN_CHARS for c in text)


def canonical_name(name: str) -> str:
    """Expand a compact form and give a known header its canonical spelling; unknown names are kept."""
    lower = name.lower()
    if len(lower) == 1 and lower in COMPACT_FORMS:
        return COMPACT_FORMS[lower]
    return _CANONICAL.get(lower, name)


def _scan_quoted(text: str, start: int) -> int:
    """Return the index just past the quoted-string opening at ``text[start]``.

    RFC 3261 §25.1: quoted-pair = "\\" (%x00-09 / %x0B-0C / %x0E-7F); qdtext excludes other controls.
    """
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            return i + 1
        if ch == "\\":
            if i + 1 >= n or text[i + 1] in "\r\n" or ord(text[i + 1]) > 0x7F:
                raise SipParseError("Bad quoted-pair")
            i += 2
            continue
        if (ord(ch) < 0x20 and ch != "\t") or ch == "\x7f":
            raise SipParseError("Control character in quoted string")
        i += 1
    raise SipParseError("Unterminated quoted string")


def unquote(text: str) -> str:
    """Remove the quotes and backslash escapes of a quoted-string; a token is returned unchanged."""
    if not text.startswith('"'):
        return text
    end = _scan_quoted(text, 0)
    if end != len(text):
        raise SipParseError("Garbage after quoted string")
    out: list[str] = []
    i = 1
    while i < end - 1:
        if text[i] == "\\":
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def quote(text: str) -> str:
    """Make a quoted-string of ``text``, escaping ``"`` and ``\\`` and control characters."""
    out = ['"']
    for ch in text:
        if ch in '"\\' or ch in "\x00\x0b\x0c\x7f" or ("\x00" < ch < " " and ch not in "\t\r\n"):
            out.append("\\" + ch)
        elif ch in "\r\n":
            out.append(" ")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def split_list(value: str, sep: str = ",") -> list[str]:
    """Split ``value`` on ``sep`` outside quoted strings and ``<...>``; items are stripped.

    RFC 7.3.1: a header with a comma-separated list may be written as several header lines and vice
    versa. Empty items (``a,,b``) are an error, as in RFC 4475 §3.1.2.1 (badinv01).
    """
    items: list[str] = []
    i = 0
    n = len(value)
    start = 0
    while i < n:
        ch = value[i]
        if ch == '"':
            i = _scan_quoted(value, i)
            continue
        if ch == "<":
            end = value.find(">", i)
            if end < 0:
                raise SipParseError("Unbalanced '<'")
            i = end + 1
            continue
        if ch == sep:
            items.append(value[start:i].strip(WSP))
            start = i + 1
        i += 1
    items.append(value[start:].strip(WSP))
    if any(not item for item in items):
        raise SipParseError("Empty list element")
    return items


def parse_params(text: str) -> tuple[tuple[str, str | None], ...]:
    """Parse ``*(SEMI generic-param)`` (``text`` starts after the first ``;``).

    Whitespace is allowed around ``;`` and ``=`` (SEMI, EQUAL of RFC 3261 §25.1). Values are kept
    raw: tokens, hosts, ``[IPv6]`` references or quoted strings including their quotes.
    """
    params: list[tuple[str, str | None]] = []
    for item in split_list(text, ";"):
        name, eq, value = item.partition("=")
        name = name.rstrip(WSP)
        if not is_token(name):
            raise SipParseError("Invalid parameter name")
        if not eq:
            params.append((name, None))
            continue
        value = value.strip(WSP)
        if value.startswith('"'):
            if _scan_quoted(value, 0) != len(value):
                raise SipParseError("Garbage after quoted parameter value")
        elif value.startswith("[") and value.endswith("]"):
            if not all(c in string.hexdigits + ":." for c in value[1:-1]):
                raise SipParseError("Invalid IPv6 parameter value")
        elif not is_token(value):
            raise SipParseError("Invalid parameter value")
        params.append((name, value))
    return tuple(params)


def format_params(params: tuple[tuple[str, str | None], ...]) -> str:
    """Serialize header parameters as ``;name=value;flag``."""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def _get_param(params: tuple[tuple[str, str | None], ...], name: str) -> str | None:
    lname = name.lower()
    for key, value in params:
        if key.lower() == lname:
            return value
    return None


def _set_param(
    params: tuple[tuple[str, str | None], ...], name: str, value: str | None
) -> tuple[tuple[str, str | None], ...]:
    lname = name.lower()
    kept = tuple((k, v) for k, v in params if k.lower() != lname)
    return (*kept, (name, value))


def parse_uint(text: str, what: str, maximum: int) -> int:
    """Parse a string of ASCII digits no larger than ``maximum``."""
    text = text.strip(WSP)
    if not text or not text.isascii() or not text.isdigit():
        raise SipParseError(f"Invalid {what}")
    # Bound the length before int() so a huge digit string costs nothing (RFC 4475 §3.1.2.4 scalar02).
    if len(text.lstrip("0")) > len(str(maximum)) or int(text) > maximum:
        raise SipParseError(f"{what} out of range")
    return int(text)


@dataclass(frozen=True, slots=True)
class NameAddress:
    """``[display-name] <URI> *(;param)`` of From, To, Contact, Route, Refer-To... (RFC 3261 §20.10)."""

    uri: Uri
    display_name: str | None = None
    params: tuple[tuple[str, str | None], ...] = field(default=())

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (RFC 3261 §19.3)."""
        return _get_param(self.params, "tag")

    def param(self, name: str) -> str | None:
        """Raw value of header parameter ``name``."""
        return _get_param(self.params, name)

    def with_param(self, name: str, value: str | None) -> NameAddress:
        """Copy with header parameter ``name`` set."""
        return replace(self, params=_set_param(self.params, name, value))

    def with_tag(self, tag: str) -> NameAddress:
        """Copy with the ``tag`` parameter set."""
        return self.with_param("tag", tag)

    def without_params(self) -> NameAddress:
        """Copy without header parameters."""
        return replace(self, params=())

    def __str__(self) -> str:
        # Always the name-addr form: it is unambiguous whatever the URI contains (RFC 3261 §20.10).
        prefix = f"{quote(self.display_name)} " if self.display_name is not None else ""
        return f"{prefix}<{self.uri}>{format_params(self.params)}"


def _check_display_tokens(text: str) -> None:
    for word in text.replace("\t", " ").split(" "):
        if word and not is_token(word):
            raise SipParseError("Invalid display name")


def parse_name_addr(value: str) -> NameAddress:
    """Parse ``(name-addr / addr-spec) *(SEMI param)``.

    In the addr-spec form every ``;`` starts a header parameter and the URI may not contain ``,``,
    ``;`` or ``?`` (RFC 3261 §20.10; RFC 4475 §3.1.2.13 regbadct).
    """
    text = value.strip(WSP)
    if not text:
        raise SipParseError("Empty address")
    display: str | None = None
    rest: str
    if text.startswith('"'):
        end = _scan_quoted(text, 0)
        display = unquote(text[:end])
        rest = text[end:].lstrip(WSP)
        if not rest.startswith("<"):
            raise SipParseError("Quoted display name without <URI>")
    else:
        lt = text.find("<")
        semi = text.find(";")
        if lt >= 0 and (semi < 0 or lt < semi):
            raw_display = text[:lt].strip(WSP)
            _check_display_tokens(raw_display)
            display = raw_display or None
            rest = text[lt:]
        else:
            rest = ""
    if rest:
        end = rest.find(">")
        if end < 0:
            raise SipParseError("Unterminated <URI>")
        uri_text = rest[1:end]
        if any(c in uri_text for c in " \t"):
            raise SipParseError("Whitespace inside <URI>")
        uri = parse_uri(uri_text)
        tail = rest[end + 1 :].strip(WSP)
    else:
        uri_text, _, _ = text.partition(";")
        uri_text = uri_text.rstrip(WSP)
        if any(c in uri_text for c in " \t,?"):
            raise SipParseError("addr-spec must be enclosed in <> here")
        uri = parse_uri(uri_text)
        tail = text[len(uri_text) :].strip(WSP)
    params: tuple[tuple[str, str | None], ...] = ()
    if tail:
        if not tail.startswith(";"):
            raise SipParseError("Garbage after address")
        params = parse_params(tail[1:])
    return NameAddress(uri=uri, display_name=display, params=params)


def parse_name_addr_list(value: str) -> list[NameAddress]:
    """Parse a comma-separated list of addresses (Route, Record-Route)."""
    return [parse_name_addr(item) for item in split_list(value)]


def parse_contact_list(value: str) -> list[NameAddress] | None:
    """Parse a Contact value; ``None`` means the wildcard ``*`` of REGISTER (RFC 3261 §10.2.2)."""
    if value.strip(WSP) == "*":
        return None
    return parse_name_addr_list(value)


@dataclass(frozen=True, slots=True)
class Via:
    """One Via entry (RFC 3261 §20.42): ``SIP/2.0/transport host[:port];params``."""

    transport: str
    host: str
    port: int | None = None
    params: tuple[tuple[str, str | None], ...] = field(default=())

    @property
    def branch(self) -> str | None:
        """The ``branch`` parameter (RFC 3261 §8.1.1.7)."""
        return _get_param(self.params, "branch")

    @property
    def received(self) -> str | None:
        """The ``received`` parameter (RFC 3261 §18.2.1)."""
        return _get_param(self.params, "received")

    @property
    def has_rport(self) -> bool:
        """True if an ``rport`` parameter is present (RFC 3581 §3)."""
        return any(k.lower() == "rport" for k, _ in self.params)

    @property
    def rport(self) -> int | None:
        """The numeric value of ``rport`` if the parameter has one."""
        value = _get_param(self.params, "rport")
        return int(value) if value is not None and value.isascii() and value.isdigit() else None

    @property
    def sent_by(self) -> str:
        """``host[:port]`` as sent."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def is_reliable(self) -> bool:
        """True for stream transports, where RFC 3261 §17 zeroes the absorb timers."""
        return self.transport.upper() not in ("UDP", "DTLS")

    def param(self, name: str) -> str | None:
        """Raw value of parameter ``name``."""
        return _get_param(self.params, name)

    def with_param(self, name: str, value: str | None) -> Via:
        """Copy with parameter ``name`` set."""
        return replace(self, params=_set_param(self.params, name, value))

    def __str__(self) -> str:
        return f"SIP/2.0/{self.transport} {self.sent_by}{format_params(self.params)}"


def _parse_sent_by(text: str) -> tuple[str, int | None]:
    text = text.strip(WSP)
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError("Unterminated IPv6 reference in Via")
        host, rest = text[: end + 1], text[end + 1 :].strip(WSP)
    else:
        host, sep, port_part = text.partition(":")
        host = host.rstrip(WSP)
        rest = ":" + port_part if sep else ""
    uri = parse_uri(f"sip:{host}")  # reuse the host grammar
    port: int | None = None
    if rest:
        if not rest.startswith(":"):
            raise SipParseError("Invalid Via sent-by")
        port = parse_uint(rest[1:], "Via port", 65_535)
    return uri.host, port


def _parse_via(item: str) -> Via:
    # RFC 3261 §25.1: sent-protocol = protocol-name SLASH protocol-version SLASH transport, with SWS
    # around each slash (RFC 4475 §3.1.1.1 wsinv).
    parts = item.split("/", 2)
    if len(parts) != 3:
        raise SipParseError("Malformed Via sent-protocol")
    name, version = parts[0].strip(WSP), parts[1].strip(WSP)
    rest = parts[2].lstrip(WSP)
    if name.upper() != "SIP" or version != "2.0":
        raise SipParseError("Unsupported Via protocol")
    cut = 0
    while cut < len(rest) and rest[cut] in TOKEN_CHARS:
        cut += 1
    transport, rest = rest[:cut], rest[cut:]
    if not transport or not rest or rest[0] not in WSP:
        raise SipParseError("Malformed Via transport")
    sent_by, semi, raw_params = rest.partition(";")
    host, port = _parse_sent_by(sent_by)
    params = parse_params(raw_params) if semi else ()
    return Via(transport=transport.upper(), host=host, port=port, params=params)


def parse_via_list(value: str) -> list[Via]:
    """Parse a Via header value holding one or more comma-separated entries."""
    return [_parse_via(item) for item in split_list(value)]


# RFC 3261 §8.1.1.5: the CSeq sequence number MUST be less than 2**31.
MAX_CSEQ = 2**31 - 1


@dataclass(frozen=True, slots=True)
class CSeq:
    """``CSeq: number method`` (RFC 3261 §20.16)."""

    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_cseq(value: str) -> CSeq:
    """Parse a CSeq value."""
    parts = value.strip(WSP).replace("\t", " ").split()
    if len(parts) != 2 or not is_token(parts[1]):
        raise SipParseError("Malformed CSeq")
    return CSeq(parse_uint(parts[0], "CSeq number", MAX_CSEQ), parts[1])


def parse_call_id(value: str) -> str:
    """Validate ``Call-ID = word ["@" word]`` (RFC 3261 §25.1) and return it."""
    text = value.strip(WSP)
    local, at, host = text.partition("@")
    if not local or not all(c in WORD_CHARS for c in local):
        raise SipParseError("Malformed Call-ID")
    if at and (not host or not all(c in WORD_CHARS for c in host)):
        raise SipParseError("Malformed Call-ID")
    return text
