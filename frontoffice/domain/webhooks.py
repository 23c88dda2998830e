"""Outgoing webhooks: the event catalogue, which log rows raise which events, and the signature.

Pure: no I/O, no clock, no randomness (the caller passes times and random bytes).

* **Events** are named ``<object>.<change>`` (the Standard Webhooks convention: full-stop delimited,
  ``[a-z_]``). :data:`EVENT_TYPES` is the catalogue a subscription chooses from; ``docs/webhooks.md``
  shows a payload of each.
* **Where they come from.** Every change a webhook reports is already written to an append-only log
  in the transaction that makes it: the interaction event log (a contact was created, queued, offered,
  connected, completed; a call leg ended) and the audit log (a customer, ticket or deal was created,
  changed, merged, deleted). :func:`interaction_events` and :func:`audit_events` map one log row to
  the webhook events it raises, so the webhooks of a change are queued in the same transaction as the
  change (``services/webhooks.py``) and can never be lost between a commit and a later step.
* **Signature** (Standard Webhooks 1.0, symmetric): the secret is ``whsec_`` + base64 of 24 to 64 random
  bytes; the signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; the signature is ``v1,`` +
  base64(HMAC-SHA256(key, content)); the ``webhook-signature`` header lists one signature per secret in
  use, space-separated (during a rotation, the new secret's and the old one's).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "EVENT_TYPES",
    "SECRET_PREFIX",
    "TEST_EVENT",
    "WebhookEvent",
    "audit_events",
    "decode_secret",
    "encode_secret",
    "interaction_events",
    "sign",
    "signature_header",
    "subject_of",
]

# Standard Webhooks: "whsec_" marks a symmetric (HMAC) secret for easy identification.
SECRET_PREFIX = "whsec_"
# Standard Webhooks: a signing secret is random, at least 24 bytes (192 bits) and at most 64.
SECRET_MIN_BYTES = 24
SECRET_MAX_BYTES = 64

# The catalogue: event type -> what happened (shown in the admin console and the API).
EVENT_TYPES: dict[str, str] = {
    "interaction.created": "A contact arrived or was created (any channel)",
    "interaction.queued": "A contact entered a queue",
    "interaction.offered": "A contact was offered to an agent",
    "interaction.connected": "An agent took the contact",
    "interaction.completed": "A contact was completed (after wrap-up)",
    "interaction.abandoned": "The customer left before an agent took the contact",
    "customer.created": "A customer card was created",
    "customer.updated": "A customer card or its identities changed",
    "customer.merged": "Two customer cards were merged",
    "customer.deleted": "A customer card was deleted",
    "ticket.created": "A ticket was created",
    "ticket.updated": "A ticket changed (status, fields, a reply, a note, a merge)",
    "deal.created": "A deal was created",
    "deal.updated": "A deal changed (stage, amount, fields)",
    "call.ended": "A phone call ended (the caller's leg, with its timestamps and cause)",
    "recording.ready": "A call's recording is complete and can be downloaded",
}
# Sent by the "send a test event" button; not in the catalogue (nobody subscribes to it).
TEST_EVENT = "webhook.test"

_INTERACTION_TYPES = {
    "created": "interaction.created",
    "queued": "interaction.queued",
    "offered": "interaction.offered",
    "connected": "interaction.connected",
    "done": "interaction.completed",
    "abandoned": "interaction.abandoned",
}
_AUDIT_TYPES = {
    "customer.create": "customer.created",
    "customer.update": "customer.updated",
    "customer.identity_add": "customer.updated",
    "customer.identity_remove": "customer.updated",
    "customer.merge": "customer.merged",
    "customer.delete": "customer.deleted",
    "ticket.create": "ticket.created",
    "ticket.update": "ticket.updated",
    "ticket.reopen": "ticket.updated",
    "ticket.agent_reply": "ticket.updated",
    "ticket.customer_reply": "ticket.updated",
    "ticket.note": "ticket.updated",
    "ticket.macro": "ticket.updated",
    "ticket.merge_into": "ticket.updated",
    "ticket.merge": "ticket.updated",
    "ticket.link_interaction": "ticket.updated",
    "deal.create": "deal.created",
    "deal.update": "deal.updated",
}


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One event for subscribers: its ``type``, when it happened, the object it is about
    (``object_type``, ``object_id``: deliveries of one object go out in order), the project it belongs
    to (None: known only once the object is read, or of no project) and the payload's ``data``."""

    type: str
    at: datetime
    object_type: str
    object_id: int
    data: dict[str, Any] = field(default_factory=dict)
    project_id: int | None = None

    @property
    def subject(self) -> str:
        return subject_of(self.object_type, self.object_id)

    def body(self) -> dict[str, Any]:
        """The JSON document sent (Standard Webhooks payload: ``type``, ``timestamp``, ``data``)."""
        return {"type": self.type, "timestamp": _iso(self.at), "data": self.data}


