"""Transaction state machines (RFC 3261 §17) driven in simulated time."""

from __future__ import annotations

import pytest

from frontoffice.channels.voice.sip.builders import build_response
from frontoffice.channels.voice.sip.exceptions import TransactionError
from frontoffice.channels.voice.sip.message import Request, Response
from frontoffice.channels.voice.sip.parser import parse_datagram
from frontoffice.channels.voice.sip.transaction import (
    AckTimeout,
    Destination,
    RequestReceived,
    ResponseReceived,
    TimerSettings,
    TransactionEvent,
    TransactionLayer,
    TransactionState,
    TransactionTerminated,
    TransactionTimeout,
    Transmit,
)

from .helpers import counter_ids, make_request

UDP = Destination("192.0.2.20", 5060, "UDP")
TCP = Destination("192.0.2.20", 5060, "TCP")


def run_until(layer: TransactionLayer, end: float) -> list[tuple[float, TransactionEvent]]:
    """Step simulated time from timer to timer up to ``end``, collecting (time, event)."""
    out: list[tuple[float, TransactionEvent]] = []
    while (at := layer.next_timer()) is not None and at <= end:
        out.extend((at, e) for e in layer.handle_timer(at))
    return out


def transmit_times(events: list[tuple[float, TransactionEvent]]) -> list[float]:
    return [t for t, e in events if isinstance(e, Transmit)]


def wire(message: Request | Response) -> Request | Response:
    parsed = parse_datagram(message.serialize())
    assert isinstance(parsed, Request | Response)
    return parsed


def test_invite_client_retransmits_with_doubling_and_times_out_at_64_t1() -> None:
    layer = TransactionLayer()
    invite = make_request("INVITE")
    first = layer.send_request(invite, UDP, 0.0)
    assert [type(e) for e in first] == [Transmit]
    events = run_until(layer, 100.0)
    assert transmit_times(events) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    timeouts = [(t, e) for t, e in events if isinstance(e, TransactionTimeout)]
    assert timeouts == [(32.0, TransactionTimeout(timeouts[0][1].transaction, "B"))]
    assert any(isinstance(e, TransactionTerminated) for _, e in events)
    assert layer.next_timer() is None and len(layer) == 0


def test_non_invite_client_retransmits_cap_at_t2_and_times_out_with_timer_f() -> None:
    layer = TransactionLayer()
    layer.send_request(make_request("OPTIONS"), UDP, 0.0)
    events = run_until(layer, 100.0)
    assert transmit_times(events) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert [e.timer for _, e in events if isinstance(e, TransactionTimeout)] == ["F"]


def test_non_invite_client_in_proceeding_retransmits_every_t2() -> None:
    layer = TransactionLayer()
    request = make_request("OPTIONS")
    layer.send_request(request, UDP, 0.0)
    layer.handle_timer(0.5)
    # Timer E fired at 0.5 (next at 1.5); a 1xx at 1.0 moves to Proceeding, so later intervals are T2.
    out = layer.receive(wire(build_response(request, 180)), 1.0)
    assert isinstance(out[0], ResponseReceived)
    events = run_until(layer, 12.0)
    assert transmit_times(events) == [1.5, 5.5, 9.5]


def test_custom_timer_values() -> None:
    layer = TransactionLayer(TimerSettings(t1=0.1, t2=0.4, t4=1.0))
    layer.send_request(make_request("OPTIONS"), UDP, 0.0)
    events = run_until(layer, 10.0)
    assert transmit_times(events) == pytest.approx(
        [0.1, 0.3, 0.7, 1.1, 1.5, 1.9, 2.3, 2.7, 3.1, 3.5, 3.9, 4.3, 4.7, 5.1, 5.5, 5.9, 6.3]
    )
    assert [t for t, e in events if isinstance(e, TransactionTimeout)] == pytest.approx([6.4])


def test_invite_client_provisional_stops_retransmission_and_timer_b() -> None:
    layer = TransactionLayer()
    invite = make_request("INVITE")
    layer.send_request(invite, UDP, 0.0)
    events = layer.receive(wire(build_response(invite, 180, to_tag="b1")), 0.2)
    assert isinstance(events[0], ResponseReceived) and events[0].response.status == 180
    assert layer.next_timer() is None  # Proceeding waits for the TU (RFC 3261 §17.1.1.2)
    ok = layer.receive(wire(build_response(invite, 200, to_tag="b1")), 5.0)
    assert [type(e) for e in ok] == [ResponseReceived, TransactionTerminated]
    # A retransmitted 2xx arrives after the transaction ended: stray, for the TU to re-ACK.
    stray = layer.receive(wire(build_response(invite, 200, to_tag="b1")), 5.5)
    assert stray == [ResponseReceived(stray[0].response, None)]  # type: ignore[union-attr]


