"""Sales over the REST API, on SQLite and PostgreSQL: the weighted forecast, editing a company and its
page with people, tickets and deals."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role
from frontoffice.services.context import Actor

from ..conftest import make_user

API = "/api/v1"


async def post(client: httpx.AsyncClient, headers: dict[str, str], path: str, **body: Any) -> dict[str, Any]:
    r = await client.post(f"{API}{path}", json=body, headers=headers)
    assert r.status_code == 201, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def test_the_forecast_weights_open_deals_by_stage_by_month_owner_and_currency(
    client: httpx.AsyncClient, admin_headers: dict[str, str], container: Container
) -> None:
    me = (await client.get(f"{API}/me", headers=admin_headers)).json()["id"]
    customer = (await post(client, admin_headers, "/customers", first_name="Anna"))["id"]
    for title, stage, amount, currency, close_on, owner in (
        ("lead", "lead", "1000.00", "RUB", "2027-01-10", me),
        ("negotiation", "negotiation", "2000.01", "RUB", "2027-01-31", me),
        ("won", "won", "500", "RUB", "2027-01-05", me),
        ("lost", "lost", "9999", "RUB", "2027-01-05", me),
        ("dollars", "proposal", "10", "USD", "2027-01-20", me),
        ("february", "qualified", "400", "RUB", "2027-02-01", None),
        ("march", "lead", "1", "RUB", "2027-03-01", None),
    ):
        await post(
            client,
            admin_headers,
            "/deals",
            customer_id=customer,
            title=title,
            stage=stage,
            amount=amount,
            currency=currency,
            expected_close_on=close_on,
            owner_id=owner,
        )
    r = await client.get(
        f"{API}/deals/forecast", params={"month": "2027-01", "months": 2}, headers=admin_headers
    )
    assert r.status_code == 200, r.text
    rows = [
        (
            x["month"],
            x["owner_id"],
            x["currency"],
            x["deals"],
            x["amount"],
            x["weighted_amount"],
            x["won_amount"],
        )
        for x in r.json()
    ]
    assert rows == [
        # 100000 * 10 % + 200001 * 75 % (150000.75, rounded down per deal) + 50000 won, in kopecks
        ("2027-01", me, "RUB", 3, "3500.01", "2100.00", "500.00"),
        ("2027-01", me, "USD", 1, "10.00", "5.00", "0.00"),
        ("2027-02", None, "RUB", 1, "400.00", "100.00", "0.00"),
    ]
    r = await client.get(
        f"{API}/deals/forecast", params={"month": "2027-01", "months": 25}, headers=admin_headers
    )
    assert r.status_code == 422


async def test_a_company_is_edited_and_its_page_lists_its_people_tickets_and_deals(
    client: httpx.AsyncClient, admin_headers: dict[str, str], container: Container
) -> None:
    company = (await post(client, admin_headers, "/companies", name="Acme"))["id"]
    r = await client.patch(
        f"{API}/companies/{company}",
        json={"name": "Acme Ltd", "website": "https://acme.example"},
        headers=admin_headers,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["website"]) == ("Acme Ltd", "https://acme.example")
    r = await client.patch(f"{API}/companies/{company}", json={"name": None}, headers=admin_headers)
    assert r.status_code == 400
    r = await client.patch(f"{API}/companies/999", json={"name": "x"}, headers=admin_headers)
    assert r.status_code == 404 and r.json()["error_id"] == "no-such-company"

    anna = (await post(client, admin_headers, "/customers", first_name="Anna", company_id=company))["id"]
    await post(client, admin_headers, "/customers", first_name="Boris")  # of no company
    ticket = (await post(client, admin_headers, "/tickets", customer_id=anna, subject="Invoice"))["id"]
    deal = (await post(client, admin_headers, "/deals", customer_id=anna, title="Renewal", currency="RUB"))[
        "id"
    ]

    r = await client.get(f"{API}/companies/{company}/overview", headers=admin_headers)
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["company"]["name"] == "Acme Ltd"
    assert [p["first_name"] for p in page["people"]] == ["Anna"]
    assert [t["id"] for t in page["tickets"]] == [ticket]
    assert [d["id"] for d in page["deals"]] == [deal]

    # An agent of another project sees neither the company's people nor the company.
    r = await client.post(f"{API}/projects", json={"code": "beta", "name": "Beta"}, headers=admin_headers)
    beta = r.json()["id"]
    outsider = await make_user(container, "outsider", Role.AGENT)
    r = await client.put(
        f"{API}/users/{outsider}/projects", json={"project_ids": [beta]}, headers=admin_headers
    )
    assert r.status_code == 200, r.text
    token = await container.auth.create_token(Actor.system(), "tests", user_id=outsider)
    r = await client.get(
        f"{API}/companies/{company}/overview", headers={"Authorization": f"Bearer {token.token}"}
    )
    assert r.status_code == 404


async def test_an_activity_on_a_deal_is_listed_for_its_owner_and_notified_once_when_due(
    client: httpx.AsyncClient, admin_headers: dict[str, str], container: Container, clock: Any
) -> None:
    await container.sla.stop()  # the test drives the scheduled job itself
    me = (await client.get(f"{API}/me", headers=admin_headers)).json()["id"]
    inbox = container.bus.subscribe(keys=[f"agent:{me}"])
    customer = (await post(client, admin_headers, "/customers", first_name="Anna"))["id"]
    deal = (
        await post(client, admin_headers, "/deals", customer_id=customer, title="Renewal", currency="RUB")
    )["id"]
    due = (clock() + timedelta(hours=1)).isoformat()
    later = (clock() + timedelta(hours=2)).isoformat()
    first = await post(
        client, admin_headers, "/activities", title="Call back", kind="call", due_at=due, deal_id=deal
    )
    await post(
        client, admin_headers, "/activities", title="Send the offer", due_at=later, customer_id=customer
    )
    r = await client.post(
        f"{API}/activities",
        json={"title": "x", "due_at": due, "deal_id": deal, "customer_id": customer},
        headers=admin_headers,
    )
    assert r.status_code == 422

    r = await client.get(f"{API}/activities", headers=admin_headers)
    assert [a["title"] for a in r.json()["items"]] == ["Call back", "Send the offer"]
    r = await client.get(f"{API}/activities", params={"deal_id": deal}, headers=admin_headers)
    assert [a["title"] for a in r.json()["items"]] == ["Call back"]

    assert await container.sla.notify_activities() == 0
    clock.advance(3600)
    assert await container.sla.notify_activities() == 1
    assert await container.sla.notify_activities() == 0
    message = inbox.queue.get_nowait()
    assert (message.type, message.data["activity_id"]) == ("activity.due", first["id"])

    r = await client.patch(f"{API}/activities/{first['id']}", json={"done": True}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["done_at"] is not None
    r = await client.get(f"{API}/activities", headers=admin_headers)
    assert [a["title"] for a in r.json()["items"]] == ["Send the offer"]


async def test_a_project_pipeline_drives_its_deals_stages_reasons_and_the_forecast(
    client: httpx.AsyncClient, admin_headers: dict[str, str], container: Container
) -> None:
    project = await post(client, admin_headers, "/projects", code="acme", name="Acme")
    pipeline = await post(
        client,
        admin_headers,
        "/pipelines",
        name="Acme sales",
        project_id=project["id"],
        stages=[
            {"key": "demo", "name": "Demo", "probability_pct": 20},
            {"key": "trial", "name": "Trial", "probability_pct": 60},
            {"key": "won", "name": "Won", "probability_pct": 100, "kind": "won"},
            {"key": "lost", "name": "Lost", "probability_pct": 0, "kind": "lost"},
        ],
        lost_reasons=["price", "timing"],
    )
    r = await client.post(
        f"{API}/pipelines",
        json={
            "name": "bad",
            "stages": [
                {"key": "a", "name": "A", "probability_pct": 10},
                {"key": "b", "name": "B", "probability_pct": 10},
            ],
        },
        headers=admin_headers,
    )
    assert r.status_code == 400 and r.json()["error_id"] == "invalid-pipeline"
    r = await client.get(f"{API}/pipelines", headers=admin_headers)
    assert [p["id"] for p in r.json()] == [None, pipeline["id"]]

    customer = (await post(client, admin_headers, "/customers", first_name="Anna"))["id"]
    deal = await post(
        client,
        admin_headers,
        "/deals",
        customer_id=customer,
        title="Licence",
        amount="1000",
        currency="RUB",
        project_id=project["id"],
        expected_close_on="2027-01-15",
    )
    assert (deal["pipeline_id"], deal["stage"]) == (pipeline["id"], "demo")  # the project's, first open stage
    r = await client.patch(f"{API}/deals/{deal['id']}", json={"stage": "negotiation"}, headers=admin_headers)
    assert r.status_code == 400 and r.json()["error_id"] == "no-such-stage"
    r = await client.patch(f"{API}/deals/{deal['id']}", json={"stage": "trial"}, headers=admin_headers)
    assert r.status_code == 200
    r = await client.get(f"{API}/deals/forecast", params={"month": "2027-01"}, headers=admin_headers)
    assert r.json()[0]["weighted_amount"] == "600.00"

    r = await client.patch(
        f"{API}/deals/{deal['id']}", json={"stage": "lost", "close_reason": "weather"}, headers=admin_headers
    )
    assert r.status_code == 400 and r.json()["error_id"] == "invalid-close-reason"
    r = await client.patch(
        f"{API}/deals/{deal['id']}", json={"stage": "lost", "close_reason": "price"}, headers=admin_headers
    )
    assert r.status_code == 200, r.text
    assert (r.json()["close_reason"], r.json()["closed_at"] is not None) == ("price", True)
    r = await client.get(f"{API}/deals/forecast", params={"month": "2027-01"}, headers=admin_headers)
    assert r.json() == []
    r = await client.get(
        f"{API}/deals", params={"open": "true", "pipeline_id": pipeline["id"]}, headers=admin_headers
    )
    assert r.json()["items"] == []

    # The move between stages is audited.
    async with container.sessions() as s:
        from sqlalchemy import select

        from frontoffice.store.tables import AuditEntry

        moves = [
            (e.details["from_stage"], e.details["to_stage"])
            for e in await s.scalars(
                select(AuditEntry).where(AuditEntry.action == "deal.update").order_by(AuditEntry.id)
            )
            if "to_stage" in e.details
        ]
    assert moves == [("demo", "trial"), ("trial", "lost")]

    # A stage with deals on it cannot be removed.
    r = await client.put(
        f"{API}/pipelines/{pipeline['id']}",
        json={
            "name": "Acme sales",
            "project_id": project["id"],
            "stages": [
                {"key": "demo", "name": "Demo", "probability_pct": 20},
                {"key": "won", "name": "Won", "probability_pct": 100, "kind": "won"},
                {"key": "closed_lost", "name": "Lost", "probability_pct": 0, "kind": "lost"},
            ],
        },
        headers=admin_headers,
    )
    assert r.status_code == 409 and r.json()["details"]["stages"] == ["lost"]
