"""Parser and serializer details beyond the torture messages: framing, limits, forms, builders."""

from __future__ import annotations

import pytest

from frontoffice.channels.voice.sip import (
    MAX_HEADERS,
    MAX_MESSAGE_SIZE,
    Request,
    Response,
    SipParseError,
    StreamParser,
    build_error_response,
    build_response,
    is_keepalive,
    parse_datagram,
)
from frontoffice.channels.voice.sip.headers import NameAddress, canonical_name, parse_name_addr, split_list
from frontoffice.channels.voice.sip.uri import parse_uri

from .helpers import counter_ids, make_request

BASE = (
    b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
    b"From: <sip:a@example.com>;tag=1\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: c1@example.com\r\n"
    b"CSeq: 1 OPTIONS\r\n"
)


def request(extra: bytes = b"", body: bytes = b"", length: bytes | None = b"auto") -> bytes:
    cl = (
        b""
        if length is None
        else b"Content-Length: " + (str(len(body)).encode() if length == b"auto" else length) + b"\r\n"
    )
    return BASE + extra + cl + b"\r\n" + body


def test_udp_without_content_length_takes_rest_of_datagram() -> None:
    m = parse_datagram(request(body=b"hello", length=None))
    assert m.body == b"hello"


def test_udp_extra_octets_are_truncated_and_short_body_is_an_error() -> None:
    assert parse_datagram(request(body=b"hello", length=b"3")).body == b"hel"
    with pytest.raises(SipParseError, match="shorter"):
        parse_datagram(request(body=b"hi", length=b"5"))


def test_leading_crlf_is_ignored_and_keepalive_recognised() -> None:
    assert isinstance(parse_datagram(b"\r\n\r\n" + request()), Request)
    assert is_keepalive(b"\r\n\r\n") and is_keepalive(b"\r\n") and not is_keepalive(request())


def test_folded_and_compact_and_repeated_headers() -> None:
    m = parse_datagram(
        request(
            b"Subject: first\r\n  second\r\n\tthird\r\nv: SIP/2.0/TCP p1.example.com;branch=z9hG4bK2, "
            b"SIP/2.0/UDP [2001:db8::1]:5070;received=192.0.2.9;rport=5071;branch=z9hG4bK3\r\n"
            b"k: timer, replaces\r\nSupported: 100rel\r\n"
        )
    )
    assert m.headers.get("Subject") == "first second third"
    assert [v.host for v in m.vias] == ["192.0.2.1", "p1.example.com", "[2001:db8::1]"]
    last = m.vias[-1]
    assert (last.port, last.received, last.rport, last.has_rport) == (5070, "192.0.2.9", 5071, True)
    assert m.headers.get_list("Supported") == ["timer", "replaces", "100rel"]
    assert canonical_name("i") == "Call-ID" and canonical_name("WWW-AUTHENTICATE") == "WWW-Authenticate"


def test_header_names_are_canonical_on_output() -> None:
    wire = parse_datagram(request(b"i2: x\r\n").replace(b"Call-ID:", b"i:")).serialize()
    assert b"\r\nCall-ID: c1@example.com\r\n" in wire and b"\r\ni2: x\r\n" in wire


@pytest.mark.parametrize(
    ("text", "user", "password", "host", "port"),
    [
        (
            "sip:alice:secret@example.com:5080;transport=tcp?subject=hi",
            "alice",
            "secret",
            "example.com",
            5080,
        ),
        ("sips:[2001:db8::5]:5061", None, None, "[2001:db8::5]", 5061),
        ("sip:+1-555-0100@gw.example.com;user=phone", "+1-555-0100", None, "gw.example.com", None),
        ("sip:192.0.2.4", None, None, "192.0.2.4", None),
    ],
)
def test_uri_components(
    text: str, user: str | None, password: str | None, host: str, port: int | None
) -> None:
    uri = parse_uri(text)
    assert (uri.user, uri.password, uri.host, uri.port) == (user, password, host, port)
    assert str(parse_uri(str(uri))) == str(uri)