def test_invite_client_acks_non_2xx_and_absorbs_retransmissions_for_timer_d() -> None:
    layer = TransactionLayer()
    invite = make_request("INVITE")
    layer.send_request(invite, UDP, 0.0)
    busy = build_response(invite, 486, to_tag="t9")
    events = layer.receive(wire(busy), 1.0)
    assert [type(e) for e in events] == [Transmit, ResponseReceived]
    ack = events[0].message  # type: ignore[union-attr]
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert ack.top_via.branch == invite.top_via.branch and ack.cseq.seq == invite.cseq.seq
    assert ack.to.tag == "t9" and ack.uri == invite.uri
    again = layer.receive(wire(busy), 2.0)
    assert [type(e) for e in again] == [Transmit]
    assert layer.next_timer() == 33.0  # Timer D = 32 s after Completed
    assert [type(e) for e in layer.handle_timer(33.0)] == [TransactionTerminated]


def test_reliable_transport_has_no_retransmissions_and_zero_timer_d() -> None:
    layer = TransactionLayer()
    invite = make_request("INVITE", transport="TCP")
    layer.send_request(invite, TCP, 0.0)
    assert layer.next_timer() == 32.0  # only Timer B
    events = layer.receive(wire(build_response(invite, 503, to_tag="x")), 1.0)
    assert [type(e) for e in events] == [Transmit, ResponseReceived, TransactionTerminated]


def test_non_invite_client_completed_waits_t4_then_terminates() -> None:
    layer = TransactionLayer()
    request = make_request("REGISTER")
    layer.send_request(request, UDP, 0.0)
    events = layer.receive(wire(build_response(request, 200)), 0.1)
    assert [type(e) for e in events] == [ResponseReceived]
    assert layer.receive(wire(build_response(request, 200)), 0.2) == []  # absorbed
    assert layer.next_timer() == pytest.approx(5.1)
    assert [type(e) for e in layer.handle_timer(5.1)] == [TransactionTerminated]


def test_invite_server_sends_trying_and_resends_last_response_on_retransmission() -> None:
    layer = TransactionLayer()
    invite = make_request("INVITE")
    source = Destination("198.51.100.7", 40000, "UDP")
    events = layer.receive(wire(invite), 0.0, source)
    assert isinstance(events[0], Transmit) and isinstance(events[0].message, Response)
    assert events[0].message.status == 100 and events[0].destination == source
    received = events[1]
    assert isinstance(received, RequestReceived) and received.transaction is not None
    layer.send_response(build_response(received.request, 180, to_tag="s1"), 0.1)
    again = layer.receive(wire(invite), 0.6, source)
    assert len(again) == 1 and isinstance(again[0], Transmit)
    assert isinstance(again[0].message, Response) and again[0].message.status == 180


def test_invite_server_retransmits_final_until_ack_then_timer_i() -> None:
    layer = TransactionLayer()
    invite = make_request("INVITE")
    received = layer.receive(wire(invite), 0.0)[1]
    assert isinstance(received, RequestReceived) and received.transaction is not None
    key = received.transaction
    busy = build_response(received.request, 486, to_tag="s1")
    layer.send_response(busy, 0.0)
    assert layer.state(key) is TransactionState.COMPLETED
    events = run_until(layer, 8.0)
    assert transmit_times(events) == [0.5, 1.5, 3.5, 7.5]  # Timer G, capped at T2
    ack = Request(method="ACK", uri=invite.uri, headers=invite.headers.copy())
    ack.headers.set("CSeq", f"{invite.cseq.seq} ACK")
    ack.headers.set("To", busy.headers.get("To") or "")
    assert layer.receive(wire(ack), 8.2) == []  # absorbed, not passed to the TU
    assert layer.state(key) is TransactionState.CONFIRMED
    assert layer.receive(wire(ack), 8.3) == []
    assert layer.next_timer() == pytest.approx(13.2)  # Timer I = T4
    assert [type(e) for e in layer.handle_timer(13.2)] == [TransactionTerminated]


def test_invite_server_timer_h_when_ack_never_comes() -> None:
    layer = TransactionLayer()
    received = layer.receive(wire(make_request("INVITE")), 0.0)[1]
    assert isinstance(received, RequestReceived)
    layer.send_response(build_response(received.request, 404, to_tag="a"), 0.0)
    events = run_until(layer, 40.0)
    assert transmit_times(events) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert [e.timer for _, e in events if isinstance(e, TransactionTimeout)] == ["H"]


def test_invite_server_2xx_is_retransmitted_by_uas_core_until_ack() -> None:
    layer = TransactionLayer()
    invite = make_request("INVITE")
    received = layer.receive(wire(invite), 0.0)[1]
    assert isinstance(received, RequestReceived)
    ok = build_response(received.request, 200, to_tag="s1")
    events = layer.send_response(ok, 0.0)
    assert [type(e) for e in events] == [Transmit]
    assert received.transaction is not None
    assert layer.state(received.transaction) is TransactionState.ACCEPTED
    assert layer.receive(wire(invite), 0.2) == []  # RFC 6026: retransmitted INVITE absorbed
    assert transmit_times(run_until(layer, 4.0)) == [0.5, 1.5, 3.5]
    ack = make_request("ACK", ids=counter_ids("ack"))
    ack.headers.set("Call-ID", invite.call_id)
    ack.headers.set("CSeq", f"{invite.cseq.seq} ACK")
    out = layer.receive(wire(ack), 4.0)
    assert isinstance(out[0], RequestReceived) and out[0].transaction is None
    assert layer.next_timer() == 32.0  # only Timer L is left
    assert [type(e) for e in layer.handle_timer(32.0)] == [TransactionTerminated]
    assert layer.next_timer() is None


