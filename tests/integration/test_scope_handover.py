"""Handing one client's work to another client's team: a ticket assigned, watched or @mentioned, a deal
or a card owned, a contact transferred to a named agent — each let the user see it (and its customer)
although they may not see its project. Each is refused at the field that named the user (422, in the
page's language), all or nothing, and a mention of such a user notifies nobody."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from frontoffice.bootstrap import Container
from frontoffice.domain.exceptions import InvalidInput
from frontoffice.domain.model import Role

from .jobs_helpers import import_csv
from .test_acd_api import API
from .test_project_scoped_crm import Clients


@pytest.fixture
async def clients(client, container, admin_headers) -> Clients:
    return await Clients(client, container, admin_headers).build()


class Team:
    """Users of the two clients and of the center: their headers and ids."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients
        self.headers: dict[str, dict[str, str]] = {}
        self.ids: dict[str, int] = {}

    async def add(self, name: str, role: Role, *codes: str) -> Team:
        self.headers[name] = await self.clients.user(name, role, *codes)
        self.ids[name] = (await self.clients.get("/me", self.headers[name])).json()["id"]
        return self


async def _team(clients: Clients) -> Team:
    team = Team(clients)
    await team.add("alpha-agent", Role.AGENT, "alpha")
    await team.add("alpha-lead", Role.SUPERVISOR, "alpha")
    await team.add("beta-agent", Role.AGENT, "beta")
    await team.add("head", Role.SUPERVISOR)  # the center's staff: every project
    return team


async def _ticket(clients: Clients, code: str | None, customer_id: int, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"customer_id": customer_id, "subject": f"Case of {code}", **extra}
    if code is not None:
        body["project_id"] = clients.projects[code]
    r = await clients.client.post(f"{API}/tickets", json=body, headers=clients.admin)
    assert r.status_code == 201, r.text
    ticket: dict[str, Any] = r.json()
    return ticket


def _refused(r: httpx.Response, field: str, error_id: str = "user-cannot-see-project") -> dict[str, Any]:
    assert r.status_code == 422, r.text
    body: dict[str, Any] = r.json()
    assert body["error_id"] == error_id
    assert [e["loc"] for e in body["details"]["errors"]] == [["body", field]]
    return body


async def _assignee(clients: Clients, ticket_id: int) -> int | None:
    r = await clients.get(f"/tickets/{ticket_id}", clients.admin)
    assert r.status_code == 200, r.text
    assignee: int | None = r.json()["assignee_id"]
    return assignee


async def _watchers(clients: Clients, ticket_id: int) -> list[str]:
    r = await clients.get(f"/tickets/{ticket_id}/watchers", clients.admin)
    assert r.status_code == 200, r.text
    return [w["username"] for w in r.json()]


# ------------------------------------------------------------------ tickets: the assignee
async def test_a_ticket_is_assigned_only_to_a_user_who_sees_its_project(clients: Clients) -> None:
    client, admin = clients.client, clients.admin
    team = await _team(clients)
    customer = (await clients.contact("alpha", first_name="Ivan", phone="+7 916 100-00-01"))["customer_id"]
    ticket = await _ticket(clients, "alpha", customer)

    # Created for another client's agent: refused, and no ticket was made.
    before = await clients.ids("/tickets", admin)
    body = {"customer_id": customer, "subject": "Given away", "project_id": clients.projects["alpha"]}
    r = await client.post(
        f"{API}/tickets", json={**body, "assignee_id": team.ids["beta-agent"]}, headers=admin
    )
    refusal = _refused(r, "assignee_id")
    assert refusal["message"] == "This user cannot see this ticket's project"
    assert refusal["details"]["user_id"] == team.ids["beta-agent"]
    assert await clients.ids("/tickets", admin) == before

    # Assigned to them: refused (in the page's language), nothing changes, they still cannot read it.
    r = await client.patch(
        f"{API}/tickets/{ticket['id']}",
        json={"assignee_id": team.ids["beta-agent"], "priority": "high"},
        headers={**admin, "Accept-Language": "ru"},
    )
    refusal = _refused(r, "assignee_id")
    assert refusal["message"] == "Этот пользователь не видит проект этой заявки"
    assert refusal["details"]["errors"][0]["message"] == refusal["message"]
    after = (await clients.get(f"/tickets/{ticket['id']}", admin)).json()
    assert (after["assignee_id"], after["priority"]) == (None, "normal")
    r = await clients.get(f"/tickets/{ticket['id']}", team.headers["beta-agent"])
    assert r.status_code == 404
    r = await clients.get(f"/customers/{customer}", team.headers["beta-agent"])
    assert r.status_code == 404

    # Whoever sees the project may be given it: the client's own team and the center's staff.
    for name in ("alpha-agent", "head"):
        r = await client.patch(
            f"{API}/tickets/{ticket['id']}", json={"assignee_id": team.ids[name]}, headers=admin
        )
        assert r.status_code == 200, r.text
    r = await client.post(
        f"{API}/tickets", json={**body, "assignee_id": team.ids["alpha-agent"]}, headers=admin
    )
    assert r.status_code == 201, r.text
    # A supervisor of the client cannot hand it out either.
    r = await client.patch(
        f"{API}/tickets/{ticket['id']}",
        json={"assignee_id": team.ids["beta-agent"]},
        headers=team.headers["alpha-lead"],
    )
    _refused(r, "assignee_id")
    assert await _assignee(clients, ticket["id"]) == team.ids["head"]


