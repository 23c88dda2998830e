"""Users limited to client projects (a client team of an outsourcing center) in the CRM and history:
interactions, customers, companies, tickets, deals, CSV import and export, and reports show only what
belongs to their projects; everything else answers 404 as if it did not exist."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import httpx
import pytest

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role
from frontoffice.services.context import Actor
from frontoffice.services.csv_safe import unquote_cell

from ..conftest import make_user
from .jobs_helpers import import_csv
from .test_acd_api import API


class Clients:
    """Two client projects (alpha, beta), each with a queue and a web form; a shared queue of no
    project (``general``); nobody signed in, so contacts wait."""

    def __init__(self, client: httpx.AsyncClient, container: Container, admin: dict[str, str]) -> None:
        self.client = client
        self.container = container
        self.admin = admin
        self.projects: dict[str, int] = {}
        self.queues: dict[str, int] = {}

    async def build(self) -> Clients:
        for code in ("alpha", "beta", "general"):
            body: dict[str, Any] = {"name": f"{code} support"}
            if code != "general":
                r = await self.client.post(
                    f"{API}/projects", json={"code": code, "name": code.title()}, headers=self.admin
                )
                assert r.status_code == 201, r.text
                self.projects[code] = body["project_id"] = r.json()["id"]
            r = await self.client.post(f"{API}/queues", json=body, headers=self.admin)
            assert r.status_code == 201, r.text
            self.queues[code] = r.json()["id"]
            r = await self.client.post(
                f"{API}/entry-points",
                json={
                    "name": code,
                    "channel": "webform",
                    "address": f"{code}-site",
                    "default_queue_id": self.queues[code],
                },
                headers=self.admin,
            )
            assert r.status_code == 201, r.text
        return self

    async def contact(self, code: str, **customer: Any) -> dict[str, Any]:
        """A web-form contact through ``code``'s site; returns the interaction."""
        r = await self.client.post(
            f"{API}/interactions",
            json={"entry_point": f"{code}-site", "subject": f"Question to {code}", "customer": customer},
            headers=self.admin,
        )
        assert r.status_code == 201, r.text
        interaction: dict[str, Any] = r.json()["interaction"]
        return interaction

    async def user(self, name: str, role: Role, *codes: str) -> dict[str, str]:
        """Token headers of a new user, limited to the projects ``codes`` (none: unrestricted)."""
        user_id = await make_user(self.container, name, role)
        if codes:
            r = await self.client.put(
                f"{API}/users/{user_id}/projects",
                json={"project_ids": [self.projects[c] for c in codes]},
                headers=self.admin,
            )
            assert r.status_code == 200, r.text
        token = await self.container.auth.create_token(Actor.system(), "tests", user_id=user_id)
        return {"Authorization": f"Bearer {token.token}"}

    async def get(self, path: str, headers: dict[str, str], **params: Any) -> httpx.Response:
        return await self.client.get(f"{API}{path}", headers=headers, params=params)

    async def ids(self, path: str, headers: dict[str, str], **params: Any) -> list[int]:
        r = await self.get(path, headers, **params)
        assert r.status_code == 200, r.text
        return [item["id"] for item in r.json()["items"]]


@pytest.fixture
async def clients(client, container, admin_headers) -> Clients:
    return await Clients(client, container, admin_headers).build()


def _missing(r: httpx.Response, error_id: str) -> None:
    assert r.status_code == 404, r.text
    assert r.json()["error_id"] == error_id


