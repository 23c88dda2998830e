"""Sign-in throttling that nobody can turn against others (issue 19, hole 5): failures are counted
per (username, client address) pair with a growing wait, never as a lock of an address or of a user;
behind a reverse proxy the client's address comes from ``X-Forwarded-For``, believed only from the
proxies named in ``trusted_proxies``."""

from __future__ import annotations

import httpx
import pytest

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role

from ..conftest import TEST_PASSWORD, make_user

API = "/api/v1"
# The test client's own address (conftest's ASGITransport): here, the reverse proxy's.
PROXY = "203.0.113.5"


async def _login(
    client: httpx.AsyncClient, username: str, password: str = TEST_PASSWORD, *, via: str | None = None
) -> httpx.Response:
    headers = {"X-Forwarded-For": via} if via else {}
    body = {"username": username, "password": password}
    r = await client.post(f"{API}/auth/login", json=body, headers=headers)
    client.cookies.clear()
    return r


async def _sign_in_addresses(client: httpx.AsyncClient, admin: dict[str, str]) -> list[str | None]:
    r = await client.get(f"{API}/audit", params={"action": "user.sign_in"}, headers=admin)
    assert r.status_code == 200, r.text
    return [e["ip"] for e in r.json()["items"]]


async def test_failures_from_one_address_do_not_lock_out_the_other_users_of_that_address(
    client: httpx.AsyncClient, container: Container
) -> None:
    await make_user(container, "victim", Role.AGENT)
    await make_user(container, "colleague", Role.AGENT)
    max_failures = container.settings.login_max_failures
    for _ in range(max_failures + 2):
        assert (await _login(client, "someone", "guess")).status_code in (401, 429)
    assert (await _login(client, "victim")).status_code == 200
    # Even the victim's own mistyping holds up only the victim at this address.
    for _ in range(max_failures):
        assert (await _login(client, "victim", "typo")).status_code == 401
    r = await _login(client, "victim")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert (await _login(client, "colleague")).status_code == 200


@pytest.mark.parametrize(
    "settings_overrides", [{"trusted_proxies": [f"{PROXY}/32"], "login_max_failures": 3}]
)
async def test_behind_a_trusted_proxy_each_client_is_throttled_on_its_own_forwarded_address(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    await make_user(container, "victim", Role.AGENT)
    for _ in range(3):
        assert (await _login(client, "victim", "guess", via="198.51.100.66")).status_code == 401
    assert (await _login(client, "victim", via="198.51.100.66")).status_code == 429
    # The victim at their own desk (another client of the same proxy) signs in.
    assert (await _login(client, "victim", via="198.51.100.7")).status_code == 200
    # The address is the rightmost one the proxy did not write itself: a client that sends its own
    # X-Forwarded-For cannot pick the address it is counted under.
    assert (await _login(client, "victim", via="198.51.100.66, 198.51.100.8")).status_code == 200
    assert await _sign_in_addresses(client, admin_headers) == ["198.51.100.8", "198.51.100.7"]


async def test_without_trusted_proxies_a_forwarded_address_is_not_believed(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    await make_user(container, "victim", Role.AGENT)
    for _ in range(container.settings.login_max_failures):
        await _login(client, "victim", "guess", via="198.51.100.66")
    # Spoofing another address does not escape the pair's wait.
    r = await _login(client, "victim", via="198.51.100.99")
    assert r.status_code == 429 and r.json()["error_id"] == "too-many-attempts"
    assert await _sign_in_addresses(client, admin_headers) == []


@pytest.mark.parametrize("settings_overrides", [{"trusted_proxies": [f"{PROXY}/32"]}])
async def test_the_audit_log_records_the_forwarded_client_address(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    await make_user(container, "operator", Role.AGENT)
    assert (await _login(client, "operator", via="198.51.100.7")).status_code == 200
    assert await _sign_in_addresses(client, admin_headers) == ["198.51.100.7"]