def test_uri_params_headers_and_tel() -> None:
    uri = parse_uri("sip:alice@example.com;transport=TCP;lr?subject=hi%20there&priority=urgent")
    assert uri.transport == "tcp" and uri.has_param("lr") and uri.param("lr") is None
    assert uri.headers == (("subject", "hi there"), ("priority", "urgent"))
    tel = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
    assert tel.scheme == "tel" and tel.user == "+1-201-555-0123"
    assert tel.param("phone-context") == "example.com"
    assert str(tel) == "tel:+1-201-555-0123;phone-context=example.com"


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:@host",
        "sip:host:99999",
        "sip:[::1",
        "sip:[zz::1]",
        "sip:ho st",
        "sip:a@b;;c",
        "sip:a%zz@b",
        "1sip:x",
        "sip:a@b?x",
        "<sip:a@b>",
    ],
)
def test_bad_uris(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_uri(text)


def test_name_addr_forms() -> None:
    a = parse_name_addr('"Alice \\"A\\" Smith" <sip:alice@example.com;transport=udp>;tag=abc;expires=60')
    assert a.display_name == 'Alice "A" Smith' and a.tag == "abc" and a.param("expires") == "60"
    assert a.uri.transport == "udp"
    b = parse_name_addr("sip:bob@example.com;tag=9")  # addr-spec: ;tag is a header param
    assert b.tag == "9" and b.uri.params == ()
    c = parse_name_addr("Bob Smith <sip:bob@example.com>")
    assert c.display_name == "Bob Smith"
    assert str(a) == '"Alice \\"A\\" Smith" <sip:alice@example.com;transport=udp>;tag=abc;expires=60'


def test_split_list_respects_quotes_and_brackets() -> None:
    assert split_list('"a, b" <sip:x@y;p=1,2>, <sip:z@w>') == ['"a, b" <sip:x@y;p=1,2>', "<sip:z@w>"]
    with pytest.raises(SipParseError):
        split_list("a,,b")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"OPTIONS sip:bob@example.com SIP/2.0\r\n",  # no empty line
        request(b"Bad Header: x\r\n"),
        BASE.replace(b"SIP/2.0\r\nVia", b"SIP/2.0\r\n Via") + b"\r\n",  # fold before any header
        BASE.replace(b"\r\nVia", b"\nVia") + b"\r\n",  # bare LF inside the header section
        request(b"Max-Forwards: 256\r\n"),
        request(b"Content-Length: 0\r\n"),  # duplicate
        BASE.replace(b"OPTIONS sip", b"OPTIONS\tsip") + b"\r\n",
        request().replace(b"SIP/2.0\r\n", b"SIP/2.0 \r\n", 1),
    ],
)
def test_malformed_messages(data: bytes) -> None:
    with pytest.raises(SipParseError):
        parse_datagram(data)


@pytest.mark.parametrize(
    "line",
    [b"NoColonHere\r\n", b"Bad Header: x\r\n", b"X-Folded: a\r\n b\r\nJunk line\r\n"],
)
def test_request_with_a_malformed_header_line_is_answered_400(line: bytes) -> None:
    # RFC 3261 §21.4.1: a malformed request gets 400 with a reason, built from the lines that parse
    # (Via, From, To, Call-ID, CSeq) rather than being dropped in silence.
    with pytest.raises(SipParseError) as info:
        parse_datagram(request(line))
    assert info.value.status_code == 400
    response = build_error_response(info.value)
    assert response is not None
    assert response.status == 400 and response.reason == "Malformed header line"
    assert response.call_id == "c1@example.com" and response.cseq.method == "OPTIONS"
    assert response.top_via.branch == "z9hG4bK1" and response.to.tag is not None
    assert isinstance(parse_datagram(response.serialize()), Response)


def test_malformed_header_line_in_a_response_or_over_tcp() -> None:
    # A response is never answered; a request on a stream is answered the same way.
    broken = request(b"NoColonHere\r\n")
    with pytest.raises(SipParseError) as info:
        parse_datagram(broken.replace(b"OPTIONS sip:bob@example.com SIP/2.0", b"SIP/2.0 200 OK", 1))
    assert build_error_response(info.value) is None
    with pytest.raises(SipParseError) as streamed:
        StreamParser().feed(request(b"NoColonHere\r\n", length=b"0"))
    answer = build_error_response(streamed.value)
    assert answer is not None and answer.status == 400


