"""A provider's HTTP SMS API as a gateway (an entry point's ``config.sms.http``, docs/sms.md).

Inbound: the provider posts each SMS (and each delivery report) to ``/hooks/sms/{entry point id}``
(reports: ``.../status``), signed with HMAC-SHA256 of the raw body under the shared secret; the
fields' names are configured. Outbound: one request per message built from a template; a status
code outside ``success_status`` or a JSON reply whose ``success_field`` is not ``success_value``
fails: 5xx, 429 and timeouts are retried by the outbox, other refusals fail the message with the
provider's reply.

The provider's URL is an administrator's input: requests go only to public addresses and the
networks of ``integrations_allowed_networks`` (:mod:`frontoffice.services.egress`), checked when the
entry point is saved and again at each send (a refused send is retried like an unreachable gateway).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx

from frontoffice.services.egress import EgressPolicy, GuardedTransport, refused_reason
from frontoffice.services.outbox_delivery import PermanentFailure, TemporaryFailure

__all__ = [
    "SEND_TIMEOUT_S",
    "GatewayReply",
    "field",
    "parse_body",
    "send_sms",
    "sign",
    "signature_ok",
]

log = logging.getLogger("frontoffice.sms")

# A provider answers a send in well under a second; 15 s covers a slow one without holding an
# outbox worker for long (a timeout is retried).
SEND_TIMEOUT_S = 15.0
# How much of a provider's refusal is kept as the message's delivery error.
REPLY_EXCERPT = 500


def sign(secret: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``body`` under ``secret`` (what the provider sends)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(secret: str, body: bytes, header_value: str | None) -> bool:
    """Whether ``header_value`` (hex, optionally ``sha256=``-prefixed) signs ``body``; constant time."""
    if not header_value:
        return False
    given = header_value.strip().removeprefix("sha256=").lower()
    return hmac.compare_digest(given.encode(), sign(secret, body).encode())


def parse_body(body: bytes, content_type: str) -> dict[str, Any]:
    """A webhook's body as a mapping: JSON, or a form (``application/x-www-form-urlencoded``)."""
    if "json" in content_type:
        data = json.loads(body.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("the JSON body is not an object")
        return data
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))


def field(data: Any, path: str) -> Any:
    """The value at dotted ``path`` of ``data`` (``sms.79161234567.sms_id``), or None."""
    node = data
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _fill(template: str, variables: dict[str, str]) -> str:
    out = template
    for name, value in variables.items():
        out = out.replace("{" + name + "}", value)
    return out


@dataclass(frozen=True, slots=True)
class GatewayReply:
    """What a send returned: the provider's message id (for delivery reports), when configured."""

    message_id: str | None


async def send_sms(
    settings: dict[str, Any],
    sender: str,
    to: str,
    text: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> GatewayReply:
    """Send ``text`` to ``to`` through the provider of ``settings`` (``config.sms.http``).

    ``transport``: by default one that reaches public addresses only (the caller passes one of the
    operator's :class:`EgressPolicy`). Raises :class:`TemporaryFailure` (5xx, 429, timeouts,
    connection errors, an address not allowed) or :class:`PermanentFailure` (another refusal, with
    the provider's reply)."""
    variables = {
        "to": to.removeprefix("+"),
        "text": text,
        "from": sender,
        "api_key": str(settings.get("api_key") or ""),
    }
    url = _fill(str(settings["url"]), variables)
    params = {k: _fill(v, variables) for k, v in (settings.get("params") or {}).items()}
    headers = {k: _fill(v, variables) for k, v in (settings.get("headers") or {}).items()}
    method = str(settings.get("method") or "POST")
    body = str(settings.get("body") or "form")
    request: dict[str, Any] = {"headers": headers}
    if body == "query" or method == "GET":
        request["params"] = params
    elif body == "json":
        request["json"] = params
    else:
        request["data"] = params
    if transport is None:
        transport = GuardedTransport(EgressPolicy())
    try:
        async with httpx.AsyncClient(timeout=SEND_TIMEOUT_S, transport=transport) as client:
            reply = await client.request(method, url, **request)
    except httpx.TimeoutException:
        raise TemporaryFailure("sms-gateway-timeout: the provider did not answer in time") from None
    except httpx.TransportError as exc:
        refused = refused_reason(exc)
        if refused is not None:
            # Nothing was sent. Retried like an unreachable gateway: the operator may allow the
            # network (a gateway on the LAN), or the name may resolve to a public address again.
            log.warning("SMS gateway %s", refused)
            raise TemporaryFailure(f"sms-gateway-not-allowed: {refused}") from None
        raise TemporaryFailure(f"sms-gateway-unreachable: {exc}") from None
    excerpt = reply.text[:REPLY_EXCERPT]
    if reply.status_code >= 500 or reply.status_code == 429:
        raise TemporaryFailure(f"sms-gateway-busy: HTTP {reply.status_code}: {excerpt}")
    if reply.status_code not in (settings.get("success_status") or [200]):
        raise PermanentFailure(f"sms-gateway-refused: HTTP {reply.status_code}: {excerpt}")
    data: Any = None
    if settings.get("success_field") or settings.get("message_id_field"):
        try:
            data = reply.json()
        except ValueError:
            raise PermanentFailure(f"sms-gateway-refused: not JSON: {excerpt}") from None
    check = settings.get("success_field")
    if check:
        value = field(data, _fill(str(check), variables))
        if str(value) != str(settings.get("success_value")):
            raise PermanentFailure(f"sms-gateway-refused: {excerpt}")
    id_path = settings.get("message_id_field")
    message_id = field(data, _fill(str(id_path), variables)) if id_path else None
    return GatewayReply(None if message_id is None else str(message_id))
