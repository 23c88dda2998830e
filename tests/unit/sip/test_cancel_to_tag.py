"""RFC 3261 §9.2 with §8.2.6.2: the 200 to a CANCEL carries the To tag of the INVITE's responses."""

from __future__ import annotations

from frontoffice.channels.voice.sip import (
    Destination,
    Request,
    RequestReceived,
    TransactionLayer,
    build_cancel,
    build_response,
    parse_datagram,
)

from .helpers import counter_ids, make_request

UDP = Destination("192.0.2.10", 5060, "UDP")


def wire(request: Request) -> Request:
    parsed = parse_datagram(request.serialize())
    assert isinstance(parsed, Request)
    return parsed


def received(layer: TransactionLayer, request: Request) -> RequestReceived:
    [*_, event] = layer.receive(wire(request), 0.0, UDP)
    assert isinstance(event, RequestReceived)
    return event


def test_cancel_after_a_tagged_provisional_gets_200_with_that_tag() -> None:
    layer = TransactionLayer(ids=counter_ids("layer"))
    invite = make_request("INVITE")
    ist = received(layer, invite)
    assert ist.transaction is not None
    layer.send_response(build_response(ist.request, 183, to_tag="early1"), 0.0)
    cancel = received(layer, build_cancel(invite))
    assert cancel.cancels == ist.transaction
    assert layer.to_tag(cancel.cancels) == "early1"


def test_cancel_before_any_tagged_response_fixes_the_tag_the_487_then_uses() -> None:
    layer = TransactionLayer(ids=counter_ids("layer"))
    invite = make_request("INVITE")
    ist = received(layer, invite)  # only 100 Trying went out (no tag)
    assert ist.transaction is not None
    cancel = received(layer, build_cancel(invite))
    assert cancel.cancels is not None
    ok = build_response(cancel.request, 200, to_tag=layer.to_tag(cancel.cancels))
    terminated = build_response(ist.request, 487, to_tag=layer.to_tag(ist.transaction))
    assert ok.to.tag == terminated.to.tag == "layer1"


def test_the_first_tagged_response_fixes_the_tag_of_the_transaction() -> None:
    layer = TransactionLayer(ids=counter_ids("layer"))
    ist = received(layer, make_request("INVITE"))
    assert ist.transaction is not None
    layer.send_response(build_response(ist.request, 180, to_tag="ring1"), 0.0)
    assert layer.to_tag(ist.transaction) == "ring1"


def test_no_tag_for_a_transaction_that_is_gone() -> None:
    layer = TransactionLayer()
    ist = received(layer, make_request("OPTIONS"))
    assert ist.transaction is not None
    layer.send_response(build_response(ist.request, 200), 0.0)
    layer.handle_timer(layer.timers.timeout + 1)  # Timer J
    assert layer.to_tag(ist.transaction) is None