async def test_a_bulk_assignment_changes_nothing_when_one_ticket_cannot_go_to_the_user(
    clients: Clients,
) -> None:
    team = await _team(clients)
    alpha_customer = (await clients.contact("alpha", phone="+7 916 100-00-01"))["customer_id"]
    beta_customer = (await clients.contact("beta", phone="+7 916 200-00-01"))["customer_id"]
    first = await _ticket(clients, "alpha", alpha_customer)
    theirs = await _ticket(clients, "beta", beta_customer)
    last = await _ticket(clients, "alpha", alpha_customer)
    ids = [first["id"], theirs["id"], last["id"]]

    r = await clients.client.post(
        f"{API}/tickets/bulk",
        json={"ticket_ids": ids, "assignee_id": team.ids["alpha-agent"], "priority": "urgent"},
        headers=clients.admin,
    )
    refusal = _refused(r, "assignee_id")
    assert refusal["details"]["ticket_id"] == theirs["id"]  # names the one that cannot
    for ticket_id in ids:
        after = (await clients.get(f"/tickets/{ticket_id}", clients.admin)).json()
        assert (after["assignee_id"], after["priority"]) == (None, "normal")

    r = await clients.client.post(
        f"{API}/tickets/bulk",
        json={"ticket_ids": ids, "assignee_id": team.ids["head"]},
        headers=clients.admin,
    )
    assert r.status_code == 200, r.text
    assert {await _assignee(clients, t) for t in ids} == {team.ids["head"]}


async def test_a_ticket_of_no_project_goes_only_to_users_who_see_its_customer(clients: Clients) -> None:
    team = await _team(clients)
    olga = (await clients.contact("beta", first_name="Olga", phone="+7 916 200-00-01"))["customer_id"]
    ticket = await _ticket(clients, None, olga)
    assert ticket["project_id"] is None

    r = await clients.client.patch(
        f"{API}/tickets/{ticket['id']}", json={"assignee_id": team.ids["alpha-agent"]}, headers=clients.admin
    )
    refusal = _refused(r, "assignee_id", "user-cannot-see-customer")
    assert refusal["message"] == "This user cannot see this ticket's customer"
    r = await clients.client.patch(
        f"{API}/tickets/{ticket['id']}", json={"assignee_id": team.ids["beta-agent"]}, headers=clients.admin
    )
    assert r.status_code == 200, r.text


