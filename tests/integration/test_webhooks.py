"""Outgoing webhooks against a real receiver on loopback: queued with the change, signed (checked
with the ``standardwebhooks`` package), in order per subject, retried, disabled after a day of
failures, replayed, limited by project, managed through the API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from frontoffice.bootstrap import Container
from frontoffice.bus import BusMessage
from frontoffice.channels.email.sender import EmailSender, SmtpRelay
from frontoffice.domain.model import Role
from frontoffice.services.egress import EgressPolicy
from frontoffice.services.outbox_delivery import FIRST_RETRY_S, GIVE_UP_AFTER, OutboxWorker
from frontoffice.services.webhooks import WebhookSender
from frontoffice.store.tables import AuditEntry, OutboxItem

from ..conftest import ShiftedClock, make_user, token_headers
from .smtp_sink import SmtpSink
from .test_acd_api import Desk
from .webhook_receiver import WebhookReceiver

API = "/api/v1"
LOOPBACK = "127.0.0.0/8"
# The receiver's slowness in the tests: longer than the sender's time-out below.
TIMEOUT_S = 0.5


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # The tests drive their own worker, with the shifted clock; the receiver is on loopback, which
    # outgoing integrations reach only when allowed.
    return {"outbox_worker": False, "integrations_allowed_networks": [LOOPBACK]}


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    r = await WebhookReceiver().start()
    yield r
    await r.stop()


@pytest.fixture
async def worker(container: Container, clock: ShiftedClock) -> AsyncIterator[OutboxWorker]:
    w = OutboxWorker(container.sessions, container.blobs, clock=clock, node_id="test", jitter=lambda: 0.5)
    sender = WebhookSender(
        container.sessions,
        container.bus,
        clock=clock,
        timeout_s=TIMEOUT_S,
        recorder=container.webhooks.recorder,
        egress=EgressPolicy.from_setting([LOOPBACK]),
    )
    w.register(sender, on_given_up=sender)
    yield w
    await sender.close()


@pytest.fixture
async def desk(client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]) -> Desk:
    d = Desk(client, container, admin_headers)
    q = await d.queue("support")
    await d.entry("site", q)
    return d


async def deliver(worker: OutboxWorker) -> None:
    """Deliver everything due now (the worker's own loop would, woken by the commit)."""
    while await worker.deliver_due():
        pass


async def subscribe(
    client: httpx.AsyncClient, admin: dict[str, str], url: str, *types: str, **extra: Any
) -> dict[str, Any]:
    r = await client.post(
        f"{API}/webhooks",
        json={"name": "ERP", "url": url, "event_types": list(types), **extra},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def independent_signatures(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The spec's scheme written out here (not the server's code): v1,base64(HMAC-SHA256(key,
    id.timestamp.body)) with the key the base64 after whsec_, one of the space-separated entries."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s) for s in headers["webhook-signature"].split(" "))


async def test_a_contact_s_events_reach_the_receiver_signed_and_in_order(
    desk: Desk, receiver: WebhookReceiver, worker: OutboxWorker
) -> None:
    sub = await subscribe(desk.client, desk.admin, receiver.url, "interaction.created", "interaction.queued")
    assert sub["secret"].startswith("whsec_")
    iid = (await desk.contact())["interaction"]["id"]
    await deliver(worker)
    assert receiver.types() == ["interaction.created", "interaction.queued"]
    for request in receiver.requests:
        Webhook(sub["secret"]).verify(request.body, request.headers)  # raises when it does not verify
        assert independent_signatures(sub["secret"], request.headers, request.body)
        assert request.event["data"]["interaction_id"] == iid
        assert request.headers["content-type"] == "application/json"
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"x" * 32).decode()).verify(
            receiver.requests[0].body, receiver.requests[0].headers
        )
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert len(ids) == 2 and all(i.startswith("msg_") and "." not in i for i in ids)


