"""The ``imap_mailboxes`` setting: one IMAP mailbox per entry (TOML array of tables or JSON in the
environment) read into an email entry point (docs/email.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["IMAP_PORTS", "ImapMailboxSettings"]

# The port each security setting implies when none is given: RFC 8314 (993, IMAP over TLS) and
# RFC 9051 (143, IMAP, where STARTTLS upgrades the connection).
IMAP_PORTS = {"tls": 993, "starttls": 143, "none": 143}


class ImapMailboxSettings(BaseModel):
    """One mailbox at a provider. Messages of ``folder`` are taken in as mail to ``entry_point``
    (an email entry point's address); after the commit each is flagged ``\\Seen``, or moved to
    ``move_to`` when set. ``password`` logs in with LOGIN; ``oauth2_token`` with XOAUTH2 (Gmail,
    Microsoft 365, Yandex)."""

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
    oauth2_token: SecretStr | None = None
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
        if (self.password is None) == (self.oauth2_token is None):
            raise ValueError("set exactly one of password and oauth2_token")
        return self
