"""An ACK for a 2xx that reuses the INVITE's branch (RFC 2543-style phones and gateways).

RFC 6026 §7.1 / RFC 3261 §17.2.1: after a 2xx the INVITE server transaction is in Accepted (or gone);
an ACK that matches it is for the 2xx and belongs to the transaction user, which stops the 2xx
retransmissions. Only the ACK of a non-2xx final response is the transaction's own (hop-by-hop).
"""

from __future__ import annotations

from frontoffice.channels.voice.sip.builders import build_response
from frontoffice.channels.voice.sip.headers import Via
from frontoffice.channels.voice.sip.message import Headers, Request, Response
from frontoffice.channels.voice.sip.parser import parse_datagram
from frontoffice.channels.voice.sip.transaction import (
    AckTimeout,
    Destination,
    RequestReceived,
    TransactionEvent,
    TransactionLayer,
    TransactionState,
    Transmit,
)

from .helpers import make_request

UDP = Destination("192.0.2.10", 5060, "UDP")


def wire(message: Request | Response) -> Request:
    parsed = parse_datagram(message.serialize())
    assert isinstance(parsed, Request)
    return parsed


def ack_reusing_branch(invite: Request, response: Response) -> Request:
    """The ACK an RFC 2543 element sends: the INVITE's Via (same branch), the response's To tag."""
    headers = Headers()
    headers.add("Via", str(invite.top_via))
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", response.headers.get("To") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq.seq} ACK")
    return Request(method="ACK", uri=invite.uri, headers=headers)


def retransmissions(events: list[TransactionEvent]) -> list[Transmit]:
    return [e for e in events if isinstance(e, Transmit)]


def run_until(layer: TransactionLayer, end: float) -> list[TransactionEvent]:
    out: list[TransactionEvent] = []
    while (at := layer.next_timer()) is not None and at <= end:
        out.extend(layer.handle_timer(at))
    return out


def answered_invite(layer: TransactionLayer, invite: Request) -> Response:
    [*_, received] = layer.receive(invite, 0.0, UDP)
    assert isinstance(received, RequestReceived)
    ok = build_response(invite, 200, to_tag="uas1")
    layer.send_response(ok, 0.0)
    return ok


def test_ack_with_the_invites_branch_after_a_2xx_reaches_the_transaction_user() -> None:
    layer = TransactionLayer()
    invite = wire(make_request("INVITE"))
    ok = answered_invite(layer, invite)
    events = layer.receive(wire(ack_reusing_branch(invite, ok)), 0.2, UDP)
    [event] = events
    assert isinstance(event, RequestReceived) and event.request.method == "ACK"
    assert event.transaction is None  # an ACK to a 2xx is not part of the INVITE transaction


def test_ack_with_the_invites_branch_stops_the_2xx_retransmissions() -> None:
    layer = TransactionLayer()
    invite = wire(make_request("INVITE"))
    ok = answered_invite(layer, invite)
    assert layer.awaiting_ack(invite.call_id, invite.cseq.seq)
    layer.receive(wire(ack_reusing_branch(invite, ok)), 0.2, UDP)
    assert not layer.awaiting_ack(invite.call_id, invite.cseq.seq)
    later = run_until(layer, 100.0)
    assert retransmissions(later) == []
    assert not any(isinstance(e, AckTimeout) for e in later)  # the call is not torn down after 32 s


def test_ack_with_the_invites_branch_after_the_transaction_ended_still_reaches_the_tu() -> None:
    layer = TransactionLayer()
    invite = wire(make_request("INVITE"))
    ok = answered_invite(layer, invite)
    # Timer L (64*T1) ends the Accepted state; a late ACK is still the call's.
    at = layer.timers.timeout
    run_until(layer, at)
    events = layer.receive(wire(ack_reusing_branch(invite, ok)), at + 0.1, UDP)
    assert [type(e) for e in events] == [RequestReceived]


def test_ack_of_a_non_2xx_final_is_still_absorbed_by_the_transaction() -> None:
    layer = TransactionLayer()
    invite = wire(make_request("INVITE"))
    [*_, received] = layer.receive(invite, 0.0, UDP)
    assert isinstance(received, RequestReceived) and received.transaction is not None
    busy = build_response(invite, 486, to_tag="uas1")
    layer.send_response(busy, 0.0)
    events = layer.receive(wire(ack_reusing_branch(invite, busy)), 0.2, UDP)
    assert events == []  # hop-by-hop (§17.2.1): the transaction's own, not the TU's
    assert layer.state(received.transaction) is TransactionState.CONFIRMED


def test_a_retransmitted_invite_in_accepted_is_still_absorbed() -> None:
    layer = TransactionLayer()
    invite = wire(make_request("INVITE"))
    answered_invite(layer, invite)
    assert layer.receive(invite, 0.3, UDP) == []


def test_an_rfc_2543_ack_without_magic_cookie_after_a_2xx_reaches_the_tu() -> None:
    layer = TransactionLayer()
    invite = wire(make_request("INVITE"))
    legacy_via = Via(transport="UDP", host="192.0.2.10", port=5060)  # no branch at all (RFC 2543)
    invite.headers.set("Via", str(legacy_via))
    invite = wire(invite)
    ok = answered_invite(layer, invite)
    events = layer.receive(wire(ack_reusing_branch(invite, ok)), 0.2, UDP)
    assert [type(e) for e in events] == [RequestReceived]
    assert not layer.awaiting_ack(invite.call_id, invite.cseq.seq)