async def test_events_nobody_subscribed_to_queue_no_delivery(desk: Desk, container: Container) -> None:
    await subscribe(desk.client, desk.admin, "http://127.0.0.1:9/none", "deal.created")
    await desk.contact()
    async with container.sessions() as s:
        assert list(await s.scalars(select(OutboxItem).where(OutboxItem.channel == "webhook"))) == []


async def test_a_failing_receiver_is_retried_with_back_off_and_the_log_keeps_each_answer(
    desk: Desk, receiver: WebhookReceiver, worker: OutboxWorker, clock: ShiftedClock
) -> None:
    sub = await subscribe(desk.client, desk.admin, receiver.url, "interaction.created")
    receiver.answers = [500, (503, "300")]
    await desk.contact()
    await deliver(worker)
    assert receiver.types(None) == ["interaction.created"]
    (delivery,) = (
        await desk.client.get(f"{API}/webhooks/{sub['id']}/deliveries", headers=desk.admin)
    ).json()["items"]
    assert delivery["state"] == "queued" and delivery["last_error"] == "HTTP 500"
    clock.advance(FIRST_RETRY_S - 1)
    await deliver(worker)
    assert len(receiver.requests) == 1, "not before the first back-off step"
    clock.advance(2)
    await deliver(worker)
    assert len(receiver.requests) == 2
    # The second step of the back-off is 2 minutes, but the 503 asked for 300 s: that wins.
    clock.advance(2 * FIRST_RETRY_S + 1)
    await deliver(worker)
    assert len(receiver.requests) == 2, "Retry-After is honoured"
    clock.advance(300 - 2 * FIRST_RETRY_S)
    await deliver(worker)
    assert receiver.types(None) == ["interaction.created"] * 3
    assert receiver.requests[2].answered == 200
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1, "a retry keeps its webhook-id"
    log = (await desk.client.get(f"{API}/webhooks/{sub['id']}/attempts", headers=desk.admin)).json()["items"]
    assert [a["response_status"] for a in log] == [200, 503, 500]
    assert [a["outcome"] for a in log] == ["sent", "failed", "failed"]
    assert log[2]["response_body"] == "receiver says 500"
    assert log[1]["response_headers"]["retry-after"] == "300"
    assert log[0]["request_headers"]["webhook-id"] == receiver.requests[0].headers["webhook-id"]
    assert log[0]["request_body"] == receiver.requests[0].body.decode()
    assert log[0]["duration_ms"] >= 0
    delivered = (await desk.client.get(f"{API}/webhooks/{sub['id']}/deliveries", headers=desk.admin)).json()
    assert delivered["items"][0]["state"] == "sent" and delivered["items"][0]["attempts"] == 3


async def test_a_slow_receiver_times_out_and_is_tried_again(
    desk: Desk, receiver: WebhookReceiver, worker: OutboxWorker, clock: ShiftedClock
) -> None:
    sub = await subscribe(desk.client, desk.admin, receiver.url, "interaction.created")
    receiver.hold = True  # answers only once released: far past the sender's time-out
    await desk.contact()
    await deliver(worker)
    receiver.release()
    log = (await desk.client.get(f"{API}/webhooks/{sub['id']}/attempts", headers=desk.admin)).json()["items"]
    assert log[0]["error"] == f"no answer within {TIMEOUT_S:g} s" and log[0]["response_status"] is None
    clock.advance(FIRST_RETRY_S + 1)
    await deliver(worker)
    assert receiver.requests[-1].answered == 200
    states = (await desk.client.get(f"{API}/webhooks/{sub['id']}/deliveries", headers=desk.admin)).json()
    assert states["items"][0]["state"] == "sent"


