"""Property tests: serialize/parse round trip and robustness against arbitrary bytes."""

from __future__ import annotations

import contextlib
import string
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frontoffice.channels.voice.sip import (
    Headers,
    Request,
    Response,
    SipParseError,
    StreamParser,
    build_error_response,
    parse_datagram,
)
from frontoffice.channels.voice.sip.headers import NameAddress, Via, parse_name_addr, parse_via_list
from frontoffice.channels.voice.sip.uri import Uri, parse_uri

TORTURE = Path(__file__).parent / "torture"
SEEDS = [p.read_bytes() for p in sorted(TORTURE.glob("*.dat"))]

token = st.text(alphabet=string.ascii_letters + string.digits + "-.!%*_+`'~", min_size=1, max_size=12)
label = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=8)
hostname = st.lists(label, min_size=1, max_size=3).map(".".join)
ipv6 = st.ip_addresses(v=6).map(lambda a: f"[{a}]")
host = st.one_of(hostname, st.ip_addresses(v=4).map(str), ipv6)
port = st.none() | st.integers(min_value=1, max_value=65_535)
any_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), max_size=12
)
uri_params = st.lists(st.tuples(token, st.none() | any_text.filter(bool)), max_size=3).map(tuple)
uri_headers = st.lists(st.tuples(token, any_text), max_size=2).map(tuple)


@st.composite
def sip_uris(draw: st.DrawFn, with_headers: bool = True) -> Uri:
    user = draw(st.none() | any_text.filter(bool))
    return Uri(
        scheme=draw(st.sampled_from(["sip", "sips"])),
        user=user,
        password=draw(st.none() | any_text) if user is not None else None,
        host=draw(host),
        port=draw(port),
        params=draw(uri_params),
        headers=draw(uri_headers) if with_headers else (),
    )


header_params = st.lists(st.tuples(token, st.none() | token), max_size=3).map(tuple)


@st.composite
def addresses(draw: st.DrawFn) -> NameAddress:
    return NameAddress(
        uri=draw(sip_uris()),
        display_name=draw(st.none() | any_text),
        params=draw(header_params),
    )


@st.composite
def vias(draw: st.DrawFn) -> Via:
    params = (("branch", "z9hG4bK" + draw(token)), *draw(header_params))
    return Via(
        transport=draw(st.sampled_from(["UDP", "TCP", "TLS", "WS"])),
        host=draw(host),
        port=draw(port),
        params=params,
    )


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(token)
    headers = Headers()
    for via in draw(st.lists(vias(), min_size=1, max_size=3)):
        headers.add("Via", str(via))
    headers.add("Max-Forwards", str(draw(st.integers(0, 255))))
    headers.add("From", str(draw(addresses())))
    headers.add("To", str(draw(addresses())))
    headers.add("Call-ID", draw(token) + "@" + draw(hostname))
    headers.add("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}")
    for name, value in draw(
        st.lists(st.tuples(st.sampled_from(["X-Extra", "Subject", "User-Agent"]), any_text))
    ):
        headers.add(name, value.strip(" \t"))
    body = draw(st.binary(max_size=64))
    headers.add("Content-Length", str(len(body)))
    return Request(method=method, uri=draw(sip_uris(with_headers=False)), headers=headers, body=body)


@given(sip_uris())
def test_uri_round_trip(uri: Uri) -> None:
    assert parse_uri(str(uri)) == uri


@given(addresses())
def test_name_addr_round_trip(address: NameAddress) -> None:
    assert parse_name_addr(str(address)) == address


@given(vias())
def test_via_round_trip(via: Via) -> None:
    assert parse_via_list(str(via)) == [via]


@given(requests())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_request_serialize_parse_round_trip(request: Request) -> None:
    wire = request.serialize()
    parsed = parse_datagram(wire)
    assert isinstance(parsed, Request)
    assert parsed.serialize() == wire
    assert parsed.method == request.method and parsed.uri == request.uri
    assert parsed.vias == request.vias and parsed.from_ == request.from_ and parsed.to == request.to
    assert parsed.body == request.body


reason_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, blacklist_categories=["Cs", "Cc"]), max_size=20
)


@given(requests(), st.integers(100, 699), reason_text)
def test_response_round_trip(request: Request, status: int, reason: str) -> None:
    response = Response(status=status, reason=reason.strip(" \t"), headers=request.headers.copy())
    wire = response.serialize()
    parsed = parse_datagram(wire)
    assert isinstance(parsed, Response)
    assert parsed.serialize() == wire


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "insert", "delete", "dup"]))
        if op == "flip":
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(
                st.sampled_from(
                    [
                        b"\r\n",
                        b" ",
                        b":",
                        b";",
                        b",",
                        b"<",
                        b">",
                        b'"',
                        b"\\",
                        b"%",
                        b"\x00",
                        b"\r\n ",
                        b"@",
                        b"[",
                        b"]",
                    ]
                )
            )
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 10))]
        else:
            end = min(len(data), pos + draw(st.integers(1, 40)))
            data[pos:pos] = data[pos:end]
    return bytes(data)


def _parse_everything(message: Request | Response) -> None:
    # Accessors of a successfully parsed message must not fail either.
    message.serialize()
    message.vias, message.from_, message.to, message.call_id, message.cseq  # noqa: B018
    message.contacts, message.routes, message.record_routes, message.max_forwards  # noqa: B018


@given(mutated())
@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_torture_messages_raise_only_sip_parse_error(data: bytes) -> None:
    try:
        message = parse_datagram(data)
    except SipParseError as exc:
        # The transport's 400 must be buildable (or refused) without any other exception either. It
        # echoes the request's Via, From, To, Call-ID and CSeq as received (RFC 3261 §8.2.6.2), even
        # the broken one, so it need not parse; but it is one status line and one line per header.
        answer = build_error_response(exc)
        if answer is not None:
            head = answer.serialize().split(b"\r\n\r\n", 1)[0].split(b"\r\n")
            assert head[0].startswith(b"SIP/2.0 %d " % answer.status)
            assert all(b":" in line and b"\r" not in line and b"\n" not in line for line in head[1:])
        return
    assert isinstance(message, Request | Response)
    _parse_everything(message)


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_sip_parse_error(data: bytes) -> None:
    with contextlib.suppress(SipParseError):
        parse_datagram(data)


@given(mutated(), st.lists(st.integers(1, 64), min_size=1, max_size=20))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_stream_parser_in_chunks_raises_only_sip_parse_error(data: bytes, cuts: list[int]) -> None:
    parser = StreamParser()
    pos = 0
    try:
        for cut in cuts:
            parser.feed(data[pos : pos + cut])
            pos += cut
        parser.feed(data[pos:])
    except SipParseError:
        return


@given(st.lists(requests(), min_size=1, max_size=3), st.integers(1, 50))
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
def test_stream_parser_reassembles_messages_split_anywhere(messages: list[Request], chunk: int) -> None:
    wire = b"\r\n\r\n".join(m.serialize() for m in messages)  # keepalives between messages
    parser = StreamParser()
    out = []
    for i in range(0, len(wire), chunk):
        out.extend(parser.feed(wire[i : i + chunk]))
    assert [m.serialize() for m in out] == [m.serialize() for m in messages]
    assert parser.buffered == 0
