"""SDP parsing/serialization and RFC 3264 offer/answer for PCMU, PCMA and telephone-event."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontoffice.channels.voice.sip.exceptions import NoCommonCodecError, SdpError
from frontoffice.channels.voice.sip.sdp import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Codec,
    answer_offer,
    apply_answer,
    build_offer,
    media_endpoint,
    parse_sdp,
    with_direction,
)

# RFC 4566 §5 example, trimmed to one audio and one video stream.
RFC4566_EXAMPLE = (
    b"v=0\r\n"
    b"o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\r\n"
    b"s=SDP Seminar\r\n"
    b"i=A Seminar on the session description protocol\r\n"
    b"u=http://www.example.com/seminars/sdp.pdf\r\n"
    b"e=j.doe@example.com (Jane Doe)\r\n"
    b"c=IN IP4 224.2.17.12/127\r\n"
    b"t=2873397496 2873404696\r\n"
    b"a=recvonly\r\n"
    b"m=audio 49170 RTP/AVP 0\r\n"
    b"m=video 51372 RTP/AVP 99\r\n"
    b"a=rtpmap:99 h263-1998/90000\r\n"
)

CARRIER_OFFER = (
    b"v=0\r\n"
    b"o=carrier 123 456 IN IP4 203.0.113.5\r\n"
    b"s=-\r\n"
    b"c=IN IP4 203.0.113.5\r\n"
    b"t=0 0\r\n"
    b"m=audio 30000 RTP/AVP 18 8 0 96\r\n"
    b"a=rtpmap:18 G729/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:96 telephone-event/8000\r\n"
    b"a=fmtp:96 0-15\r\n"
    b"a=ptime:20\r\n"
)


def test_parse_rfc4566_example_and_round_trip() -> None:
    sdp = parse_sdp(RFC4566_EXAMPLE)
    assert sdp.origin.username == "jdoe" and sdp.origin.session_version == 2890842807
    assert sdp.session_name == "SDP Seminar"
    assert sdp.connection is not None and sdp.connection.address == "224.2.17.12/127"
    assert sdp.attribute("recvonly") == ""
    assert [m.media for m in sdp.media] == ["audio", "video"]
    assert sdp.media[1].codecs() == [Codec(99, "h263-1998", 90000)]
    assert sdp.serialize() == RFC4566_EXAMPLE
    assert media_endpoint(sdp) == ("224.2.17.12", 49170)


def test_lf_only_sdp_is_accepted() -> None:
    sdp = parse_sdp(CARRIER_OFFER.replace(b"\r\n", b"\n"))
    assert sdp.audio() is not None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"v=1\r\n",
        b"v=0\r\ns=-\r\n",
        b"v=0\r\no=a b c IN IP4 1.2.3.4\r\n",
        b"v=0\r\nnot a line\r\n",
        b"v=0\r\no=a 1 2 IN IP4 h\r\nm=audio 70000 RTP/AVP 0\r\nc=IN IP4 h\r\n",
        b"\xff\xfe",
    ],
)
def test_malformed_sdp_raises_sdp_error(body: bytes) -> None:
    with pytest.raises(SdpError):
        parse_sdp(body)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_sdp_error(data: bytes) -> None:
    with contextlib.suppress(SdpError):
        parse_sdp(b"v=0\r\n" + data)


def test_answer_picks_first_common_codec_in_offerer_order_and_keeps_dtmf_pt() -> None:
    offer = parse_sdp(CARRIER_OFFER)
    answer, media = answer_offer(offer, address="192.0.2.1", port=40000, session_id="77")
    assert media.codec == PCMA  # G729 unsupported, PCMA before PCMU in the offer
    assert media.telephone_event == Codec(96, "telephone-event", 8000, fmtp="0-15")
    assert (media.remote_address, media.remote_port) == ("203.0.113.5", 30000)
    assert media.direction == "sendrecv" and media.ptime == 20
    audio = answer.audio()
    assert audio is not None and audio.formats == ["8", "96"]
    assert audio.attribute("rtpmap") == "8 PCMA/8000"
    assert ("fmtp", "96 0-15") in audio.attributes
    reparsed = parse_sdp(answer.serialize())
    assert media_endpoint(reparsed) == ("192.0.2.1", 40000)


def test_offerer_applies_answer() -> None:
    offer = build_offer(address="192.0.2.1", port=40000, session_id="1")
    answer_sdp, _ = answer_offer(
        parse_sdp(offer.serialize()),
        address="198.51.100.2",
        port=50000,
        session_id="2",
        codecs=[PCMA, TELEPHONE_EVENT],
    )
    media = apply_answer(offer, parse_sdp(answer_sdp.serialize()))
    assert media.codec == PCMA
    assert media.telephone_event is not None and media.telephone_event.payload_type == 101
    assert (media.remote_address, media.remote_port) == ("198.51.100.2", 50000)


def test_no_common_codec_raises_488() -> None:
    offer = parse_sdp(CARRIER_OFFER.replace(b" 18 8 0 96", b" 18").replace(b"a=rtpmap:8", b"a=x:8"))
    with pytest.raises(NoCommonCodecError) as info:
        answer_offer(offer, address="192.0.2.1", port=40000, session_id="1")
    assert info.value.status_code == 488


def test_dynamic_payload_type_matched_by_name() -> None:
    offer = parse_sdp(
        CARRIER_OFFER.replace(b"m=audio 30000 RTP/AVP 18 8 0 96", b"m=audio 30000 RTP/AVP 97 96")
        + b"a=rtpmap:97 pcmu/8000\r\n"
    )
    _, media = answer_offer(offer, address="192.0.2.1", port=4000, session_id="1")
    assert media.codec == Codec(97, "pcmu")


def test_non_audio_streams_are_rejected_with_port_zero() -> None:
    offer = parse_sdp(RFC4566_EXAMPLE.replace(b"a=recvonly\r\n", b""))
    answer, _ = answer_offer(offer, address="192.0.2.1", port=4000, session_id="1")
    assert [(m.media, m.port) for m in answer.media] == [("audio", 4000), ("video", 0)]


@pytest.mark.parametrize(
    ("offer_direction", "ours", "expected"),
    [
        ("sendonly", "sendrecv", "recvonly"),  # the carrier holds us
        ("recvonly", "sendrecv", "sendonly"),
        ("inactive", "sendrecv", "inactive"),
        ("sendrecv", "sendonly", "sendonly"),  # we hold the caller and play music
        ("sendonly", "sendonly", "inactive"),
    ],
)
def test_answer_direction(offer_direction: str, ours: str, expected: str) -> None:
    offer = parse_sdp(CARRIER_OFFER + f"a={offer_direction}\r\n".encode())
    answer, media = answer_offer(offer, address="192.0.2.1", port=4000, session_id="1", direction=ours)
    assert media.direction == expected
    audio = answer.audio()
    assert audio is not None and audio.direction == expected


def test_legacy_hold_with_zero_address() -> None:
    offer = parse_sdp(CARRIER_OFFER.replace(b"c=IN IP4 203.0.113.5", b"c=IN IP4 0.0.0.0"))
    assert media_endpoint(offer) is None
    _, media = answer_offer(offer, address="192.0.2.1", port=4000, session_id="1")
    assert media.direction == "recvonly" and not media.sending


def test_hold_and_resume_bump_version() -> None:
    offer = build_offer(address="192.0.2.1", port=4000, session_id="9", session_version=3)
    held = with_direction(offer, "sendonly")
    assert held.origin.session_version == 4
    audio = held.audio()
    assert audio is not None and audio.direction == "sendonly"
    resumed = with_direction(held, "sendrecv")
    assert resumed.origin.session_version == 5
    assert resumed.audio() is not None and resumed.audio().direction == "sendrecv"  # type: ignore[union-attr]
    assert offer.audio().direction == "sendrecv"  # type: ignore[union-attr]  # original untouched


def test_offer_lists_pcmu_pcma_and_telephone_event() -> None:
    offer = build_offer(address="2001:db8::1", port=4000, session_id="5")
    text = offer.serialize().decode()
    assert "c=IN IP6 2001:db8::1\r\n" in text
    assert "m=audio 4000 RTP/AVP 0 8 101\r\n" in text
    assert "a=fmtp:101 0-16\r\n" in text
    assert parse_sdp(text).audio().codecs() == [PCMU, PCMA, TELEPHONE_EVENT]  # type: ignore[union-attr]
