"""The peer's new offer in an established session (a re-INVITE): RFC 3264 §6.1, §8 (issue 13, defect 8).

Before, a re-INVITE was answered with our previous SDP whatever it offered: a carrier's hold
(``a=sendonly``) got ``sendrecv`` back and a new media address or port was ignored.
"""

from __future__ import annotations

import pytest

from frontoffice.channels.voice.sip.exceptions import NoCommonCodecError
from frontoffice.channels.voice.sip.sdp import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    NegotiatedMedia,
    SessionDescription,
    answer_offer,
    answer_reoffer,
    apply_answer,
    build_offer,
    parse_sdp,
)


def _offer(
    *,
    address: str = "198.51.100.7",
    port: int = 30000,
    version: int = 1,
    formats: str = "8 0 101",
    direction: str | None = None,
    session_direction: str | None = None,
    extra_stream: str = "",
) -> SessionDescription:
    lines = [
        "v=0",
        f"o=carrier 77 {version} IN IP4 198.51.100.7",
        "s=-",
        f"c=IN IP4 {address}",
        "t=0 0",
        *([f"a={session_direction}"] if session_direction else []),
        f"m=audio {port} RTP/AVP {formats}",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        *([f"a={direction}"] if direction else []),
        *([extra_stream] if extra_stream else []),
    ]
    return parse_sdp("\r\n".join(lines) + "\r\n")


def _established() -> tuple[SessionDescription, NegotiatedMedia]:
    """Our answer to the carrier's first INVITE, and the media it negotiated (PCMA, DTMF)."""
    return answer_offer(
        _offer(), address="192.0.2.1", port=40000, session_id="4242", codecs=(PCMU, PCMA, TELEPHONE_EVENT)
    )


def _direction(sdp: SessionDescription) -> str | None:
    audio = sdp.audio()
    assert audio is not None
    return audio.direction


def test_a_session_refresh_is_answered_with_the_same_sdp_and_changes_nothing() -> None:
    local, current = _established()
    reoffer = answer_reoffer(local, _offer(version=2), current)
    assert reoffer.answer.serialize() == local.serialize()  # RFC 3264 §8: version included
    assert not reoffer.changes_media and reoffer.media == current


def test_a_new_address_and_port_move_the_media_and_keep_our_sdp() -> None:
    local, current = _established()
    reoffer = answer_reoffer(local, _offer(address="198.51.100.99", port=31000, version=2), current)
    assert reoffer.moved and not reoffer.direction_changed
    assert (reoffer.media.remote_address, reoffer.media.remote_port) == ("198.51.100.99", 31000)
    assert reoffer.media.codec.name == "PCMA"
    assert reoffer.answer.serialize() == local.serialize()  # our address did not change


@pytest.mark.parametrize(
    ("offered", "answered", "sending"),
    [("sendonly", "recvonly", False), ("recvonly", "sendonly", True), ("inactive", "inactive", False)],
)
def test_the_peers_hold_is_answered_per_rfc_3264_6_1_with_the_version_incremented(
    offered: str, answered: str, sending: bool
) -> None:
    local, current = _established()
    reoffer = answer_reoffer(local, _offer(direction=offered, version=2), current)
    assert _direction(reoffer.answer) == answered
    assert reoffer.media.direction == answered and reoffer.media.sending is sending
    assert reoffer.direction_changed and not reoffer.moved
    assert reoffer.answer.origin.session_version == local.origin.session_version + 1
    assert reoffer.answer.origin.session_id == local.origin.session_id


def test_a_session_level_sendonly_is_a_hold_too() -> None:
    local, current = _established()
    assert (
        _direction(answer_reoffer(local, _offer(session_direction="sendonly"), current).answer) == "recvonly"
    )


def test_a_zero_connection_address_is_a_legacy_hold_that_keeps_the_peers_address() -> None:
    local, current = _established()
    reoffer = answer_reoffer(local, _offer(address="0.0.0.0"), current)  # RFC 3264 §8.4
    assert _direction(reoffer.answer) == "recvonly" and not reoffer.media.sending
    assert not reoffer.moved and reoffer.media.remote_address == "198.51.100.7"


def test_resuming_after_a_hold_increments_the_version_again() -> None:
    local, current = _established()
    held = answer_reoffer(local, _offer(direction="sendonly"), current)
    resumed = answer_reoffer(held.answer, _offer(direction="sendrecv"), held.media)
    assert _direction(resumed.answer) == "sendrecv" and resumed.direction_changed
    assert resumed.answer.origin.session_version == local.origin.session_version + 2


def test_while_we_hold_the_peer_its_refresh_is_answered_sendonly() -> None:
    local, current = _established()
    reoffer = answer_reoffer(local, _offer(), current, want="sendonly")
    assert _direction(reoffer.answer) == "sendonly"
    # Our hold and theirs together: nobody sends.
    both = answer_reoffer(local, _offer(direction="sendonly"), current, want="sendonly")
    assert _direction(both.answer) == "inactive"


def test_the_codec_in_use_stays_even_when_the_offer_prefers_another() -> None:
    local, current = _established()
    reoffer = answer_reoffer(local, _offer(formats="0 8 101"), current)
    assert reoffer.media.codec.name == "PCMA"
    assert reoffer.answer.serialize() == local.serialize()


def test_an_offer_without_the_codec_in_use_is_not_acceptable() -> None:
    local, current = _established()
    with pytest.raises(NoCommonCodecError) as raised:
        answer_reoffer(local, _offer(formats="0 101"), current)
    assert raised.value.status_code == 488


def test_an_added_video_stream_is_refused_with_port_zero_in_the_offers_order() -> None:
    local, current = _established()
    video = "m=video 30002 RTP/AVP 99\r\na=rtpmap:99 H264/90000"
    reoffer = answer_reoffer(local, _offer(extra_stream=video), current)
    assert [(m.media, m.port) for m in reoffer.answer.media] == [("audio", 40000), ("video", 0)]
    assert reoffer.answer.origin.session_version == local.origin.session_version + 1


def test_after_our_offer_of_several_codecs_a_reoffer_is_answered_with_the_one_the_peer_chose() -> None:
    ours = build_offer(address="192.0.2.1", port=40000, session_id="77", codecs=(PCMU, PCMA, TELEPHONE_EVENT))
    current = apply_answer(ours, _offer(formats="8 101"))  # the carrier answered PCMA
    reoffer = answer_reoffer(ours, _offer(direction="sendonly"), current)
    audio = reoffer.answer.audio()
    assert audio is not None and audio.formats == ["8", "101"] and audio.direction == "recvonly"
    assert reoffer.media.codec.name == "PCMA"
    assert reoffer.answer.origin.session_version == ours.origin.session_version + 1