# ------------------------------------------------------------------ tickets: the queue
async def test_a_ticket_goes_only_to_a_queue_of_its_project_or_of_none(clients: Clients) -> None:
    customer = (await clients.contact("alpha", phone="+7 916 100-00-01"))["customer_id"]
    ticket = await _ticket(clients, "alpha", customer)
    q = clients.queues
    lead = await clients.user("alpha-lead", Role.SUPERVISOR, "alpha")

    # The routed work of a queue is offered to its team, and the agent who accepts gets the ticket.
    r = await clients.client.patch(
        f"{API}/tickets/{ticket['id']}", json={"queue_id": q["beta"]}, headers=clients.admin
    )
    _refused(r, "queue_id", "queue-of-another-project")
    body = {"customer_id": customer, "subject": "x", "project_id": clients.projects["alpha"]}
    r = await clients.client.post(
        f"{API}/tickets", json={**body, "queue_id": q["beta"]}, headers=clients.admin
    )
    _refused(r, "queue_id", "queue-of-another-project")
    # A limited user does not even know of another client's queue.
    r = await clients.client.patch(
        f"{API}/tickets/{ticket['id']}", json={"queue_id": q["beta"]}, headers=lead
    )
    assert (r.status_code, r.json()["error_id"]) == (404, "no-such-queue")
    assert (await clients.get(f"/tickets/{ticket['id']}", clients.admin)).json()["queue_id"] is None
    for queue in ("alpha", "general"):
        r = await clients.client.patch(
            f"{API}/tickets/{ticket['id']}", json={"queue_id": q[queue]}, headers=lead
        )
        assert r.status_code == 200, r.text


# ------------------------------------------------------------------ tickets: watchers and mentions
async def test_only_a_user_who_sees_the_project_is_made_a_watcher(clients: Clients) -> None:
    team = await _team(clients)
    customer = (await clients.contact("alpha", phone="+7 916 100-00-01"))["customer_id"]
    ticket = await _ticket(clients, "alpha", customer)
    path = f"{API}/tickets/{ticket['id']}/watchers"
    lead = team.headers["alpha-lead"]

    for headers in (lead, clients.admin):
        r = await clients.client.post(path, json={"user_id": team.ids["beta-agent"]}, headers=headers)
        _refused(r, "user_id")
    assert await _watchers(clients, ticket["id"]) == []
    r = await clients.client.post(path, json={"user_id": team.ids["alpha-agent"]}, headers=lead)
    assert r.status_code == 200, r.text
    r = await clients.client.post(path, json={}, headers=lead)  # oneself: who sees the ticket may
    assert r.status_code == 200, r.text
    assert await _watchers(clients, ticket["id"]) == ["alpha-agent", "alpha-lead"]


async def test_a_mention_of_a_user_who_cannot_see_the_ticket_saves_the_note_but_tells_them_nothing(
    clients: Clients, container: Container
) -> None:
    team = await _team(clients)
    await team.add("gamma-agent", Role.AGENT, "beta", "alpha")  # works for both clients
    customer = (await clients.contact("alpha", phone="+7 916 100-00-01"))["customer_id"]
    ticket = await _ticket(clients, "alpha", customer)
    inbox = container.bus.subscribe(keys=[f"agent:{team.ids[n]}" for n in ("alpha-agent", "beta-agent")])
    try:
        r = await clients.client.post(
            f"{API}/tickets/{ticket['id']}/notes",
            json={"body": "@beta-agent @alpha-agent @gamma-agent have a look"},
            headers=team.headers["head"],
        )
        assert r.status_code == 201, r.text
        note = r.json()
        assert sorted(note["mentions"]) == sorted([team.ids["alpha-agent"], team.ids["gamma-agent"]])
        assert note["mentions_refused"] == ["beta-agent"]
        told = []
        while not inbox.queue.empty():
            told.append(inbox.queue.get_nowait())
        assert [(m.type, m.audience) for m in told] == [
            ("ticket.mention", (f"agent:{team.ids['alpha-agent']}",))
        ]
    finally:
        container.bus.unsubscribe(inbox)
    assert await _watchers(clients, ticket["id"]) == ["alpha-agent", "gamma-agent"]
    r = await clients.get("/me/mentions", team.headers["beta-agent"])
    assert r.status_code == 200 and r.json()["items"] == []
    timeline = (await clients.get(f"/tickets/{ticket['id']}/timeline", clients.admin)).json()
    assert [e["post"]["body"] for e in timeline if e["kind"] == "note"] == [
        "@beta-agent @alpha-agent @gamma-agent have a look"
    ]

    # A client's user who mentions another client's user by name learns nothing of them: the name is
    # ignored like an unknown one.
    r = await clients.client.post(
        f"{API}/tickets/{ticket['id']}/notes",
        json={"body": "@beta-agent @nobody hello"},
        headers=team.headers["alpha-lead"],
    )
    assert r.status_code == 201, r.text
    assert (r.json()["mentions"], r.json()["mentions_refused"]) == ([], [])
    assert await _watchers(clients, ticket["id"]) == ["alpha-agent", "gamma-agent"]


