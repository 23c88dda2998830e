"""An SMS or Telegram entry point's settings: ``entry_points.config["sms"]`` and ``["telegram"]``.

Set with the entry point (``POST /api/v1/entry-points``, ``PUT /api/v1/entry-points/{id}``, fields
``sms`` and ``telegram``); read by the SMS channel (SMPP links, the HTTP gateway) and the Telegram
bots. Secrets (the SMPP password, the gateway's API key and webhook secret, the bot token and its
webhook secret) are **write-only**: a GET shows them as ``null`` and lists the stored ones in the
entry point's ``secrets_set``; a PUT that leaves a secret out (or ``null``) keeps the stored one.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, HttpUrl, field_validator, model_validator

from .schemas import Input

__all__ = [
    "SECRET_PATHS",
    "HttpGatewaySettings",
    "SmppSettings",
    "SmsSettings",
    "TelegramSettings",
    "fill_template",
    "keep_secrets",
    "redact_secrets",
    "secrets_set",
]

# SMPP 3.4 §5.2.1-5.2.3: system_id is a C-Octet String of at most 16 octets, password at most 9,
# system_type at most 13 (the terminating NUL included).
SMPP_SYSTEM_ID_MAX = 15
SMPP_PASSWORD_MAX = 8
SMPP_SYSTEM_TYPE_MAX = 12
# Telegram's setWebhook secret_token: 1-256 characters A-Z, a-z, 0-9, _ and - (Bot API docs).
_TELEGRAM_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
# A bot token is "<bot id>:<35 characters>" (BotFather); checked loosely so a typo is caught early.
_TELEGRAM_TOKEN = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{20,100}$")
_HEADER = re.compile(r"^[A-Za-z0-9-]{1,100}$")
_VARIABLES = frozenset({"to", "text", "from", "api_key"})
_VARIABLE = re.compile(r"\{([a-z_]+)\}")


class SmppSettings(Input):
    """One SMSC account (docs/sms.md, "SMPP")."""

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=2775, ge=1, le=65535)
    system_id: str = Field(min_length=1, max_length=SMPP_SYSTEM_ID_MAX)
    password: str | None = Field(
        default=None, max_length=SMPP_PASSWORD_MAX, description="write-only; left out: keep the stored one"
    )
    system_type: str = Field(default="", max_length=SMPP_SYSTEM_TYPE_MAX)
    window: int = Field(default=10, ge=1, le=100, description="submits in flight")
    source_ton: int = Field(default=1, ge=0, le=6, description="1: international number, 5: alphanumeric")
    source_npi: int = Field(default=1, ge=0, le=18)


class HttpGatewaySettings(Input):
    """A provider's HTTP API (docs/sms.md, "HTTP gateways"): how its inbound webhook is signed and
    what its fields are called, and the request an outbound SMS is.

    Templates (``url``, ``params`` values, ``headers`` values) may use ``{to}`` (the customer's
    number without ``+``), ``{text}``, ``{from}`` (the entry point's address) and ``{api_key}``.
    """

    # -- inbound (POST /hooks/sms/{entry point id})
    webhook_secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="HMAC-SHA256 key of inbound webhooks; write-only",
    )
    signature_header: str = Field(
        default="X-Signature", description="header with the hex HMAC of the raw body"
    )
    sender_field: str = Field(default="from", min_length=1, max_length=100)
    text_field: str = Field(default="text", min_length=1, max_length=100)
    id_field: str = Field(default="message_id", min_length=1, max_length=100)
    # -- outbound
    url: str = Field(min_length=8, max_length=2000, description="e.g. https://sms.ru/sms/send")
    method: Literal["GET", "POST"] = "POST"
    body: Literal["query", "form", "json"] = Field(
        default="form", description="where params go: the query string, a form body or a JSON body"
    )
    params: dict[str, str] = Field(default_factory=dict, max_length=50)
    headers: dict[str, str] = Field(default_factory=dict, max_length=20)
    api_key: str | None = Field(
        default=None, max_length=500, description="{api_key} in templates; write-only"
    )
    success_status: list[int] = Field(default_factory=lambda: [200], max_length=20)
    success_field: str | None = Field(
        default=None, max_length=200, description="dotted path in the JSON reply, e.g. status"
    )
    success_value: str | None = Field(default=None, max_length=200, description="e.g. OK")
    message_id_field: str | None = Field(
        default=None,
        max_length=200,
        description="dotted path of the provider's id in the reply; {to} allowed",
    )
    # -- delivery reports (POST /hooks/sms/{entry point id}/status, signed the same way)
    report_id_field: str = Field(default="message_id", min_length=1, max_length=100)
    report_status_field: str = Field(default="status", min_length=1, max_length=100)
    delivered_values: list[str] = Field(default_factory=lambda: ["delivered"], max_length=20)
    failed_values: list[str] = Field(default_factory=lambda: ["failed", "undelivered"], max_length=20)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("the URL starts with https:// (or http://)")
        _check_template(value)
        parts = urlsplit(fill_template(value, "0"))  # ValueError: "Invalid IPv6 URL"
        if not parts.hostname:
            raise ValueError("the URL names no host")
        try:
            parts.port  # noqa: B018 (parsed for its ValueError)
        except ValueError:
            raise ValueError("the URL's port is not a number from 1 to 65535") from None
        return value

    @field_validator("params", "headers")
    @classmethod
    def _templates(cls, values: dict[str, str]) -> dict[str, str]:
        for value in values.values():
            _check_template(value)
        return values

    @field_validator("signature_header")
    @classmethod
    def _header(cls, value: str) -> str:
        if not _HEADER.match(value):
            raise ValueError("a header name is letters, digits and -")
        return value

    @field_validator("success_status")
    @classmethod
    def _statuses(cls, values: list[int]) -> list[int]:
        if not values or any(not 100 <= v <= 599 for v in values):
            raise ValueError("HTTP status codes (100-599), at least one")
        return values


class SmsSettings(Input):
    """An SMS entry point's gateway: an SMPP link or a provider's HTTP API."""

    gateway: Literal["smpp", "http"]
    smpp: SmppSettings | None = None
    http: HttpGatewaySettings | None = None

    @model_validator(mode="after")
    def _block(self) -> SmsSettings:
        if self.gateway == "smpp" and self.smpp is None:
            raise ValueError("gateway smpp needs the smpp block (host, port, system_id, password)")
        if self.gateway == "http" and self.http is None:
            raise ValueError("gateway http needs the http block (url, webhook_secret...)")
        return self


class TelegramSettings(Input):
    """A Telegram bot (docs/telegram.md)."""

    token: str | None = Field(default=None, description="from @BotFather; write-only")
    base_url: HttpUrl | None = Field(
        default=None, description="Bot API server; default https://api.telegram.org"
    )
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: HttpUrl | None = Field(
        default=None, description="webhook mode: this server's public https URL (…/hooks/telegram/{id})"
    )
    webhook_secret: str | None = Field(
        default=None, description="X-Telegram-Bot-Api-Secret-Token; write-only"
    )

    @field_validator("token")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is not None and not _TELEGRAM_TOKEN.match(value):
            raise ValueError("a bot token looks like 123456789:AA... (from @BotFather)")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _https(cls, value: HttpUrl | None) -> HttpUrl | None:
        if value is not None and value.scheme != "https":
            raise ValueError("Telegram posts to https:// URLs only")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None and not _TELEGRAM_SECRET.match(value):
            raise ValueError("1-256 characters: A-Z, a-z, 0-9, _ and -")
        return value


# Where the secrets are in an entry point's config.
SECRET_PATHS: tuple[tuple[str, ...], ...] = (
    ("sms", "smpp", "password"),
    ("sms", "http", "webhook_secret"),
    ("sms", "http", "api_key"),
    ("telegram", "token"),
    ("telegram", "webhook_secret"),
)


def _check_template(value: str) -> None:
    unknown = set(_VARIABLE.findall(value)) - _VARIABLES
    if unknown:
        raise ValueError(
            f"unknown variable {{{sorted(unknown)[0]}}}; known: {{to}} {{text}} {{from}} {{api_key}}"
        )


def fill_template(template: str, value: str) -> str:
    """``template`` (a gateway's URL) with every variable (``{to}``...) replaced by ``value``: the URL
    a send would request, as far as its host is concerned (checked when the entry point is saved)."""
    return _VARIABLE.sub(lambda _: value, template)


def _get(config: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = config
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def keep_secrets(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """``new`` config with the secrets it leaves out taken from ``old`` (a PUT keeps stored secrets)."""
    for path in SECRET_PATHS:
        parent = _get(new, path[:-1])
        if isinstance(parent, dict) and parent.get(path[-1]) is None:
            stored = _get(old, path)
            if stored is not None:
                parent[path[-1]] = stored
    return new


def secrets_set(config: dict[str, Any]) -> list[str]:
    """The dotted names of the secrets stored in ``config`` (shown instead of their values)."""
    return [".".join(path) for path in SECRET_PATHS if _get(config, path)]


def redact_secrets(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` without secret values (for GET)."""
    out = copy.deepcopy(config)
    for path in SECRET_PATHS:
        parent = _get(out, path[:-1])
        if isinstance(parent, dict) and path[-1] in parent:
            parent[path[-1]] = None
    return out