async def test_one_subject_s_events_wait_for_the_earlier_one_while_others_pass(
    desk: Desk, receiver: WebhookReceiver, worker: OutboxWorker, clock: ShiftedClock
) -> None:
    await subscribe(desk.client, desk.admin, receiver.url, "interaction.created", "interaction.queued")
    receiver.answers = [500]  # the first contact's "created" fails once
    first = (await desk.contact(customer={"phone": "+7 916 000-00-01"}))["interaction"]["id"]
    await deliver(worker)
    second = (await desk.contact(customer={"phone": "+7 916 000-00-02"}))["interaction"]["id"]
    await deliver(worker)
    got = [
        (r.event["type"], r.event["data"]["interaction_id"]) for r in receiver.requests if r.answered == 200
    ]
    assert got == [("interaction.created", second), ("interaction.queued", second)], (
        "the first contact's 'queued' waits behind its failed 'created'; the second's pass"
    )
    clock.advance(FIRST_RETRY_S + 1)
    await deliver(worker)
    got = [
        (r.event["type"], r.event["data"]["interaction_id"]) for r in receiver.requests if r.answered == 200
    ]
    assert got[2:] == [("interaction.created", first), ("interaction.queued", first)]


async def test_a_day_of_failures_disables_the_subscription_tells_the_admins_and_replay_sends_again(
    desk: Desk, receiver: WebhookReceiver, worker: OutboxWorker, clock: ShiftedClock, container: Container
) -> None:
    sub = await subscribe(desk.client, desk.admin, receiver.url, "interaction.created")
    start = clock()
    receiver.answers = [500] * 1000
    notices = container.bus.subscribe(keys=["supervisors"])
    await desk.contact()
    await deliver(worker)
    # Every due retry fails, until the 24-hour mark.
    while clock() < start + GIVE_UP_AFTER + timedelta(minutes=1):
        clock.advance(1800)
        await deliver(worker)
    got = (await desk.client.get(f"{API}/webhooks/{sub['id']}", headers=desk.admin)).json()
    assert got["enabled"] is False
    assert got["disabled_reason"].startswith("no successful delivery for 24 hours")
    (failed,) = (await desk.client.get(f"{API}/webhooks/{sub['id']}/deliveries", headers=desk.admin)).json()[
        "items"
    ]
    assert failed["state"] == "failed" and failed["last_error"].startswith("gave up after 1 day")
    seen: list[BusMessage] = []
    while not notices.queue.empty():
        seen.append(notices.queue.get_nowait())
    assert [m.data["subscription_id"] for m in seen if m.type == "webhook_disabled"] == [sub["id"]]
    async with container.sessions() as s:
        actions = list(await s.scalars(select(AuditEntry.action).where(AuditEntry.object_type == "webhook")))
    assert "webhook.disabled" in actions

    # While disabled nothing is sent, and replay is refused.
    receiver.answers.clear()
    before = len(receiver.requests)
    await desk.contact(customer={"phone": "+7 916 000-00-09"})
    await deliver(worker)
    assert len(receiver.requests) == before
    r = await desk.client.post(
        f"{API}/webhooks/{sub['id']}/replay", json={"since": start.isoformat()}, headers=desk.admin
    )
    assert r.status_code == 409 and r.json()["error_id"] == "webhook-disabled"

    r = await desk.client.patch(f"{API}/webhooks/{sub['id']}", json={"enabled": True}, headers=desk.admin)
    assert r.status_code == 200 and r.json()["disabled_reason"] is None
    r = await desk.client.post(
        f"{API}/webhooks/{sub['id']}/replay", json={"since": start.isoformat()}, headers=desk.admin
    )
    assert r.status_code == 202 and r.json()["queued"] == 1
    await deliver(worker)
    assert receiver.requests[-1].answered == 200
    assert receiver.requests[-1].headers["webhook-id"] == receiver.requests[0].headers["webhook-id"]


