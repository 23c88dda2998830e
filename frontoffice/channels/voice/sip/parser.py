"""Bytes to :class:`Request`/:class:`Response`: one datagram (UDP) or a framed byte stream (TCP/TLS).

Strict where the grammar is unambiguous, forgiving where RFC 3261 says so (leading CRLFs §7.5,
header folding §7.3.1, compact forms §7.3.3, missing Content-Length on UDP §18.3). Every failure
is a :class:`SipParseError`; nothing else escapes (tests fuzz this with hypothesis).
"""

from __future__ import annotations

from .exceptions import ParseContext, SipParseError
from .headers import (
    TOKEN_CHARS,
    WSP,
    canonical_name,
    is_token,
    parse_contact_list,
    parse_name_addr_list,
    parse_uint,
)
from .message import (
    Headers,
    Message,
    Request,
    Response,
    parsed_call_id,
    parsed_cseq,
    parsed_name_addr,
    parsed_vias,
)
from .uri import parse_uri

__all__ = [
    "MAX_DATAGRAM_SIZE",
    "MAX_HEADERS",
    "MAX_HEADER_LINE",
    "MAX_MESSAGE_SIZE",
    "StreamParser",
    "is_keepalive",
    "parse_datagram",
]

# Largest UDP payload IPv4 can carry is 65,507 octets; RFC 3261 §18.1.1 expects messages near the
# path MTU over UDP, so anything bigger than a 16-bit length is certainly not a SIP datagram.
MAX_DATAGRAM_SIZE = 65_535
# Stream transports have no datagram bound; we keep the same ceiling so one peer cannot make us buffer
# megabytes (SIP bodies are SDP, sipfrag, small XML; Kamailio's default buffer is 64 KiB too).
MAX_MESSAGE_SIZE = 65_535
# RFC 4475 §3.1.1.7 (longreq) has 45 header lines; real INVITEs through several proxies carry ~40.
MAX_HEADERS = 256
# One unfolded header line; longreq's longest is under 1 KiB, long Identity/Authorization under 4 KiB.
MAX_HEADER_LINE = 8_192

# RFC 3261 §8.1.1: the headers every request must carry (Max-Forwards is tolerated when absent, as
# proxies do for RFC 2543 peers: §16.6 adds it) and RFC 3261 §8.2.6.2 mirrors them in responses.
_REQUIRED = ("Via", "From", "To", "Call-ID", "CSeq")
# RFC 4475 §3.1.4.9 (multi01), §3.1.2.x (mcl01): these may appear only once.
_SINGLETONS = ("From", "To", "Call-ID", "CSeq", "Content-Length", "Max-Forwards", "Content-Type")
_CONTEXT_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")


def _decode(raw: bytes) -> str:
    # UTF-8 is the charset of SIP (RFC 3261 §7.3.1); undecodable octets survive as surrogates so the
    # message still round-trips and the error surfaces only if a grammar rule rejects them.
    return raw.decode("utf-8", errors="surrogateescape")


def _split_head(head: str) -> tuple[str, list[tuple[str, str]]]:
    """Split the header section into the start line and unfolded ``(name, value)`` pairs."""
    lines = head.split("\r\n")
    start = lines[0]
    fields: list[tuple[str, str]] = []
    for line in lines[1:]:
        if "\r" in line or "\n" in line:
            raise SipParseError("Bare CR or LF in header section")
        if line[:1] in (" ", "\t"):
            # RFC 3261 §7.3.1: a line starting with whitespace continues the previous header;
            # the fold is replaced by a single SP.
            if not fields:
                raise SipParseError("Continuation line before first header")
            name, value = fields[-1]
            fields[-1] = (name, value + " " + line.strip(WSP))
        else:
            name, colon, value = line.partition(":")
            name = name.rstrip(WSP)
            if not colon or not is_token(name):
                raise SipParseError("Malformed header line")
            fields.append((name, value.strip(WSP)))
        if len(fields) > MAX_HEADERS:
            raise SipParseError("Too many headers")
        if len(fields[-1][1]) > MAX_HEADER_LINE:
            raise SipParseError("Header line too long")
    return start, fields


def _salvage_head(head: str) -> tuple[str, list[tuple[str, str]]]:
    """The start line and the well-formed header lines of a header section that failed to split, so a
    broken request (a line without a colon...) can still be answered with a 400 (RFC 3261 §21.4.1)."""
    lines = head.split("\r\n")
    fields: list[tuple[str, str]] = []
    kept = False  # whether the previous line was kept (a fold continues it)
    for line in lines[1 : MAX_HEADERS + 1]:
        if "\r" in line or "\n" in line:
            kept = False
        elif line[:1] in (" ", "\t"):
            if kept:
                name, value = fields[-1]
                fields[-1] = (name, value + " " + line.strip(WSP))
        else:
            name, colon, value = line.partition(":")
            name = name.rstrip(WSP)
            kept = bool(colon) and is_token(name)
            if kept:
                fields.append((name, value.strip(WSP)))
    return lines[0], [(n, v) for n, v in fields if len(v) <= MAX_HEADER_LINE]


