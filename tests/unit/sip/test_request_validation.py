"""What a UAS answers before its transaction user sees a request (RFC 3261 §8.2), with the RFC 4475
torture messages as vectors: for each, the answer our server sends (or that it hands the request on)."""

from __future__ import annotations

from pathlib import Path

import pytest

from frontoffice.channels.voice.sip import (
    MalformedRequests,
    Request,
    Response,
    SipParseError,
    parse_datagram,
    validate_request,
)

from .helpers import make_request

TORTURE = Path(__file__).parent / "torture"
ALLOWED = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "REFER")  # what the B2BUA serves
TU = "handed to the transaction user"


def answer(data: bytes, malformed: MalformedRequests | None = None) -> Response | str | None:
    """The server's decision before the TU: a response, ``None`` (dropped) or :data:`TU`."""
    try:
        message = parse_datagram(data)
    except SipParseError as exc:
        return (malformed or MalformedRequests()).answer(exc, "192.0.2.1", 0.0)
    if not isinstance(message, Request):
        return None  # a stray response: nothing matches it
    return validate_request(message, ALLOWED) or TU


# RFC 4475 §3: every torture message and what our server does with it before the TU.
VECTORS: dict[str, int | str | None] = {
    # §3.1.1 valid messages: handed on (the TU answers; see test_voice_conformance for its answers)
    "wsinv": TU,
    "intmeth": 501,  # a valid but unknown method (§8.2.1)
    "esc01": TU,
    "escnull": TU,
    "esc02": 501,  # RE%47IST%45R is not REGISTER: methods are never unescaped
    "lwsdisp": TU,
    "longreq": TU,
    "dblreq": TU,
    "semiuri": TU,
    "transports": TU,
    "mpart01": TU,  # MESSAGE is known but not served: §8.2.1 first, the dispatcher answers 405 + Allow
    "unreason": None,  # a response
    "noreason": None,  # a response
    # §3.1.2 invalid messages: 400 with the reason, when the Via still says where to answer
    "badinv01": 400,
    "clerr": 400,
    "scalar02": 400,
    "scalarlg": None,  # a response
    "quotbal": 400,
    "ltgtruri": 400,
    "lwsruri": 400,
    "lwsstart": 400,
    "trws": 400,
    "escruri": 400,
    "baddate": 400,
    "regbadct": 400,
    "badaspec": 400,
    "baddn": 400,
    "badvers": 505,
    "mismatch01": 400,
    "mismatch02": 400,
    "bigcode": None,  # a response
    # §3.1.3 / §3.1.4 / §3.2 / §3.3: valid syntax, the application decides
    "insuf": 400,
    "unkscm": 416,
    "novelsc": 416,
    "unksm2": TU,  # REGISTER to sip:; the odd scheme is in To and Contact (the registrar's business)
    "badbranch": TU,
    "multi01": 400,
    "mcl01": 400,
    "ncl": 400,
    "inv2543": TU,
    "cparam01": TU,
    "cparam02": TU,
    "regescrt": TU,
    "zeromf": TU,  # a UAS processes Max-Forwards: 0 (RFC 4475 §3.3.? zeromf; only proxies answer 483)
}


def test_every_torture_message_has_an_expected_answer() -> None:
    assert sorted(VECTORS) == sorted(p.stem for p in TORTURE.glob("*.dat"))


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_torture_message_gets_the_answer_rfc_4475_expects(name: str) -> None:
    result = answer((TORTURE / f"{name}.dat").read_bytes())
    expected = VECTORS[name]
    if isinstance(result, Response):
        assert result.status == expected
        assert result.reason  # the reason phrase says what is wrong (400) or the standard text
    else:
        assert result == expected


def test_400_reason_phrase_says_what_is_wrong() -> None:
    result = answer((TORTURE / "insuf.dat").read_bytes())
    assert isinstance(result, Response) and result.reason == "Missing From header"
    # What it had is echoed (§8.2.6.2); what it lacked stays absent.
    assert result.headers.get("CSeq") == "193942 INVITE" and result.headers.get("From") is None


def test_broken_headers_are_echoed_as_received_and_to_gets_a_tag_when_readable() -> None:
    result = answer((TORTURE / "scalar02.dat").read_bytes())
    assert isinstance(result, Response)
    assert result.headers.get("CSeq") == "36893488147419103232 REGISTER"
    assert result.to.tag is not None
    result = answer((TORTURE / "badinv01.dat").read_bytes())
    assert isinstance(result, Response)
    assert result.headers.get_all("Via") == ["SIP/2.0/UDP 192.0.2.15;;,;,,"]


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01garbage\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nFrom: <sip:x@y>;tag=1\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n",  # no Via
        b"INVITE sip:a@b SIP/2.0\r\nVia: nonsense\r\nCSeq: 1 INVITE\r\nCSeq: 2 INVITE\r\n\r\n",
        # an ACK is never answered
        b"ACK sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nCSeq: 1 INVITE\r\n\r\n",
    ],
)
def test_requests_too_broken_to_answer_are_dropped_and_counted(data: bytes) -> None:
    malformed = MalformedRequests()
    assert answer(data, malformed) is None
    assert malformed.counts.unanswerable == 1 and malformed.counts.answered == 0