async def test_a_receiver_answering_410_gone_disables_the_subscription_at_once(
    desk: Desk, receiver: WebhookReceiver, worker: OutboxWorker
) -> None:
    sub = await subscribe(desk.client, desk.admin, receiver.url, "interaction.created")
    receiver.answers = [410]
    await desk.contact()
    await deliver(worker)
    got = (await desk.client.get(f"{API}/webhooks/{sub['id']}", headers=desk.admin)).json()
    assert got["enabled"] is False and "410" in got["disabled_reason"]
    (item,) = (await desk.client.get(f"{API}/webhooks/{sub['id']}/deliveries", headers=desk.admin)).json()[
        "items"
    ]
    assert item["state"] == "failed"


async def test_one_delivery_is_replayed_with_its_webhook_id(
    desk: Desk, receiver: WebhookReceiver, worker: OutboxWorker
) -> None:
    sub = await subscribe(desk.client, desk.admin, receiver.url, "interaction.created")
    await desk.contact()
    await deliver(worker)
    (item,) = (await desk.client.get(f"{API}/webhooks/{sub['id']}/deliveries", headers=desk.admin)).json()[
        "items"
    ]
    r = await desk.client.post(
        f"{API}/webhooks/{sub['id']}/deliveries/{item['id']}/replay", headers=desk.admin
    )
    assert r.status_code == 202 and r.json()["queued"] == 1
    await deliver(worker)
    assert len(receiver.requests) == 2
    assert receiver.requests[0].body == receiver.requests[1].body
    assert receiver.requests[0].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]
    r = await desk.client.post(f"{API}/webhooks/{sub['id']}/deliveries/999999/replay", headers=desk.admin)
    assert r.status_code == 404 and r.json()["error_id"] == "no-such-webhook-delivery"


