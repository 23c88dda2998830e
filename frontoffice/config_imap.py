"""The ``imap_mailboxes`` setting: one IMAP mailbox per entry (TOML array of tables or JSON in the
environment) read into an email entry point (docs/email.md)."""

from __future__ import annotations

import ipaddress
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["IMAP_PORTS", "ImapMailboxSettings"]

# The port each security setting implies when none is given: RFC 8314 (993, IMAP over TLS) and
# RFC 9051 (143, IMAP, where STARTTLS upgrades the connection).
IMAP_PORTS = {"tls": 993, "starttls": 143, "none": 143}


class ImapMailboxSettings(BaseModel):
    """One mailbox at a provider. Messages of ``folder`` are taken in as mail to ``entry_point``
    (an email entry point's address); after the commit each is flagged ``\\Seen``, or moved to
    ``move_to`` when set. One credential: ``password`` logs in with LOGIN; ``oauth2_token_url``
    (with ``oauth2_client_id`` and a secret or refresh token) with XOAUTH2 and access tokens fetched
    from the provider (Microsoft 365, Gmail; ``channels/email/oauth2.py``); ``oauth2_token`` with
    XOAUTH2 and one fixed access token, not refreshed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,100}$", description="Name in logs and the state table")
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(
        default=993, ge=1, le=65535, description="Default: 993 with security tls, else 143 (IMAP_PORTS)"
    )
    # The SMTP relay's words (smtp_relay_security) without "auto": an IMAP login always sends a
    # credential, and a STARTTLS used only "when offered" is removed by whoever sits in the middle
    # (RFC 8314 §5.2: a client refuses a session below the confidentiality set for the account).
    security: Literal["tls", "starttls", "none"] = Field(
        default="tls",
        description="tls: IMAP over TLS (993, what providers offer); starttls: plain IMAP (143) upgraded "
        "with STARTTLS, required; none: plain text (loopback only)",
    )
    username: str = Field(min_length=1, max_length=320)
    password: SecretStr | None = None
    oauth2_token: SecretStr | None = Field(
        default=None,
        description="A fixed OAuth2 access token (not refreshed: it stops working when it expires)",
    )
    # OAuth2 with access tokens fetched from the provider's token endpoint (RFC 6749): the
    # client-credentials grant (§4.4) without a refresh token, a refresh (§6) with one.
    oauth2_token_url: str | None = Field(
        default=None,
        max_length=2000,
        description="The provider's token endpoint (https; http only on loopback)",
    )
    oauth2_client_id: str | None = Field(default=None, min_length=1, max_length=500)
    oauth2_client_secret: SecretStr | None = None
    oauth2_refresh_token: SecretStr | None = Field(
        default=None, description="Refresh with this token (Gmail); without it, the client-credentials grant"
    )
    oauth2_scope: str | None = Field(
        default=None,
        max_length=2000,
        description="e.g. https://outlook.office365.com/.default (Microsoft 365)",
    )
    folder: str = Field(default="INBOX", min_length=1, max_length=200)
    move_to: str | None = Field(default=None, max_length=200)
    entry_point: str = Field(min_length=3, max_length=320, description="The email entry point's address")
    poll_interval_s: float = Field(
        default=60.0, gt=0, description="Seconds between checks when the server has no IDLE"
    )
    idle: bool = Field(default=True, description="Use IDLE when the server offers it")
    cafile: str | None = Field(default=None, description="CA bundle for a server with a private certificate")

    @model_validator(mode="before")
    @classmethod
    def _port_of_security(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("port") is None:
            return {**data, "port": IMAP_PORTS.get(data.get("security", "tls"), 993)}
        return data

    @model_validator(mode="after")
    def _one_credential(self) -> ImapMailboxSettings:
        given = [self.password, self.oauth2_token, self.oauth2_token_url]
        if sum(c is not None for c in given) != 1:
            raise ValueError("set exactly one of password, oauth2_token and oauth2_token_url")
        if self.oauth2_token_url is None:
            extra = [
                name
                for name in (
                    "oauth2_client_id",
                    "oauth2_client_secret",
                    "oauth2_refresh_token",
                    "oauth2_scope",
                )
                if getattr(self, name) is not None
            ]
            if extra:
                raise ValueError(
                    f"{', '.join(extra)} without oauth2_token_url (the provider's token endpoint)"
                )
            return self
        _check_token_url(self.oauth2_token_url)
        if self.oauth2_client_id is None:
            raise ValueError("oauth2_token_url needs oauth2_client_id")
        if self.oauth2_refresh_token is None and self.oauth2_client_secret is None:
            # RFC 6749 §4.4: the client-credentials grant is for confidential clients only.
            raise ValueError(
                "oauth2_token_url needs oauth2_client_secret (the client-credentials grant) "
                "or oauth2_refresh_token (a refresh)"
            )
        return self


def _check_token_url(url: str) -> None:
    """RFC 6749 §3.2: the token endpoint MUST be reached over TLS (the request carries the
    client's secret); plain http only to this machine (a token broker on loopback, tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname:
        if parts.hostname == "localhost":
            return
        try:
            if ipaddress.ip_address(parts.hostname).is_loopback:
                return
        except ValueError:
            pass
    raise ValueError(f"oauth2_token_url must be an https:// URL (http:// only on loopback), not {url!r}")