def _split_head_answerable(head: str) -> tuple[str, list[tuple[str, str]]]:
    """:func:`_split_head`, whose error carries what is needed to answer the request anyway."""
    try:
        return _split_head(head)
    except SipParseError as exc:
        start, fields = _salvage_head(head)
        raise SipParseError(
            exc.reason, status_code=exc.status_code, context=_context(start, fields)
        ) from None


def _context(start: str, fields: list[tuple[str, str]]) -> ParseContext:
    is_request: bool | None = None
    method: str | None = None
    request_uri: str | None = None
    if start[:4].upper() == "SIP/":
        is_request = False
    else:
        parts = start.split(" ")
        if len(parts) >= 2 and is_token(parts[0]):
            is_request, method, request_uri = True, parts[0], parts[1]
    keep = tuple(
        (canonical_name(n), v) for n, v in fields if canonical_name(n) in _CONTEXT_HEADERS and len(v) < 1024
    )
    return ParseContext(is_request=is_request, method=method, request_uri=request_uri, headers=keep)


def _check_version(version: str) -> None:
    if version.upper() == "SIP/2.0":
        return
    proto, slash, num = version.partition("/")
    major, dot, minor = num.partition(".")
    if proto.upper() == "SIP" and slash and dot and major.isdigit() and minor.isdigit():
        # RFC 4475 §3.1.2.16 (badvers): well-formed but unknown → 505 Version Not Supported.
        raise SipParseError("Version Not Supported", status_code=505)
    raise SipParseError("Malformed SIP version")


def _parse_start(start: str) -> Request | Response:
    if any((ord(c) < 0x20 and c != "\t") or c == "\x7f" for c in start):
        raise SipParseError("Control character in start line")
    if start[:4].upper() == "SIP/":
        version, _, rest = start.partition(" ")
        _check_version(version)
        code, sp, reason = rest.partition(" ")
        # Status-Code = 3DIGIT (RFC 3261 §25.1; RFC 4475 §3.1.2.19 bigcode). The SP before an empty
        # Reason-Phrase is required (§3.1.1.13 noreason); we tolerate its absence, which harms nothing.
        if len(code) != 3 or not code.isascii() or not code.isdigit() or not 100 <= int(code) <= 699:
            raise SipParseError("Invalid status code")
        return Response(status=int(code), reason=reason if sp else "")
    # RFC 3261 §7.1: Request-Line = Method SP Request-URI SP SIP-Version CRLF, single SPs only
    # (RFC 4475 §3.1.2.7 ltgtruri, §3.1.2.8 lwsruri, §3.1.2.9 lwsstart, §3.1.2.10 trws).
    parts = start.split(" ")
    if len(parts) != 3 or not all(parts):
        raise SipParseError("Malformed Request-Line")
    method, uri_text, version = parts
    if not all(c in TOKEN_CHARS for c in method):
        raise SipParseError("Invalid method")
    _check_version(version)
    uri = parse_uri(uri_text)
    if uri.headers:
        # RFC 3261 §19.1.1 table: headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11 escruri).
        raise SipParseError("Headers in Request-URI")
    return Request(method=method, uri=uri)


def _validate(message: Request | Response, headers: Headers) -> None:
    for name in _REQUIRED:
        if headers.get(name) is None:
            raise SipParseError(f"Missing {name} header")
    for name in _SINGLETONS:
        if len(headers.get_all(name)) > 1:
            raise SipParseError(f"Multiple {name} headers")
    # The memoised parsers of the typed accessors: what is validated here is not parsed again there.
    for value in headers.get_all("Via"):
        parsed_vias(value)
    parsed_name_addr(headers.get("From") or "")
    parsed_name_addr(headers.get("To") or "")
    parsed_call_id(headers.get("Call-ID") or "")
    cseq = parsed_cseq(headers.get("CSeq") or "")
    if isinstance(message, Request) and cseq.method != message.method:
        # RFC 4475 §3.1.2.17-18 (mismatch01/02): the CSeq method must match the request method.
        raise SipParseError("CSeq method does not match Request-Line")
    max_forwards = headers.get("Max-Forwards")
    if max_forwards is not None:
        # RFC 3261 §20.22 gives the range 0-255 (RFC 4475 §3.1.2.4 scalar02 sends 300).
        parse_uint(max_forwards, "Max-Forwards", 255)
    for value in headers.get_all("Contact"):
        parse_contact_list(value)
    for name in ("Route", "Record-Route"):
        for value in headers.get_all(name):
            parse_name_addr_list(value)
    date = headers.get("Date")
    if date is not None and not date.rstrip(WSP).endswith(" GMT"):
        # RFC 3261 §20.17: SIP-date is always GMT. RFC 4475 §3.1.2.12 (baddate) lets a liberal element
        # ignore the field; we reject, because the Date of a REGISTER feeds registration bookkeeping.
        raise SipParseError("Date must be in GMT")


