"""Building requests and responses (RFC 3261 §8.1.1, §8.2.6) with injectable id generation."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable

from .exceptions import SipParseError
from .headers import WSP, NameAddress, Via, parse_name_addr
from .message import Headers, Request, Response
from .uri import Uri

__all__ = [
    "BRANCH_MAGIC_COOKIE",
    "REASON_PHRASES",
    "IdGenerator",
    "build_error_response",
    "build_request",
    "build_response",
    "new_branch",
    "new_call_id",
    "new_tag",
    "random_id",
    "reason_phrase",
]

IdGenerator = Callable[[], str]
"""Returns a fresh random token; tests inject a counter to get stable ids."""

# RFC 3261 §8.1.1.7: branches of RFC 3261 elements start with this cookie.
BRANCH_MAGIC_COOKIE = "z9hG4bK"
# Default payload of generated Via sent-by values when the caller has none.
DEFAULT_MAX_FORWARDS = 70  # RFC 3261 §8.1.1.6: SHOULD be 70

REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


def reason_phrase(status: int) -> str:
    """The standard reason phrase of ``status`` (class default for unknown codes)."""
    return REASON_PHRASES.get(status) or REASON_PHRASES.get(status // 100 * 100, "Unknown")


def random_id() -> str:
    """Production id generator: 64 random bits, hex (RFC 3261 §19.3 wants >= 32 bits for tags)."""
    return secrets.token_hex(8)


def new_branch(ids: IdGenerator = random_id) -> str:
    """A branch unique in space and time, with the RFC 3261 magic cookie (§8.1.1.7)."""
    return BRANCH_MAGIC_COOKIE + ids()


def new_tag(ids: IdGenerator = random_id) -> str:
    """A From/To tag (RFC 3261 §19.3)."""
    return ids()


def new_call_id(ids: IdGenerator = random_id, host: str | None = None) -> str:
    """A Call-ID (RFC 3261 §8.1.1.4), optionally ``@host``."""
    return f"{ids()}@{host}" if host else ids()


def build_request(
    method: str,
    uri: Uri,
    *,
    from_addr: NameAddress,
    to_addr: NameAddress,
    via: Via,
    cseq: int = 1,
    call_id: str | None = None,
    contact: NameAddress | None = None,
    routes: Iterable[NameAddress] = (),
    max_forwards: int = DEFAULT_MAX_FORWARDS,
    body: bytes = b"",
    content_type: str | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
    ids: IdGenerator = random_id,
) -> Request:
    """Build an out-of-dialog request (RFC 3261 §8.1.1).

    A branch is generated when ``via`` has none, a From tag when ``from_addr`` has none, a Call-ID
    when none is given.
    """
    if via.branch is None:
        via = via.with_param("branch", new_branch(ids))
    if from_addr.tag is None:
        from_addr = from_addr.with_tag(new_tag(ids))
    headers = Headers()
    headers.add("Via", str(via))
    headers.add("Max-Forwards", str(max_forwards))
    for route in routes:
        headers.add("Route", str(route))
    headers.add("From", str(from_addr))
    headers.add("To", str(to_addr))
    headers.add("Call-ID", call_id or new_call_id(ids))
    headers.add("CSeq", f"{cseq} {method}")
    if contact is not None:
        headers.add("Contact", str(contact))
    for name, value in extra_headers:
        headers.add(name, value)
    if content_type is not None:
        headers.add("Content-Type", content_type)
    return Request(method=method, uri=uri, headers=headers, body=body)


def build_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    contact: NameAddress | None = None,
    body: bytes = b"",
    content_type: str | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
    ids: IdGenerator = random_id,
) -> Response:
    """Build a response to ``request`` (RFC 3261 §8.2.6).

    Via, From, Call-ID and CSeq are copied; To is copied and given a tag unless it has one or the
    response is 100 Trying (§8.2.6.2). 100 also copies Timestamp (§8.2.6.1). Record-Route is copied
    into 101-299 responses so the caller's dialog gets the route set (§12.1.1).
    """
    headers = Headers()
    for value in request.headers.get_all("Via"):
        headers.add("Via", value)
    if 100 < status < 300:
        for value in request.headers.get_all("Record-Route"):
            headers.add("Record-Route", value)
    headers.add("From", request.headers.get("From") or "")
    to_value = request.headers.get("To") or ""
    if status != 100:
        to = parse_name_addr(to_value)
        if to.tag is None:
            to_value = str(to.with_tag(to_tag or new_tag(ids)))
    headers.add("To", to_value)
    headers.add("Call-ID", request.headers.get("Call-ID") or "")
    headers.add("CSeq", request.headers.get("CSeq") or "")
    if status == 100:
        timestamp = request.headers.get("Timestamp")
        if timestamp is not None:
            headers.add("Timestamp", timestamp)
    if contact is not None:
        headers.add("Contact", str(contact))
    for name, value in extra_headers:
        headers.add(name, value)
    if content_type is not None:
        headers.add("Content-Type", content_type)
    return Response(status=status, reason=reason or reason_phrase(status), headers=headers, body=body)


def _safe_reason(text: str) -> str:
    cleaned = "".join(c if c.isprintable() and c not in "\r\n" else " " for c in text)
    return cleaned.strip(WSP)[:100] or "Bad Request"


# A Via whose first value still names a protocol and a sent-by (RFC 3261 §18.2.2 needs no more: we answer
# to the transport source, as RFC 3581 rport does). Its version may be unknown (RFC 4475 §3.1.2.16 badvers
# wants 505) and its parameters broken (§3.1.2.6 badinv01 wants 400): it is echoed as received.
_ROUTABLE_VIA = re.compile(
    r"SIP[ \t]*/[ \t]*[0-9]+\.[0-9]+[ \t]*/[ \t]*[A-Za-z0-9.!%*_+`'~-]+[ \t]+[A-Za-z0-9.:\[\]-]+"
)


def _routable_via(value: str) -> bool:
    return _ROUTABLE_VIA.match(value.strip(WSP)) is not None


def build_error_response(error: SipParseError, ids: IdGenerator = random_id) -> Response | None:
    """Build the ``400``/``505``/``513`` a transport sends for a request that failed to parse.

    RFC 3261 §8.2.6.2: Via, From, Call-ID and CSeq are copied as they came, even when one of them is
    the broken part (the client matches the response by its own octets), and To gets a tag when it can
    be read and has none. Only the Via must be usable (it names where the answer goes).

    Returns ``None`` when no answer must or can be sent: the message was a response or an ACK
    (RFC 3261 §17.2.1 never answers ACK), or it has no usable Via.
    """
    ctx = error.context
    if not ctx.is_request or ctx.method == "ACK":
        return None
    raw = dict[str, list[str]]()
    for name, value in ctx.headers:
        raw.setdefault(name, []).append(value)
    vias = raw.get("Via", [])
    if not vias or not _routable_via(vias[0]):
        return None
    headers = Headers()
    for value in vias:
        headers.add("Via", value)
    for name in ("From", "To", "Call-ID", "CSeq"):
        values = raw.get(name)
        if not values:
            continue  # missing (RFC 4475 §3.1.2.15 insuf): the answer goes without it
        value = values[0]
        if name == "To":
            try:
                to = parse_name_addr(value)
                value = str(to if to.tag is not None else to.with_tag(new_tag(ids)))
            except SipParseError:
                pass  # unreadable (RFC 4475 §3.1.2.x quotbal): echoed as received
        headers.add(name, value)
    reason = _safe_reason(error.reason) if error.status_code == 400 else reason_phrase(error.status_code)
    return Response(status=error.status_code, reason=reason, headers=headers)
