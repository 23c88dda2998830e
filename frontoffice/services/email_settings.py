"""An entry point's email settings: ``entry_points.config["email"]``.

What mail from the entry point looks like (From address and name, signature per language), its
templates (the auto-acknowledgement, per language), the fax-to-email gateway its faxes go out through,
and an own DKIM key (an outsourcing center's client company signing with its own domain). Set with
the entry point (``PUT /api/v1/entry-points/{id}``, field ``email``); read by the replies, the
auto-acknowledgement, fax out and the email sender.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import EmailStr, Field

from .schemas import Input

__all__ = ["AckTemplate", "DkimSettings", "EmailSettings", "FaxGateway", "email_settings"]


class AckTemplate(Input):
    """One language's auto-acknowledgement: ``{token}`` is the thread's number, ``{subject}`` the
    customer's subject, ``{name}`` the customer's name."""

    subject: str = Field(max_length=500)
    body: str = Field(max_length=20_000)


class FaxGateway(Input):
    """A fax-to-email gateway (docs/outbox.md, "Fax out"). ``address`` convention: the number goes in
    the local part (``{number}@fax.example``); ``subject`` convention: mail to the gateway's one
    address with the number as the subject."""

    address: str = Field(min_length=3, max_length=320, description="e.g. {number}@efaxsend.com or fax@gw")
    convention: Literal["address", "subject"] = "address"
    # Some gateways want a PIN or code before the number in the subject.
    subject_prefix: str = Field(default="", max_length=100, description="before the number, with a space")


class DkimSettings(Input):
    selector: str = Field(min_length=1, max_length=63)
    private_key_file: str = Field(min_length=1, max_length=1000)
    domain: str | None = Field(default=None, max_length=253)


class EmailSettings(Input):
    from_address: EmailStr | None = None
    from_name: str = Field(default="", max_length=200)
    signature: dict[str, str] = Field(
        default_factory=dict, description="per language: {'en': '...', 'ru': '...'}"
    )
    auto_acknowledge: bool = Field(default=False, description="answer new email threads (off by default)")
    ack_templates: dict[str, AckTemplate] = Field(default_factory=dict, description="per language")
    fax_gateway: FaxGateway | None = None
    gateway_senders: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="fax entry points: fax-to-email gateways whose mail is a fax here (docs/email.md)",
    )
    return_path: EmailStr | None = Field(default=None, description="envelope sender (bounces); default From")
    dkim: DkimSettings | None = None


def email_settings(config: dict[str, Any] | None) -> EmailSettings:
    """The email settings in an entry point's ``config`` (defaults when none are set)."""
    raw = (config or {}).get("email")
    return EmailSettings.model_validate(raw) if isinstance(raw, dict) else EmailSettings()
