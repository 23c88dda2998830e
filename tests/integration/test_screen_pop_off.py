"""Without a screen-pop endpoint nothing is looked up; one set in the admin API applies to the next
offer at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from frontoffice.bootstrap import Container

from ..conftest import eventually
from .test_acd_api import Desk
from .test_screen_pop import FOUND, LookupEndpoint

API = "/api/v1"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # The test's ERP is on loopback: an internal address, reached only when allowed.
    return {"integrations_allowed_networks": ["127.0.0.0/8"]}


@pytest.fixture
async def endpoint() -> AsyncIterator[LookupEndpoint]:
    e = await LookupEndpoint().start()
    yield e
    await e.stop()


async def test_no_endpoint_no_lookup_and_a_new_one_applies_to_the_next_offer(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], endpoint: LookupEndpoint
) -> None:
    desk = Desk(client, container, admin_headers)
    q = await desk.queue("support")
    await desk.entry("site", q)
    await desk.agent("olga", {q: 1})
    await desk.login("olga")
    first = (await desk.contact(customer={"phone": "+7 916 000-00-01"}))["interaction"]["id"]
    assert desk.offers_to("olga") == [first]
    r = await client.get(f"{API}/interactions/{first}/external", headers=admin_headers)
    assert r.json() == {"interaction_id": first, "status": "none", "fields": {}, "error": None}
    assert endpoint.hits == []

    r = await client.put(
        f"{API}/integrations/screen-pop",
        json={"url": f"http://127.0.0.1:{endpoint.port}/customers/{{phone}}"},
        headers=admin_headers,
    )
    assert r.status_code == 200, r.text
    await desk.agent("pavel", {q: 1})
    await desk.login("pavel")
    second = (await desk.contact(customer={"phone": "+7 916 000-00-01"}))["interaction"]["id"]

    def pushed() -> list[int]:
        return [m.data["contact_id"] for m in desk.drain() if m.type == "customer_lookup"]

    assert await eventually(pushed, "a lookup is pushed once an endpoint is set") == [second]
    assert [phone for phone, _ in endpoint.hits] == [FOUND]
    assert [m.data["status"] for m in desk.messages if m.type == "customer_lookup"] == ["found"]
