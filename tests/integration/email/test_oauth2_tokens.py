"""The OAuth2 access tokens of an XOAUTH2 mailbox (``channels/email/oauth2.py``) against a token
endpoint on loopback (RFC 6749: client credentials and refresh; the fixture's provider), with a
clock the test moves: a token is kept until shortly before its ``expires_in`` runs out, a refresh
token the provider replaces is used from then on, and a refusal names the endpoint and the
provider's error but never a secret."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from frontoffice.channels.email.oauth2 import REFRESH_MARGIN_S, AccessTokens, OAuth2Error

from .dovecot import OAuth2Client, OAuth2Provider, provider_server

SCOPE = "https://outlook.office365.com/.default"
SECRET = "client-secret-0123456789"
REFRESH = "1//refresh-token-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def provider() -> Iterator[OAuth2Provider]:
    p = OAuth2Provider()
    p.clients["app"] = OAuth2Client(secret=SECRET, user="support@acme.example", scope=SCOPE)
    p.refresh_tokens[REFRESH] = "app"
    with provider_server(p):
        yield p


async def test_a_token_is_kept_until_shortly_before_it_expires(provider: OAuth2Provider) -> None:
    clock = Clock()
    tokens = AccessTokens(provider.token_url, "app", client_secret=SECRET, scope=SCOPE, clock=clock)
    first = await tokens.get()
    assert provider.token_requests == [
        {"grant_type": "client_credentials", "client_id": "app", "client_secret": SECRET, "scope": SCOPE}
    ]
    clock.now += provider.lifetime_s - REFRESH_MARGIN_S - 1
    assert await tokens.get() == first and len(provider.token_requests) == 1
    clock.now += 1
    assert tokens.cached() is None
    second = await tokens.get()
    assert second != first and len(provider.token_requests) == 2
    # A token the server refused is forgotten, however long it had to live.
    tokens.discard()
    assert tokens.cached() is None
    assert await tokens.get() not in (first, second)


async def test_a_short_lived_token_is_renewed_at_half_its_life(provider: OAuth2Provider) -> None:
    provider.lifetime_s = 10
    clock = Clock()
    tokens = AccessTokens(provider.token_url, "app", client_secret=SECRET, scope=SCOPE, clock=clock)
    first = await tokens.get()
    clock.now += 4.9
    assert tokens.cached() == first
    clock.now += 0.1
    assert tokens.cached() is None


async def test_a_refresh_token_the_provider_replaces_is_used_from_then_on(provider: OAuth2Provider) -> None:
    provider.rotate_refresh_tokens = True
    tokens = AccessTokens(provider.token_url, "app", client_secret=SECRET, refresh_token=REFRESH)
    assert tokens.grant == "refresh_token"
    await tokens.fetch()
    await tokens.fetch()
    (now_valid,) = provider.refresh_tokens
    first, second = provider.token_requests
    # The second refresh used the refresh token the first one issued.
    assert first["refresh_token"] == REFRESH and second["refresh_token"] not in (REFRESH, now_valid)
    assert second["grant_type"] == "refresh_token" and "scope" not in second


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        (
            {"client_secret": "a-wrong-secret-4567", "scope": SCOPE},
            "HTTP 401 invalid_client: Client authentication failed. "
            "(check oauth2_client_id and oauth2_client_secret)",
        ),
        (
            {"client_secret": SECRET, "refresh_token": "a-revoked-refresh-token-89"},
            "HTTP 400 invalid_grant: Bad refresh token. (the refresh token is wrong, expired or revoked",
        ),
        ({"client_secret": SECRET, "scope": "mail"}, "HTTP 400 invalid_scope: Ask for"),
    ],
)
async def test_a_refusal_names_the_endpoint_and_the_error_never_a_secret(
    provider: OAuth2Provider, settings: dict[str, str], said: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = AccessTokens(provider.token_url, "app", **settings)
    with pytest.raises(OAuth2Error) as refused:
        await tokens.get()
    message = str(refused.value)
    assert f"the OAuth2 token endpoint {provider.token_url} refused the {tokens.grant} request" in message
    assert said in message
    for secret in (SECRET, REFRESH, "a-wrong-secret-4567", "a-revoked-refresh-token-89"):
        assert secret not in message and secret not in caplog.text
    assert tokens.cached() is None


async def test_an_answer_without_a_token_or_no_answer_is_said(provider: OAuth2Provider) -> None:
    # The provider's introspection endpoint instead of its token endpoint: JSON, but no token. The
    # query is not repeated (a URL's query may carry what an operator would not show).
    url = provider.url + "?tenant=contoso"
    tokens = AccessTokens(url, "app", client_secret=SECRET)
    with pytest.raises(OAuth2Error, match=f"endpoint {provider.url} answered without an access_token$"):
        await tokens.get()
    closed = AccessTokens("http://127.0.0.1:1/token", "app", client_secret=SECRET)
    with pytest.raises(OAuth2Error, match=r"token endpoint http://127.0.0.1:1/token could not be reached"):
        await closed.get()