async def test_a_limited_user_lists_and_reads_only_the_interactions_of_their_projects(
    clients: Clients,
) -> None:
    a1 = await clients.contact("alpha", phone="+7 916 100-00-01")
    b1 = await clients.contact("beta", phone="+7 916 200-00-01")
    a2 = await clients.contact("alpha", phone="+7 916 100-00-02")
    lead = await clients.user("alpha-lead", Role.SUPERVISOR, "alpha")
    beta_agent = await clients.user("beta-agent", Role.AGENT, "beta")
    head = await clients.user("head", Role.SUPERVISOR)

    assert await clients.ids("/interactions", lead) == [a2["id"], a1["id"]]
    assert await clients.ids("/interactions", beta_agent) == [b1["id"]]
    everything = [a2["id"], b1["id"], a1["id"]]
    assert await clients.ids("/interactions", head) == everything
    assert await clients.ids("/interactions", clients.admin) == everything

    # Cursor pagination walks the visible rows only.
    r = await clients.get("/interactions", lead, limit=1)
    assert [i["id"] for i in r.json()["items"]] == [a2["id"]]
    r = await clients.get("/interactions", lead, limit=1, cursor=r.json()["next_cursor"])
    assert [i["id"] for i in r.json()["items"]] == [a1["id"]] and r.json()["next_cursor"] is None

    # Filters cannot reach into another project.
    assert await clients.ids("/interactions", lead, project_id=clients.projects["beta"]) == []
    assert await clients.ids("/interactions", lead, customer_id=b1["customer_id"]) == []
    assert await clients.ids("/interactions", lead, queue_id=clients.queues["beta"]) == []

    for path in ("", "/messages", "/events"):
        _missing(await clients.get(f"/interactions/{b1['id']}{path}", lead), "no-such-interaction")
        assert (await clients.get(f"/interactions/{a1['id']}{path}", lead)).status_code == 200
        assert (await clients.get(f"/interactions/{b1['id']}{path}", head)).status_code == 200
    _missing(await clients.get(f"/interactions/{a1['id']}", beta_agent), "no-such-interaction")

    # Other clients are not even named.
    r = await clients.get("/projects", lead)
    assert [p["code"] for p in r.json()] == ["alpha"]
    assert len((await clients.get("/projects", head)).json()) == 2