async def test_the_mention_picker_offers_for_a_ticket_of_no_project_only_those_who_see_its_customer(
    clients: Clients,
) -> None:
    team = await _team(clients)
    olga = (await clients.contact("beta", first_name="Olga", phone="+7 916 200-00-01"))["customer_id"]
    ticket = await _ticket(clients, None, olga)
    r = await clients.get("/users/mentionable", team.headers["head"], q="", ticket_id=ticket["id"], limit=20)
    assert r.status_code == 200, r.text
    offered = {u["username"] for u in r.json()}
    assert "beta-agent" in offered and "alpha-agent" not in offered and "alpha-lead" not in offered


# ------------------------------------------------------------------ tickets: moved to another project
async def test_a_ticket_moves_to_another_project_only_with_an_assignee_who_sees_it_and_sheds_blind_watchers(
    clients: Clients,
) -> None:
    team = await _team(clients)
    customer = (await clients.contact("alpha", phone="+7 916 100-00-01"))["customer_id"]
    ticket = await _ticket(
        clients, "alpha", customer, assignee_id=team.ids["alpha-agent"], queue_id=clients.queues["alpha"]
    )
    path = f"{API}/tickets/{ticket['id']}"
    for name in ("alpha-lead", "head"):
        r = await clients.client.post(
            f"{path}/watchers", json={"user_id": team.ids[name]}, headers=clients.admin
        )
        assert r.status_code == 200, r.text
    beta = clients.projects["beta"]

    # The assignee could not follow it: refused at project_id, nothing changes.
    r = await clients.client.patch(
        path, json={"project_id": beta, "queue_id": clients.queues["beta"]}, headers=clients.admin
    )
    refusal = _refused(r, "project_id")
    assert refusal["details"]["user_id"] == team.ids["alpha-agent"]
    # Nor could its queue.
    r = await clients.client.patch(
        path, json={"project_id": beta, "assignee_id": team.ids["beta-agent"]}, headers=clients.admin
    )
    _refused(r, "project_id", "queue-of-another-project")
    now = (await clients.get(f"/tickets/{ticket['id']}", clients.admin)).json()
    assert (now["project_id"], now["assignee_id"]) == (clients.projects["alpha"], team.ids["alpha-agent"])
    assert await _watchers(clients, ticket["id"]) == ["alpha-lead", "head"]

    # Moved with a new assignee and queue in the same change: the watchers who cannot see the new
    # project stop watching it, each with an entry in its history.
    r = await clients.client.patch(
        path,
        json={"project_id": beta, "assignee_id": team.ids["beta-agent"], "queue_id": clients.queues["beta"]},
        headers=clients.admin,
    )
    assert r.status_code == 200, r.text
    assert await _watchers(clients, ticket["id"]) == ["head"]
    history = (await clients.get(f"/tickets/{ticket['id']}/history", clients.admin)).json()["items"]
    dropped = [h for h in history if h["action"] == "ticket.unwatch"]
    assert [(h["details"]["user_id"], h["details"]["reason"]) for h in dropped] == [
        (team.ids["alpha-lead"], "project-changed")
    ]


# ------------------------------------------------------------------ deals and cards: the owner
async def test_a_deal_is_owned_only_by_a_user_who_sees_its_project(clients: Clients) -> None:
    team = await _team(clients)
    customer = (await clients.contact("alpha", phone="+7 916 100-00-01"))["customer_id"]
    body = {
        "customer_id": customer,
        "title": "Renewal",
        "currency": "RUB",
        "project_id": clients.projects["alpha"],
    }
    r = await clients.client.post(
        f"{API}/deals", json={**body, "owner_id": team.ids["beta-agent"]}, headers=clients.admin
    )
    _refused(r, "owner_id")
    r = await clients.client.post(f"{API}/deals", json=body, headers=clients.admin)
    assert r.status_code == 201, r.text
    deal = r.json()
    r = await clients.client.patch(
        f"{API}/deals/{deal['id']}", json={"owner_id": team.ids["beta-agent"]}, headers=clients.admin
    )
    _refused(r, "owner_id")
    assert (await clients.get(f"/deals/{deal['id']}", team.headers["beta-agent"])).status_code == 404
    r = await clients.client.patch(
        f"{API}/deals/{deal['id']}", json={"owner_id": team.ids["alpha-agent"]}, headers=clients.admin
    )
    assert r.status_code == 200 and r.json()["owner_id"] == team.ids["alpha-agent"]


