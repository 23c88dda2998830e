"""The contact path's fast routes (web/fast_routes.py) answer exactly as FastAPI's routes of the same
paths: every request here is sent to the application with them and to one without them, and the
answers are compared. Well-formed requests are answered by the fast routes; everything else is
handed to FastAPI, whose error answers stay the only ones."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from starlette.types import ASGIApp, Receive, Scope, Send

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role
from frontoffice.store.tables import EntryPoint
from frontoffice.web.app import create_app
from frontoffice.web.fast_routes import DECLINED, FastRoute

from ..conftest import token_headers
from .test_acd_api import API, Desk


class Seen:
    """ASGI wrapper noting, per request, whether a fast route answered it (its route in the scope,
    not handed back)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.fast: list[bool] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            self.fast.append(isinstance(scope.get("route"), FastRoute) and not scope.get(DECLINED))


class Pair:
    """The same container behind two applications: with the fast routes and without."""

    def __init__(self, container: Container) -> None:
        self.with_fast = Seen(create_app(container))
        self.without = create_app(container, fast_routes=False)

    def client(self, app: ASGIApp) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def pair(container: Container) -> AsyncIterator[tuple[Pair, httpx.AsyncClient, httpx.AsyncClient]]:
    p = Pair(container)
    async with p.client(p.with_fast) as fast, p.client(p.without) as slow:
        yield p, fast, slow


_IDS = re.compile(r'"(id|interaction_id|customer_id|contact_id|thread_id)":\s*\d+')
_TIMES = re.compile(r'"\d{4}-\d\d-\d\dT[0-9:.]+(Z|[+-]\d\d:\d\d)?"')


def _shape(r: httpx.Response) -> tuple[int, str, str]:
    """Status, content type and body, with ids and times (which differ between two contacts) out."""
    body = _TIMES.sub('"<time>"', _IDS.sub(r'"\1": 0', r.text))
    if r.headers.get("content-type", "").startswith("application/json") and body:
        body = json.dumps(json.loads(body), sort_keys=True)
    return r.status_code, r.headers.get("content-type", ""), body


async def _site(
    client: httpx.AsyncClient, container: Container, admin: dict[str, str], **queue: Any
) -> tuple[Desk, int]:
    """A queue "support" (with ``queue`` settings) behind the web form entry point "site"."""
    desk = Desk(client, container, admin)
    q = await desk.queue("support", **queue)
    await desk.entry("site", q)
    return desk, q


async def _both(
    fast: httpx.AsyncClient, slow: httpx.AsyncClient, method: str, path: str, **kw: Any
) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    return _shape(await fast.request(method, path, **kw)), _shape(await slow.request(method, path, **kw))


async def test_contacts_posted_accepted_and_completed_answer_the_same_and_take_the_fast_routes(
    pair: tuple[Pair, httpx.AsyncClient, httpx.AsyncClient],
    container: Container,
    admin_headers: dict[str, str],
) -> None:
    p, fast, slow = pair
    desk, q = await _site(fast, container, admin_headers, wrap_up_s=0)
    agent = await desk.agent("ann", {q: 1})
    await desk.login("ann")
    answers = []
    for n, client in enumerate((fast, slow, fast, slow)):
        posted = await client.post(
            f"{API}/interactions",
            json={
                "entry_point": "site",
                "subject": "Hi",
                "body": "Hello",
                "customer": {"email": "a@example.com"},
            },
            headers={**admin_headers, "Idempotency-Key": f"key-{n}"},
        )
        iid = posted.json()["interaction"]["id"]
        accepted = await client.post(f"{API}/agent/offers/{iid}/accept", headers=agent)
        completed = await client.post(
            f"{API}/agent/contacts/{iid}/complete", json={"notes": "done"}, headers=agent
        )
        answers.append([_shape(posted), _shape(accepted), _shape(completed)])
    assert answers[0] == answers[1] == answers[2] == answers[3]
    assert [a[0][0] for a in answers] == [201] * 4
    # Every request of the two contacts sent to the application with fast routes took one.
    assert p.with_fast.fast[-6:] == [True] * 6


async def test_a_repeated_idempotency_key_answers_the_first_contact_on_both(
    pair: tuple[Pair, httpx.AsyncClient, httpx.AsyncClient],
    container: Container,
    admin_headers: dict[str, str],
) -> None:
    _, fast, slow = pair
    await _site(fast, container, admin_headers)
    body = {"entry_point": "site", "subject": "Hi", "customer": {"phone": "+7 916 000-00-01"}}
    first = await fast.post(
        f"{API}/interactions", json=body, headers={**admin_headers, "Idempotency-Key": "k"}
    )
    assert first.status_code == 201
    again_fast = await fast.post(
        f"{API}/interactions", json=body, headers={**admin_headers, "Idempotency-Key": "k"}
    )
    again_slow = await slow.post(
        f"{API}/interactions", json=body, headers={**admin_headers, "Idempotency-Key": "k"}
    )
    assert again_fast.status_code == again_slow.status_code == 200
    assert again_fast.json() == again_slow.json()
    assert again_fast.json()["interaction"]["id"] == first.json()["interaction"]["id"]


