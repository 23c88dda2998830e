"""Dialogs (RFC 3261 §12): creation, route sets, in-dialog requests, CANCEL, redirects, REFER, timers."""

from __future__ import annotations

import pytest

from frontoffice.channels.voice.sip.builders import build_response
from frontoffice.channels.voice.sip.dialog import (
    Dialog,
    DialogState,
    SessionTimer,
    build_cancel,
    parse_min_se,
    parse_session_expires,
    redirect_targets,
)
from frontoffice.channels.voice.sip.exceptions import DialogError, SipParseError
from frontoffice.channels.voice.sip.headers import NameAddress, Via
from frontoffice.channels.voice.sip.message import Request, Response
from frontoffice.channels.voice.sip.parser import parse_datagram
from frontoffice.channels.voice.sip.sdp import build_offer, parse_sdp
from frontoffice.channels.voice.sip.uri import parse_uri

from .helpers import counter_ids, make_request

BOB_CONTACT = NameAddress(parse_uri("sip:bob@198.51.100.9:5070"))
RECORD_ROUTES = ["<sip:p1.example.com;lr>", "<sip:p2.example.net;lr>"]


def wire_response(response: Response) -> Response:
    parsed = parse_datagram(response.serialize())
    assert isinstance(parsed, Response)
    return parsed


def wire_request(request: Request) -> Request:
    parsed = parse_datagram(request.serialize())
    assert isinstance(parsed, Request)
    return parsed


def invite_with_record_route() -> Request:
    invite = make_request("INVITE")
    for rr in RECORD_ROUTES:
        invite.headers.add("Record-Route", rr)
    return invite


def uac_dialog() -> tuple[Request, Dialog]:
    invite = invite_with_record_route()
    ringing = wire_response(build_response(invite, 180, to_tag="bob1", contact=BOB_CONTACT))
    dialog = Dialog.from_uac(invite, ringing)
    assert dialog.state is DialogState.EARLY
    ok = wire_response(build_response(invite, 200, to_tag="bob1", contact=BOB_CONTACT))
    dialog.update_from_response(ok)
    return invite, dialog


def test_uac_dialog_from_1xx_then_2xx() -> None:
    invite, dialog = uac_dialog()
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.id.call_id == invite.call_id
    assert dialog.id.local_tag == invite.from_.tag and dialog.id.remote_tag == "bob1"
    assert dialog.remote_target == BOB_CONTACT.uri
    # §12.1.2: Record-Route reversed for the UAC.
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p2.example.net;lr", "sip:p1.example.com;lr"]
    assert dialog.local_seq == invite.cseq.seq and dialog.remote_seq is None


def test_uac_bye_uses_loose_routing_and_next_cseq() -> None:
    invite, dialog = uac_dialog()
    bye = wire_request(dialog.bye(ids=counter_ids("b")))
    assert bye.method == "BYE"
    assert bye.uri == BOB_CONTACT.uri
    assert [str(r.uri) for r in bye.routes] == ["sip:p2.example.net;lr", "sip:p1.example.com;lr"]
    assert bye.cseq.seq == invite.cseq.seq + 1
    assert bye.from_.tag == invite.from_.tag and bye.to.tag == "bob1"
    assert bye.call_id == invite.call_id
    assert bye.top_via.branch == "z9hG4bKb1" and bye.top_via.host == "192.0.2.10"


def test_ack_for_2xx_reuses_invite_cseq_with_new_branch() -> None:
    invite, dialog = uac_dialog()
    ack = dialog.ack(invite.cseq.seq, ids=counter_ids("a"))
    assert ack.method == "ACK" and ack.cseq.seq == invite.cseq.seq and ack.cseq.method == "ACK"
    assert ack.top_via.branch != invite.top_via.branch
    assert dialog.local_seq == invite.cseq.seq  # ACK does not consume a CSeq number


