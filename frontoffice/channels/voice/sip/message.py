"""SIP requests and responses as values, and their serialization (RFC 3261 §7).

Header fields are kept as an ordered list of ``(canonical name, raw value)`` pairs; the typed
accessors (``vias``, ``from_``, ``cseq``...) parse on demand. The parser has already validated the
fields it relies on, so on a parsed message they do not fail.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .exceptions import ProtocolError, SipParseError
from .headers import (
    CSeq,
    NameAddress,
    Via,
    canonical_name,
    parse_call_id,
    parse_contact_list,
    parse_cseq,
    parse_name_addr,
    parse_name_addr_list,
    parse_uint,
    parse_via_list,
    split_list,
)
from .uri import Uri

__all__ = ["SIP_VERSION", "Headers", "Message", "Request", "Response"]

SIP_VERSION = "SIP/2.0"


# The typed accessors are read many times per message (every layer asks for the top Via, the Call-ID,
# the From tag...) and the same values recur across the messages of a call. Parsing is a pure
# function of the raw text and its results are frozen, so they are memoised by value (a failure is
# not cached: it is raised again each time).
_CACHE = 4096


@functools.lru_cache(maxsize=_CACHE)
def parsed_vias(value: str) -> tuple[Via, ...]:
    """:func:`parse_via_list`, memoised."""
    return tuple(parse_via_list(value))


parsed_name_addr = functools.lru_cache(maxsize=_CACHE)(parse_name_addr)
parsed_call_id = functools.lru_cache(maxsize=_CACHE)(parse_call_id)
parsed_cseq = functools.lru_cache(maxsize=_CACHE)(parse_cseq)


def _field(name: str, value: str) -> tuple[str, str]:
    # A CR or LF in a value would let text from a caller (a display name, a Subject) start a new
    # header or end the header section: header injection. Refuse it at the door.
    if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name or not name:
        raise ProtocolError(f"Illegal characters in header field {name!r}")
    return canonical_name(name), value


class Headers:
    """Ordered, case-insensitive multi-map of header fields; compact names are expanded on entry."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [_field(n, v) for n, v in items]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def copy(self) -> Headers:
        """A shallow copy."""
        return Headers(self._items)

    def get(self, name: str) -> str | None:
        """Value of the first field called ``name``."""
        key = canonical_name(name).lower()
        for n, v in self._items:
            if n.lower() == key:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        """Values of every field called ``name``, in order."""
        key = canonical_name(name).lower()
        return [v for n, v in self._items if n.lower() == key]

    def get_list(self, name: str) -> list[str]:
        """Comma-separated elements across every field called ``name`` (RFC 3261 §7.3.1)."""
        return [item for value in self.get_all(name) if value.strip() for item in split_list(value)]

    def add(self, name: str, value: str) -> None:
        """Append a field."""
        self._items.append(_field(name, value))

    def prepend(self, name: str, value: str) -> None:
        """Insert a field before all others (a proxy's Via, RFC 3261 §16.6 step 8)."""
        self._items.insert(0, _field(name, value))

    def set(self, name: str, value: str) -> None:
        """Replace every field called ``name`` by one, at the position of the first (or at the end)."""
        cname, value = _field(name, value)
        key = cname.lower()
        out: list[tuple[str, str]] = []
        placed = False
        for n, v in self._items:
            if n.lower() == key:
                if not placed:
                    out.append((cname, value))
                    placed = True
            else:
                out.append((n, v))
        if not placed:
            out.append((cname, value))
        self._items = out

    def remove(self, name: str) -> None:
        """Remove every field called ``name``."""
        key = canonical_name(name).lower()
        self._items = [(n, v) for n, v in self._items if n.lower() != key]


def _required(headers: Headers, name: str) -> str:
    value = headers.get(name)
    if value is None:
        raise SipParseError(f"Missing {name} header")
    return value


@dataclass(eq=False)
class Message(ABC):
    """Common part of :class:`Request` and :class:`Response`."""

    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @property
    def vias(self) -> list[Via]:
        """Every Via entry, topmost first."""
        return [via for value in self.headers.get_all("Via") for via in parsed_vias(value)]

    @property
    def top_via(self) -> Via:
        """The topmost Via (RFC 3261 §8.2.6.2, §17)."""
        vias = self.vias
        if not vias:
            raise SipParseError("Missing Via header")
        return vias[0]

    @property
    def from_(self) -> NameAddress:
        """The From address."""
        return parsed_name_addr(_required(self.headers, "From"))

    @property
    def to(self) -> NameAddress:
        """The To address."""
        return parsed_name_addr(_required(self.headers, "To"))

    @property
    def call_id(self) -> str:
        """The Call-ID."""
        return parsed_call_id(_required(self.headers, "Call-ID"))

    @property
    def cseq(self) -> CSeq:
        """The CSeq."""
        return parsed_cseq(_required(self.headers, "CSeq"))

    @property
    def contacts(self) -> list[NameAddress]:
        """Contact addresses (empty for none or for the ``*`` wildcard)."""
        out: list[NameAddress] = []
        for value in self.headers.get_all("Contact"):
            out.extend(parse_contact_list(value) or [])
        return out

    @property
    def record_routes(self) -> list[NameAddress]:
        """Record-Route entries in message order."""
        return [a for value in self.headers.get_all("Record-Route") for a in parse_name_addr_list(value)]

    @property
    def routes(self) -> list[NameAddress]:
        """Route entries in message order."""
        return [a for value in self.headers.get_all("Route") for a in parse_name_addr_list(value)]

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards, or ``None`` when absent."""
        value = self.headers.get("Max-Forwards")
        return None if value is None else parse_uint(value, "Max-Forwards", 255)

    @property
    def content_type(self) -> str | None:
        """Media type of the body without parameters, lower-cased."""
        value = self.headers.get("Content-Type")
        return None if value is None else value.split(";", 1)[0].strip().lower()

    @abstractmethod
    def _start_line(self) -> str:
        """The request or status line."""

    def serialize(self) -> bytes:
        """Encode the message; Content-Length is always present and equals ``len(body)``.

        RFC 3261 §20.14: Content-Length is mandatory on stream transports, so it is always written.
        """
        lines = [self._start_line()]
        wrote_length = False
        for name, value in self.headers:
            if name == "Content-Length":
                if wrote_length:
                    continue
                value = str(len(self.body))
                wrote_length = True
            lines.append(f"{name}: {value}")
        if not wrote_length:
            lines.append(f"Content-Length: {len(self.body)}")
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("utf-8", errors="surrogateescape") + self.body

    def __bytes__(self) -> bytes:
        return self.serialize()


@dataclass(eq=False)
class Request(Message):
    """A SIP request: ``Method Request-URI SIP/2.0``."""

    method: str = ""
    uri: Uri = field(default_factory=lambda: Uri(scheme="sip", host="invalid"))

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} {SIP_VERSION}"

    def __repr__(self) -> str:
        return f"Request({self.method} {self.uri})"


@dataclass(eq=False)
class Response(Message):
    """A SIP response: ``SIP/2.0 Status-Code Reason-Phrase``."""

    status: int = 200
    reason: str = "OK"

    def _start_line(self) -> str:
        return f"{SIP_VERSION} {self.status} {self.reason}"

    @property
    def is_provisional(self) -> bool:
        """1xx."""
        return 100 <= self.status < 200

    @property
    def is_success(self) -> bool:
        """2xx."""
        return 200 <= self.status < 300

    @property
    def is_final(self) -> bool:
        """2xx-6xx."""
        return self.status >= 200

    def __repr__(self) -> str:
        return f"Response({self.status} {self.reason})"
