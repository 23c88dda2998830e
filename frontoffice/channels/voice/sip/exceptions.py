"""Errors raised by the SIP protocol core.

Every error is a :class:`ProtocolError`, so a transport adapter can catch one type. Parse errors carry
what could be salvaged from the broken message so the transport can still answer ``400``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DialogError",
    "DigestError",
    "NoCommonCodecError",
    "ParseContext",
    "ProtocolError",
    "SdpError",
    "SipParseError",
    "TransactionError",
]


class ProtocolError(Exception):
    """Base class of every error raised by the SIP core."""


@dataclass(frozen=True, slots=True)
class ParseContext:
    """What the parser could recover from a malformed message.

    ``headers`` holds the raw values of Via, From, To, Call-ID and CSeq (canonical names, in order)
    so that a ``400`` can be built for a request even when one of them is itself the broken part.
    """

    is_request: bool | None = None
    method: str | None = None
    request_uri: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


class SipParseError(ProtocolError):
    """A SIP message could not be parsed.

    ``reason`` is a short human text suitable for a reason phrase; ``status_code`` is what a server
    should answer (400 by default, 505 for an unsupported version, 513 for an oversized message).
    """

    def __init__(self, reason: str, *, status_code: int = 400, context: ParseContext | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code
        self.context = context if context is not None else ParseContext()


class TransactionError(ProtocolError):
    """A transaction-layer call was made that the state machine cannot honour."""


class DialogError(ProtocolError):
    """A request or response does not fit the dialog (RFC 3261 §12); ``status_code`` says what to answer."""

    def __init__(self, reason: str, *, status_code: int = 500) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


class DigestError(ProtocolError):
    """A digest challenge or credential could not be parsed or answered."""


class SdpError(ProtocolError):
    """An SDP body could not be parsed or negotiated; ``status_code`` says what to answer."""

    def __init__(self, reason: str, *, status_code: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


class NoCommonCodecError(SdpError):
    """An offer has no codec we support: answer 488 Not Acceptable Here (RFC 3261 §13.3.1.1)."""

    def __init__(self, reason: str = "No common codec") -> None:
        super().__init__(reason, status_code=488)