def subject_of(object_type: str, object_id: int) -> str:
    """The key deliveries are ordered by: one object's events reach a subscriber in order."""
    return f"{object_type}:{object_id}"


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def interaction_events(row: Mapping[str, Any]) -> list[WebhookEvent]:
    """The webhook events one ``interaction_events`` row raises (none for most types)."""
    interaction_id = _int(row.get("interaction_id"))
    at = row.get("at")
    if interaction_id is None or not isinstance(at, datetime):
        return []
    kind = row.get("type")
    base = {
        "interaction_id": interaction_id,
        "channel": row.get("channel"),
        "state": row.get("state"),
        "queue_id": row.get("queue_id"),
        "agent_id": row.get("agent_id"),
        "project_id": row.get("project_id"),
    }
    project_id = _int(row.get("project_id"))
    data = row.get("data") or {}
    if kind == "offered":
        # The agents it is offered to (several for ring-all); ``agent_id`` is set once one takes it.
        base["agent_ids"] = list(data.get("agent_ids", []))
    if kind in _INTERACTION_TYPES:
        return [
            WebhookEvent(_INTERACTION_TYPES[str(kind)], at, "interaction", interaction_id, base, project_id)
        ]
    if kind == "call_leg" and data.get("leg") == "caller":
        # The caller's leg ends when the call ends (agents' legs end with transfers and ring-outs).
        keys = ("call_id", "peer", "setup_at", "answered_at", "ended_at", "status", "cause", "talk_s")
        call = {**base, **{k: data.get(k) for k in keys}, "duration_s": data.get("duration_s")}
        return [WebhookEvent("call.ended", at, "interaction", interaction_id, call, project_id)]
    return []


def audit_events(row: Mapping[str, Any]) -> list[WebhookEvent]:
    """The webhook events one ``audit_log`` row raises (customers, tickets, deals)."""
    action = row.get("action")
    kind = _AUDIT_TYPES.get(str(action))
    object_id = _int(row.get("object_id"))
    at = row.get("at")
    if kind is None or object_id is None or not isinstance(at, datetime):
        return []
    object_type = kind.split(".", 1)[0]
    details = dict(row.get("details") or {})
    data: dict[str, Any] = {"id": object_id, "action": action, "actor_id": row.get("actor_id")}
    if "fields" in details:
        data["changed_fields"] = details["fields"]
    if kind == "customer.merged":
        data["merged_id"] = details.get("merged_id")
    if kind == "customer.deleted":
        data["merged_ids"] = details.get("merged_ids", [])
        data["project_ids"] = details.get("project_ids", [])
    return [WebhookEvent(kind, at, object_type, object_id, data)]


def encode_secret(random_bytes: bytes) -> str:
    """A secret as shown to the receiver: ``whsec_`` + base64 of the key bytes."""
    if not SECRET_MIN_BYTES <= len(random_bytes) <= SECRET_MAX_BYTES:
        raise ValueError(f"a signing key has {SECRET_MIN_BYTES} to {SECRET_MAX_BYTES} bytes")
    return SECRET_PREFIX + base64.b64encode(random_bytes).decode("ascii")


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret (the base64 after the prefix)."""
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error:
        raise ValueError("a webhook secret is whsec_ followed by base64") from None


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``{webhook_id}.{timestamp}.{body}`` with ``secret``."""
    content = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(decode_secret(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(
    secrets: Sequence[str] | Iterable[str], webhook_id: str, timestamp: int, body: bytes
) -> str:
    """The ``webhook-signature`` header: one signature per secret, space-separated (rotation)."""
    return " ".join(sign(s, webhook_id, timestamp, body) for s in secrets)
