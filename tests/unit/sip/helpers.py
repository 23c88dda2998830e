"""Shared helpers for SIP core tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from frontoffice.channels.voice.sip.builders import build_request
from frontoffice.channels.voice.sip.headers import NameAddress, Via
from frontoffice.channels.voice.sip.message import Request
from frontoffice.channels.voice.sip.uri import parse_uri


def counter_ids(prefix: str = "id") -> Callable[[], str]:
    """A deterministic id generator: id1, id2, ..."""
    numbers = itertools.count(1)
    return lambda: f"{prefix}{next(numbers)}"


def make_request(
    method: str = "INVITE",
    *,
    transport: str = "UDP",
    ids: Callable[[], str] | None = None,
    body: bytes = b"",
    cseq: int = 1,
) -> Request:
    """An out-of-dialog request from alice to bob."""
    return build_request(
        method,
        parse_uri("sip:bob@example.com"),
        from_addr=NameAddress(parse_uri("sip:alice@example.org"), display_name="Alice"),
        to_addr=NameAddress(parse_uri("sip:bob@example.com")),
        via=Via(transport=transport, host="192.0.2.10", port=5060),
        contact=NameAddress(parse_uri("sip:alice@192.0.2.10:5060")),
        cseq=cseq,
        body=body,
        content_type="application/sdp" if body else None,
        ids=ids or counter_ids(),
    )
