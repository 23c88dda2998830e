"""Property tests for the transaction layer: arbitrary response orders, losses and timings."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from frontoffice.channels.voice.sip import (
    Destination,
    RequestReceived,
    ResponseReceived,
    TransactionEvent,
    TransactionLayer,
    TransactionTimeout,
    Transmit,
    build_cancel,
    build_response,
    parse_datagram,
)

from .helpers import counter_ids, make_request

STATUSES = st.sampled_from([100, 180, 183, 200, 202, 302, 404, 486, 503])


def drain(layer: TransactionLayer, events: list[TransactionEvent], until: float) -> None:
    while (at := layer.next_timer()) is not None and at <= until:
        events.extend(layer.handle_timer(at))


@given(
    method=st.sampled_from(["INVITE", "OPTIONS", "REGISTER"]),
    transport=st.sampled_from(["UDP", "TCP"]),
    arrivals=st.lists(st.tuples(st.floats(0, 40, allow_nan=False), STATUSES), max_size=8),
)
@settings(max_examples=300, deadline=None)
def test_client_transaction_reports_at_most_one_final_response(
    method: str, transport: str, arrivals: list[tuple[float, int]]
) -> None:
    layer = TransactionLayer()
    request = make_request(method, transport=transport, ids=counter_ids())
    events = layer.send_request(request, Destination("192.0.2.1", 5060, transport), 0.0)
    for at, status in sorted(arrivals):
        drain(layer, events, at)
        response = parse_datagram(build_response(request, status, to_tag="t").serialize())
        events.extend(layer.receive(response, at))
    drain(layer, events, 100.0)
    if len(layer):
        # Only provisionals arrived on an INVITE: the TU gives up with CANCEL (RFC 3261 §9.1).
        assert method == "INVITE"
        events.extend(
            layer.send_request(build_cancel(request), Destination("192.0.2.1", 5060, transport), 100.0)
        )
    drain(layer, events, 10_000.0)
    outcomes = [
        e
        for e in events
        if (
            isinstance(e, ResponseReceived)
            and e.transaction
            and e.response.is_final
            and e.response.cseq.method == method
        )
        or (isinstance(e, TransactionTimeout) and e.transaction.method == method)
    ]
    assert len(outcomes) == 1, outcomes  # exactly one outcome reaches the TU
    assert layer.next_timer() is None and len(layer) == 0
    if transport == "TCP":
        assert [e for e in events if isinstance(e, Transmit) and e.message is request] == [events[0]]


@given(
    method=st.sampled_from(["INVITE", "OPTIONS"]),
    transport=st.sampled_from(["UDP", "TCP"]),
    provisional=st.booleans(),
    final=st.sampled_from([200, 404, 486]),
    retransmissions=st.lists(st.floats(0, 60, allow_nan=False), max_size=6),
    ack_at=st.none() | st.floats(0, 60, allow_nan=False),
)
@settings(max_examples=300, deadline=None)
def test_server_transaction_passes_one_request_up_and_always_ends(
    method: str,
    transport: str,
    provisional: bool,
    final: int,
    retransmissions: list[float],
    ack_at: float | None,
) -> None:
    layer = TransactionLayer()
    request = make_request(method, transport=transport, ids=counter_ids())
    wire = request.serialize()
    events = layer.receive(parse_datagram(wire), 0.0)
    if provisional:
        events.extend(layer.send_response(build_response(request, 180, to_tag="x"), 0.1))
    answer = build_response(request, final, to_tag="x")
    events.extend(layer.send_response(answer, 0.2))
    # A client retransmits only over UDP and only until its own Timer B/F (64*T1) gives up.
    # It stops once it has sent its ACK, after which only ACKs are absorbed (Timer I).
    last_retransmission = 31.9 if ack_at is None or method != "INVITE" else min(31.9, max(ack_at, 0.2))
    schedule = [(t, "again") for t in retransmissions if transport == "UDP" and t < last_retransmission]
    if ack_at is not None and method == "INVITE":
        schedule.append((ack_at, "ack"))
    for at, what in sorted(schedule):
        at = max(at, 0.2)
        drain(layer, events, at)
        if what == "again":
            events.extend(layer.receive(parse_datagram(wire), at))
        else:
            ack = make_request("ACK", transport=transport, ids=counter_ids("k"))
            ack.headers.set("Via", request.headers.get("Via") or "")
            ack.headers.set("Call-ID", request.call_id)
            ack.headers.set("To", answer.headers.get("To") or "")
            ack.headers.set("CSeq", f"{request.cseq.seq} ACK")
            events.extend(layer.receive(parse_datagram(ack.serialize()), at))
    drain(layer, events, 10_000.0)
    requests = Counter(e.request.method for e in events if isinstance(e, RequestReceived) and e.transaction)
    assert requests == Counter({method: 1})  # retransmissions never reach the TU
    assert layer.next_timer() is None and len(layer) == 0
