"""The ``imap_mailboxes`` setting: one IMAP mailbox per entry (TOML array of tables or JSON in the
environment) read into an email entry point (docs/email.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["ImapMailboxSettings"]


class ImapMailboxSettings(BaseModel):
    """One mailbox at a provider. Messages of ``folder`` are taken in as mail to ``entry_point``
    (an email entry point's address); after the commit each is flagged ``\\Seen``, or moved to
    ``move_to`` when set. ``password`` logs in with LOGIN; ``oauth2_token`` with XOAUTH2 (Gmail,
    Microsoft 365, Yandex)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,100}$", description="Name in logs and the state table")
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=993, ge=1, le=65535)
    security: Literal["tls", "none"] = Field(
        default="tls", description="tls: IMAPS (993, what providers offer); none: plain (loopback only)"
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

    @model_validator(mode="after")
    def _one_credential(self) -> ImapMailboxSettings:
        if (self.password is None) == (self.oauth2_token is None):
            raise ValueError("set exactly one of password and oauth2_token")
        return self
