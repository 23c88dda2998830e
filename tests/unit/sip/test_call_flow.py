"""Two SIP cores talking through a simulated lossy UDP link: INVITE with SDP, answer, ACK, hold, BYE."""

from __future__ import annotations

from dataclasses import dataclass, field

from frontoffice.channels.voice.sip import (
    Destination,
    Dialog,
    NameAddress,
    Request,
    RequestReceived,
    Response,
    ResponseReceived,
    TransactionEvent,
    TransactionLayer,
    Transmit,
    Via,
    answer_offer,
    apply_answer,
    build_offer,
    build_response,
    parse_datagram,
    parse_sdp,
    parse_uri,
)

from .helpers import counter_ids, make_request

ALICE = Destination("192.0.2.10", 5060)
BOB = Destination("198.51.100.9", 5070)


@dataclass
class Peer:
    name: str
    address: Destination
    layer: TransactionLayer = field(default_factory=TransactionLayer)
    inbox: list[TransactionEvent] = field(default_factory=list)


@dataclass
class Network:
    alice: Peer
    bob: Peer
    drop_next: int = 0
    wire_log: list[str] = field(default_factory=list)

    def deliver(self, sender: Peer, events: list[TransactionEvent], now: float) -> None:
        for event in events:
            if not isinstance(event, Transmit):
                sender.inbox.append(event)
                continue
            first_line = event.data.split(b"\r\n", 1)[0].decode()
            if self.drop_next:
                self.drop_next -= 1
                self.wire_log.append(f"{now:4.1f} {sender.name} x {first_line}")
                continue
            self.wire_log.append(f"{now:4.1f} {sender.name} > {first_line}")
            receiver = self.bob if sender is self.alice else self.alice
            message = parse_datagram(event.data)  # every hop goes through bytes
            self.deliver(receiver, receiver.layer.receive(message, now, sender.address), now)

    def run_timers(self, until: float) -> None:
        while True:
            due = [
                (t, p)
                for p in (self.alice, self.bob)
                if (t := p.layer.next_timer()) is not None and t <= until
            ]
            if not due:
                return
            at, peer = min(due, key=lambda item: item[0])
            self.deliver(peer, peer.layer.handle_timer(at), at)


def take(peer: Peer, kind: type) -> list:  # type: ignore[type-arg]
    found = [e for e in peer.inbox if isinstance(e, kind)]
    peer.inbox = [e for e in peer.inbox if not isinstance(e, kind)]
    return found


def test_call_with_lost_invite_hold_and_bye() -> None:
    net = Network(Peer("alice", ALICE), Peer("bob", BOB))
    ids = counter_ids("a")
    offer = build_offer(address="192.0.2.10", port=40000, session_id="1")
    invite = make_request("INVITE", ids=ids, body=offer.serialize())

    net.drop_next = 1  # the first INVITE is lost; Timer A recovers it at 0.5 s
    net.deliver(net.alice, net.alice.layer.send_request(invite, BOB, 0.0), 0.0)
    net.run_timers(0.5)
    (incoming,) = take(net.bob, RequestReceived)
    assert isinstance(incoming.request, Request) and incoming.request.method == "INVITE"

    # Bob answers with SDP and creates his side of the dialog.
    answer, bob_media = answer_offer(
        parse_sdp(incoming.request.body), address="198.51.100.9", port=50000, session_id="2"
    )
    ok = build_response(
        incoming.request,
        200,
        to_tag="bobtag",
        contact=NameAddress(parse_uri("sip:bob@198.51.100.9:5070")),
        body=answer.serialize(),
        content_type="application/sdp",
    )
    bob_dialog = Dialog.from_uas(incoming.request, ok, via=Via("UDP", "198.51.100.9", 5070))
    net.deliver(net.bob, net.bob.layer.send_response(ok, 0.6), 0.6)
    assert bob_media.codec.name == "PCMU" and bob_media.remote_port == 40000

    # Alice gets 100 (from the retransmission) and the 200, builds her dialog and ACKs.
    responses = [e.response for e in take(net.alice, ResponseReceived)]
    assert [r.status for r in responses] == [100, 200]
    final: Response = responses[-1]
    alice_dialog = Dialog.from_uac(invite, final)
    alice_media = apply_answer(offer, parse_sdp(final.body))
    assert (alice_media.remote_address, alice_media.remote_port) == ("198.51.100.9", 50000)
    ack = alice_dialog.ack(invite.cseq.seq, ids=ids)
    net.deliver(net.alice, net.alice.layer.send_request(ack, BOB, 0.7), 0.7)
    (ack_in,) = take(net.bob, RequestReceived)
    assert ack_in.request.method == "ACK" and ack_in.transaction is None

    # Alice puts Bob on hold; Bob answers recvonly.
    hold, _ = alice_dialog.hold(offer, ids=ids)
    net.deliver(net.alice, net.alice.layer.send_request(hold, BOB, 10.0), 10.0)
    (reinvite,) = take(net.bob, RequestReceived)
    bob_dialog.receive_request(reinvite.request)
    held_answer, held_media = answer_offer(
        parse_sdp(reinvite.request.body),
        address="198.51.100.9",
        port=50000,
        session_id="2",
        session_version=1,
    )
    assert held_media.direction == "recvonly"
    net.deliver(
        net.bob,
        net.bob.layer.send_response(
            build_response(
                reinvite.request, 200, body=held_answer.serialize(), content_type="application/sdp"
            ),
            10.1,
        ),
        10.1,
    )
    take(net.alice, ResponseReceived)

    # Bob hangs up.
    bye = bob_dialog.bye(ids=counter_ids("b"))
    net.deliver(net.bob, net.bob.layer.send_request(bye, ALICE, 20.0), 20.0)
    (bye_in,) = take(net.alice, RequestReceived)
    alice_dialog.receive_request(bye_in.request)
    net.deliver(net.alice, net.alice.layer.send_response(build_response(bye_in.request, 200), 20.1), 20.1)
    (bye_ok,) = take(net.bob, ResponseReceived)
    bob_dialog.update_from_response(bye_ok.response)
    assert alice_dialog.state.value == bob_dialog.state.value == "terminated"

    # Everything drains: no timers left after the absorb periods.
    net.run_timers(200.0)
    assert net.alice.layer.next_timer() is None and net.bob.layer.next_timer() is None
    assert len(net.alice.layer) == 0 and len(net.bob.layer) == 0
    assert net.wire_log[0].startswith(" 0.0 alice x INVITE")
    assert net.wire_log[1].startswith(" 0.5 alice > INVITE")
