"""Outgoing webhooks (``docs/webhooks.md``) and the screen-pop lookup (``docs/integrations.md``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from frontoffice.services.context import Actor
from frontoffice.services.schemas import Page
from frontoffice.services.screen_pop import ScreenPopConfigIn, ScreenPopConfigOut
from frontoffice.services.webhook_schemas import (
    EventTypeOut,
    ReplayFailedIn,
    ReplayOut,
    RotateSecretIn,
    WebhookAttemptOut,
    WebhookCreated,
    WebhookDeliveryOut,
    WebhookIn,
    WebhookOut,
    WebhookPatch,
    WebhookSecretOut,
)

from ..security import container, requires

router = APIRouter(tags=["webhooks"])

Manager = Annotated[Actor, Depends(requires("webhooks.manage"))]
Limit = Annotated[int, Query(ge=1, le=200)]


@router.get("/webhooks/event-types", response_model=list[EventTypeOut])
async def event_types(request: Request, actor: Manager) -> list[EventTypeOut]:
    """The event catalogue a subscription chooses from."""
    return container(request).webhooks.event_types()


@router.get("/webhooks", response_model=list[WebhookOut])
async def list_webhooks(request: Request, actor: Manager) -> list[WebhookOut]:
    return await container(request).webhooks.list_all(actor)


@router.post("/webhooks", response_model=WebhookCreated, status_code=201)
async def create_webhook(request: Request, body: WebhookIn, actor: Manager) -> WebhookCreated:
    """Subscribe a URL to event types; the answer carries the signing secret (``whsec_...``)."""
    return await container(request).webhooks.create(actor, body)


@router.get("/webhooks/{webhook_id}", response_model=WebhookOut)
async def get_webhook(request: Request, webhook_id: int, actor: Manager) -> WebhookOut:
    return await container(request).webhooks.get(actor, webhook_id)


@router.patch("/webhooks/{webhook_id}", response_model=WebhookOut)
async def update_webhook(request: Request, webhook_id: int, body: WebhookPatch, actor: Manager) -> WebhookOut:
    """Change a subscription; ``{"enabled": true}`` re-enables one that was disabled."""
    return await container(request).webhooks.update(actor, webhook_id, body)


@router.delete("/webhooks/{webhook_id}", status_code=204)
async def delete_webhook(request: Request, webhook_id: int, actor: Manager) -> Response:
    await container(request).webhooks.delete(actor, webhook_id)
    return Response(status_code=204)


@router.get("/webhooks/{webhook_id}/secret", response_model=WebhookSecretOut)
async def webhook_secret(request: Request, webhook_id: int, actor: Manager) -> WebhookSecretOut:
    return await container(request).webhooks.secret(actor, webhook_id)


@router.post("/webhooks/{webhook_id}/rotate-secret", response_model=WebhookSecretOut)
async def rotate_secret(
    request: Request, webhook_id: int, body: RotateSecretIn, actor: Manager
) -> WebhookSecretOut:
    """A new secret signs from now on; the old one also signs for ``overlap_hours`` (default 24)."""
    return await container(request).webhooks.rotate_secret(actor, webhook_id, body)


@router.post("/webhooks/{webhook_id}/test", response_model=WebhookDeliveryOut, status_code=202)
async def send_test(request: Request, webhook_id: int, actor: Manager) -> WebhookDeliveryOut:
    """Queue a ``webhook.test`` event to the subscription."""
    return await container(request).webhooks.send_test(actor, webhook_id)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=Page[WebhookDeliveryOut])
async def deliveries(
    request: Request,
    webhook_id: int,
    actor: Manager,
    state: Annotated[str | None, Query(pattern="^(queued|sending|sent|failed|cancelled)$")] = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[WebhookDeliveryOut]:
    """The subscription's deliveries, newest first."""
    return await container(request).webhooks.deliveries(
        actor, webhook_id, state=state, limit=limit, cursor=cursor
    )


@router.get("/webhooks/{webhook_id}/attempts", response_model=Page[WebhookAttemptOut])
async def attempts(
    request: Request,
    webhook_id: int,
    actor: Manager,
    delivery_id: int | None = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[WebhookAttemptOut]:
    """The delivery log: each HTTP attempt with its request and response, newest first."""
    return await container(request).webhooks.attempts(
        actor, webhook_id, delivery_id=delivery_id, limit=limit, cursor=cursor
    )


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/replay", response_model=ReplayOut, status_code=202
)
async def replay(request: Request, webhook_id: int, delivery_id: int, actor: Manager) -> ReplayOut:
    """Send one delivery again (same ``webhook-id`` and payload)."""
    return await container(request).webhooks.replay(actor, webhook_id, delivery_id)


@router.post("/webhooks/{webhook_id}/replay", response_model=ReplayOut, status_code=202)
async def replay_failed(request: Request, webhook_id: int, body: ReplayFailedIn, actor: Manager) -> ReplayOut:
    """Send again every failed delivery created at ``since`` or later."""
    return await container(request).webhooks.replay_failed(actor, webhook_id, body.since)


@router.get("/integrations/screen-pop", response_model=ScreenPopConfigOut, tags=["integrations"])
async def screen_pop_config(request: Request, actor: Manager) -> ScreenPopConfigOut:
    """The screen-pop lookup endpoints (headers masked)."""
    return await container(request).screen_pop.get_config(actor)


@router.put("/integrations/screen-pop", response_model=ScreenPopConfigOut, tags=["integrations"])
async def set_screen_pop_config(
    request: Request, body: ScreenPopConfigIn, actor: Manager
) -> ScreenPopConfigOut:
    """Set (or with an empty ``url`` remove) the default endpoint or one project's."""
    return await container(request).screen_pop.set_config(actor, body)


@router.get("/interactions/{interaction_id}/external", tags=["integrations"])
async def external_lookup(
    request: Request,
    interaction_id: int,
    actor: Annotated[Actor, Depends(requires("interactions.read"))],
) -> dict[str, Any]:
    """What the screen-pop endpoint says about the contact's customer (``status`` none: no endpoint
    applies); the desk asks when it opens a contact whose pushed answer it missed."""
    result = await container(request).screen_pop.lookup_for(actor, interaction_id)
    if result is None:
        return {"interaction_id": interaction_id, "status": "none", "fields": {}, "error": None}
    return {
        "interaction_id": interaction_id,
        "status": result.status,
        "fields": result.fields,
        "error": result.error,
        "identity": result.identity,
    }