def _parse(raw_head: bytes, rest: bytes, *, stream: bool) -> Message:
    """Parse one message whose header section is ``raw_head`` and whose body starts ``rest``."""
    start, fields = _split_head_answerable(_decode(raw_head))
    try:
        message = _parse_start(start)
        headers = Headers(fields)
        message.headers = headers
        _validate(message, headers)
        length_text = headers.get("Content-Length")
        if length_text is None:
            if stream:
                raise SipParseError("Missing Content-Length on stream transport")
            # RFC 3261 §18.3: over UDP a missing Content-Length means the body runs to the datagram end.
            message.body = rest
        else:
            length = parse_uint(length_text, "Content-Length", MAX_MESSAGE_SIZE)
            if len(rest) < length:
                # RFC 3261 §18.3 / RFC 4475 §3.1.2.2 (clerr): a truncated datagram is an error.
                raise SipParseError("Body shorter than Content-Length")
            # RFC 3261 §18.3: octets beyond Content-Length are discarded (RFC 4475 §3.1.1.8 dblreq).
            message.body = rest[:length]
    except SipParseError as exc:
        raise SipParseError(
            exc.reason, status_code=exc.status_code, context=_context(start, fields)
        ) from None
    return message


def _find_head_end(data: bytes) -> int:
    return data.find(b"\r\n\r\n")


def is_keepalive(data: bytes) -> bool:
    """True for a datagram made only of CRs and LFs: an RFC 5626 §4.4.1 CRLF keepalive, not a message."""
    return bool(data) and not data.strip(b"\r\n")


def parse_datagram(data: bytes) -> Message:
    """Parse one SIP message carried in one UDP datagram."""
    if len(data) > MAX_DATAGRAM_SIZE:
        raise SipParseError("Message Too Large", status_code=513)
    # RFC 3261 §7.5: CRLFs before the start line are ignored (also RFC 5626 keepalives).
    data = data.lstrip(b"\r\n")
    if not data:
        raise SipParseError("Empty datagram")
    end = _find_head_end(data)
    if end < 0:
        raise SipParseError("No empty line after headers")
    return _parse(data[:end], data[end + 4 :], stream=False)


class StreamParser:
    """Frames SIP messages on a reliable byte stream (RFC 3261 §18.3): CRLFCRLF then Content-Length.

    ``feed`` returns the complete messages found so far. Keepalive CRLFs between messages (RFC 5626
    §3.5.1) are skipped and counted in ``keepalives``. After an error the stream cannot be re-framed,
    so the parser stays failed: every later ``feed`` raises the same error and the connection should
    be closed.
    """

    def __init__(self, *, max_message_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buffer = bytearray()
        self._max = max_message_size
        self._error: SipParseError | None = None
        self.keepalives = 0

    @property
    def buffered(self) -> int:
        """Octets held waiting for the rest of a message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        """Add received octets; return every message now complete."""
        if self._error is not None:
            raise self._error
        self._buffer.extend(data)
        out: list[Message] = []
        try:
            self._drain(out)
        except SipParseError as exc:
            self._error = exc
            if not out:
                raise
            # Deliver what was complete before the damage; the next feed raises.
        return out

    @property
    def error(self) -> SipParseError | None:
        """The error that broke the stream, if any."""
        return self._error

    def _drain(self, out: list[Message]) -> None:
        while True:
            stripped = 0
            while stripped < len(self._buffer) and self._buffer[stripped] in b"\r\n":
                stripped += 1
            if stripped:
                # A ping is CRLFCRLF; a lone CRLF (a pong, or RFC 3261 §7.5 padding) counts as one too.
                self.keepalives += max(1, stripped // 4)
                del self._buffer[:stripped]
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > self._max:
                    raise SipParseError("Message Too Large", status_code=513)
                return
            head = bytes(self._buffer[:end])
            length = self._content_length(head)
            total = end + 4 + length
            if total > self._max:
                raise SipParseError("Message Too Large", status_code=513)
            if len(self._buffer) < total:
                return
            body = bytes(self._buffer[end + 4 : total])
            del self._buffer[:total]
            out.append(_parse(head, body, stream=True))

    @staticmethod
    def _content_length(head: bytes) -> int:
        start, fields = _split_head_answerable(_decode(head))
        values = [v for n, v in fields if canonical_name(n) == "Content-Length"]
        if not values:
            raise SipParseError("Missing Content-Length on stream transport", context=_context(start, fields))
        try:
            return parse_uint(values[0], "Content-Length", MAX_MESSAGE_SIZE)
        except SipParseError as exc:
            raise SipParseError(exc.reason, context=_context(start, fields)) from None
