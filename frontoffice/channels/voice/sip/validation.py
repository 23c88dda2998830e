"""What a UAS answers before its transaction user looks at a request (RFC 3261 §8.2), sans-IO.

Two entry points:

- :func:`validate_request` runs the checks of RFC 3261 §8.2.1-§8.2.3 on a request that parsed, in the
  order the RFC gives them, and returns the rejection to send (``None``: hand the request on).
- :class:`MalformedRequests` decides what a request that did not parse gets (``400``, ``505``, ``513``
  through :func:`~.builders.build_error_response`, or nothing), limits those answers per source so a
  flood of garbage cannot turn us into a reflector, and counts what it saw.

Neither reads a clock nor touches a socket: ``now`` is passed in.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from .builders import build_error_response, build_response
from .exceptions import SipParseError
from .message import Request, Response

__all__ = [
    "ACCEPTED_BODY_TYPES",
    "ERROR_ANSWER_BURST",
    "ERROR_ANSWER_RATE",
    "INFO_BODY_TYPES",
    "KNOWN_METHODS",
    "MAX_TRACKED_SOURCES",
    "MIN_SE_S",
    "SUPPORTED_OPTION_TAGS",
    "SUPPORTED_URI_SCHEMES",
    "MalformedRequestCounts",
    "MalformedRequests",
    "validate_request",
]

# RFC 3261 §8.2.1: 405 is for a method the UAS recognises but does not allow, 501 for one it does not
# recognise. "Recognised" = the methods of RFC 3261 and of the standards-track extensions in the IANA
# SIP methods registry: INFO (RFC 6086), PRACK (RFC 3262), SUBSCRIBE/NOTIFY (RFC 6665), UPDATE
# (RFC 3311), MESSAGE (RFC 3428), REFER (RFC 3515), PUBLISH (RFC 3903). Methods are case-sensitive (§7.1).
KNOWN_METHODS = frozenset(
    {
        "INVITE",
        "ACK",
        "CANCEL",
        "BYE",
        "OPTIONS",
        "REGISTER",
        "INFO",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "UPDATE",
        "MESSAGE",
        "REFER",
        "PUBLISH",
    }
)
# RFC 3261 §8.2.2.1: a Request-URI scheme the UAS does not handle gets 416. We route sip: and sips:
# (RFC 3261 §19.1); tel: (RFC 3966) reaches us inside sip: URIs with user=phone, never bare.
SUPPORTED_URI_SCHEMES = frozenset({"sip", "sips"})
# RFC 3261 §8.2.2.3: option-tags in Require that we implement: Replaces (RFC 3891: an agent's phone
# takes over another's dialog; a Replaces naming no dialog gets 481) and session timers (RFC 4028: we
# answer with Session-Expires, the peer refreshes: refresher=uac). Not 100rel (reliable provisionals):
# a request that requires an unknown tag gets 420 rather than be half-served.
SUPPORTED_OPTION_TAGS: frozenset[str] = frozenset({"replaces", "timer"})
# RFC 4028 §5: the smallest session interval we accept (a Session-Expires below it gets 422 with it).
MIN_SE_S = 90
# RFC 6086 §4.2.2: INFO bodies we read outside any Info Package: the legacy DTMF relays phones and
# gateways send (application/dtmf-relay, Cisco style; application/dtmf, one digit).
INFO_BODY_TYPES = ("application/dtmf-relay", "application/dtmf")
# RFC 3261 §8.2.3: body types we understand; anything else is 415 with Accept. SDP is the only body our
# B2BUA reads (offers in INVITE and re-INVITE).
ACCEPTED_BODY_TYPES = ("application/sdp",)
# RFC 3261 §8.2.2.3: Require is not applied to CANCEL (it must be processed like the INVITE it
# cancels) nor to ACK (never answered, §17).
_NO_REQUIRE_CHECK = frozenset({"ACK", "CANCEL"})

# Answers to unparseable requests, per source address: a sustained rate and a burst. A real peer sends
# a broken request now and then (and retransmits it every T1..T2, ~2/s); a scanner or a spoofed flood
# sends thousands. Beyond the budget the datagram is dropped unanswered, so we reflect at most this much
# traffic to a forged source.
ERROR_ANSWER_RATE = 5.0  # answers per second per source
ERROR_ANSWER_BURST = 20
# Sources whose budgets are remembered; the least recently seen are forgotten first (a spoofed flood
# from random addresses must not grow memory without bound).
MAX_TRACKED_SOURCES = 4096


def _tags(values: Iterable[str]) -> list[str]:
    return [tag.strip() for value in values for tag in value.split(",") if tag.strip()]


def _media_type(content_type: str) -> str:
    # RFC 3261 §20.15: type/subtype, parameters after ';'; both case-insensitive (RFC 2045 §5.1).
    return content_type.split(";", 1)[0].strip().lower()


def _optional_body(request: Request) -> bool:
    # RFC 3261 §20.11: Content-Disposition "handling=optional" lets a UAS ignore a body it cannot read.
    disposition = request.headers.get("Content-Disposition") or ""
    params = [p.strip().lower().replace(" ", "") for p in disposition.split(";")[1:]]
    return "handling=optional" in params


def validate_request(request: Request, allowed_methods: Collection[str] | None = None) -> Response | None:
    """The answer RFC 3261 §8.2 requires before a request reaches the transaction user, or ``None``.

    Checks in the RFC's order: §8.2.1 method (501 when unknown), §8.2.2.1 Request-URI scheme (416),
    §8.2.2.3 Require (420 with Unsupported; never for CANCEL or ACK), §8.2.3 body type and encoding
    (415 with Accept / Accept-Encoding). A known method outside ``allowed_methods`` (``None``: every
    known method) is handed on unchecked: §8.2.1 comes first, and the caller answers it 405 with Allow
    (or serves it inside a dialog that knows it). An ACK is never answered (§17.2.1): ``None``.
    """
    method = request.method
    if method == "ACK":
        return None
    allowed = KNOWN_METHODS if allowed_methods is None else allowed_methods
    if method not in KNOWN_METHODS and method not in allowed:
        return build_response(request, 501)
    if method not in allowed:
        return None
    if request.uri.scheme.lower() not in SUPPORTED_URI_SCHEMES:
        return build_response(request, 416)
    if method not in _NO_REQUIRE_CHECK:
        unknown = [
            tag for tag in _tags(request.headers.get_all("Require")) if tag not in SUPPORTED_OPTION_TAGS
        ]
        if unknown:
            return build_response(request, 420, extra_headers=[("Unsupported", ", ".join(unknown))])
    if method in ("INVITE", "UPDATE"):
        too_short = _session_expires_too_short(request)
        if too_short is not None:
            return too_short
    accepted: tuple[str, ...] = ACCEPTED_BODY_TYPES
    if method == "INFO":
        if request.headers.get("Info-Package") is not None:
            # RFC 6086 §4.2.2: we announce no Info Package (no Recv-Info), so any named one is refused.
            return build_response(request, 469, extra_headers=[("Recv-Info", "")])
        accepted = INFO_BODY_TYPES
    if request.body and method != "CANCEL" and not _optional_body(request):
        content_type = request.headers.get("Content-Type")
        if content_type is not None and _media_type(content_type) not in accepted:
            return build_response(request, 415, extra_headers=[("Accept", ", ".join(accepted))])
        encoding = (request.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding != "identity":
            # §8.2.3: we decode no content coding; RFC 3261 §20.2 Accept-Encoding says which we take.
            return build_response(request, 415, extra_headers=[("Accept-Encoding", "identity")])
    return None


def _session_expires_too_short(request: Request) -> Response | None:
    """RFC 4028 §8.1: a Session-Expires below our minimum gets 422 with Min-SE; an unreadable one 400."""
    value = request.headers.get("Session-Expires")
    if value is None:
        return None
    head = value.partition(";")[0].strip()
    if not head.isdigit():
        return build_response(request, 400, "Bad Session-Expires")
    if int(head) < MIN_SE_S:
        return build_response(request, 422, extra_headers=[("Min-SE", str(MIN_SE_S))])
    return None


@dataclass
class MalformedRequestCounts:
    """What :class:`MalformedRequests` saw: answered, unanswerable (a response, an ACK, no usable Via:
    dropped) and over the per-source budget (dropped)."""

    answered: int = 0
    unanswerable: int = 0
    rate_limited: int = 0


@dataclass
class _Budget:
    tokens: float
    at: float


class MalformedRequests:
    """Answers to messages that failed to parse, limited per source (a token bucket per address)."""

    def __init__(
        self,
        *,
        rate: float = ERROR_ANSWER_RATE,
        burst: int = ERROR_ANSWER_BURST,
        max_sources: int = MAX_TRACKED_SOURCES,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_sources = max_sources
        self.counts = MalformedRequestCounts()
        self._budgets: OrderedDict[str, _Budget] = OrderedDict()

    def answer(self, error: SipParseError, source: str, now: float) -> Response | None:
        """The response to send back to ``source`` for ``error``, or ``None`` to drop it silently."""
        response = build_error_response(error)
        if response is None:
            self.counts.unanswerable += 1
            return None
        if not self._spend(source, now):
            self.counts.rate_limited += 1
            return None
        self.counts.answered += 1
        return response

    def _spend(self, source: str, now: float) -> bool:
        budget = self._budgets.get(source)
        if budget is None:
            budget = _Budget(tokens=float(self.burst), at=now)
            self._budgets[source] = budget
            if len(self._budgets) > self.max_sources:
                self._budgets.popitem(last=False)
        else:
            self._budgets.move_to_end(source)
            budget.tokens = min(float(self.burst), budget.tokens + (now - budget.at) * self.rate)
            budget.at = now
        if budget.tokens < 1.0:
            return False
        budget.tokens -= 1.0
        return True