async def test_refused_and_malformed_requests_get_fastapis_answers(
    pair: tuple[Pair, httpx.AsyncClient, httpx.AsyncClient],
    container: Container,
    admin_headers: dict[str, str],
) -> None:
    p, fast, slow = pair
    desk, q = await _site(fast, container, admin_headers)
    agent = await desk.agent("ann", {q: 1})
    supervisor = await token_headers(container, "sue", Role.SUPERVISOR)
    good = {"entry_point": "site", "subject": "Hi", "customer": {"email": "a@example.com"}}
    json_headers = {**admin_headers, "Content-Type": "application/json"}
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", f"{API}/interactions", {"content": b"{not json", "headers": json_headers}),
        ("POST", f"{API}/interactions", {"content": b"", "headers": json_headers}),
        # No Content-Type: FastAPI reads JSON all the same (201); the fast route leaves it to FastAPI.
        ("POST", f"{API}/interactions", {"content": json.dumps(good).encode(), "headers": admin_headers}),
        ("POST", f"{API}/interactions", {"content": b"[1, 2]", "headers": json_headers}),
        ("POST", f"{API}/interactions", {"json": {**good, "priority": "high"}, "headers": admin_headers}),
        (
            "POST",
            f"{API}/interactions",
            {"json": {**good, "customer": {"email": "not-an-email"}}, "headers": admin_headers},
        ),
        (
            "POST",
            f"{API}/interactions",
            {"json": {**good, "entry_point": "nowhere"}, "headers": admin_headers},
        ),
        ("POST", f"{API}/interactions", {"json": good}),
        ("POST", f"{API}/interactions", {"json": good, "headers": {"Authorization": "Bearer fo_wrong"}}),
        ("POST", f"{API}/interactions", {"json": good, "headers": {"Authorization": "Basic abc"}}),
        ("POST", f"{API}/interactions", {"json": good, "headers": {**admin_headers, "Idempotency-Key": ""}}),
        (
            "POST",
            f"{API}/interactions",
            {"json": good, "headers": {**admin_headers, "Idempotency-Key": "x" * 201}},
        ),
        ("POST", f"{API}/interactions", {"json": good, "headers": agent}),  # agents may not post contacts
        ("POST", f"{API}/interactions", {"json": {"entry_point": "site"}, "headers": {}}),
        ("PUT", f"{API}/interactions", {"json": good, "headers": admin_headers}),
        ("POST", f"{API}/agent/offers/999999/accept", {"headers": agent}),
        ("POST", f"{API}/agent/offers/abc/accept", {"headers": agent}),
        ("POST", f"{API}/agent/offers/-1/accept", {"headers": agent}),
        ("POST", f"{API}/agent/offers/999999/accept", {"headers": supervisor}),
        ("POST", f"{API}/agent/offers/999999/accept", {}),
        ("GET", f"{API}/agent/offers/1/accept", {"headers": agent}),
        ("POST", f"{API}/agent/contacts/999999/complete", {"json": {}, "headers": agent}),
        ("POST", f"{API}/agent/contacts/999999/complete", {"json": {"disposition": 5}, "headers": agent}),
        ("POST", f"{API}/agent/contacts/999999/complete", {"headers": agent}),
        (
            "POST",
            f"{API}/agent/contacts/999999/complete",
            {"json": {"notes": "x" * 100_000}, "headers": agent},
        ),
    ]
    for method, path, kw in cases:
        with_fast, without = await _both(fast, slow, method, path, **kw)
        assert with_fast == without, (method, path, kw)
    # The bodies FastAPI refuses were handed to it; refusals of well-formed requests (an unknown
    # entry point, a missing permission, no such offer) came from the fast routes' use cases.
    assert any(p.with_fast.fast) and not all(p.with_fast.fast)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=8,
)
_field = st.sampled_from(
    ["entry_point", "subject", "body", "priority", "customer", "attributes", "channel", "x"]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=st.dictionaries(_field, _json, max_size=5),
    customer=st.one_of(
        st.none(), st.dictionaries(st.sampled_from(["email", "phone", "first_name"]), _json, max_size=2)
    ),
)
async def test_any_contact_body_is_answered_alike_with_and_without_the_fast_routes(
    pair: tuple[Pair, httpx.AsyncClient, httpx.AsyncClient],
    container: Container,
    admin_headers: dict[str, str],
    fields: dict[str, Any],
    customer: dict[str, Any] | None,
) -> None:
    _, fast, slow = pair
    async with container.sessions() as s:  # one queue and entry point for every example
        if not await s.scalar(select(func.count()).select_from(EntryPoint)):
            await _site(fast, container, admin_headers)
    body = {"entry_point": "site", **fields}
    if customer is not None:
        body["customer"] = customer
    with_fast, without = await _both(
        fast, slow, "POST", f"{API}/interactions", json=body, headers=admin_headers
    )
    assert with_fast == without, body
