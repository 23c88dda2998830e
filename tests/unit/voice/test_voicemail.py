"""The turned-away caller's flows: voicemail until '#', hang-up or the limit; the closed message."""

from __future__ import annotations

from frontoffice.channels.voice.voicemail import leave_voicemail, say_closed

PROMPT = bytes(1600)  # 0.1 s of silence at 8 kHz


class ScriptedCaller:
    """A caller who presses the given keys in turn ("" hangs up, None lets the wait run out)."""

    def __init__(self, *keys: str | None) -> None:
        self.keys = list(keys)
        self.did: list[str] = []

    def play(self, pcm: bytes) -> None:
        self.did.append("play")

    def silence(self) -> None:
        self.did.append("silence")

    def record(self) -> None:
        self.did.append("record")

    async def digit(self, timeout_s: float) -> str | None:
        return self.keys.pop(0) if self.keys else None

    def hang_up(self) -> None:
        self.did.append("hang_up")


async def test_the_hash_key_ends_the_message_and_we_hang_up() -> None:
    caller = ScriptedCaller("5", "#")
    assert await leave_voicemail(caller, b"") == "key"
    assert caller.did == ["record", "silence", "hang_up"]


async def test_a_caller_who_hangs_up_ends_the_message_without_our_bye() -> None:
    caller = ScriptedCaller("")
    assert await leave_voicemail(caller, PROMPT) == "caller"
    assert "hang_up" not in caller.did and caller.did[:2] == ["record", "play"]


async def test_the_message_ends_at_the_limit() -> None:
    caller = ScriptedCaller()
    assert await leave_voicemail(caller, b"", max_s=0) == "limit"
    assert caller.did == ["record", "silence", "hang_up"]


async def test_the_closed_message_is_played_then_the_call_ends() -> None:
    caller = ScriptedCaller(None)
    await say_closed(caller, PROMPT)
    assert caller.did == ["play", "hang_up"]


async def test_a_key_pressed_during_the_closed_message_does_not_cut_it_short() -> None:
    caller = ScriptedCaller("5", None)
    await say_closed(caller, PROMPT)
    assert caller.did == ["play", "hang_up"] and caller.keys == []


async def test_a_caller_who_hangs_up_during_the_closed_message_gets_no_bye() -> None:
    caller = ScriptedCaller("")
    await say_closed(caller, PROMPT)
    assert caller.did == ["play"]
