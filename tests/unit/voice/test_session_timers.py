"""RFC 4028 §10 session timers of the callers' dialogs (session_timers.py): refresh at half the
interval when we refresh, expiry at the interval minus min(32 s, interval/3) when the peer does; plain
numbers for the clock, no sockets, no sleeps."""

from __future__ import annotations

from frontoffice.channels.voice.call_state import CallEvent
from frontoffice.channels.voice.session_timers import SessionTimers
from frontoffice.channels.voice.sip import SessionTimer


def test_we_refresh_at_half_the_interval_once_and_expire_if_no_refresh_succeeded() -> None:
    timers = SessionTimers()
    timers.arm("a", SessionTimer(interval=1800, we_refresh=True, last_refresh=100.0))
    assert timers.next_timer() == 100.0 + 900
    assert timers.handle_timer(999.0) == []
    assert timers.handle_timer(1000.0) == [("a", CallEvent.SESSION_REFRESH_DUE)]
    # Sent once per interval; the expiry (1800 - 32 s) still stands until a refresh succeeds.
    assert timers.next_timer() == 100.0 + 1800 - 32
    assert timers.handle_timer(1800.0) == []
    assert timers.handle_timer(100.0 + 1768) == [("a", CallEvent.SESSION_EXPIRED)]
    assert timers.timer("a") is None and timers.next_timer() is None


def test_a_successful_refresh_starts_the_interval_again() -> None:
    timers = SessionTimers()
    timers.arm("a", SessionTimer(interval=90, we_refresh=True, last_refresh=0.0))
    assert timers.handle_timer(45.0) == [("a", CallEvent.SESSION_REFRESH_DUE)]
    timers.arm("a", SessionTimer(interval=90, we_refresh=True, last_refresh=46.0))
    assert timers.next_timer() == 91.0
    assert timers.handle_timer(90.0) == []  # the old interval's expiry (60 s) is gone


def test_when_the_peer_refreshes_we_expire_at_the_interval_minus_a_third_or_32_seconds() -> None:
    timers = SessionTimers()
    timers.arm("short", SessionTimer(interval=90, we_refresh=False, last_refresh=0.0))
    timers.arm("long", SessionTimer(interval=1800, we_refresh=False, last_refresh=0.0))
    assert timers.handle_timer(59.9) == []
    assert timers.handle_timer(60.0) == [("short", CallEvent.SESSION_EXPIRED)]  # 90 - 90/3
    timers.arm("long", SessionTimer(interval=1800, we_refresh=False, last_refresh=1000.0))  # refreshed
    assert timers.handle_timer(1768.0) == []
    assert timers.handle_timer(2768.0) == [("long", CallEvent.SESSION_EXPIRED)]  # 1800 - 32


def test_a_disarmed_call_gets_no_event() -> None:
    timers = SessionTimers()
    timers.arm("a", SessionTimer(interval=90, we_refresh=False, last_refresh=0.0))
    timers.disarm("a")
    assert timers.next_timer() is None and timers.handle_timer(1000.0) == []
    timers.arm("b", SessionTimer(interval=90, we_refresh=False, last_refresh=0.0))
    timers.arm("b", None)  # a re-INVITE without Session-Expires: no timer any more (RFC 4028 §9)
    assert timers.handle_timer(1000.0) == []