async def test_another_projects_customers_are_not_found_searched_exported_or_changed(
    clients: Clients,
) -> None:
    ivan = (
        await clients.contact(
            "alpha", first_name="Ivan", last_name="Petrov", phone="+7 916 100-00-01", email="ivan@a.ru"
        )
    )["customer_id"]
    olga_contact = await clients.contact(
        "beta", first_name="Olga", last_name="Petrova", phone="+7 916 200-00-01", email="olga@b.ru"
    )
    olga = olga_contact["customer_id"]
    ivan_contact = (await clients.get("/interactions", clients.admin, customer_id=ivan)).json()["items"][0]
    lead = await clients.user("alpha-lead", Role.SUPERVISOR, "alpha")
    head = await clients.user("head", Role.SUPERVISOR)
    client, admin = clients.client, clients.admin

    assert await clients.ids("/customers", lead) == [ivan]
    assert await clients.ids("/customers", lead, q="petrov") == [ivan]
    assert await clients.ids("/customers", lead, q="916 200") == []
    assert await clients.ids("/customers", lead, q="olga@b.ru") == []
    assert await clients.ids("/customers", head, q="petrov") == [olga, ivan]

    for path in ("", "/timeline", "/tickets", "/deals"):
        _missing(await clients.get(f"/customers/{olga}{path}", lead), "no-such-customer")
        assert (await clients.get(f"/customers/{ivan}{path}", lead)).status_code == 200
        assert (await clients.get(f"/customers/{olga}{path}", head)).status_code == 200

    # Looking up Olga's phone answers exactly as for a number nobody has.
    hidden = await clients.get("/customers/lookup", lead, kind="phone", value="+7 916 200-00-01")
    unknown = await clients.get("/customers/lookup", lead, kind="phone", value="+7 916 999-99-99")
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json() == unknown.json()
    r = await clients.get("/customers/lookup", lead, kind="phone", value="+7 916 100-00-01")
    assert r.status_code == 200 and r.json()["id"] == ivan

    # Writes to Olga's card are refused the same way, and change nothing.
    attempts = [
        client.patch(f"{API}/customers/{olga}", json={"vip": True}, headers=lead),
        client.post(f"{API}/customers/{olga}/notes", json={"body": "seen"}, headers=lead),
        client.post(
            f"{API}/customers/{olga}/identities",
            json={"kind": "phone", "value": "+74950000001"},
            headers=lead,
        ),
        client.delete(f"{API}/customers/{olga}/identities/1", headers=lead),
        client.delete(f"{API}/customers/{olga}", headers=lead),
        client.post(f"{API}/customers/merge", json={"keep_id": ivan, "merge_id": olga}, headers=lead),
        client.post(f"{API}/customers/merge", json={"keep_id": olga, "merge_id": ivan}, headers=lead),
        client.post(
            f"{API}/interactions/{ivan_contact['id']}/customer", json={"customer_id": olga}, headers=lead
        ),
    ]
    for attempt in attempts:
        _missing(await attempt, "no-such-customer")
    r = await client.post(
        f"{API}/interactions/{olga_contact['id']}/customer", json={"customer_id": ivan}, headers=lead
    )
    _missing(r, "no-such-interaction")
    card = (await clients.get(f"/customers/{olga}", admin)).json()
    assert card["vip"] is False and len(card["identities"]) == 2
    assert (await clients.get(f"/customers/{olga}/timeline", admin)).json()["items"][0][
        "kind"
    ] == "interaction"

    # An identity of a hidden customer is taken, but the answer does not say by whom.
    body = {"kind": "email", "value": "olga@b.ru"}
    r = await client.post(f"{API}/customers/{ivan}/identities", json=body, headers=lead)
    assert r.status_code == 409 and r.json()["error_id"] == "identity-taken"
    assert "customer_id" not in r.json()["details"]
    r = await client.post(f"{API}/customers/{ivan}/identities", json=body, headers=head)
    assert r.status_code == 409 and r.json()["details"]["customer_id"] == olga

    # Duplicate review pairs only customers the user may see.
    twin = (await clients.contact("beta", first_name="Ivan", last_name="Petrov", phone="+7 916 200-00-02"))[
        "customer_id"
    ]
    pairs = {tuple(d["customer_ids"]) for d in (await clients.get("/customers/duplicates", head)).json()}
    assert (min(ivan, twin), max(ivan, twin)) in pairs
    assert (await clients.get("/customers/duplicates", lead)).json() == []

    # The CSV export holds the user's customers only.
    r = await clients.get("/customers/export", lead)
    assert r.status_code == 200
    phones = [row["phones"] for row in csv.DictReader(io.StringIO(r.text))]
    assert phones == ["+79161000001"]
    r = await clients.get("/customers/export", head)
    assert len(list(csv.DictReader(io.StringIO(r.text)))) == 3

    # Companies: those of visible customers, and those nobody belongs to yet.
    companies = {}
    for name in ("Alpha Buyer", "Beta Buyer", "Nobody Yet"):
        r = await client.post(f"{API}/companies", json={"name": name}, headers=admin)
        companies[name] = r.json()["id"]
    for customer, company in ((ivan, "Alpha Buyer"), (olga, "Beta Buyer")):
        r = await client.patch(
            f"{API}/customers/{customer}", json={"company_id": companies[company]}, headers=admin
        )
        assert r.status_code == 200, r.text
    listed = await clients.ids("/companies", lead)
    assert listed == [companies["Nobody Yet"], companies["Alpha Buyer"]]
    _missing(await clients.get(f"/companies/{companies['Beta Buyer']}", lead), "no-such-company")
    assert (await clients.get(f"/companies/{companies['Alpha Buyer']}", lead)).status_code == 200
    assert len(await clients.ids("/companies", head)) == 3
    assert await clients.ids("/customers", lead, q="beta buyer") == []


