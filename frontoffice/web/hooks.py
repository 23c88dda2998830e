"""Providers' webhooks (public, authenticated by a shared-secret signature, not a session):

* ``POST /hooks/sms/{entry_point_id}``: an inbound SMS from an HTTP SMS gateway;
* ``POST /hooks/sms/{entry_point_id}/status``: its delivery report for one of our messages;
* ``POST /hooks/telegram/{entry_point_id}``: a Telegram bot's update in webhook mode, authenticated
  by the ``X-Telegram-Bot-Api-Secret-Token`` header Telegram sends (the ``secret_token`` given to
  setWebhook); a wrong one is refused 401 ``telegram-secret-invalid``.

Both are signed with HMAC-SHA256 of the raw body under the entry point's ``sms.http.webhook_secret``
(header ``sms.http.signature_header``); a bad or missing signature is refused 401
``sms-signature-invalid``. A 200 is answered only after the message (or receipt) is committed, so a
provider that gets no 200 sends again, and the dedupe by its message id absorbs the repeat.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from frontoffice.channels.sms.http_gateway import field, parse_body, signature_ok
from frontoffice.domain.exceptions import InvalidInput, NotFound, Unauthenticated
from frontoffice.domain.model import Channel

from .security import container

__all__ = ["router"]

router = APIRouter(tags=["hooks"])

# A provider's webhook carries one SMS or one report: far below this.
MAX_HOOK_BYTES = 64 * 1024


async def _signed(request: Request, entry_point_id: int) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The entry point's address, its ``sms.http`` settings and the verified body's fields."""
    found = await container(request).messaging.entry_point(entry_point_id)
    http = ((found[2].get("sms") or {}).get("http") or {}) if found else {}
    if found is None or found[0] != Channel.SMS.value or not http.get("webhook_secret"):
        raise NotFound("No SMS gateway entry point here", error_id="no-such-entry-point")
    body = await request.body()
    if len(body) > MAX_HOOK_BYTES:
        raise InvalidInput("The webhook body is too large", error_id="body-too-large")
    header = str(http.get("signature_header") or "X-Signature")
    if not signature_ok(str(http["webhook_secret"]), body, request.headers.get(header)):
        raise Unauthenticated(
            "The webhook's signature is missing or wrong", error_id="sms-signature-invalid", header=header
        )
    try:
        data = parse_body(body, request.headers.get("content-type", ""))
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(
            "The webhook body is not JSON or a form", error_id="sms-webhook-unreadable"
        ) from None
    return found[1], http, data


def _required(data: dict[str, Any], path: str) -> str:
    value = field(data, path)
    if value is None or str(value) == "":
        raise InvalidInput(f"The webhook has no {path}", error_id="sms-webhook-field-missing", field=path)
    return str(value)


@router.post("/hooks/sms/{entry_point_id}")
async def sms_inbound(request: Request, entry_point_id: int) -> JSONResponse:
    """An inbound SMS from the entry point's HTTP gateway; 200 after the commit."""
    address, http, data = await _signed(request, entry_point_id)
    sender = _required(data, str(http.get("sender_field") or "from"))
    text = str(field(data, str(http.get("text_field") or "text")) or "")
    provider_id = _required(data, str(http.get("id_field") or "message_id"))
    sender = sender if sender.startswith("+") else f"+{sender}"
    received = await container(request).messaging.sms_received(
        address, sender, text, f"sms-http:{provider_id}"
    )
    return JSONResponse({"ok": True, "duplicate": received.outcome == "duplicate"})


@router.post("/hooks/sms/{entry_point_id}/status")
async def sms_status(request: Request, entry_point_id: int) -> JSONResponse:
    """A delivery report: the message is marked delivered or failed; 200 after the commit; 404
    ``sms-unknown-message`` while the id is unknown (the provider sends again)."""
    _address, http, data = await _signed(request, entry_point_id)
    provider_id = _required(data, str(http.get("report_id_field") or "message_id"))
    status = _required(data, str(http.get("report_status_field") or "status"))
    outcome: str | None = None
    if status in (http.get("delivered_values") or ["delivered"]):
        outcome = "delivered"
    elif status in (http.get("failed_values") or ["failed", "undelivered"]):
        outcome = "failed"
    known = await container(request).messaging.sms_receipt(entry_point_id, provider_id, outcome, status, "")
    if not known:
        raise NotFound("No message with this id", error_id="sms-unknown-message", message_id=provider_id)
    return JSONResponse({"ok": True, "outcome": outcome})


@router.post("/hooks/telegram/{entry_point_id}")
async def telegram_update(request: Request, entry_point_id: int) -> JSONResponse:
    """A Telegram update posted to a webhook-mode bot; 200 after the message is committed (Telegram
    repeats an update it got no 200 for; the dedupe by chat and message id absorbs the repeat)."""
    found = await container(request).messaging.entry_point(entry_point_id)
    tg = (found[2].get("telegram") or {}) if found else {}
    if (
        found is None
        or found[0] != Channel.MESSENGER.value
        or tg.get("mode") != "webhook"
        or not tg.get("webhook_secret")
    ):
        raise NotFound("No Telegram webhook entry point here", error_id="no-such-entry-point")
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    if not hmac.compare_digest(given.encode(), str(tg["webhook_secret"]).encode()):
        raise Unauthenticated(
            "The Telegram secret token is missing or wrong", error_id="telegram-secret-invalid"
        )
    body = await request.body()
    if len(body) > MAX_HOOK_BYTES:
        raise InvalidInput("The webhook body is too large", error_id="body-too-large")
    try:
        update = json.loads(body)
    except ValueError:
        raise InvalidInput(
            "The webhook body is not JSON or a form", error_id="telegram-webhook-unreadable"
        ) from None
    message = update.get("message") if isinstance(update, dict) else None
    if isinstance(message, dict):
        await container(request).telegram.webhook_message(entry_point_id, found[2], message)
    return JSONResponse({"ok": True})
