"""RFC 4475 torture messages: the valid ones parse to the right values, the invalid ones are rejected.

The .dat files hold the exact octets (RFC 4475 <allOneLine>, <hex> and <repeat> markup decoded).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from frontoffice.channels.voice.sip import (
    Request,
    Response,
    SipParseError,
    StreamParser,
    build_error_response,
    parse_datagram,
)

TORTURE = Path(__file__).parent / "torture"


def load(name: str) -> bytes:
    return (TORTURE / f"{name}.dat").read_bytes()


def parse_request(name: str) -> Request:
    message = parse_datagram(load(name))
    assert isinstance(message, Request)
    return message


def test_wsinv_short_tortuous_invite() -> None:
    m = parse_request("wsinv")
    assert m.method == "INVITE"
    assert m.uri.user == "vivekg" and m.uri.host == "chair-dnrc.example.com"
    assert m.uri.has_param("unknownparam")
    assert m.to.tag == "1918181833n"
    assert str(m.to.uri) == "sip:vivekg@chair-dnrc.example.com"
    assert m.from_.display_name == 'J Rosenberg \\"'
    assert m.from_.tag == "98asjd8"
    assert m.max_forwards == 68
    assert m.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert (m.cseq.seq, m.cseq.method) == (9, "INVITE")
    vias = m.vias
    assert [(v.transport, v.host, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert m.headers.get("Subject") == ""
    assert m.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    route = m.routes[0]
    assert route.uri.host == "services.example.com" and route.uri.has_param("lr")
    assert route.uri.param("unknownwith") == "value" and route.uri.has_param("unknown-no-value")
    contact = m.contacts[0]
    assert contact.display_name == 'Quoted string ""'
    assert contact.param("newparam") == "newvalue"
    assert contact.params == (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33"))
    assert len(m.body) == 150 and m.body.startswith(b"v=0\r\n")


def test_intmeth_wide_range_of_valid_characters() -> None:
    m = parse_request("intmeth")
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.method == method and m.cseq.method == method and m.cseq.seq == 139122385
    assert m.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.uri.host == "example.com"
    assert m.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert m.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert m.to.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert m.from_.param("fromParam''~+*_!.-%") == '"работающий"'
    assert m.from_.tag == "_token~1'+`*%!-."
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.max_forwards == 255
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    assert m.body == b""


def test_esc01_escaped_characters_are_unescaped() -> None:
    m = parse_request("esc01")
    assert m.uri.user == "sips:user@example.com" and m.uri.host == "example.net"
    assert m.to.uri.user == "user"
    assert m.from_.uri.user == "I have spaces"
    assert m.call_id == "esc01.239409asdfakjkn23onasd0-3234"
    assert m.content_type == "application/sdp"
    contact = m.contacts[0].uri
    assert contact.user == "caller"
    assert contact.has_param("lr")
    assert contact.param("name") == "value%41"
    assert len(m.body) == 150  # the datagram carries 2 octets past Content-Length (RFC 3261 §18.3)


def test_escnull_escaped_nulls_in_uris() -> None:
    m = parse_request("escnull")
    assert m.to.uri.user == "null-\x00-null"
    assert [c.uri.user for c in m.contacts] == ["\x00", "\x00\x00"]
    assert str(m.contacts[1].uri) == "sip:%00%00@host5.example.com"


def test_esc02_percent_in_method_and_header_name_is_not_unescaped() -> None:
    m = parse_request("esc02")
    assert m.method == "RE%47IST%45R"  # not REGISTER: methods are tokens, never unescaped
    assert m.to.display_name == "%Z%45"
    assert m.top_via.branch == "z9hG4bK209%fzsnel234"
    assert [c.uri.user for c in m.contacts] == ["alias1", "alias3"]
    assert m.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_lwsdisp_no_lws_between_display_name_and_bracket() -> None:
    m = parse_request("lwsdisp")
    assert m.from_.display_name == "caller"
    assert m.from_.uri.user == "caller"


def test_longreq_long_values_in_header_fields() -> None:
    m = parse_request("longreq")
    assert m.to.display_name == "I have a user name of " + "extreme" * 10 + " proportion"
    assert m.to.uri.port == 6000
    assert m.to.uri.param("unknownparam1") == "very" + "long" * 20 + "value"
    assert m.from_.tag == "12" + "982" * 50 + "424"
    assert m.call_id == "longreq.one" + "really" * 20 + "longcallid"
    vias = m.vias
    assert len(vias) == 34
    assert [v.host for v in vias[:3]] == ["sip33.example.com", "sip32.example.com", "sip31.example.com"]
    assert vias[-1].received == "192.0.2.5"
    assert vias[-1].branch == "very" + "long" * 50 + "branchvalue"
    assert m.contacts[0].uri.user == "amazinglylongcallername" * 5
    assert len(m.body) == 150


def test_dblreq_extra_octets_after_body_are_ignored() -> None:
    m = parse_request("dblreq")
    assert m.method == "REGISTER" and m.body == b""
    assert m.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"


def test_dblreq_on_a_stream_yields_both_requests_then_fails_on_the_noise() -> None:
    # Over a stream the trailing INVITE is framed too; its Content-Length (150) is shorter than its
    # body, so the leftover octets are not a message and the stream is declared broken afterwards.
    parser = StreamParser()
    messages = parser.feed(load("dblreq"))
    assert [m.method for m in messages if isinstance(m, Request)] == ["REGISTER", "INVITE"]
    assert len(messages[1].body) == 150
    assert parser.error is not None
    with pytest.raises(SipParseError):
        parser.feed(b"")


def test_semiuri_semicolon_in_user_part() -> None:
    m = parse_request("semiuri")
    assert m.uri.user == "user;par=u@example.net"
    assert m.uri.host == "example.com" and m.uri.params == ()
    assert m.headers.get_list("Accept") == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]


def test_transports_unknown_transport_accepted() -> None:
    m = parse_request("transports")
    assert [v.transport for v in m.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert m.call_id == "transports.kijh4akdnaqjkwendsasfdj"


def test_mpart01_multipart_binary_body_kept_intact() -> None:
    m = parse_request("mpart01")
    assert len(m.body) == 553
    assert m.body.startswith(b"--7a9cbec02ceef655\r\n")
    assert m.body.endswith(b"--7a9cbec02ceef655--\r\n")
    assert b"\x30\x82\x01\x52" in m.body
    assert m.top_via.has_rport and m.top_via.rport is None
    assert m.top_via.port == 5070


def test_unreason_utf8_reason_phrase() -> None:
    m = parse_datagram(load("unreason"))
    assert isinstance(m, Response)
    assert m.status == 200
    assert m.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    assert len(m.body) == 154


def test_noreason_empty_reason_phrase() -> None:
    m = parse_datagram(load("noreason"))
    assert isinstance(m, Response)
    assert (m.status, m.reason) == (100, "")


@pytest.mark.parametrize(
    ("name", "check"),
    [
        (
            "unkscm",
            lambda m: m.uri.scheme == "nobodyknowsthisscheme" and m.uri.opaque == "totallyopaquecontent",
        ),
        ("novelsc", lambda m: m.uri.scheme == "soap.beep" and m.uri.opaque == "//192.0.2.103:3002"),
        ("unksm2", lambda m: m.to.uri.scheme == "isbn" and m.contacts[0].uri.opaque == "John_Smith"),
        ("inv2543", lambda m: m.top_via.branch is None and m.from_.tag is None and len(m.body) == 107),
        (
            "cparam01",
            lambda m: m.contacts[0].params == (("unknownparam", None),) and m.contacts[0].uri.params == (),
        ),
        ("cparam02", lambda m: m.contacts[0].uri.has_param("unknownparam") and m.contacts[0].params == ()),
        ("regescrt", lambda m: m.contacts[0].uri.headers == (("Route", "<sip:sip.example.com>"),)),
        ("zeromf", lambda m: m.max_forwards == 0),
        ("badbranch", lambda m: m.top_via.branch == "z9hG4bK"),
    ],
)
def test_application_layer_messages_parse(name: str, check: object) -> None:
    # RFC 4475 §3.1.4 and §3.2: these are syntactically valid; their problems are for the application.
    m = parse_request(name)
    assert callable(check) and check(m)


# RFC 4475 §3.1.2 and §3.1.4: messages an element must reject, with the status we answer.
INVALID = {
    "badinv01": 400,  # extraneous ;;,; separators in Via and Contact
    "clerr": 400,  # Content-Length larger than the datagram
    "ncl": 400,  # negative Content-Length
    "scalar02": 400,  # CSeq over 2**31, Max-Forwards over 255
    "scalarlg": 400,  # response: the transport drops it (RFC 3261 §18.1.2)
    "quotbal": 400,  # unterminated quoted string
    "ltgtruri": 400,  # <> around the Request-URI
    "lwsruri": 400,  # LWS inside the Request-URI
    "lwsstart": 400,  # several SP between Request-Line elements (RFC allows liberal; we are strict)
    "trws": 400,  # trailing SP on the Request-Line (RFC allows liberal; we are strict)
    "escruri": 400,  # escaped headers in the Request-URI
    "baddate": 400,  # non-GMT Date (RFC allows ignoring Date; we reject: see parser._validate)
    "regbadct": 400,  # addr-spec with ?headers not in <>
    "badaspec": 400,  # spaces inside <addr-spec> (RFC allows liberal; we are strict)
    "baddn": 400,  # unquoted display name with a comma
    "badvers": 505,  # SIP/7.0: Version Not Supported
    "mismatch01": 400,  # CSeq method differs from the request method
    "mismatch02": 400,  # unknown method and CSeq mismatch (400 rather than 501: the message is broken)
    "bigcode": 400,  # status code not 3 digits
    "insuf": 400,  # missing To, From, Call-ID
    "multi01": 400,  # several To/From/Call-ID/CSeq
    "mcl01": 400,  # two Content-Length headers
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_messages_are_rejected(name: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_datagram(load(name))
    assert info.value.status_code == INVALID[name]
    assert info.value.reason


def test_rejection_of_request_carries_enough_to_answer_400() -> None:
    with pytest.raises(SipParseError) as info:
        parse_datagram(load("mismatch01"))
    ctx = info.value.context
    assert ctx.is_request and ctx.method == "OPTIONS"
    response = build_error_response(info.value)
    assert response is not None
    assert response.status == 400
    assert response.call_id == "mismatch01.dj0234sxdfl3"
    assert response.top_via.branch == "z9hG4bKkdjuw"
    assert response.to.tag is not None
    assert "CSeq" in response.reason


def test_badvers_answered_with_505() -> None:
    with pytest.raises(SipParseError) as info:
        parse_datagram(load("badvers"))
    assert info.value.status_code == 505
    # Its Via is SIP/7.0 too: still routable (we answer to the source), echoed as received (§8.2.6.2).
    response = build_error_response(info.value)
    assert response is not None and response.status == 505
    assert response.headers.get_all("Via") == ["SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw"]


def test_no_400_for_a_broken_response() -> None:
    with pytest.raises(SipParseError) as info:
        parse_datagram(load("bigcode"))
    assert build_error_response(info.value) is None