async def test_tickets_and_deals_follow_their_project_or_else_their_customer(clients: Clients) -> None:
    client, admin = clients.client, clients.admin
    # One person who is a customer of both clients: a single card, seen by both teams.
    ia = await clients.contact("alpha", first_name="Pavel", phone="+7 916 300-00-01")
    ib = await clients.contact("beta", phone="+7 916 300-00-01")
    shared = ia["customer_id"]
    assert ib["customer_id"] == shared
    alpha_lead = await clients.user("alpha-lead", Role.SUPERVISOR, "alpha")
    beta_lead = await clients.user("beta-lead", Role.SUPERVISOR, "beta")

    async def post(path: str, body: dict[str, Any], headers: dict[str, str], status: int = 201) -> Any:
        r = await client.post(f"{API}{path}", json=body, headers=headers)
        assert r.status_code == status, r.text
        return r.json()

    ticket_a = await post(
        "/tickets", {"customer_id": shared, "subject": "A", "source_interaction_id": ia["id"]}, admin
    )
    ticket_b = await post(
        "/tickets", {"customer_id": shared, "subject": "B", "source_interaction_id": ib["id"]}, admin
    )
    assert (ticket_a["project_id"], ticket_b["project_id"]) == (
        clients.projects["alpha"],
        clients.projects["beta"],
    )
    deal_b = await post(
        "/deals",
        {"customer_id": shared, "title": "B", "currency": "RUB", "project_id": clients.projects["beta"]},
        admin,
    )
    deal_none = await post("/deals", {"customer_id": shared, "title": "any", "currency": "RUB"}, admin)
    assert deal_b["project_id"] == clients.projects["beta"] and deal_none["project_id"] is None
    # Both contacts on ticket A (an unrestricted user linked them); each team sees its own.
    r = await client.post(
        f"{API}/tickets/{ticket_a['id']}/interactions", json={"interaction_id": ib["id"]}, headers=admin
    )
    assert r.json()["interaction_ids"] == [ia["id"], ib["id"]]

    assert (await clients.get(f"/customers/{shared}", alpha_lead)).status_code == 200
    assert await clients.ids(f"/customers/{shared}/tickets", alpha_lead) == [ticket_a["id"]]
    assert await clients.ids(f"/customers/{shared}/tickets", beta_lead) == [ticket_b["id"]]
    assert await clients.ids(f"/customers/{shared}/deals", alpha_lead) == [deal_none["id"]]
    assert await clients.ids(f"/customers/{shared}/deals", beta_lead) == [deal_none["id"], deal_b["id"]]
    timeline = (await clients.get(f"/customers/{shared}/timeline", alpha_lead)).json()["items"]
    assert {(t["kind"], t["id"]) for t in timeline} == {
        ("interaction", ia["id"]),
        ("ticket", ticket_a["id"]),
        ("deal", deal_none["id"]),
    }
    r = await clients.get(f"/tickets/{ticket_a['id']}", alpha_lead)
    assert r.status_code == 200 and r.json()["interaction_ids"] == [ia["id"]]

    # Another project's ticket and deal are not found, for reading and for writing.
    _missing(await clients.get(f"/tickets/{ticket_b['id']}", alpha_lead), "no-such-ticket")
    _missing(
        await client.patch(f"{API}/tickets/{ticket_b['id']}", json={"status": "pending"}, headers=alpha_lead),
        "no-such-ticket",
    )
    _missing(
        await client.post(
            f"{API}/tickets/{ticket_b['id']}/interactions",
            json={"interaction_id": ia["id"]},
            headers=alpha_lead,
        ),
        "no-such-ticket",
    )
    _missing(await clients.get(f"/deals/{deal_b['id']}", alpha_lead), "no-such-deal")
    _missing(
        await client.patch(f"{API}/deals/{deal_b['id']}", json={"stage": "won"}, headers=alpha_lead),
        "no-such-deal",
    )
    assert (await clients.get(f"/tickets/{ticket_b['id']}", admin)).json()["status"] == "open"
    assert (await clients.get(f"/deals/{deal_b['id']}", admin)).json()["stage"] == "lead"
    # Nor can another project's contact be used.
    r = await client.post(
        f"{API}/tickets/{ticket_a['id']}/interactions", json={"interaction_id": ib["id"]}, headers=alpha_lead
    )
    _missing(r, "no-such-interaction")
    body = {"customer_id": shared, "subject": "x", "source_interaction_id": ib["id"]}
    _missing(await client.post(f"{API}/tickets", json=body, headers=alpha_lead), "no-such-interaction")

    # What a limited user creates belongs to their project; naming another project is refused.
    mine = await post("/tickets", {"customer_id": shared, "subject": "mine"}, alpha_lead)
    assert mine["project_id"] == clients.projects["alpha"]
    deal_a = await post("/deals", {"customer_id": shared, "title": "mine", "currency": "RUB"}, alpha_lead)
    assert deal_a["project_id"] == clients.projects["alpha"]
    _missing(await clients.get(f"/tickets/{mine['id']}", beta_lead), "no-such-ticket")
    _missing(await clients.get(f"/deals/{deal_a['id']}", beta_lead), "no-such-deal")
    beta = clients.projects["beta"]
    for path, body in (
        ("/tickets", {"customer_id": shared, "subject": "x", "project_id": beta}),
        (
            "/tickets",
            {"customer_id": shared, "subject": "x", "source_interaction_id": ia["id"], "project_id": beta},
        ),
        ("/deals", {"customer_id": shared, "title": "x", "currency": "RUB", "project_id": beta}),
    ):
        _missing(await client.post(f"{API}{path}", json=body, headers=alpha_lead), "no-such-project")
    body = {"customer_id": shared, "subject": "x", "source_interaction_id": ia["id"], "project_id": beta}
    r = await client.post(f"{API}/tickets", json=body, headers=admin)
    assert r.status_code == 400 and r.json()["error_id"] == "interaction-of-another-project"
    r = await client.post(f"{API}/tickets", json=body | {"project_id": 999_999}, headers=admin)
    _missing(r, "no-such-project")