async def test_after_a_rotation_both_secrets_sign_until_the_overlap_ends(
    desk: Desk, receiver: WebhookReceiver, worker: OutboxWorker
) -> None:
    sub = await subscribe(desk.client, desk.admin, receiver.url, "interaction.created")
    r = await desk.client.post(
        f"{API}/webhooks/{sub['id']}/rotate-secret", json={"overlap_hours": 24}, headers=desk.admin
    )
    assert r.status_code == 200, r.text
    rotated = r.json()
    assert rotated["previous_secret"] == sub["secret"] and rotated["secret"] != sub["secret"]
    await desk.contact()
    await deliver(worker)
    request = receiver.requests[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (sub["secret"], rotated["secret"]):
        Webhook(secret).verify(request.body, request.headers)
        assert independent_signatures(secret, request.headers, request.body)
    r = await desk.client.post(
        f"{API}/webhooks/{sub['id']}/rotate-secret", json={"overlap_hours": 0}, headers=desk.admin
    )
    newest = r.json()["secret"]
    await desk.contact(customer={"phone": "+7 916 000-00-03"})
    await deliver(worker)
    request = receiver.requests[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    Webhook(newest).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(rotated["secret"]).verify(request.body, request.headers)


async def test_a_subscription_limited_to_a_project_hears_only_that_project(
    desk: Desk, receiver: WebhookReceiver, worker: OutboxWorker
) -> None:
    projects = []
    for code in ("alpha", "beta"):
        r = await desk.client.post(f"{API}/projects", json={"code": code, "name": code}, headers=desk.admin)
        assert r.status_code == 201, r.text
        projects.append(r.json()["id"])
    queues = []
    for p in projects:
        r = await desk.client.post(
            f"{API}/queues", json={"name": f"q{p}", "project_id": p}, headers=desk.admin
        )
        assert r.status_code == 201, r.text
        queues.append(r.json()["id"])
        r = await desk.client.post(
            f"{API}/entry-points",
            json={
                "name": f"site{p}",
                "channel": "webform",
                "address": f"site{p}",
                "default_queue_id": r.json()["id"],
                "project_id": p,
            },
            headers=desk.admin,
        )
        assert r.status_code == 201, r.text
    await subscribe(desk.client, desk.admin, receiver.url, "interaction.created", project_id=projects[0])
    a = (await desk.contact(entry=f"site{projects[0]}", customer={"phone": "+7 916 000-00-04"}))[
        "interaction"
    ]
    await desk.contact(entry=f"site{projects[1]}", customer={"phone": "+7 916 000-00-05"})
    await deliver(worker)
    assert [r.event["data"]["interaction_id"] for r in receiver.requests] == [a["id"]]
    assert receiver.requests[0].event["data"]["project_id"] == projects[0]


async def test_customer_changes_are_sent_with_the_card_s_fields(
    desk: Desk, receiver: WebhookReceiver, worker: OutboxWorker
) -> None:
    await subscribe(
        desk.client,
        desk.admin,
        receiver.url,
        "customer.created",
        "customer.updated",
        "customer.deleted",
    )
    r = await desk.client.post(
        f"{API}/customers",
        json={
            "first_name": "Anna",
            "last_name": "Petrova",
            "identities": [{"kind": "email", "value": "anna@x.example"}],
        },
        headers=desk.admin,
    )
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    r = await desk.client.patch(f"{API}/customers/{cid}", json={"vip": True}, headers=desk.admin)
    assert r.status_code == 200, r.text
    r = await desk.client.delete(f"{API}/customers/{cid}", headers=desk.admin)
    assert r.status_code == 204, r.text
    await deliver(worker)
    events = [r.event for r in receiver.requests]
    assert [e["type"] for e in events] == ["customer.created", "customer.updated", "customer.deleted"]
    assert events[0]["data"]["first_name"] == "Anna" and events[0]["data"]["id"] == cid
    assert events[1]["data"]["changed_fields"] == ["vip"] and events[1]["data"]["vip"] is True
    assert events[2]["data"]["id"] == cid
    assert events[0]["timestamp"].endswith("Z")


async def test_a_rolled_back_change_queues_no_webhook(desk: Desk, container: Container) -> None:
    from frontoffice.domain.webhooks import WebhookEvent
    from frontoffice.services.webhooks import record_event

    await subscribe(desk.client, desk.admin, "http://127.0.0.1:9/x", "deal.created")
    with pytest.raises(RuntimeError):
        async with container.sessions.begin() as s:
            record_event(s, WebhookEvent("deal.created", container.webhooks.clock(), "deal", 1, {"id": 1}))
            raise RuntimeError("the change fails")
    async with container.sessions.begin() as s:
        pass  # a later transaction does not pick up the dropped event
    async with container.sessions() as s:
        assert list(await s.scalars(select(OutboxItem).where(OutboxItem.channel == "webhook"))) == []


async def test_only_administrators_manage_webhooks_and_bad_input_is_a_4xx(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    supervisor = await token_headers(container, "sup", Role.SUPERVISOR)
    assert (await client.get(f"{API}/webhooks", headers=supervisor)).status_code == 403
    body = {"name": "x", "url": "http://127.0.0.1:9/x", "event_types": ["interaction.created"]}
    assert (await client.post(f"{API}/webhooks", json=body, headers=supervisor)).status_code == 403
    r = await client.post(
        f"{API}/webhooks", json={**body, "event_types": ["nope.nope"]}, headers=admin_headers
    )
    assert r.status_code == 422
    r = await client.post(f"{API}/webhooks", json={**body, "url": "ftp://x.example/"}, headers=admin_headers)
    assert r.status_code == 422
    r = await client.post(f"{API}/webhooks", json={**body, "project_id": 777}, headers=admin_headers)
    assert r.status_code == 404 and r.json()["error_id"] == "no-such-project"
    assert (await client.get(f"{API}/webhooks/12345", headers=admin_headers)).status_code == 404
    types = (await client.get(f"{API}/webhooks/event-types", headers=admin_headers)).json()
    assert {"interaction.offered", "call.ended", "recording.ready", "deal.updated"} <= {
        t["type"] for t in types
    }
    created = (await client.post(f"{API}/webhooks", json=body, headers=admin_headers)).json()
    secret = (await client.get(f"{API}/webhooks/{created['id']}/secret", headers=admin_headers)).json()
    assert secret["secret"] == created["secret"]
    assert (await client.delete(f"{API}/webhooks/{created['id']}", headers=admin_headers)).status_code == 204
    assert (await client.get(f"{API}/webhooks", headers=admin_headers)).json() == []


async def test_ticket_and_deal_changes_carry_the_values_the_change_left(
    desk: Desk, receiver: WebhookReceiver, worker: OutboxWorker
) -> None:
    await subscribe(
        desk.client,
        desk.admin,
        receiver.url,
        "ticket.created",
        "ticket.updated",
        "deal.created",
        "deal.updated",
    )
    customer = (
        await desk.client.post(f"{API}/customers", json={"first_name": "Oleg"}, headers=desk.admin)
    ).json()
    r = await desk.client.post(
        f"{API}/tickets", json={"customer_id": customer["id"], "subject": "Refund"}, headers=desk.admin
    )
    assert r.status_code == 201, r.text
    ticket = r.json()
    r = await desk.client.patch(
        f"{API}/tickets/{ticket['id']}", json={"priority": "high"}, headers=desk.admin
    )
    assert r.status_code == 200, r.text
    r = await desk.client.post(
        f"{API}/deals",
        json={"customer_id": customer["id"], "title": "Annual plan", "amount": "1200.50", "currency": "RUB"},
        headers=desk.admin,
    )
    assert r.status_code == 201, r.text
    deal = r.json()
    r = await desk.client.patch(
        f"{API}/deals/{deal['id']}", json={"title": "Two-year plan"}, headers=desk.admin
    )
    assert r.status_code == 200, r.text
    await deliver(worker)
    # In order per object (the ticket's, the deal's); the two objects' events may interleave.
    tickets = [r.event for r in receiver.requests if r.event["type"].startswith("ticket.")]
    deals = [r.event for r in receiver.requests if r.event["type"].startswith("deal.")]
    assert [e["type"] for e in tickets] == ["ticket.created", "ticket.updated"]
    assert [e["type"] for e in deals] == ["deal.created", "deal.updated"]
    assert tickets[0]["data"]["subject"] == "Refund" and tickets[0]["data"]["customer_id"] == customer["id"]
    assert tickets[1]["data"]["priority"] == "high", "the update's own values, not the row before it"
    assert deals[0]["data"]["amount_minor"] == 120050 and deals[0]["data"]["currency"] == "RUB"
    assert deals[1]["data"]["title"] == "Two-year plan"


async def test_a_call_ending_sends_call_ended_and_its_recording_ready(
    desk: Desk, receiver: WebhookReceiver, worker: OutboxWorker, container: Container
) -> None:
    from frontoffice.domain.model import InteractionEventType
    from frontoffice.services.interactions import log_event
    from frontoffice.store.tables import Interaction

    await subscribe(desk.client, desk.admin, receiver.url, "call.ended", "recording.ready")
    now = container.webhooks.clock()
    async with container.sessions.begin() as s:
        call = Interaction(
            channel="voice",
            direction="inbound",
            state="wrap_up",
            from_address="+74951234567",
            attributes={"recordings": ["/data/recordings/77.wav", "/data/recordings/77-stereo.wav"]},
            created_at=now,
        )
        s.add(call)
        await s.flush()
        log_event(s, call, InteractionEventType.CALL_LEG, now, leg="agent", cause="bye_agent")
    async with container.sessions.begin() as s:
        log_event(
            s,
            call,
            InteractionEventType.CALL_LEG,
            now,
            leg="caller",
            call_id="c1",
            cause="bye_caller",
            talk_s=42.0,
        )
    await deliver(worker)
    events = [r.event for r in receiver.requests]
    assert [e["type"] for e in events] == ["call.ended", "recording.ready"], "an agent's leg is not the call"
    assert events[0]["data"]["cause"] == "bye_caller" and events[0]["data"]["talk_s"] == 42.0
    assert [f["name"] for f in events[1]["data"]["recordings"]] == ["77.wav", "77-stereo.wav"]
    assert events[1]["data"]["recordings"][0]["path"] == f"/api/v1/voice/calls/{call.id}/recordings/77.wav"


async def test_a_contact_s_life_is_sent_offered_connected_completed(
    desk: Desk, receiver: WebhookReceiver, worker: OutboxWorker
) -> None:
    await subscribe(
        desk.client,
        desk.admin,
        receiver.url,
        "interaction.offered",
        "interaction.connected",
        "interaction.completed",
    )
    queue = await desk.queue("sales")
    await desk.entry("shop", queue)
    olga = await desk.agent("olga", {queue: 1})
    await desk.login("olga")
    iid = (await desk.contact(entry="shop"))["interaction"]["id"]
    assert (await desk.client.post(f"{API}/agent/offers/{iid}/accept", headers=olga)).status_code == 204
    r = await desk.client.post(f"{API}/agent/contacts/{iid}/complete", json={}, headers=olga)
    assert r.status_code in (200, 204), r.text
    await deliver(worker)
    events = [r.event for r in receiver.requests]
    assert [e["type"] for e in events] == [
        "interaction.offered",
        "interaction.connected",
        "interaction.completed",
    ]
    assert events[0]["data"]["agent_ids"] == [desk.agent_ids["olga"]]
    assert events[1]["data"]["agent_id"] == desk.agent_ids["olga"]
    assert all(e["data"]["interaction_id"] == iid for e in events)


async def test_a_delivery_to_an_address_not_allowed_is_refused_logged_and_sent_once_it_is_allowed(
    desk: Desk, receiver: WebhookReceiver, container: Container, clock: ShiftedClock, worker: OutboxWorker
) -> None:
    # Subscribed while loopback was allowed; this worker's sender allows no internal network (as
    # after the setting changed, or a name that now resolves to an internal address).
    sub = await subscribe(desk.client, desk.admin, receiver.url, "interaction.created")
    strict = OutboxWorker(container.sessions, container.blobs, clock=clock, node_id="t", jitter=lambda: 0.5)
    sender = WebhookSender(
        container.sessions, container.bus, clock=clock, recorder=container.webhooks.recorder
    )
    strict.register(sender, on_given_up=sender)
    try:
        await desk.contact()
        await deliver(strict)
        await desk.contact()
        await deliver(strict)
    finally:
        await sender.close()
    assert receiver.requests == []
    log = (await desk.client.get(f"{API}/webhooks/{sub['id']}/attempts", headers=desk.admin)).json()["items"]
    assert [a["outcome"] for a in log] == ["refused", "refused"]
    assert log[0]["error"].startswith("refused: 127.0.0.1 is a loopback address")
    assert "integrations_allowed_networks" in log[0]["error"] and log[0]["response_status"] is None
    items = (await desk.client.get(f"{API}/webhooks/{sub['id']}/deliveries", headers=desk.admin)).json()[
        "items"
    ]
    assert [i["state"] for i in items] == ["queued", "queued"]  # retried: the network may be allowed
    assert items[0]["last_error"] == log[0]["error"]
    assert (await desk.client.get(f"{API}/webhooks/{sub['id']}", headers=desk.admin)).json()["enabled"]
    # The operator allows the network (the fixture's worker does): the retries deliver, none lost.
    clock.advance(FIRST_RETRY_S + 1)
    await deliver(worker)
    assert receiver.types() == ["interaction.created", "interaction.created"]


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    s = SmtpSink().start()
    yield s
    s.stop()


async def test_a_disabled_subscription_is_emailed_to_the_admins_through_the_outbox(
    desk: Desk, receiver: WebhookReceiver, worker: OutboxWorker, container: Container, sink: SmtpSink
) -> None:
    await make_user(container, "boss", Role.ADMIN, email="boss@center.example")
    await make_user(container, "lead", Role.SUPERVISOR, email="lead@center.example")
    r = await desk.client.post(
        f"{API}/entry-points",
        json={"name": "Support mail", "channel": "email", "address": "support@center.example", "rules": []},
        headers=desk.admin,
    )
    assert r.status_code == 201, r.text
    worker.register(EmailSender(SmtpRelay(host="127.0.0.1", port=sink.port, security="none", timeout_s=10)))
    sub = await subscribe(desk.client, desk.admin, receiver.url, "interaction.created")
    receiver.answers = [410]
    await desk.contact()
    await deliver(worker)  # the webhook is refused with 410; the notice queued with the change goes out
    (mail,) = sink.received
    assert mail.rcpt_tos == ["boss@center.example"]  # administrators only
    message = mail.message
    assert message["Subject"] == 'Webhook "ERP" was disabled'
    assert message["From"] == "Support mail <support@center.example>"
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_content()
    assert "the receiver answered 410 Gone" in text and receiver.url in text and f"id {sub['id']}" in text
    async with container.sessions() as s:
        (row,) = (await s.scalars(select(OutboxItem).where(OutboxItem.channel == "email"))).all()
    assert row.state == "sent" and row.subject_key == f"notice:webhook:{sub['id']}:en"


async def test_the_disable_notice_reaches_each_administrator_in_their_language(
    desk: Desk, receiver: WebhookReceiver, worker: OutboxWorker, container: Container, sink: SmtpSink
) -> None:
    await make_user(container, "boss", Role.ADMIN, email="boss@center.example")  # English: the default
    await make_user(container, "olga", Role.ADMIN, email="olga@center.example", language="ru")
    await make_user(container, "ivan", Role.ADMIN, email="ivan@center.example", language="ru")
    r = await desk.client.post(
        f"{API}/entry-points",
        json={"name": "Support mail", "channel": "email", "address": "support@center.example", "rules": []},
        headers=desk.admin,
    )
    assert r.status_code == 201, r.text
    worker.register(EmailSender(SmtpRelay(host="127.0.0.1", port=sink.port, security="none", timeout_s=10)))
    sub = await subscribe(desk.client, desk.admin, receiver.url, "interaction.created")
    receiver.answers = [410]
    await desk.contact()
    await deliver(worker)
    mails = {tuple(m.rcpt_tos): m.message for m in sink.received}
    assert sorted(mails) == [("boss@center.example",), ("ivan@center.example", "olga@center.example")]
    english, russian = mails[("boss@center.example",)], mails[("ivan@center.example", "olga@center.example")]
    assert english["Subject"] == 'Webhook "ERP" was disabled' and english["Content-Language"] == "en"
    assert "the receiver answered 410 Gone" in english.get_content()
    assert russian["Subject"] == "Вебхук «ERP» отключён" and russian["Content-Language"] == "ru"
    text = russian.get_content()
    assert f"Подписка на вебхук «ERP» (id {sub['id']}) отключена" in text
    assert "Причина: получатель ответил 410 Gone" in text and f"Получатель: {receiver.url}" in text
    assert "Администрирование, Вебхуки" in text and "disabled" not in text


async def test_without_outgoing_mail_the_disable_notice_is_skipped_and_logged(
    desk: Desk,
    receiver: WebhookReceiver,
    worker: OutboxWorker,
    container: Container,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await make_user(container, "boss", Role.ADMIN, email="boss@center.example")
    await subscribe(desk.client, desk.admin, receiver.url, "interaction.created")
    receiver.answers = [410]
    await desk.contact()
    with caplog.at_level(logging.WARNING, logger="frontoffice.notices"):
        await deliver(worker)
    assert "no outgoing mail is configured" in caplog.text
    async with container.sessions() as s:
        assert (await s.scalars(select(OutboxItem).where(OutboxItem.channel == "email"))).all() == []
