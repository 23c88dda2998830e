"""The chat's sans-IO protocol: frames, limits, the rate limit and visitor tokens."""

from __future__ import annotations

import json

import pytest

from frontoffice.channels.chat.protocol import (
    MAX_CHAT_MESSAGE_CHARS,
    MAX_FRAME_BYTES,
    ChatProtocolError,
    Hello,
    RateLimit,
    Send,
    VisitorToken,
    VisitorTokens,
    parse_frame,
)


def frame(**data: object) -> str:
    return json.dumps(data)


def test_a_message_frame_becomes_a_send_command_with_its_prechat_fields() -> None:
    command = parse_frame(frame(t="msg", cid="abc_1", text="Hi", prechat={"name": " Ivan ", "x": "y"}))
    assert command == Send("abc_1", "Hi", (), {"name": "Ivan"})
    assert parse_frame(frame(t="hello", last_seen=7)) == Hello(None, 7, "", "", "")


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (frame(t="msg", text="no id"), "bad-cid"),
        (frame(t="msg", cid="bad id!", text="x"), "bad-cid"),
        (frame(t="msg", cid="c1", text="x" * (MAX_CHAT_MESSAGE_CHARS + 1)), "message-too-long"),
        (frame(t="msg", cid="c1", text="  "), "empty-message"),
        (frame(t="msg", cid="c1", text="x", files=["a"] * 6), "too-many-files"),
        (frame(t="rate", score=6), "bad-rating"),
        (frame(t="hello", last_seen=-1), "bad-frame"),
        (frame(t="nope"), "unknown-frame"),
        ("[1, 2]", "bad-frame"),
        ("{not json", "bad-frame"),
        ("x" * (MAX_FRAME_BYTES + 1), "frame-too-large"),
    ],
)
def test_frames_outside_the_protocol_are_refused_with_their_error_id(raw: str, code: str) -> None:
    with pytest.raises(ChatProtocolError) as refused:
        parse_frame(raw)
    assert refused.value.code == code


def test_the_rate_limit_lets_a_burst_through_then_one_per_refill() -> None:
    limit = RateLimit(per_minute=60, burst=3)
    assert [limit.allow(100.0) for _ in range(4)] == [True, True, True, False]
    assert not limit.allow(100.5)
    assert limit.allow(101.0)  # one a second refilled


def test_visitor_tokens_are_signed_and_expire() -> None:
    tokens = VisitorTokens("secret-one")
    visitor = VisitorToken(VisitorTokens.new_visitor_id(), 4)
    assert tokens.read(tokens.issue(visitor)) == visitor
    with pytest.raises(ChatProtocolError) as forged:
        VisitorTokens("another-secret").read(tokens.issue(visitor))
    assert forged.value.code == "bad-token"
    with pytest.raises(ChatProtocolError) as expired:
        VisitorTokens("secret-one", max_age_s=-1).read(tokens.issue(visitor))
    assert expired.value.code == "token-expired"