def test_limits() -> None:
    with pytest.raises(SipParseError) as big:
        parse_datagram(request(body=b"x" * MAX_MESSAGE_SIZE))
    assert big.value.status_code == 513
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(MAX_HEADERS + 1))
    with pytest.raises(SipParseError, match="Too many headers"):
        parse_datagram(request(many))
    with pytest.raises(SipParseError, match="too long"):
        parse_datagram(request(b"X-Long: " + b"a" * 9000 + b"\r\n"))


def test_stream_parser_keepalives_partial_data_and_error_state() -> None:
    parser = StreamParser()
    msg = request(body=b"abc")
    assert parser.feed(b"\r\n\r\n" + msg[:10]) == []
    assert parser.keepalives == 1
    out = parser.feed(msg[10:] + msg[:-1])
    assert len(out) == 1 and out[0].body == b"abc"
    assert len(parser.feed(msg[-1:])) == 1
    broken = StreamParser()
    with pytest.raises(SipParseError, match="Content-Length"):
        broken.feed(request(length=None))
    with pytest.raises(SipParseError):
        broken.feed(msg)  # stays failed: the framing is lost
    huge = StreamParser(max_message_size=100)
    with pytest.raises(SipParseError) as info:
        huge.feed(request(body=b"x" * 200))
    assert info.value.status_code == 513


def test_build_response_copies_and_tags() -> None:
    invite = make_request("INVITE", ids=counter_ids())
    invite.headers.add("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp")
    invite.headers.add("Timestamp", "54")
    invite.headers.add("Record-Route", "<sip:proxy.example.com;lr>")
    trying = build_response(invite, 100)
    assert trying.to.tag is None and trying.headers.get("Timestamp") == "54"
    assert trying.headers.get_all("Record-Route") == []
    ringing = build_response(invite, 180, ids=counter_ids("tag"))
    assert ringing.to.tag == "tag1"
    assert [v.branch for v in ringing.vias] == [v.branch for v in invite.vias]
    assert ringing.headers.get("From") == invite.headers.get("From")
    assert ringing.call_id == invite.call_id and ringing.cseq == invite.cseq
    assert ringing.headers.get_all("Record-Route") == ["<sip:proxy.example.com;lr>"]
    assert ringing.reason == "Ringing"
    parsed = parse_datagram(ringing.serialize())
    assert isinstance(parsed, Response) and parsed.status == 180


def test_build_request_is_deterministic_with_injected_ids() -> None:
    first = make_request("INVITE", ids=counter_ids()).serialize()
    second = make_request("INVITE", ids=counter_ids()).serialize()
    assert first == second
    m = parse_datagram(first)
    assert isinstance(m, Request)
    assert m.top_via.branch == "z9hG4bKid1" and m.from_.tag == "id2" and m.call_id == "id3"
    assert m.max_forwards == 70 and m.contacts[0].uri.port == 5060


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        # RFC 3261 §19.1.4 examples
        ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp", True),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5", True),
        ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;newparam=5", True),
        (
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
            True,
        ),
        ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP", False),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060", False),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp", False),
        ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting", False),
    ],
)
def test_uri_equivalence_rfc3261_examples(a: str, b: str, same: bool) -> None:
    assert parse_uri(a).equivalent(parse_uri(b)) is same


def test_header_injection_is_refused() -> None:
    from frontoffice.channels.voice.sip import Headers, ProtocolError

    headers = Headers()
    with pytest.raises(ProtocolError):
        headers.add("Subject", "hi\r\nVia: SIP/2.0/UDP evil")
    with pytest.raises(ProtocolError):
        headers.set("X-Bad: y", "z")
    address = NameAddress(parse_uri("sip:a@b"), display_name="Eve\r\nVia: x")
    assert "\r" not in str(address)