def test_uas_dialog_route_set_in_order_and_cseq_checks() -> None:
    invite = wire_request(invite_with_record_route())
    ok = build_response(invite, 200, to_tag="uas1", contact=BOB_CONTACT)
    dialog = Dialog.from_uas(invite, ok, via=Via("UDP", "198.51.100.9", 5070))
    assert dialog.state is DialogState.CONFIRMED
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p1.example.com;lr", "sip:p2.example.net;lr"]
    assert dialog.remote_target == parse_uri("sip:alice@192.0.2.10:5060")
    assert dialog.remote_seq == invite.cseq.seq
    bye = dialog.bye()
    assert bye.to.tag == invite.from_.tag and bye.from_.tag == "uas1" and bye.cseq.seq == 1
    # §12.2.2: a lower CSeq from the peer is out of order → 500.
    stale = dialog.create_request("INFO")  # build any request shape, then pose as the peer's
    stale.headers.set("CSeq", f"{invite.cseq.seq - 1} INFO")
    with pytest.raises(DialogError) as info:
        dialog.receive_request(stale)
    assert info.value.status_code == 500


def test_reinvite_from_peer_refreshes_remote_target() -> None:
    invite = wire_request(make_request("INVITE"))
    dialog = Dialog.from_uas(invite, build_response(invite, 200, to_tag="t"), via=Via("UDP", "h", None))
    reinvite = wire_request(make_request("INVITE", cseq=invite.cseq.seq + 1))
    reinvite.headers.set("Contact", "<sip:alice@203.0.113.99:6000>")
    dialog.receive_request(reinvite)
    assert dialog.remote_target == parse_uri("sip:alice@203.0.113.99:6000")
    assert dialog.remote_seq == invite.cseq.seq + 1


def test_strict_route_puts_first_route_in_request_uri() -> None:
    invite = make_request("INVITE")
    invite.headers.add("Record-Route", "<sip:strict.example.com>")
    dialog = Dialog.from_uac(invite, build_response(invite, 200, to_tag="x", contact=BOB_CONTACT))
    bye = dialog.bye()
    assert bye.uri == parse_uri("sip:strict.example.com")
    assert [r.uri for r in bye.routes] == [BOB_CONTACT.uri]


def test_early_dialog_terminated_by_non_2xx() -> None:
    invite = make_request("INVITE")
    dialog = Dialog.from_uac(invite, build_response(invite, 183, to_tag="e", contact=BOB_CONTACT))
    dialog.update_from_response(build_response(invite, 486, to_tag="e"))
    assert dialog.state is DialogState.TERMINATED
    with pytest.raises(DialogError):
        dialog.create_request("INFO")


def test_response_without_to_tag_does_not_create_dialog() -> None:
    invite = make_request("INVITE")
    with pytest.raises(DialogError):
        Dialog.from_uac(invite, build_response(invite, 100))


def test_hold_and_resume_reinvites_carry_direction() -> None:
    _, dialog = uac_dialog()
    local = build_offer(address="192.0.2.10", port=4000, session_id="1")
    hold, held_sdp = dialog.hold(local)
    assert hold.method == "INVITE" and hold.content_type == "application/sdp"
    assert b"a=sendonly\r\n" in hold.body and held_sdp.origin.session_version == 1
    inactive, _ = dialog.hold(local, inactive=True)
    assert b"a=inactive\r\n" in inactive.body
    resume, resumed = dialog.resume(held_sdp)
    assert b"a=sendrecv\r\n" in resume.body and resumed.origin.session_version == 2
    assert parse_sdp(resume.body).audio() is not None
    assert resume.cseq.seq > hold.cseq.seq


def test_blind_transfer_refer_and_sipfrag_notify() -> None:
    _, dialog = uac_dialog()
    refer = wire_request(dialog.refer(parse_uri("sip:agent42@pbx.example.com"), referred_by=dialog.local_uri))
    assert refer.method == "REFER"
    assert refer.headers.get("Refer-To") == "<sip:agent42@pbx.example.com>"
    assert refer.headers.get("Referred-By") == str(dialog.local_uri)
    trying = wire_request(dialog.notify_refer_progress(100, "Trying"))
    assert trying.headers.get("Event") == "refer"
    assert trying.headers.get("Subscription-State") == "active;expires=60"
    assert trying.headers.get("Content-Type") == "message/sipfrag;version=2.0"
    assert trying.body == b"SIP/2.0 100 Trying\r\n"
    done = dialog.notify_refer_progress(200, "OK")
    assert done.headers.get("Subscription-State") == "terminated;reason=noresource"
    assert done.cseq.seq == trying.cseq.seq + 1