async def test_contacts_of_no_project_go_with_their_customer(clients: Clients) -> None:
    known = await clients.contact("alpha", phone="+7 916 100-00-01")
    shared_line = await clients.contact("general", phone="+7 916 100-00-01")
    stranger = await clients.contact("general", phone="+7 916 900-00-01")
    assert shared_line["project_id"] is None and shared_line["customer_id"] == known["customer_id"]
    alpha_lead = await clients.user("alpha-lead", Role.SUPERVISOR, "alpha")
    beta_lead = await clients.user("beta-lead", Role.SUPERVISOR, "beta")

    assert await clients.ids("/interactions", alpha_lead) == [shared_line["id"], known["id"]]
    assert await clients.ids("/interactions", beta_lead) == []
    assert (await clients.get(f"/interactions/{shared_line['id']}", alpha_lead)).status_code == 200
    _missing(await clients.get(f"/interactions/{shared_line['id']}", beta_lead), "no-such-interaction")
    _missing(await clients.get(f"/interactions/{stranger['id']}", alpha_lead), "no-such-interaction")
    _missing(await clients.get(f"/customers/{stranger['customer_id']}", alpha_lead), "no-such-customer")
    timeline = (await clients.get(f"/customers/{known['customer_id']}/timeline", alpha_lead)).json()
    assert [t["id"] for t in timeline["items"]] == [shared_line["id"], known["id"]]
    assert len(await clients.ids("/interactions", clients.admin)) == 3