async def test_a_card_is_owned_only_by_a_user_who_sees_it(clients: Clients) -> None:
    team = await _team(clients)
    ivan = (await clients.contact("alpha", first_name="Ivan", phone="+7 916 100-00-01"))["customer_id"]
    beta_agent = team.headers["beta-agent"]

    r = await clients.client.patch(
        f"{API}/customers/{ivan}", json={"owner_id": team.ids["beta-agent"]}, headers=clients.admin
    )
    refusal = _refused(r, "owner_id", "user-cannot-see-customer")
    assert refusal["message"] == "This user cannot see this customer"
    assert (await clients.get(f"/customers/{ivan}", beta_agent)).status_code == 404
    body = {"first_name": "Anna", "project_id": clients.projects["alpha"]}
    r = await clients.client.post(
        f"{API}/customers", json={**body, "owner_id": team.ids["beta-agent"]}, headers=clients.admin
    )
    _refused(r, "owner_id", "user-cannot-see-customer")
    assert await clients.ids("/customers", beta_agent) == []

    for name in ("alpha-agent", "head"):
        r = await clients.client.patch(
            f"{API}/customers/{ivan}", json={"owner_id": team.ids[name]}, headers=clients.admin
        )
        assert r.status_code == 200, r.text
    r = await clients.client.post(
        f"{API}/customers", json={**body, "owner_id": team.ids["alpha-agent"]}, headers=clients.admin
    )
    assert r.status_code == 201, r.text


# ------------------------------------------------------------------ activities: the owner
async def test_an_activity_is_given_only_to_an_owner_who_sees_its_ticket_deal_or_card(
    clients: Clients,
) -> None:
    team = await _team(clients)
    ivan = (await clients.contact("alpha", first_name="Ivan", phone="+7 916 100-00-01"))["customer_id"]
    ticket = await _ticket(clients, "alpha", ivan)
    r = await clients.client.post(
        f"{API}/deals",
        json={
            "customer_id": ivan,
            "title": "Renewal",
            "currency": "RUB",
            "project_id": clients.projects["alpha"],
        },
        headers=clients.admin,
    )
    assert r.status_code == 201, r.text
    objects = {"ticket_id": ticket["id"], "deal_id": r.json()["id"], "customer_id": ivan}
    errors = {"ticket_id": "user-cannot-see-project", "deal_id": "user-cannot-see-project"}
    for key, object_id in objects.items():
        body = {
            "kind": "call",
            "title": "Call Ivan back",
            "due_at": "2027-01-15T10:00:00+03:00",
            key: object_id,
        }
        r = await clients.client.post(
            f"{API}/activities", json={**body, "owner_id": team.ids["beta-agent"]}, headers=clients.admin
        )
        _refused(r, "owner_id", errors.get(key, "user-cannot-see-customer"))
        r = await clients.client.post(
            f"{API}/activities", json={**body, "owner_id": team.ids["alpha-agent"]}, headers=clients.admin
        )
        assert r.status_code == 201, r.text
    r = await clients.get("/activities", team.headers["beta-agent"])
    assert r.status_code == 200 and r.json()["items"] == []
    r = await clients.get("/activities", team.headers["alpha-agent"])
    assert len(r.json()["items"]) == 3


