"""OAuth2 access tokens for a mailbox's XOAUTH2 login, fetched from the provider's token endpoint
(RFC 6749) and kept until shortly before they expire.

Two grants, the ones the providers that take XOAUTH2 use for a server without a signed-in user:

- **client credentials** (RFC 6749 §4.4), no refresh token configured: the application's own token
  (Microsoft 365: an app registration with ``IMAP.AccessAsApp``, the scope
  ``https://outlook.office365.com/.default``);
- **refresh** (§6) with the refresh token obtained once when the mailbox's user consented (Gmail and
  Google Workspace; Microsoft 365 with delegated permissions). A refresh token the provider replaces
  in its answer (§6: the client MUST then discard the old one) is used from then on, for the life of
  the process; the configured one is used again after a restart.

The client authenticates with its id and secret in the form (§2.3.1, what Google's and Microsoft's
documentation shows); a client without a secret (a public client, §2.1) sends its id only.

A token is kept until :data:`REFRESH_MARGIN_S` before its ``expires_in`` runs out, counted from
before the request was sent, so never later than the provider counts; one without ``expires_in``
is kept until :meth:`AccessTokens.discard` (the login refused it). The connector discards a token
the server refuses and fetches a new one once (``imap.py``).

A refused or failed request raises :class:`OAuth2Error`, whose message names the endpoint (without
its query) and the provider's error (§5.2: ``error``, ``error_description``), with a hint for the
usual causes, and never a secret: the client secret, the refresh token and access tokens go only
into the request's form and are cut out of anything the provider echoes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from frontoffice.tls import client_context

__all__ = ["REFRESH_MARGIN_S", "TOKEN_REQUEST_TIMEOUT_S", "AccessTokens", "OAuth2Error"]

log = logging.getLogger("frontoffice.email.oauth2")

# A token is fetched anew this long before it expires: a login started just before the end would
# reach the server's check after it (the provider's servers' clocks differ, a login takes time).
# At most half the token's life, for a provider that issues short-lived tokens.
REFRESH_MARGIN_S = 60.0
# How long a token request may take: a bound on a provider that does not answer, not a pace.
TOKEN_REQUEST_TIMEOUT_S = 30.0
# How much of a refusal's text is kept in the error (the provider's JSON is a few hundred bytes).
ERROR_EXCERPT = 300
# What an operator should check after the provider's error codes (RFC 6749 §5.2).
_HINTS = {
    "invalid_client": "check oauth2_client_id and oauth2_client_secret",
    "unauthorized_client": "the application may not use this grant: check its registration",
    "invalid_grant": "the refresh token is wrong, expired or revoked: obtain a new one",
    "invalid_scope": "check oauth2_scope",
}


class OAuth2Error(Exception):
    """The token endpoint refused the request, answered something else than a token, or could not
    be reached. The message says which and why, without any secret."""


class AccessTokens:
    """The access tokens of one mailbox: :meth:`get` one (fetched, or the one kept while valid)."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        *,
        client_secret: str | None = None,
        refresh_token: str | None = None,
        scope: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.scope = scope
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._configured_refresh_token = refresh_token
        self._clock = clock
        self._transport = transport
        self._token: str | None = None
        self._renew_at: float | None = None  # None: no expires_in, kept until discarded

    @property
    def grant(self) -> str:
        """``refresh_token`` (RFC 6749 §6) with a refresh token, else ``client_credentials`` (§4.4)."""
        return "refresh_token" if self._refresh_token is not None else "client_credentials"

    def cached(self) -> str | None:
        """The token kept, while it has more than the margin to live; else None."""
        if self._token is None:
            return None
        if self._renew_at is not None and self._clock() >= self._renew_at:
            return None
        return self._token

    async def get(self) -> str:
        """A valid access token: the one kept, or a new one from the token endpoint."""
        return self.cached() or await self.fetch()

    def discard(self) -> None:
        """Forget the token kept (the server refused it): the next :meth:`get` fetches one."""
        self._token = self._renew_at = None

    async def fetch(self) -> str:
        """A new access token from the token endpoint, kept for the next :meth:`get`; raise
        :class:`OAuth2Error` when the endpoint refuses or cannot be reached."""
        form = {"grant_type": self.grant, "client_id": self.client_id}
        if self._client_secret is not None:
            form["client_secret"] = self._client_secret
        if self._refresh_token is not None:
            form["refresh_token"] = self._refresh_token
        if self.scope:
            form["scope"] = self.scope
        asked_at = self._clock()
        try:
            async with httpx.AsyncClient(
                transport=self._transport,
                timeout=TOKEN_REQUEST_TIMEOUT_S,
                verify=client_context(),
                follow_redirects=False,  # the form carries the secret: sent to the configured URL only
            ) as client:
                reply = await client.post(self.token_url, data=form, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise OAuth2Error(
                f"the OAuth2 token endpoint {self.where} could not be reached: "
                f"{type(exc).__name__}: {self._scrub(str(exc))}"
            ) from None
        answer = _json(reply)
        if reply.status_code != 200:
            raise OAuth2Error(self._refusal(reply.status_code, answer, reply.text))
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise OAuth2Error(f"the OAuth2 token endpoint {self.where} answered without an access_token")
        token_type = answer.get("token_type")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":  # §7.1, case-insensitive
            raise OAuth2Error(
                f"the OAuth2 token endpoint {self.where} issued a token of type {token_type!r}, not Bearer"
            )
        lifetime = _seconds(answer.get("expires_in"))
        new_refresh = answer.get("refresh_token")
        if isinstance(new_refresh, str) and new_refresh and new_refresh != self._refresh_token:
            self._refresh_token = new_refresh  # §6: the old one is to be discarded
            log.info("OAuth2 %s: the provider replaced the refresh token (kept until restart)", self.where)
        self._token = token
        self._renew_at = (
            None if lifetime is None else asked_at + lifetime - min(REFRESH_MARGIN_S, lifetime / 2)
        )
        log.info(
            "OAuth2 %s: access token issued (%s grant, expires in %s s)",
            self.where,
            self.grant,
            "?" if lifetime is None else f"{lifetime:g}",
        )
        return token

    @property
    def where(self) -> str:
        """The endpoint as errors and logs name it: scheme, host and path, no query or user."""
        parts = urlsplit(self.token_url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"

    def _refusal(self, status: int, answer: dict[str, Any], text: str) -> str:
        error = answer.get("error")
        if isinstance(error, str):
            description = answer.get("error_description")
            said = error + (f": {description}" if isinstance(description, str) and description else "")
            hint = _HINTS.get(error)
        else:
            said, hint = text.strip() or "(no body)", None
        said = self._scrub(said)[:ERROR_EXCERPT]
        return f"the OAuth2 token endpoint {self.where} refused the {self.grant} request: HTTP {status} " + (
            f"{said} ({hint})" if hint else said
        )

    def _scrub(self, text: str) -> str:
        """``text`` without any secret of ours in it (a provider that echoes its input)."""
        for secret in (self._client_secret, self._refresh_token, self._configured_refresh_token, self._token):
            if secret:
                text = text.replace(secret, "********")
        return text


def _json(reply: httpx.Response) -> dict[str, Any]:
    try:
        answer = reply.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _seconds(value: object) -> float | None:
    """``expires_in`` (a number; some providers send it as a string); None when absent or odd."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(value)
        except ValueError:
            return None
    else:
        return None
    return seconds if seconds > 0 else None