def test_options_keepalive_and_481_ends_dialog() -> None:
    _, dialog = uac_dialog()
    options = dialog.options()
    assert options.method == "OPTIONS"
    dialog.update_from_response(build_response(options, 481))
    assert dialog.state is DialogState.TERMINATED


def test_cancel_follows_rfc3261_section_9_1() -> None:
    invite = invite_with_record_route()
    invite.headers.add("Route", "<sip:outbound.example.com;lr>")
    cancel = wire_request(build_cancel(invite))
    assert cancel.method == "CANCEL" and cancel.uri == invite.uri
    assert cancel.top_via == invite.top_via and len(cancel.vias) == 1
    assert cancel.cseq.seq == invite.cseq.seq and cancel.cseq.method == "CANCEL"
    assert cancel.headers.get("To") == invite.headers.get("To")
    assert cancel.headers.get("From") == invite.headers.get("From")
    assert [str(r.uri) for r in cancel.routes] == ["sip:outbound.example.com;lr"]
    assert cancel.record_routes == []


def test_redirect_targets_ordered_by_q() -> None:
    invite = make_request("INVITE")
    moved = build_response(invite, 302)
    moved.headers.add("Contact", "<sip:a@x.example.com>;q=0.5, <sip:b@y.example.com>")
    moved.headers.add("Contact", "<sip:c@z.example.com>;q=0.9")
    targets = redirect_targets(wire_response(moved))
    assert [t.user for t in targets] == ["b", "c", "a"]
    with pytest.raises(DialogError):
        redirect_targets(build_response(invite, 200))


def test_session_expires_parsing() -> None:
    se = parse_session_expires("1800;refresher=uas")
    assert (se.interval, se.refresher) == (1800, "uas")
    assert str(se) == "1800;refresher=uas"
    assert parse_session_expires(" 90 ").refresher is None
    assert parse_min_se("90;x=1") == 90
    with pytest.raises(SipParseError):
        parse_session_expires("1800;refresher=me")
    with pytest.raises(SipParseError):
        parse_session_expires("soon")


def test_session_timer_refresh_and_expiry() -> None:
    invite = make_request("INVITE")
    ok = build_response(invite, 200, to_tag="t", extra_headers=[("x", "1800;refresher=uac")])
    ok = wire_response(ok)
    timer = SessionTimer.negotiate(ok, we_are_uac=True, now=100.0)
    assert timer is not None and timer.we_refresh and timer.interval == 1800
    assert not timer.refresh_due(999.0) and timer.refresh_due(1000.0)
    timer.refreshed(1000.0)
    assert timer.next_deadline() == 1900.0
    theirs = SessionTimer.negotiate(ok, we_are_uac=False, now=100.0)
    assert theirs is not None and not theirs.we_refresh and not theirs.refresh_due(5000.0)
    assert not theirs.expired(100.0 + 1800 - 33) and theirs.expired(100.0 + 1800 - 32)
    short = SessionTimer(interval=90, we_refresh=False, last_refresh=0.0)
    assert short.expires_at() == 60.0  # min(32, 90/3) = 30 before expiry
    assert SessionTimer.negotiate(build_response(invite, 200), we_are_uac=True, now=0.0) is None


def test_stale_reinvite_and_bye_are_refused_with_500_and_change_nothing() -> None:
    # RFC 3261 §12.2.2: the dialog's remote CSeq, target and state stay as they were.
    invite = wire_request(make_request("INVITE", cseq=5))
    dialog = Dialog.from_uas(invite, build_response(invite, 200, to_tag="t"), via=Via("UDP", "h", None))
    before = (dialog.remote_seq, dialog.remote_target, dialog.state)
    for method in ("INVITE", "BYE"):
        stale = wire_request(make_request(method, cseq=4))
        stale.headers.set("Contact", "<sip:alice@203.0.113.99:6000>")
        with pytest.raises(DialogError) as info:
            dialog.receive_request(stale)
        assert info.value.status_code == 500
        assert (dialog.remote_seq, dialog.remote_target, dialog.state) == before