# ------------------------------------------------------------------ contacts: transfer to a named agent
async def test_a_contact_is_transferred_only_to_an_agent_who_sees_its_project(clients: Clients) -> None:
    team = await _team(clients)
    contact = await clients.contact("alpha", phone="+7 916 100-00-01")
    # Both signed in, serving queues other than alpha's, so the contact waits in alpha's queue.
    for name, queue in (("beta-agent", "beta"), ("alpha-agent", "general")):
        r = await clients.client.put(
            f"{API}/agents/{team.ids[name]}",
            json={"queues": {str(clients.queues[queue]): 1}},
            headers=clients.admin,
        )
        assert r.status_code == 200, r.text
        r = await clients.client.post(f"{API}/agent/login", json={}, headers=team.headers[name])
        assert r.status_code == 204, r.text
    for headers in (team.headers["head"], team.headers["alpha-lead"]):
        r = await clients.client.post(
            f"{API}/interactions/{contact['id']}/move",
            json={"agent_id": team.ids["beta-agent"]},
            headers=headers,
        )
        refusal = _refused(r, "agent_id")
        assert refusal["message"] == "This agent cannot see this contact's project"
    # A phone's transfers (a blind REFER, and the hand-over that ends an attended transfer started
    # from the phone) go through the voice channel's transfer: refused the same way.
    calls = clients.container.voice_calls
    assert calls is not None
    with pytest.raises(InvalidInput) as refused:
        await calls.transfer(contact["id"], queue_id=None, agent_id=team.ids["beta-agent"])
    assert refused.value.error_id == "user-cannot-see-project"
    after = (await clients.get(f"/interactions/{contact['id']}", clients.admin)).json()
    assert (after["state"], after["agent_id"]) == ("queued", None)
    r = await clients.get(f"/interactions/{contact['id']}", team.headers["beta-agent"])
    assert r.status_code == 404

    r = await clients.client.post(
        f"{API}/interactions/{contact['id']}/move",
        json={"agent_id": team.ids["alpha-agent"]},
        headers=team.headers["head"],
    )
    assert r.status_code == 204, r.text
    assert (await clients.get(f"/interactions/{contact['id']}", clients.admin)).json()["state"] == "offered"

    # The transfer picker of a client's team lists only colleagues of their projects.
    r = await clients.get("/voice/transfer-targets", team.headers["alpha-lead"])
    assert r.status_code == 200, r.text
    names = {a["name"] for a in r.json()["agents"]}
    assert "alpha-agent" in names and "beta-agent" not in names


async def test_an_import_names_as_owners_only_users_who_see_its_projects(clients: Clients) -> None:
    team = await _team(clients)

    def upload(owner: str, phone: str) -> bytes:
        return f"first_name,phones,owner\nImported,{phone},{owner}\n".encode()

    alpha = clients.projects["alpha"]
    report = await import_csv(
        clients.client, clients.admin, upload("beta-agent", "+74957000001"), dry_run=False, project_id=alpha
    )
    assert report["created"] == 0, report
    assert [(e["field"], e["message"]) for e in report["errors"]] == [
        ("owner", "no user 'beta-agent' who may see the projects of this import")
    ]
    assert await clients.ids("/customers", team.headers["beta-agent"]) == []
    for owner, phone in (("alpha-agent", "+74957000002"), ("head", "+74957000003")):
        report = await import_csv(
            clients.client, clients.admin, upload(owner, phone), dry_run=False, project_id=alpha
        )
        assert report["created"] == 1 and report["errors"] == [], report


async def test_a_merged_cards_owner_owns_the_kept_card_only_if_they_may_see_it(clients: Clients) -> None:
    client, admin = clients.client, clients.admin
    team = await _team(clients)
    ivan = (await clients.contact("alpha", first_name="Ivan", phone="+7 916 100-00-01"))["customer_id"]
    r = await client.post(
        f"{API}/customers",
        json={
            "first_name": "Ivan",
            "project_id": clients.projects["beta"],
            "owner_id": team.ids["beta-agent"],
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    duplicate = r.json()["id"]
    # The owner moves to another client's team: they see the old card only as its owner.
    r = await client.post(f"{API}/projects", json={"code": "gamma", "name": "Gamma"}, headers=admin)
    assert r.status_code == 201, r.text
    r = await client.put(
        f"{API}/users/{team.ids['beta-agent']}/projects",
        json={"project_ids": [r.json()["id"]]},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        f"{API}/customers/merge", json={"keep_id": ivan, "merge_id": duplicate}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["owner_id"] is None
    assert (await clients.get(f"/customers/{ivan}", team.headers["beta-agent"])).status_code == 404
