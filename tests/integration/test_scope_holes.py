"""Holes an attack test found in the project scoping (issue 19, holes 2, 3 and 8): users limited to one
client project acted on, uncovered or listed what belongs to another client's project."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from frontoffice.bootstrap import Container
from frontoffice.domain.exceptions import NotFound
from frontoffice.domain.model import Role
from frontoffice.services.voice_calls import ConferenceTarget, LiveCall, TrunkState

from .test_acd_api import API
from .test_project_scoped_crm import Clients


@pytest.fixture
async def clients(client, container, admin_headers) -> Clients:
    return await Clients(client, container, admin_headers).build()


async def _state(clients: Clients, interaction_id: int) -> str:
    r = await clients.get(f"/interactions/{interaction_id}", clients.admin)
    assert r.status_code == 200, r.text
    return str(r.json()["state"])


def _missing(r: httpx.Response, error_id: str) -> None:
    assert r.status_code == 404, r.text
    assert r.json()["error_id"] == error_id


# ------------------------------------------------------------------ hole 2: abandon and callback
async def test_a_user_of_another_project_can_neither_abandon_a_waiting_contact_nor_make_it_a_callback(
    clients: Clients,
) -> None:
    client = clients.client
    alpha_first = (await clients.contact("alpha", phone="+7 916 100-00-01"))["id"]
    alpha_second = (await clients.contact("alpha", phone="+7 916 100-00-02"))["id"]
    beta = (await clients.contact("beta", phone="+7 916 200-00-01"))["id"]
    assert await _state(clients, beta) == "queued"
    alpha_agent = await clients.user("alpha-agent", Role.AGENT, "alpha")
    alpha_lead = await clients.user("alpha-lead", Role.SUPERVISOR, "alpha")

    for headers in (alpha_agent, alpha_lead):
        for action in ("abandon", "callback"):
            r = await client.post(f"{API}/interactions/{beta}/{action}", headers=headers)
            _missing(r, "no-such-contact")
    assert await _state(clients, beta) == "queued"  # untouched

    # Within their own project they may (the web form of their client says the customer left).
    r = await client.post(f"{API}/interactions/{alpha_first}/abandon", headers=alpha_agent)
    assert r.status_code == 204, r.text
    assert await _state(clients, alpha_first) == "abandoned"
    r = await client.post(f"{API}/interactions/{alpha_second}/callback", headers=alpha_lead)
    assert r.status_code == 204, r.text
    # A user without a limit (an integration's token) still may, everywhere.
    head = await clients.user("integration", Role.AGENT)
    assert (await client.post(f"{API}/interactions/{beta}/abandon", headers=head)).status_code == 204
    assert await _state(clients, beta) == "abandoned"


async def test_an_agent_helping_in_another_projects_queue_may_abandon_only_the_contact_offered_to_them(
    clients: Clients,
) -> None:
    client = clients.client
    helper = await clients.user("helper", Role.AGENT, "beta")
    me = (await clients.get("/me", helper)).json()["id"]
    r = await client.put(
        f"{API}/agents/{me}", json={"queues": {str(clients.queues["alpha"]): 1}}, headers=clients.admin
    )
    assert r.status_code == 200, r.text
    assert (await client.post(f"{API}/agent/login", json={}, headers=helper)).status_code == 204
    offered = (await clients.contact("alpha", phone="+7 916 100-00-01"))["id"]
    waiting = (await clients.contact("alpha", phone="+7 916 100-00-02"))["id"]
    assert (await _state(clients, offered), await _state(clients, waiting)) == ("offered", "queued")

    _missing(await client.post(f"{API}/interactions/{waiting}/abandon", headers=helper), "no-such-contact")
    r = await client.post(f"{API}/interactions/{offered}/abandon", headers=helper)
    assert r.status_code == 204, r.text
    assert await _state(clients, offered) == "abandoned"


# ------------------------------------------------------------------ hole 3: uncovering a customer
async def test_posting_a_contact_with_a_hidden_customers_email_answers_as_for_an_unknown_customer(
    clients: Clients,
) -> None:
    client = clients.client
    hidden = (await clients.contact("beta", first_name="Olga", email="olga@b.ru"))["customer_id"]
    lead = await clients.user("alpha-lead", Role.SUPERVISOR, "alpha")
    _missing(await clients.get(f"/customers/{hidden}", lead), "no-such-customer")

    async def post(email: str, **customer: str) -> httpx.Response:
        body = {"entry_point": "alpha-site", "subject": "Hello", "customer": {"email": email, **customer}}
        return await client.post(f"{API}/interactions", json=body, headers=lead)

    r = await post("olga@b.ru", first_name="Olga")
    unknown = await post("nobody@b.ru", first_name="Nina")
    assert r.status_code == unknown.status_code == 201, r.text
    found = r.json()["interaction"]["customer_id"]
    assert found is not None and found != hidden  # a new card, as for an unknown customer
    assert unknown.json()["interaction"]["customer_id"] not in (None, hidden, found)

    # The hidden card stays hidden and got no contact of alpha; the hidden identity stays Olga's.
    _missing(await clients.get(f"/customers/{hidden}", lead), "no-such-customer")
    of_hidden = (await clients.get("/interactions", clients.admin, customer_id=hidden)).json()["items"]
    assert {i["project_id"] for i in of_hidden} == {clients.projects["beta"]}
    card = (await clients.get(f"/customers/{found}", lead)).json()
    assert "olga@b.ru" not in str(card.get("identities"))
    r = await clients.get("/customers/lookup", clients.admin, kind="email", value="olga@b.ru")
    assert r.status_code == 200 and r.json()["id"] == hidden

    # With nothing but the hidden address, the answer is still a card of its own.
    r = await post("olga@b.ru")
    assert r.status_code == 201, r.text
    assert r.json()["interaction"]["customer_id"] not in (None, hidden)

    # A user without a limit (or who sees the card) is answered with the card itself, as before.
    r = await client.post(
        f"{API}/interactions",
        json={"entry_point": "beta-site", "subject": "Again", "customer": {"email": "olga@b.ru"}},
        headers=clients.admin,
    )
    assert r.status_code == 201 and r.json()["interaction"]["customer_id"] == hidden


# ------------------------------------------------------------------ hole 8: what a limited supervisor lists
async def test_a_limited_supervisor_sees_only_their_projects_queues_entry_points_and_transfer_targets(
    clients: Clients,
) -> None:
    lead = await clients.user("alpha-lead", Role.SUPERVISOR, "alpha")
    q = clients.queues
    shown = {q["alpha"], q["general"]}  # a queue of no project is everyone's

    r = await clients.get("/queues", lead)
    assert r.status_code == 200 and {x["id"] for x in r.json()} == shown
    _missing(await clients.get(f"/queues/{q['beta']}", lead), "no-such-queue")
    assert (await clients.get(f"/queues/{q['alpha']}", lead)).status_code == 200

    entries = (await clients.get("/entry-points", clients.admin)).json()
    by_address = {e["address"]: e["id"] for e in entries}
    r = await clients.get("/entry-points", lead)
    assert {e["address"] for e in r.json()} == {"alpha-site", "general-site"}
    for address in ("beta-site", "alpha-site"):
        sample = {"entry_point": address, "subject": "Test"}
        r = await clients.client.post(
            f"{API}/entry-points/{by_address[address]}/test", json=sample, headers=lead
        )
        if address == "beta-site":
            _missing(r, "no-such-entry-point")
    assert r.status_code == 200 and r.json()["queue_id"] == q["alpha"]

    r = await clients.get("/voice/transfer-targets", lead)
    assert r.status_code == 200, r.text
    assert {t["id"] for t in r.json()["queues"]} == shown
    everyone = await clients.user("head", Role.SUPERVISOR)
    r = await clients.get("/voice/transfer-targets", everyone)
    assert {t["id"] for t in r.json()["queues"]} == set(q.values())


async def test_a_limited_supervisor_reads_only_the_audit_of_their_projects_without_others_addresses(
    clients: Clients,
) -> None:
    client, admin = clients.client, clients.admin
    alpha = await clients.contact("alpha", first_name="Ivan", phone="+7 916 100-00-01")
    beta = await clients.contact("beta", first_name="Olga", phone="+7 916 200-00-01")
    for customer_id in (alpha["customer_id"], beta["customer_id"]):
        r = await client.patch(f"{API}/customers/{customer_id}", json={"last_name": "Changed"}, headers=admin)
        assert r.status_code == 200, r.text
    lead = await clients.user("alpha-lead", Role.SUPERVISOR, "alpha")
    r = await client.patch(
        f"{API}/customers/{alpha['customer_id']}", json={"middle_name": "Own"}, headers=lead
    )
    assert r.status_code == 200, r.text

    everything = (await client.get(f"{API}/audit", params={"limit": 200}, headers=admin)).json()["items"]
    assert any(e["object_id"] == str(beta["customer_id"]) for e in everything)
    assert any(e["action"] == "queue.create" for e in everything)

    r = await client.get(f"{API}/audit", params={"limit": 200}, headers=lead)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    about = {(e["object_type"], e["object_id"]) for e in items}
    assert ("customer", str(alpha["customer_id"])) in about
    assert ("customer", str(beta["customer_id"])) not in about
    assert ("queue", str(clients.queues["beta"])) not in about
    assert ("queue", str(clients.queues["alpha"])) in about
    assert not [e for e in items if e["object_type"] in ("user", "api_token")]  # an administrator's
    me = (await client.get(f"{API}/me", headers=lead)).json()["id"]
    assert {e["ip"] for e in items if e["actor_id"] != me} == {None}
    assert {e["ip"] for e in items if e["actor_id"] == me} == {"203.0.113.5"}


class _OneLiveCallEach:
    """The voice channel's call-control port answering for any interaction id (the call panel's
    reads only; commands are never reached in these tests)."""

    def call_state(self, interaction_id: int) -> LiveCall:
        return LiveCall(
            interaction_id, "bridged", False, True, "+74951234001", datetime(2026, 1, 1, tzinfo=UTC)
        )

    def hold(self, interaction_id: int) -> None:
        raise NotFound("No such active call", error_id="no-such-call")

    resume = hang_up = complete_transfer = cancel_consultation = hold

    async def transfer_out(self, interaction_id: int, number: str, *, trunk: str | None = None) -> None:
        raise NotFound("No such active call", error_id="no-such-call")

    async def conference(self, interaction_id: int, target: ConferenceTarget) -> None:
        raise NotFound("No such active call", error_id="no-such-call")

    consult = conference

    async def click_to_call(
        self, user_id: int, number: str, *, customer_id: int | None = None, trunk: str | None = None
    ) -> int:
        raise NotFound("No such active call", error_id="no-such-call")

    def trunk_states(self) -> list[TrunkState]:
        return []


async def test_a_limited_supervisor_cannot_read_another_projects_live_call(
    clients: Clients, container: Container
) -> None:
    alpha = (await clients.contact("alpha", phone="+7 916 100-00-01"))["id"]
    beta = (await clients.contact("beta", phone="+7 916 200-00-01"))["id"]
    lead = await clients.user("alpha-lead", Role.SUPERVISOR, "alpha")
    container.call_control = _OneLiveCallEach()  # type: ignore[assignment]
    try:
        _missing(await clients.get(f"/voice/calls/{beta}", lead), "no-such-call")
        r = await clients.get(f"/voice/calls/{alpha}", lead)
        assert r.status_code == 200 and r.json()["interaction_id"] == alpha
        assert (await clients.get(f"/voice/calls/{beta}", clients.admin)).status_code == 200
        # Nor control it (a supervisor may control any call of their projects).
        r = await clients.client.post(f"{API}/voice/calls/{beta}/hold", headers=lead)
        _missing(r, "no-such-call")
    finally:
        container.call_control = None
