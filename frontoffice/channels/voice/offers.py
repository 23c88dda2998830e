"""SDP helpers shared by the inbound B2BUA (service.py) and the trunk side (outbound.py)."""

from __future__ import annotations

import hashlib

from .sip import PCMA, PCMU, TELEPHONE_EVENT, Codec

__all__ = ["codecs_first", "sdp_session_id"]


def sdp_session_id(call_id: str) -> str:
    """A numeric SDP session id (RFC 4566 §5.2) stable for a call."""
    return str(int(hashlib.sha256(call_id.encode()).hexdigest()[:12], 16))


def codecs_first(codec: Codec) -> tuple[Codec, ...]:
    """Our codecs with ``codec`` (what the other leg uses) first, so the relay need not transcode."""
    rest = [c for c in (PCMU, PCMA) if not c.same_format(codec)]
    return (codec, *rest, TELEPHONE_EVENT)
