"""``Idempotency-Key`` on every API POST: a repeat answers the first answer and does nothing again."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from frontoffice.bootstrap import Container
from frontoffice.store.idempotency import IdempotentRequests
from frontoffice.store.tables import IdempotentRequest, Note, Queue, Ticket
from frontoffice.web.idempotency import is_exempt, request_fingerprint, stored_key

from ..conftest import ShiftedClock
from .test_acd_api import API, Desk

KEY = {"Idempotency-Key": "action-1"}


@pytest.fixture
async def desk(client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]) -> Desk:
    return Desk(client, container, admin_headers)


async def count(container: Container, column: Any) -> int:
    async with container.sessions() as s:
        return int(await s.scalar(select(func.count(column))) or 0)


async def test_completing_a_contact_with_a_ticket_twice_with_one_key_makes_one_ticket_and_one_note(
    desk: Desk, container: Container
) -> None:
    q = await desk.queue("support")
    await desk.entry("site", q)
    await desk.agent("olga", {q: 1})
    await desk.login("olga")
    created = await desk.contact()
    iid, customer_id = created["interaction"]["id"], created["interaction"]["customer_id"]
    olga = desk.agents["olga"]
    assert (await desk.client.post(f"{API}/agent/offers/{iid}/accept", headers=olga)).status_code == 204
    notes_before = await count(container, Note.id)

    # The browser sends one key per user action on each of the action's requests.
    complete = {"notes": "Explained the invoice"}
    ticket = {"customer_id": customer_id, "subject": "Invoice", "source_interaction_id": iid}
    answers = []
    for _ in range(2):
        done = await desk.client.post(
            f"{API}/agent/contacts/{iid}/complete", json=complete, headers=olga | KEY
        )
        opened = await desk.client.post(f"{API}/tickets", json=ticket, headers=olga | KEY)
        answers.append((done, opened))

    (done1, opened1), (done2, opened2) = answers
    assert done1.status_code == 200, done1.text
    assert opened1.status_code == 201, opened1.text
    assert (done2.status_code, done2.json()) == (done1.status_code, done1.json())
    assert (opened2.status_code, opened2.json()) == (opened1.status_code, opened1.json())
    assert done2.headers["Idempotent-Replayed"] == "true"
    assert await count(container, Ticket.id) == 1
    assert await count(container, Note.id) == notes_before + 1


async def test_saving_a_note_twice_with_one_key_saves_one_note(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    customer = await client.post(f"{API}/customers", json={"first_name": "Ivan"}, headers=admin_headers)
    cid = customer.json()["id"]
    first = await client.post(
        f"{API}/customers/{cid}/notes", json={"body": "Call back"}, headers=admin_headers | KEY
    )
    again = await client.post(
        f"{API}/customers/{cid}/notes", json={"body": "Call back"}, headers=admin_headers | KEY
    )
    assert first.status_code == 201, first.text
    assert (again.status_code, again.json()) == (201, first.json())
    assert await count(container, Note.id) == 1


async def test_creating_a_queue_twice_with_one_key_creates_one_queue(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    body = {"name": "support", "settings": {}}
    first = await client.post(f"{API}/queues", json=body, headers=admin_headers | KEY)
    again = await client.post(f"{API}/queues", json=body, headers=admin_headers | KEY)
    assert first.status_code == 201, first.text
    assert (again.status_code, again.json()) == (201, first.json())
    assert await count(container, Queue.id) == 1


async def test_one_key_with_another_body_is_refused_as_reused(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    await client.post(f"{API}/queues", json={"name": "support", "settings": {}}, headers=admin_headers | KEY)
    r = await client.post(
        f"{API}/queues",
        json={"name": "sales", "settings": {}},
        headers=admin_headers | KEY | {"Accept-Language": "ru"},
    )
    assert r.status_code == 409 and r.json()["error_id"] == "idempotency-key-reused"
    assert "Idempotency-Key" in r.json()["message"] and "другим" in r.json()["message"]
    assert await count(container, Queue.id) == 1


async def test_a_repeat_while_the_first_request_runs_is_refused_as_in_progress(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    body = b'{"name": "support", "settings": {}}'
    me = (await client.get(f"{API}/me", headers=admin_headers)).json()
    # The first request has claimed the key and not answered yet (as a request running on another node).
    store = IdempotentRequests(container.sessions, clock=container.auth.clock)
    scoped = stored_key("POST", f"{API}/queues", "action-1")
    digest = request_fingerprint(
        container.settings.ensure_secret_key().encode(), "POST", f"{API}/queues", b"", body
    )
    assert await store.claim(me["id"], scoped, digest) is None

    r = await client.post(
        f"{API}/queues", content=body, headers=admin_headers | KEY | {"Content-Type": "application/json"}
    )
    assert r.status_code == 409 and r.json()["error_id"] == "idempotency-key-in-progress"
    assert await count(container, Queue.id) == 0


async def test_keys_are_per_user_and_expire_after_24_hours(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    agent_headers: dict[str, str],
    clock: ShiftedClock,
) -> None:
    cid = (await client.post(f"{API}/customers", json={"first_name": "Ivan"}, headers=admin_headers)).json()[
        "id"
    ]
    url, note = f"{API}/customers/{cid}/notes", {"body": "Call back"}
    assert (await client.post(url, json=note, headers=admin_headers | KEY)).status_code == 201
    other_user = await client.post(url, json=note, headers=agent_headers | KEY)
    assert other_user.status_code == 201 and "Idempotent-Replayed" not in other_user.headers
    assert await count(container, Note.id) == 2

    clock.advance(24 * 3600 + 1)
    after_expiry = await client.post(url, json=note, headers=admin_headers | KEY)
    assert after_expiry.status_code == 201 and "Idempotent-Replayed" not in after_expiry.headers
    assert await count(container, Note.id) == 3


async def test_a_request_without_a_key_or_with_a_too_long_one_is_not_deduplicated(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    cid = (await client.post(f"{API}/customers", json={"first_name": "Ivan"}, headers=admin_headers)).json()[
        "id"
    ]
    for _ in range(2):
        r = await client.post(f"{API}/customers/{cid}/notes", json={"body": "Hi"}, headers=admin_headers)
        assert r.status_code == 201
    assert await count(container, Note.id) == 2
    r = await client.post(
        f"{API}/customers/{cid}/notes",
        json={"body": "Hi"},
        headers=admin_headers | {"Idempotency-Key": "k" * 201},
    )
    assert r.status_code == 400 and r.json()["error_id"] == "invalid-idempotency-key"


async def test_every_post_route_in_the_openapi_answers_a_repeat_with_the_first_answer(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    spec = (await client.get("/api/openapi.json")).json()
    # The API's own routes; the providers' webhooks (/hooks/...) are deduplicated by the provider's
    # message id instead (docs/sms.md, docs/telegram.md).
    api = {path: ops for path, ops in spec["paths"].items() if path.startswith(f"{API}/")}
    posts = sorted(path for path, ops in api.items() if "post" in ops and not is_exempt(path))
    exempt = sorted(path for path, ops in api.items() if "post" in ops and is_exempt(path))
    assert exempt == [
        f"{API}/auth/login",
        f"{API}/auth/logout",
        # Jobs honour the key themselves: a repeat answers the first job (tests/integration/test_csv_jobs.py).
        f"{API}/customers/export",
        f"{API}/customers/import",
        f"{API}/customers/{{customer_id}}/personal-data",
        f"{API}/interactions",
        f"{API}/me/tokens",
        f"{API}/public/forms/{{public_key}}",  # no user: the form keeps its keys itself, per form
        f"{API}/users/{{user_id}}/tokens",
    ]
    assert len(posts) > 30  # the table is the app's own routes, not a hand-kept list
    for n, path in enumerate(posts):
        url = re.sub(r"\{[^}]+\}", "1", path)
        headers = admin_headers | {"Idempotency-Key": f"table-{n}"}
        first = await client.post(url, json={}, headers=headers)
        again = await client.post(url, json={}, headers=headers)
        assert again.headers.get("Idempotent-Replayed") == "true", (path, first.status_code, again.text)
        assert (again.status_code, again.content) == (first.status_code, first.content), path
        parameters = spec["paths"][path]["post"].get("parameters", [])
        assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in parameters), path


async def test_two_identical_requests_at_once_create_one_queue(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    body = {"name": "support", "settings": {}}
    answers = await asyncio.gather(
        *(client.post(f"{API}/queues", json=body, headers=admin_headers | KEY) for _ in range(4))
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}, [r.text for r in answers]
    assert {r.json()["error_id"] for r in answers if r.status_code == 409} <= {"idempotency-key-in-progress"}
    assert await count(container, Queue.id) == 1


async def test_a_released_key_may_be_claimed_again_with_another_request(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    me = (await client.get(f"{API}/me", headers=admin_headers)).json()
    store = IdempotentRequests(container.sessions, clock=container.auth.clock)
    assert await store.claim(me["id"], "k", "first") is None
    await store.release(me["id"], "k")  # what the middleware does after a 5xx answer or an exception
    assert await store.claim(me["id"], "k", "second") is None


async def test_the_header_is_harmless_on_put_patch_and_delete(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    qid = (
        await client.post(f"{API}/queues", json={"name": "support", "settings": {}}, headers=admin_headers)
    ).json()["id"]
    for name in ("first", "second"):  # one key, two different edits: both apply, nothing is replayed
        r = await client.patch(f"{API}/queues/{qid}", json={"name": name}, headers=admin_headers | KEY)
        assert r.status_code == 200 and "Idempotent-Replayed" not in r.headers
    assert (await client.get(f"{API}/queues/{qid}", headers=admin_headers)).json()["name"] == "second"
    code = {"code": "lunch", "name": "Lunch"}
    r = await client.put(f"{API}/codes/not-ready-reasons", json=code, headers=admin_headers | KEY)
    assert r.status_code == 200 and "Idempotent-Replayed" not in r.headers
    cid = (await client.post(f"{API}/customers", json={"first_name": "Ivan"}, headers=admin_headers)).json()[
        "id"
    ]
    r = await client.delete(f"{API}/customers/{cid}", headers=admin_headers | KEY)
    assert r.status_code == 204, r.text


async def test_a_new_api_token_is_never_stored_to_be_replayed(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    first = await client.post(f"{API}/me/tokens", json={"name": "sync"}, headers=admin_headers | KEY)
    again = await client.post(f"{API}/me/tokens", json={"name": "sync"}, headers=admin_headers | KEY)
    assert first.status_code == again.status_code == 201
    assert first.json()["token"] != again.json()["token"] and "Idempotent-Replayed" not in again.headers
    assert await count(container, IdempotentRequest.key) == 0
