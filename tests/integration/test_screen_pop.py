"""Screen-pop lookup against a real endpoint on loopback: an offered contact's customer is looked up
alongside the offer; the answer reaches the agent's socket; a slow or failing endpoint never holds
the offer; answers are cached."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from frontoffice.bootstrap import Container
from frontoffice.bus import BusMessage
from frontoffice.services.screen_pop import LookupConfig, ScreenPop

from ..conftest import eventually, free_port, serve_in_task
from .test_acd_api import Desk

API = "/api/v1"
FOUND = "+79160000001"
SLOW = "+79160000002"
FAILING = "+79160000003"


@dataclass
class LookupEndpoint:
    """An ERP's customer lookup: ``GET /customers/{phone}`` answers the record of FOUND, holds the
    answer for SLOW until released, answers 500 for FAILING and 404 otherwise."""

    port: int = field(default_factory=free_port)
    hits: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    async def start(self) -> LookupEndpoint:
        app = Starlette(routes=[Route("/customers/{phone}", self._lookup)])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = await serve_in_task(self._server)
        return self

    async def stop(self) -> None:
        self.released.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def asked(self, phone: str) -> int:
        return sum(1 for p, _ in self.hits if p == phone)

    async def _lookup(self, request: Request) -> Response:
        phone = request.path_params["phone"]
        self.hits.append((phone, {k.lower(): v for k, v in request.headers.items()}))
        if phone == SLOW:
            await self.released.wait()
        if phone == FAILING:
            return JSONResponse({"error": "database down"}, status_code=500)
        if phone in (FOUND, SLOW):
            return JSONResponse(
                {"name": "Ivan Petrov", "balance": 1250.5, "plan": "Gold", "debtor": False, "orders": [1, 2]}
            )
        return JSONResponse({"error": "not found"}, status_code=404)


@pytest.fixture
async def endpoint() -> AsyncIterator[LookupEndpoint]:
    e = await LookupEndpoint().start()
    yield e
    await e.stop()


@pytest.fixture
def settings_overrides(endpoint: LookupEndpoint) -> dict[str, Any]:
    return {
        "screen_pop_url": f"http://127.0.0.1:{endpoint.port}/customers/{{phone}}",
        "screen_pop_auth_header": "Authorization: Bearer erp-token",
        # The test's ERP is on loopback: an internal address, reached only when allowed.
        "integrations_allowed_networks": ["127.0.0.0/8"],
    }


@pytest.fixture
async def desk(client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]) -> Desk:
    d = Desk(client, container, admin_headers)
    q = await d.queue("support")
    await d.entry("site", q)
    await d.agent("olga", {q: 1})
    await d.login("olga")
    return d


def lookups(desk: Desk, interaction_id: int) -> list[BusMessage]:
    return [m for m in desk.drain() if m.type == "customer_lookup" and m.data["contact_id"] == interaction_id]


async def test_the_customer_s_external_fields_reach_the_agent_the_contact_is_offered_to(
    desk: Desk, endpoint: LookupEndpoint
) -> None:
    iid = (await desk.contact(customer={"phone": "+7 916 000-00-01"}))["interaction"]["id"]
    assert desk.offers_to("olga") == [iid]
    (message,) = await eventually(lambda: lookups(desk, iid), "the lookup's answer is pushed")
    assert message.audience == (f"agent:{desk.agent_ids['olga']}",)
    assert message.data["status"] == "found"
    assert message.data["fields"] == {
        "name": "Ivan Petrov",
        "balance": 1250.5,
        "plan": "Gold",
        "debtor": False,
    }
    (hit,) = endpoint.hits
    assert hit[0] == FOUND and hit[1]["authorization"] == "Bearer erp-token"


async def test_a_slow_endpoint_never_holds_the_offer_and_is_given_up_after_a_second(
    desk: Desk, endpoint: LookupEndpoint
) -> None:
    iid = (await desk.contact(customer={"phone": "+7 916 000-00-02"}))["interaction"]["id"]
    # The offer is out while the endpoint has not answered (it answers only when released).
    assert desk.offers_to("olga") == [iid]
    assert not endpoint.released.is_set()
    (message,) = await eventually(lambda: lookups(desk, iid), "the time-out is reported")
    assert message.data["status"] == "failed"
    assert message.data["error"] == "no answer within 1 s"
    assert endpoint.asked(SLOW) == 1
    assert await desk.state(iid) == "offered"


async def test_a_failing_endpoint_is_reported_and_not_cached(desk: Desk, endpoint: LookupEndpoint) -> None:
    first = (await desk.contact(customer={"phone": "+7 916 000-00-03"}))["interaction"]["id"]
    (message,) = await eventually(lambda: lookups(desk, first), "the failure is reported")
    assert message.data == {
        "contact_id": first,
        "interaction_id": first,
        "status": "failed",
        "fields": {},
        "error": "HTTP 500",
        "identity": FAILING,
    }
    r = await desk.client.get(f"{API}/interactions/{first}/external", headers=desk.agents["olga"])
    assert r.status_code == 200 and r.json()["status"] == "failed"
    assert endpoint.asked(FAILING) == 2, "a failure is asked again"


async def test_answers_are_cached_per_identity(desk: Desk, endpoint: LookupEndpoint) -> None:
    first = (await desk.contact(customer={"phone": "+7 916 000-00-01"}))["interaction"]["id"]
    await eventually(lambda: lookups(desk, first), "the first lookup")
    r = await desk.client.get(f"{API}/interactions/{first}/external", headers=desk.agents["olga"])
    assert r.json()["status"] == "found" and r.json()["fields"]["plan"] == "Gold"
    assert endpoint.asked(FOUND) == 1, "the desk's question was answered from the cache"
    unknown = (await desk.contact(customer={"phone": "+7 916 000-00-08"}))["interaction"]["id"]
    r = await desk.client.get(f"{API}/interactions/{unknown}/external", headers=desk.admin)
    assert r.json()["status"] == "not_found"


async def test_a_project_s_own_endpoint_is_used_for_its_contacts(
    desk: Desk, endpoint: LookupEndpoint, container: Container
) -> None:
    project = (
        await desk.client.post(f"{API}/projects", json={"code": "p1", "name": "P1"}, headers=desk.admin)
    ).json()
    r = await desk.client.put(
        f"{API}/integrations/screen-pop",
        json={
            "project_id": project["id"],
            "url": f"http://127.0.0.1:{endpoint.port}/customers/{{phone}}?project=p1",
            "auth_header": "X-Api-Key: p1-key",
            "identity": "phone",
        },
        headers=desk.admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["projects"][str(project["id"])]["auth_header"] == "X-Api-Key: ***"
    q = (
        await desk.client.post(
            f"{API}/queues", json={"name": "p1q", "project_id": project["id"]}, headers=desk.admin
        )
    ).json()
    r = await desk.client.post(
        f"{API}/entry-points",
        json={
            "name": "p1site",
            "channel": "webform",
            "address": "p1site",
            "default_queue_id": q["id"],
            "project_id": project["id"],
        },
        headers=desk.admin,
    )
    assert r.status_code == 201, r.text
    iid = (await desk.contact(entry="p1site", customer={"phone": "+7 916 000-00-01"}))["interaction"]["id"]
    r = await desk.client.get(f"{API}/interactions/{iid}/external", headers=desk.admin)
    assert r.json()["status"] == "found"
    assert endpoint.hits[-1][1]["x-api-key"] == "p1-key"
    agent = desk.agents["olga"]
    assert (
        await desk.client.put(f"{API}/integrations/screen-pop", json={"url": ""}, headers=agent)
    ).status_code == 403


async def test_a_lookup_on_an_address_not_allowed_is_refused_before_any_request(
    container: Container, endpoint: LookupEndpoint
) -> None:
    # The settings allow loopback for this module; a ScreenPop without the allow-list (the default)
    # refuses the same endpoint when it connects: the ERP is never asked.
    strict = ScreenPop(container.sessions, container.bus)
    try:
        result = await strict.lookup(
            LookupConfig(f"http://127.0.0.1:{endpoint.port}/customers/{{phone}}"), FOUND
        )
    finally:
        await strict.stop()
    assert result.status == "failed" and endpoint.hits == []
    assert result.error is not None and result.error.startswith("refused: 127.0.0.1 is a loopback address")
