"""Schemas of the webhook subscriptions API (``/api/v1/webhooks``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from frontoffice.domain.webhooks import EVENT_TYPES

from .schemas import Input, Output

__all__ = [
    "EventTypeOut",
    "ReplayFailedIn",
    "ReplayOut",
    "RotateSecretIn",
    "WebhookAttemptOut",
    "WebhookCreated",
    "WebhookDeliveryOut",
    "WebhookIn",
    "WebhookOut",
    "WebhookPatch",
    "WebhookSecretOut",
]

# A secret rotation keeps the old secret signing this long by default: a day lets a receiver
# deployed once a day pick up the new one (Standard Webhooks: "for a set period of time").
DEFAULT_ROTATION_OVERLAP_H = 24
# The longest overlap: an old secret that signs for more than a week is a leaked secret kept alive.
MAX_ROTATION_OVERLAP_H = 168


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the URL must be http:// or https:// with a host")
    return value


def _check_types(value: list[str]) -> list[str]:
    unknown = sorted(set(value) - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"unknown event types: {', '.join(unknown)}")
    if not value:
        raise ValueError("choose at least one event type")
    return sorted(set(value))


class WebhookIn(Input):
    """A new subscription: where to POST, which events, limited to one project (None: every project)."""

    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=8, max_length=2000)
    event_types: list[str] = Field(max_length=len(EVENT_TYPES))
    project_id: int | None = None
    enabled: bool = True

    _url = field_validator("url")(_check_url)
    _types = field_validator("event_types")(_check_types)


class WebhookPatch(Input):
    """Changed fields of a subscription; ``enabled: true`` re-enables one that was disabled."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    url: str | None = Field(default=None, min_length=8, max_length=2000)
    event_types: list[str] | None = Field(default=None, max_length=len(EVENT_TYPES))
    project_id: int | None = None
    enabled: bool | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_types(value)


class WebhookOut(Output):
    id: int
    name: str
    url: str
    event_types: list[str]
    project_id: int | None
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    # While a rotation overlaps, the old secret still signs until then.
    previous_secret_until: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    """A new subscription with its signing secret (also readable later at ``/webhooks/{id}/secret``)."""

    secret: str


class WebhookSecretOut(Output):
    secret: str
    previous_secret: str | None
    previous_secret_until: datetime | None


class RotateSecretIn(Input):
    """Rotate: a new secret signs from now on; the old one also signs for ``overlap_hours`` (0: stop
    at once, for a leaked secret)."""

    overlap_hours: float = Field(default=DEFAULT_ROTATION_OVERLAP_H, ge=0, le=MAX_ROTATION_OVERLAP_H)


class WebhookDeliveryOut(Output):
    """One webhook message to one subscription (an outbox row) and its delivery state."""

    id: int
    webhook_id: str
    event_type: str
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    sent_at: datetime | None
    replay_of: int | None = None
    payload: dict[str, Any]


class WebhookAttemptOut(Output):
    """One HTTP attempt of a delivery: the request and the response as sent and received."""

    id: int
    outbox_id: int
    webhook_id: str
    event_type: str
    attempt: int
    at: datetime
    url: str
    request_headers: dict[str, Any]
    request_body: str
    response_status: int | None
    response_headers: dict[str, Any]
    response_body: str
    duration_ms: int
    outcome: str
    error: str | None


class ReplayFailedIn(Input):
    """Queue again every delivery of the subscription that failed and was created at ``since`` or later."""

    since: datetime


class ReplayOut(Output):
    queued: int
    delivery_ids: list[int]


class EventTypeOut(Output):
    type: str
    description: str