async def test_cards_made_by_a_limited_user_or_imported_for_a_project_are_that_projects(
    clients: Clients,
) -> None:
    client, admin = clients.client, clients.admin
    alpha_lead = await clients.user("alpha-lead", Role.SUPERVISOR, "alpha")
    beta_lead = await clients.user("beta-lead", Role.SUPERVISOR, "beta")
    both = await clients.user("both-lead", Role.SUPERVISOR, "alpha", "beta")
    head = await clients.user("head", Role.SUPERVISOR)

    async def create(headers: dict[str, str], **body: Any) -> httpx.Response:
        return await client.post(f"{API}/customers", json={"first_name": "New", **body}, headers=headers)

    made = (await create(alpha_lead)).json()["id"]
    assert (await clients.get(f"/customers/{made}", alpha_lead)).status_code == 200
    _missing(await clients.get(f"/customers/{made}", beta_lead), "no-such-customer")
    assert (await clients.get(f"/customers/{made}", head)).status_code == 200
    _missing(await create(alpha_lead, project_id=clients.projects["beta"]), "no-such-project")
    made_by_both = (await create(both)).json()["id"]
    assert made_by_both in await clients.ids("/customers", alpha_lead)
    assert made_by_both in await clients.ids("/customers", beta_lead)
    for_beta = (await create(admin, project_id=clients.projects["beta"])).json()["id"]
    assert await clients.ids("/customers", beta_lead) == [for_beta, made_by_both]

    # The desk's way for an unknown sender: make the card, then link the contact to it.
    anonymous = await clients.contact("alpha")
    assert anonymous["customer_id"] is None
    card = (await create(alpha_lead, last_name="Sidorov")).json()["id"]
    r = await client.post(
        f"{API}/interactions/{anonymous['id']}/customer", json={"customer_id": card}, headers=alpha_lead
    )
    assert r.status_code == 200 and r.json()["customer_id"] == card

    # A client's customer base imported for its project; without a project, only unrestricted users see it.
    def upload(phone: str) -> bytes:
        return f"first_name,phones\nImported,{phone}\n".encode()

    report = await import_csv(
        client, admin, upload("+74957000001"), dry_run=False, project_id=clients.projects["beta"]
    )
    assert report["created"] == 1, report
    report = await import_csv(client, admin, upload("+74957000002"), dry_run=False)
    assert report["created"] == 1, report
    report = await import_csv(client, alpha_lead, upload("+74957000003"), dry_run=False)
    assert report["created"] == 1, report
    for headers, project in ((alpha_lead, clients.projects["beta"]), (admin, 999_999)):
        r = await client.post(
            f"{API}/customers/import",
            params={"dry_run": "false", "project_id": project},
            files={"file": ("c.csv", upload("+74957000004"), "text/csv")},
            headers=headers,
        )
        _missing(r, "no-such-project")

    def exported(text: str) -> set[str]:
        return {
            unquote_cell(row["phones"])
            for row in csv.DictReader(io.StringIO(text))
            if row["first_name"] == "Imported"
        }

    assert exported((await clients.get("/customers/export", alpha_lead)).text) == {"+74957000003"}
    assert exported((await clients.get("/customers/export", beta_lead)).text) == {"+74957000001"}
    assert exported((await clients.get("/customers/export", head)).text) == {
        "+74957000001",
        "+74957000002",
        "+74957000003",
    }

    # A merged card keeps the projects of both.
    alpha_imported = (await clients.get("/customers/lookup", head, kind="phone", value="+74957000003")).json()
    beta_imported = (await clients.get("/customers/lookup", head, kind="phone", value="+74957000001")).json()
    r = await client.post(
        f"{API}/customers/merge",
        json={"keep_id": beta_imported["id"], "merge_id": alpha_imported["id"]},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert (await clients.get(f"/customers/{beta_imported['id']}", alpha_lead)).status_code == 200


async def test_reports_of_a_limited_user_count_only_their_projects(clients: Clients, container) -> None:
    for code, phone in (
        ("alpha", "+7 916 100-00-01"),
        ("alpha", "+7 916 100-00-02"),
        ("beta", "+7 916 200-00-01"),
    ):
        await clients.contact(code, phone=phone)
    alpha_lead = await clients.user("alpha-lead", Role.SUPERVISOR, "alpha")
    head = await clients.user("head", Role.SUPERVISOR)
    now = container.stats.clock()
    window = {"start": (now - timedelta(hours=1)).isoformat(), "end": (now + timedelta(hours=1)).isoformat()}

    async def offered(headers: dict[str, str], **params: Any) -> dict[str, int]:
        r = await clients.get("/stats/report", headers, interval=0, **window, **params)
        assert r.status_code == 200, r.text
        return {str(row["key"]): row["offered"] for row in r.json()["rows"]}

    alpha, beta = clients.projects["alpha"], clients.projects["beta"]
    assert await offered(alpha_lead, group_by="project") == {str(alpha): 2}
    assert await offered(head, group_by="project") == {str(alpha): 2, str(beta): 1}
    assert await offered(alpha_lead, group_by="queue") == {str(clients.queues["alpha"]): 2}
    assert list((await offered(alpha_lead, group_by="overall")).values()) == [2]
    assert await offered(alpha_lead, group_by="queue", project_id=alpha) == {str(clients.queues["alpha"]): 2}
    _missing(await clients.get("/stats/report", alpha_lead, **window, project_id=beta), "no-such-project")
    r = await clients.get("/stats/report", alpha_lead, interval=0, group_by="queue", format="csv", **window)
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["key"], row["offered"]) for row in rows] == [(str(clients.queues["alpha"]), "2")]


