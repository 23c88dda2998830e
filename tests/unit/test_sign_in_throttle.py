"""The sign-in throttle's back-off per (username, address) pair, on a clock the test moves, and the
client's address behind trusted reverse proxies."""

from __future__ import annotations

import pytest

from frontoffice.config import ConfigError, load_settings
from frontoffice.domain.exceptions import Throttled
from frontoffice.services.auth import LOGIN_BACKOFF_BASE_S, LoginThrottle
from frontoffice.web.client_address import client_address, parse_networks


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _wait(throttle: LoginThrottle, username: str, ip: str) -> int | None:
    try:
        throttle.check(username, ip)
    except Throttled as exc:
        return exc.retry_after_s
    return None


def test_the_wait_doubles_with_each_failure_after_the_free_ones_up_to_the_window() -> None:
    clock = Clock()
    throttle = LoginThrottle(max_failures=3, window_s=60, monotonic=clock)
    for _ in range(2):
        throttle.failed("Ivan", "10.0.0.1")
        assert _wait(throttle, "ivan", "10.0.0.1") is None
    waits = []
    for _ in range(8):
        throttle.failed("ivan", "10.0.0.1")
        wait = _wait(throttle, "IVAN", "10.0.0.1")
        assert wait is not None
        waits.append(wait)
        clock.now += wait  # the client waits as told, then fails again
        assert _wait(throttle, "ivan", "10.0.0.1") is None
    assert waits == [int(LOGIN_BACKOFF_BASE_S * 2**i) for i in range(6)] + [60, 60]


def test_other_pairs_are_never_held_up_and_a_success_forgets_the_pair() -> None:
    clock = Clock()
    throttle = LoginThrottle(max_failures=2, window_s=60, monotonic=clock)
    for _ in range(5):
        throttle.failed("ivan", "10.0.0.1")
    assert _wait(throttle, "ivan", "10.0.0.1") is not None
    assert _wait(throttle, "ivan", "10.0.0.2") is None
    assert _wait(throttle, "olga", "10.0.0.1") is None
    throttle.succeeded("ivan", "10.0.0.1")
    assert _wait(throttle, "ivan", "10.0.0.1") is None


def test_failures_further_apart_than_the_window_start_over() -> None:
    clock = Clock()
    throttle = LoginThrottle(max_failures=2, window_s=60, monotonic=clock)
    throttle.failed("ivan", "10.0.0.1")
    clock.now += 61
    throttle.failed("ivan", "10.0.0.1")
    assert _wait(throttle, "ivan", "10.0.0.1") is None


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("10.0.0.5", ["198.51.100.7"], "198.51.100.7"),  # from the trusted proxy
        ("198.51.100.9", ["198.51.100.7"], "198.51.100.9"),  # not a proxy: the header is ignored
        ("10.0.0.5", ["1.2.3.4, 198.51.100.7"], "198.51.100.7"),  # the client's own entry ignored
        ("10.0.0.5", ["198.51.100.7, 10.0.0.6"], "198.51.100.7"),  # two proxies in a row
        ("10.0.0.5", ["198.51.100.7", "10.0.0.6"], "198.51.100.7"),  # one header per proxy
        ("10.0.0.5", [], "10.0.0.5"),  # no header: the proxy itself
        ("10.0.0.5", ["not-an-address, 10.0.0.6"], "not-an-address"),
        ("::ffff:10.0.0.5", ["2001:db8::1"], "2001:db8::1"),
    ],
)
def test_the_client_address_is_the_rightmost_one_no_trusted_proxy_wrote(
    peer: str, forwarded: list[str], expected: str
) -> None:
    networks = parse_networks(("10.0.0.0/24",))
    assert client_address(peer, forwarded, networks) == expected


def test_a_trusted_proxy_that_is_not_a_network_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="trusted_proxies"):
        load_settings(trusted_proxies=["10.0.0.0/33"])