def test_invite_server_2xx_without_ack_reports_ack_timeout() -> None:
    layer = TransactionLayer()
    received = layer.receive(wire(make_request("INVITE")), 0.0)[1]
    assert isinstance(received, RequestReceived)
    layer.send_response(build_response(received.request, 200, to_tag="s"), 0.0)
    events = run_until(layer, 60.0)
    assert transmit_times(events) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    others = [(t, e) for t, e in events if not isinstance(e, Transmit)]
    assert sorted((t, type(e).__name__) for t, e in others) == [
        (32.0, "AckTimeout"),
        (32.0, "TransactionTerminated"),
    ]
    ack_timeout = next(e for _, e in others if isinstance(e, AckTimeout))
    assert ack_timeout.call_id == received.request.call_id


def test_non_invite_server_absorbs_retransmissions_and_timer_j() -> None:
    layer = TransactionLayer()
    request = make_request("OPTIONS")
    events = layer.receive(wire(request), 0.0)
    assert [type(e) for e in events] == [RequestReceived]
    assert layer.receive(wire(request), 0.5) == []  # Trying: absorbed
    layer.send_response(build_response(request, 200), 0.6)
    resent = layer.receive(wire(request), 1.0)
    assert len(resent) == 1 and isinstance(resent[0], Transmit)
    assert layer.next_timer() == pytest.approx(32.6)
    assert [type(e) for e in layer.handle_timer(32.6)] == [TransactionTerminated]


def test_non_invite_server_over_tcp_terminates_at_once() -> None:
    layer = TransactionLayer()
    request = make_request("OPTIONS", transport="TCP")
    layer.receive(wire(request), 0.0, TCP)
    events = layer.send_response(build_response(request, 200), 0.1)
    assert [type(e) for e in events] == [Transmit, TransactionTerminated]


def test_cancel_is_matched_to_the_invite_server_transaction() -> None:
    from frontoffice.channels.voice.sip.dialog import build_cancel

    layer = TransactionLayer()
    invite = make_request("INVITE")
    invite_key = layer.receive(wire(invite), 0.0)[1].transaction  # type: ignore[union-attr]
    events = layer.receive(wire(build_cancel(invite)), 1.0)
    assert isinstance(events[0], RequestReceived)
    assert events[0].cancels == invite_key
    assert events[0].transaction != invite_key


def test_response_without_transaction_is_an_error() -> None:
    layer = TransactionLayer()
    with pytest.raises(TransactionError):
        layer.send_response(build_response(make_request("OPTIONS"), 200), 0.0)


def test_duplicate_client_transaction_is_an_error() -> None:
    layer = TransactionLayer()
    request = make_request("OPTIONS")
    layer.send_request(request, UDP, 0.0)
    with pytest.raises(TransactionError):
        layer.send_request(request, UDP, 0.0)


def test_rfc2543_request_without_branch_gets_a_transaction() -> None:
    layer = TransactionLayer()
    data = (
        b"OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP old.example.com\r\n"
        b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: legacy@x\r\n"
        b"CSeq: 4 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    request = parse_datagram(data)
    assert isinstance(request, Request)
    events = layer.receive(request, 0.0)
    assert isinstance(events[0], RequestReceived)
    assert layer.receive(request, 0.1) == []  # retransmission recognised
    out = layer.send_response(build_response(request, 200), 0.2)
    assert isinstance(out[0], Transmit)


def test_cancel_destroys_a_ringing_invite_after_64_t1_without_final_response() -> None:
    from frontoffice.channels.voice.sip.dialog import build_cancel

    layer = TransactionLayer()
    invite = make_request("INVITE")
    layer.send_request(invite, UDP, 0.0)
    layer.receive(wire(build_response(invite, 180, to_tag="r")), 0.3)
    assert layer.next_timer() is None
    layer.send_request(build_cancel(invite), UDP, 60.0)
    events = run_until(layer, 200.0)
    timeouts = sorted((e.transaction.method, e.timer) for _, e in events if isinstance(e, TransactionTimeout))
    assert timeouts == [("CANCEL", "F"), ("INVITE", "cancel")]
    assert [t for t, e in events if isinstance(e, TransactionTimeout) and e.timer == "cancel"] == [92.0]
    assert len(layer) == 0


def test_timer_c_warns_the_tu_while_ringing_and_restarts_on_provisionals() -> None:
    layer = TransactionLayer(TimerSettings(timer_c=180.0))
    invite = make_request("INVITE")
    layer.send_request(invite, UDP, 0.0)
    layer.receive(wire(build_response(invite, 180, to_tag="r")), 1.0)
    layer.receive(wire(build_response(invite, 183, to_tag="r")), 100.0)
    events = run_until(layer, 300.0)
    assert [(t, e.timer) for t, e in events if isinstance(e, TransactionTimeout)] == [(280.0, "C")]
    assert len(layer) == 1  # still alive: the TU decides (CANCEL)