async def test_an_agent_sees_the_contact_they_handled_for_another_project_and_its_case(
    clients: Clients,
) -> None:
    """An agent of client alpha who also serves beta's queue (overflow help) sees the beta contact they
    took, its customer and the ticket they open from it; not beta's other contacts."""
    client = clients.client
    helper = await clients.user("helper", Role.AGENT, "alpha")
    me = (await client.get(f"{API}/me", headers=helper)).json()["id"]
    r = await client.put(
        f"{API}/agents/{me}", json={"queues": {str(clients.queues["beta"]): 1}}, headers=clients.admin
    )
    assert r.status_code == 200, r.text
    assert (await client.post(f"{API}/agent/login", json={}, headers=helper)).status_code == 204
    taken = await clients.contact("beta", first_name="Taken", phone="+7 916 200-00-01")
    r = await client.post(f"{API}/agent/offers/{taken['id']}/accept", headers=helper)
    assert r.status_code == 204, r.text
    other = await clients.contact("beta", first_name="Other", phone="+7 916 200-00-09")
    assert (await clients.get(f"/interactions/{other['id']}", clients.admin)).json()["agent_id"] is None

    assert (await clients.get(f"/interactions/{taken['id']}", helper)).status_code == 200
    assert (await clients.get(f"/customers/{taken['customer_id']}", helper)).status_code == 200
    _missing(await clients.get(f"/interactions/{other['id']}", helper), "no-such-interaction")
    _missing(await clients.get(f"/customers/{other['customer_id']}", helper), "no-such-customer")
    r = await client.post(
        f"{API}/tickets",
        json={"customer_id": taken["customer_id"], "subject": "Refund", "source_interaction_id": taken["id"]},
        headers=helper,
    )
    assert r.status_code == 201 and r.json()["project_id"] == clients.projects["beta"], r.text
    ticket = r.json()["id"]
    assert await clients.ids(f"/customers/{taken['customer_id']}/tickets", helper, open="true") == [ticket]
    assert (await clients.get(f"/tickets/{ticket}", helper)).status_code == 200


async def test_call_records_recordings_and_their_export_follow_the_project(
    clients: Clients, container: Container
) -> None:
    from datetime import UTC, datetime

    from frontoffice.domain.model import InteractionEventType
    from frontoffice.services.interactions import log_event
    from frontoffice.store.tables import Interaction

    a1 = await clients.contact("alpha", phone="+7 916 100-00-05")
    b1 = await clients.contact("beta", phone="+7 916 200-00-05")
    now = datetime.now(UTC)
    async with container.sessions.begin() as s:
        for found in (a1, b1):
            row = await s.get(Interaction, found["id"])
            assert row is not None
            row.attributes = {**row.attributes, "recordings": [f"/nowhere/{row.id}.wav"]}
            log_event(s, row, InteractionEventType.CALL_LEG, now, role="caller", call_id=f"leg-{row.id}")
    lead = await clients.user("alpha-lead", Role.SUPERVISOR, "alpha")
    head = await clients.user("head", Role.SUPERVISOR)

    assert (await clients.get(f"/interactions/{a1['id']}/call-records", lead)).status_code == 200
    _missing(await clients.get(f"/interactions/{b1['id']}/call-records", lead), "no-such-interaction")
    assert (await clients.get(f"/interactions/{b1['id']}/call-records", head)).status_code == 200
    _missing(
        await clients.get(f"/interactions/{b1['id']}/recordings/{b1['id']}.wav", lead), "no-such-interaction"
    )
    window = {"from": (now - timedelta(hours=1)).isoformat(), "to": (now + timedelta(hours=1)).isoformat()}

    async def exported(headers: dict[str, str]) -> list[str]:
        r = await clients.get("/voice/call-records.csv", headers, **window)
        assert r.status_code == 200, r.text
        return sorted(row["interaction_id"] for row in csv.DictReader(io.StringIO(r.text)))

    assert await exported(lead) == [str(a1["id"])]
    assert await exported(head) == sorted([str(a1["id"]), str(b1["id"])])