def test_answers_to_malformed_requests_are_limited_per_source() -> None:
    malformed = MalformedRequests(rate=1.0, burst=3)
    error = _error("mismatch01")
    sent = [malformed.answer(error, "198.51.100.7", 0.0) is not None for _ in range(10)]
    assert sent == [True] * 3 + [False] * 7
    assert malformed.answer(error, "198.51.100.8", 0.0) is not None  # another source has its own budget
    assert malformed.answer(error, "198.51.100.7", 1.0) is not None  # one more per second
    assert malformed.counts.rate_limited == 7 and malformed.counts.answered == 5


def test_the_per_source_budgets_are_bounded() -> None:
    malformed = MalformedRequests(rate=0.0, burst=1, max_sources=2)
    error = _error("mismatch01")
    for host in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        assert malformed.answer(error, host, 0.0) is not None
    # 192.0.2.1 was forgotten (least recently seen): it starts afresh.
    assert malformed.answer(error, "192.0.2.1", 0.0) is not None
    assert malformed.answer(error, "192.0.2.3", 0.0) is None


def _error(name: str) -> SipParseError:
    with pytest.raises(SipParseError) as info:
        parse_datagram((TORTURE / f"{name}.dat").read_bytes())
    return info.value


# ---------------------------------------------------------------- §8.2.1 - §8.2.3 on requests that parse
def _request(method: str = "OPTIONS", **headers: str) -> Request:
    request = make_request(method)
    for name, value in headers.items():
        request.headers.set(name.replace("_", "-"), value)
    return request


def test_unknown_option_tag_in_require_gets_420_listing_it() -> None:
    response = validate_request(_request("INVITE", Require="100rel, foo"))
    assert response is not None and response.status == 420
    assert response.headers.get("Unsupported") == "100rel, foo"


@pytest.mark.parametrize("method", ["CANCEL", "ACK"])
def test_require_is_not_checked_on_cancel_or_ack(method: str) -> None:
    assert validate_request(_request(method, Require="foo")) is None


def test_unknown_method_gets_501_and_a_known_one_is_left_for_405() -> None:
    response = validate_request(_request("FROBNICATE"))
    assert response is not None and response.status == 501
    assert validate_request(_request("SUBSCRIBE"), ALLOWED) is None  # known: the dispatcher's 405 + Allow


def test_the_method_is_checked_before_require_and_body() -> None:
    response = validate_request(_request("FROBNICATE", Require="foo"))
    assert response is not None and response.status == 501
    # Known but not allowed: handed on untouched, whatever it requires (the 405 comes first).
    assert validate_request(_request("MESSAGE", Require="foo"), ALLOWED) is None


def test_multipart_body_of_an_allowed_method_gets_415() -> None:
    message = parse_datagram((TORTURE / "mpart01.dat").read_bytes())
    assert isinstance(message, Request)
    response = validate_request(message)  # as if MESSAGE were served
    assert response is not None and response.status == 415


def test_unsupported_request_uri_scheme_gets_416() -> None:
    data = (TORTURE / "unkscm.dat").read_bytes()
    message = parse_datagram(data)
    assert isinstance(message, Request)
    response = validate_request(message)
    assert response is not None and response.status == 416 and response.to.tag is not None


def test_unsupported_body_type_gets_415_with_accept() -> None:
    request = make_request("INVITE", body=b"\x01\x02isup")
    request.headers.set("Content-Type", "application/isup;version=itu-t92+")
    response = validate_request(request)
    assert response is not None and response.status == 415
    assert response.headers.get("Accept") == "application/sdp"


def test_an_optional_body_of_unknown_type_is_ignored() -> None:
    request = make_request("INVITE", body=b"<xml/>")
    request.headers.set("Content-Type", "application/xml")
    request.headers.set("Content-Disposition", "render;handling=optional")
    assert validate_request(request) is None


def test_an_sdp_body_is_accepted_whatever_the_case_and_parameters() -> None:
    request = make_request("INVITE", body=b"v=0\r\n")
    request.headers.set("Content-Type", "Application/SDP; charset=utf-8")
    assert validate_request(request) is None


def test_an_unknown_content_encoding_gets_415_with_accept_encoding() -> None:
    request = make_request("INVITE", body=b"v=0\r\n")
    request.headers.set("Content-Encoding", "gzip")
    response = validate_request(request)
    assert response is not None and response.status == 415
    assert response.headers.get("Accept-Encoding") == "identity"
