"""Satisfaction surveys of solved tickets: a signed, expiring public link with a small page (en/ru,
safe to repeat: a later answer replaces the earlier one), its API, the ticket's history and the
report. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from frontoffice.bootstrap import Container
from frontoffice.services.csat import survey_email
from frontoffice.store.tables import AuditEntry, CsatSurvey, Ticket

from ..conftest import ShiftedClock
from .test_ticket_routing import HelpDesk

API = "/api/v1"


@pytest.fixture
async def desk(client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]) -> HelpDesk:
    return HelpDesk(client, container, admin_headers)


async def solve(desk: HelpDesk, ticket_id: int) -> dict[str, object]:
    r = await desk.client.patch(f"{API}/tickets/{ticket_id}", json={"status": "solved"}, headers=desk.admin)
    assert r.status_code == 200, r.text
    answer: dict[str, object] = r.json()
    return answer


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


async def test_a_solved_ticket_gets_a_survey_answered_on_its_public_page_and_reported(
    desk: HelpDesk, container: Container, clock: ShiftedClock
) -> None:
    q = await desk.queue("tickets")
    await desk.agent("olga", {q: 1})
    await desk.login("olga")
    ticket = await desk.ticket(q)
    item = ticket["work_item_id"]
    assert (
        await desk.client.post(f"{API}/agent/offers/{item}/accept", headers=desk.agents["olga"])
    ).status_code == 204
    other = await desk.ticket(None)
    assert (await desk.get(ticket["id"]))["csat"] is None

    solved = await solve(desk, ticket["id"])
    csat = solved["csat"]
    assert isinstance(csat, dict) and csat["rating"] is None
    url = str(csat["url"])
    assert url.startswith(container.settings.public_url + "/csat/")
    # Solving again (after a reopen) keeps the one survey.
    r = await desk.client.patch(f"{API}/tickets/{ticket['id']}", json={"status": "open"}, headers=desk.admin)
    assert (await solve(desk, ticket["id"]))["csat"] == csat
    await solve(desk, other["id"])

    # The public page, no sign-in, in Russian when asked.
    page = await desk.client.get(path_of(url).replace("lang=en", "lang=ru"))
    assert page.status_code == 200 and "Как мы справились?" in page.text and 'name="rating"' in page.text
    page = await desk.client.get(path_of(url))
    assert "How did we do?" in page.text and "Broken kettle" in page.text

    token = urlsplit(url).path.rsplit("/", 1)[1]
    r = await desk.client.post(f"/csat/{token}?lang=en", data={"rating": "4", "comment": "Quick, thanks"})
    assert r.status_code == 200 and "Your answer was saved" in r.text
    # Safe to repeat: a second answer within the window replaces the first.
    r = await desk.client.post(f"{API}/public/csat/{token}", json={"rating": 2, "comment": "Broke again"})
    assert r.status_code == 200 and r.json()["rating"] == 2
    r = await desk.client.get(f"{API}/public/csat/{token}")
    assert r.json()["rating"] == 2 and r.json()["comment"] == "Broke again"
    # No rating: the form says so next to the field; a tampered link is no survey.
    r = await desk.client.post(f"/csat/{token}", data={"comment": "x"})
    assert r.status_code == 422 and "Choose a rating from 1 to 5" in r.text
    assert (await desk.client.get(f"{API}/public/csat/{token[:-2]}xx")).status_code == 404
    assert (await desk.client.post(f"{API}/public/csat/{token}", json={"rating": 6})).status_code == 422

    # The ticket shows the answer; its history (audit) has the survey and both answers.
    assert (await desk.get(ticket["id"]))["csat"]["rating"] == 2
    async with container.sessions() as s:
        actions = list(
            await s.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.object_id == str(ticket["id"]), AuditEntry.action.like("ticket.csat%"))
                .order_by(AuditEntry.id)
            )
        )
    assert actions == ["ticket.csat_survey", "ticket.csat_answer", "ticket.csat_answer"]

    since = (clock() - timedelta(days=1)).isoformat()
    until = (clock() + timedelta(days=1)).isoformat()
    r = await desk.client.get(
        f"{API}/reports/csat",
        params={"since": since, "until": until, "group_by": "agent"},
        headers=desk.admin,
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["total"] == {
        "key": None,
        "sent": 2,
        "answered": 1,
        "response_rate": 0.5,
        "average": 2.0,
        "distribution": {"1": 0, "2": 1, "3": 0, "4": 0, "5": 0},
    }
    by_agent = {g["key"]: (g["sent"], g["answered"], g["average"]) for g in report["groups"]}
    assert by_agent == {desk.agent_ids["olga"]: (1, 1, 2.0), None: (1, 0, None)}
    r = await desk.client.get(
        f"{API}/reports/csat",
        params={"since": since, "until": until, "group_by": "queue"},
        headers=desk.admin,
    )
    assert {g["key"]: g["sent"] for g in r.json()["groups"]} == {q: 1, None: 1}
    assert (
        await desk.client.get(
            f"{API}/reports/csat", params={"since": since, "until": until}, headers=desk.agents["olga"]
        )
    ).status_code == 403

    # After the window the survey is closed: refused, and the page says so.
    clock.advance(15 * 86_400)
    r = await desk.client.post(f"{API}/public/csat/{token}", json={"rating": 5})
    assert r.status_code == 409 and r.json()["error_id"] == "survey-expired"
    page = await desk.client.get(path_of(url))
    assert "This survey is closed." in page.text and 'name="rating"' not in page.text


async def test_the_survey_message_is_composed_in_the_customers_language(
    desk: HelpDesk, container: Container
) -> None:
    r = await desk.client.post(
        f"{API}/customers",
        json={
            "first_name": "Иван",
            "language": "ru",
            "identities": [{"kind": "email", "value": "ivan@example.com"}],
        },
        headers=desk.admin,
    )
    assert r.status_code == 201, r.text
    r = await desk.client.post(
        f"{API}/tickets", json={"customer_id": r.json()["id"], "subject": "Чайник"}, headers=desk.admin
    )
    ticket_id = r.json()["id"]
    url = (await solve(desk, ticket_id))["csat"]["url"]  # type: ignore[index]
    async with container.sessions() as s:
        survey = (await s.scalars(select(CsatSurvey).where(CsatSurvey.ticket_id == ticket_id))).one()
        ticket = await s.get(Ticket, ticket_id)
        assert ticket is not None
        message = survey_email(survey, ticket, str(url), "ivan@example.com")
    assert survey.language == "ru" and "lang=ru" in str(url)
    assert message.to == "ivan@example.com" and message.subject == f"Как мы справились? Заявка #{ticket_id}"
    assert str(url) in message.body and "Чайник" in message.body
    # Surveys can be switched off by an administrator.
    r = await desk.client.put(f"{API}/helpdesk/settings", json={"csat_enabled": False}, headers=desk.admin)
    assert r.status_code == 200
    other = await desk.ticket(None)
    assert (await solve(desk, other["id"]))["csat"] is None
