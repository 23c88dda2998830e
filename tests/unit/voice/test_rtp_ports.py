"""The RTP port range (settings ``rtp_port_min`` / ``rtp_port_max``): a firewall in front of the
server lets only that range through, so every call's RTP must bind there."""

from __future__ import annotations

import socket

import pytest
from pydantic import ValidationError

from frontoffice.channels.voice.media import MediaPortsExhausted, PythonMediaBackend, RtpPorts
from frontoffice.channels.voice.media_process import ProcessMediaBackend
from frontoffice.config import Settings
from tests.conftest import free_block


async def test_sessions_take_even_ports_of_the_range_skip_ports_in_use_and_refuse_when_it_is_full() -> None:
    first = free_block(8)  # even ports first, +2, +4, +6: two sessions
    backend = PythonMediaBackend("127.0.0.1", music=b"\x00\x00" * 160, rtp_ports=RtpPorts(first, first + 7))
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", first + 2))  # another program holds one of them
    try:
        one = await backend.open_session(lambda digit: None)
        assert (one.caller_port, one.agent_port) == (first, first + 4)
        # Three even ports were free: the second session gets one leg, not two, and gives it back.
        with pytest.raises(MediaPortsExhausted):
            await backend.open_session(lambda digit: None)
        squatter.close()
        two = await backend.open_session(lambda digit: None)
        assert {two.caller_port, two.agent_port} == {first + 2, first + 6}
        await one.close()
        three = await backend.open_session(lambda digit: None)
        assert {three.caller_port, three.agent_port} == {first, first + 4}  # freed by the call that ended
        await two.close()
        await three.close()
    finally:
        squatter.close()
        await backend.close()


async def test_without_a_range_any_free_port_is_used() -> None:
    backend = PythonMediaBackend("127.0.0.1", music=b"\x00\x00" * 160)
    session = await backend.open_session(lambda digit: None)
    assert session.caller_port and session.agent_port and session.caller_port != session.agent_port
    await session.close()
    await backend.close()


async def test_the_media_process_binds_in_the_range_and_says_when_it_is_full() -> None:
    first = free_block(4)
    backend = ProcessMediaBackend("127.0.0.1", music=b"\x00\x00" * 160, rtp_ports=RtpPorts(first, first + 3))
    try:
        session = await backend.open_session(lambda digit: None)
        assert (session.caller_port, session.agent_port) == (first, first + 2)
        with pytest.raises(MediaPortsExhausted):  # at once, not after the reply's time-out
            await backend.open_session(lambda digit: None)
        await session.close()
        again = await backend.open_session(lambda digit: None)
        assert {again.caller_port, again.agent_port} == {first, first + 2}
        await again.close()
    finally:
        await backend.close()


@pytest.mark.parametrize(
    ("low", "high"),
    [(20000, 0), (0, 20000), (80, 20000), (20000, 20002), (30000, 20000), (20001, 20004)],
)
def test_a_range_set_by_half_too_low_or_too_small_for_one_call_is_refused(low: int, high: int) -> None:
    with pytest.raises(ValidationError, match="rtp_port"):
        Settings(rtp_port_min=low, rtp_port_max=high)


def test_a_range_of_one_call_or_more_is_accepted() -> None:
    settings = Settings(rtp_port_min=20000, rtp_port_max=20003)
    assert RtpPorts(settings.rtp_port_min, settings.rtp_port_max).spec == "20000-20003"
