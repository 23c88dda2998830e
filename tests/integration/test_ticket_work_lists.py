"""Ticket and deal work lists over the REST API, on SQLite and PostgreSQL: every filter, the orders
with their keyset pages, counts per view, saved views, bulk actions and merges."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role
from frontoffice.services.context import Actor
from frontoffice.store.tables import AuditEntry

from ..conftest import ShiftedClock, make_user

API = "/api/v1"


class Desk:
    """An admin, two agents (ann serves queue A, bob queue B), a supervisor, a customer or two."""

    def __init__(self, client: httpx.AsyncClient, container: Container, clock: ShiftedClock) -> None:
        self.client, self.container, self.clock = client, container, clock
        self.headers: dict[str, dict[str, str]] = {}
        self.ids: dict[str, int] = {}

    async def setup(self) -> Desk:
        for name, role in (("root", Role.ADMIN), ("ann", Role.AGENT), ("bob", Role.AGENT)):
            await self.user(name, role)
        await self.user("sue", Role.SUPERVISOR)
        for q in ("A", "B"):
            r = await self.client.post(f"{API}/queues", json={"name": q}, headers=self.headers["root"])
            assert r.status_code == 201, r.text
            self.ids[q] = r.json()["id"]
        for agent, q in (("ann", "A"), ("bob", "B")):
            r = await self.client.put(
                f"{API}/agents/{self.ids[agent]}",
                json={"queues": {str(self.ids[q]): 1}},
                headers=self.headers["root"],
            )
            assert r.status_code == 200, r.text
        for name in ("c1", "c2"):
            r = await self.client.post(
                f"{API}/customers", json={"first_name": name}, headers=self.headers["root"]
            )
            assert r.status_code == 201, r.text
            self.ids[name] = r.json()["id"]
        return self

    async def user(self, name: str, role: Role) -> None:
        self.ids[name] = await make_user(self.container, name, role)
        token = await self.container.auth.create_token(Actor.system(), "tests", user_id=self.ids[name])
        self.headers[name] = {"Authorization": f"Bearer {token.token}"}

    async def ticket(self, subject: str, *, customer: str = "c1", **body: Any) -> int:
        self.clock.advance(1)  # distinct updated_at values; the ties are tested separately
        r = await self.client.post(
            f"{API}/tickets",
            json={"customer_id": self.ids[customer], "subject": subject, **body},
            headers=self.headers["root"],
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    async def subjects(self, who: str = "root", **params: Any) -> list[str]:
        r = await self.client.get(f"{API}/tickets", params=params, headers=self.headers[who])
        assert r.status_code == 200, r.text
        return [t["subject"] for t in r.json()["items"]]

    async def all_pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            r = await self.client.get(
                f"{API}{path}",
                params={**params, **({"cursor": cursor} if cursor else {})},
                headers=self.headers["root"],
            )
            assert r.status_code == 200, r.text
            items += r.json()["items"]
            cursor = r.json()["next_cursor"]
            if cursor is None:
                return items


@pytest.fixture
async def desk(client: httpx.AsyncClient, container: Container, clock: ShiftedClock) -> Desk:
    return await Desk(client, container, clock).setup()


async def test_the_ticket_list_answers_instead_of_405_newest_change_first(desk: Desk) -> None:
    first = await desk.ticket("first")
    await desk.ticket("second")
    assert await desk.subjects() == ["second", "first"]
    r = await desk.client.patch(
        f"{API}/tickets/{first}", json={"priority": "high"}, headers=desk.headers["root"]
    )
    assert r.status_code == 200
    assert await desk.subjects() == ["first", "second"]


async def test_each_filter_keeps_only_its_tickets(desk: Desk) -> None:
    ann, a, b = desk.ids["ann"], desk.ids["A"], desk.ids["B"]
    await desk.ticket(
        "ann's urgent in A", assignee_id=ann, priority="urgent", queue_id=a, tags=["VIP", "billing"]
    )
    await desk.ticket("unassigned in A", queue_id=a, due_at="2026-12-01T10:00:00+00:00")
    await desk.ticket("unassigned in B", queue_id=b, tags=["billing"], due_at="2026-12-03T10:00:00+00:00")
    pending = await desk.ticket("bob's pending", assignee_id=desk.ids["bob"], queue_id=b)
    r = await desk.client.patch(
        f"{API}/tickets/{pending}", json={"status": "pending"}, headers=desk.headers["root"]
    )
    assert r.status_code == 200

    assert await desk.subjects("ann", assignee="me") == ["ann's urgent in A"]
    assert await desk.subjects("ann", view="mine") == ["ann's urgent in A"]
    assert await desk.subjects("bob", view="mine") == ["bob's pending"]
    assert await desk.subjects(assignee=str(ann)) == ["ann's urgent in A"]
    assert await desk.subjects(view="unassigned") == ["unassigned in B", "unassigned in A"]
    assert await desk.subjects("ann", view="team") == ["unassigned in A", "ann's urgent in A"]
    assert await desk.subjects("bob", team="true") == ["bob's pending", "unassigned in B"]
    assert await desk.subjects("sue", view="team") == []  # serves no queue
    assert await desk.subjects(status="pending") == ["bob's pending"]
    assert await desk.subjects(view="pending") == ["bob's pending"]
    assert await desk.subjects(priority=["urgent", "low"]) == ["ann's urgent in A"]
    assert await desk.subjects(queue_id=b) == ["bob's pending", "unassigned in B"]
    assert await desk.subjects(tag="vip") == ["ann's urgent in A"]
    assert await desk.subjects(tag=["billing", "nothing"]) == ["unassigned in B", "ann's urgent in A"]
    assert await desk.subjects(due_before="2026-12-02T00:00:00Z") == ["unassigned in A"]
    assert await desk.subjects(due_after="2026-12-02T00:00:00Z") == ["unassigned in B"]
    # The clock is today (December 2026 at the earliest): both due tickets are overdue.
    assert await desk.subjects(view="overdue") == ["unassigned in B", "unassigned in A"]
    # A built-in view narrowed by another filter.
    assert await desk.subjects(view="unassigned", queue_id=a) == ["unassigned in A"]
    # Soonest due first; the tickets without a due time last, oldest first.
    assert await desk.subjects(sort="due_at") == [
        "unassigned in A",
        "unassigned in B",
        "ann's urgent in A",
        "bob's pending",
    ]


async def test_a_wrong_filter_is_a_422_and_a_tampered_cursor_a_400(desk: Desk) -> None:
    r = await desk.client.get(f"{API}/tickets", params={"assignee": "someone"}, headers=desk.headers["root"])
    assert r.status_code == 422
    r = await desk.client.get(
        f"{API}/tickets", params={"due_before": "2026-12-01T10:00"}, headers=desk.headers["root"]
    )
    assert r.status_code == 422
    r = await desk.client.get(f"{API}/tickets", params={"cursor": "bm9wZQ"}, headers=desk.headers["root"])
    assert r.status_code == 400 and r.json()["error_id"] == "invalid-cursor"


@pytest.mark.parametrize("sort", ["-updated_at", "updated_at", "-created_at", "created_at", "due_at"])
async def test_every_order_pages_through_all_tickets_once_in_order_even_with_equal_times(
    desk: Desk, sort: str
) -> None:
    # Pairs of tickets made at the same instant (the clock stands still between them), some due.
    ids = []
    for n in range(7):
        desk.clock.advance(1)
        due = {"due_at": f"2026-12-0{1 + n % 3}T10:00:00+00:00"} if n % 2 else {}
        for _ in range(2):
            r = await desk.client.post(
                f"{API}/tickets",
                json={"customer_id": desk.ids["c1"], "subject": f"t{n}", **due},
                headers=desk.headers["root"],
            )
            ids.append(r.json()["id"])
    items = await desk.all_pages("/tickets", sort=sort, limit=3)
    assert sorted(t["id"] for t in items) == sorted(ids)
    field = sort.lstrip("-")

    def key(t: dict[str, Any]) -> tuple[Any, ...]:
        if field == "due_at":
            return (t["due_at"] is None, t["due_at"] or "", t["id"])
        return (t[field], t["id"])

    assert items == sorted(items, key=key, reverse=sort.startswith("-"))


async def test_counts_per_view_include_my_saved_views_and_the_shared_ones(desk: Desk) -> None:
    await desk.ticket("a", assignee_id=desk.ids["ann"], queue_id=desk.ids["A"], tags=["vip"])
    await desk.ticket("b", queue_id=desk.ids["A"])
    await desk.ticket("c", queue_id=desk.ids["B"], tags=["vip"])
    r = await desk.client.post(
        f"{API}/ticket-views",
        json={"name": "VIP", "shared": True, "filters": {"tag": ["vip"], "status": ["open"]}},
        headers=desk.headers["sue"],
    )
    assert r.status_code == 201, r.text
    shared = r.json()["id"]
    r = await desk.client.post(
        f"{API}/ticket-views",
        json={"name": "My VIP", "filters": {"view": "mine", "tag": ["vip"]}, "sort": "created_at"},
        headers=desk.headers["ann"],
    )
    assert r.status_code == 201, r.text
    own = r.json()["id"]

    r = await desk.client.get(f"{API}/tickets/counts", headers=desk.headers["ann"])
    assert r.status_code == 200, r.text
    counts = {c["view"]: c["count"] for c in r.json()}
    assert counts["mine"] == 1 and counts["team"] == 2 and counts["unassigned"] == 2 and counts["open"] == 3
    assert counts["pending"] == 0 and counts["solved"] == 0 and counts["overdue"] == 0
    assert counts[f"saved:{shared}"] == 2 and counts[f"saved:{own}"] == 1
    assert not any(c["capped"] for c in r.json())
    r = await desk.client.get(f"{API}/tickets/counts", headers=desk.headers["bob"])
    assert f"saved:{own}" not in {c["view"] for c in r.json()}

    # A saved view is a list; parameters narrow it.
    assert await desk.subjects("ann", view_id=shared) == ["c", "a"]
    assert await desk.subjects("ann", view_id=shared, queue_id=desk.ids["B"]) == ["c"]
    assert await desk.subjects("ann", view_id=own) == ["a"]
    r = await desk.client.get(f"{API}/tickets", params={"view_id": own}, headers=desk.headers["bob"])
    assert r.status_code == 404 and r.json()["error_id"] == "no-such-view"


async def test_only_a_supervisor_shares_views_and_only_the_owner_changes_a_personal_one(desk: Desk) -> None:
    r = await desk.client.post(
        f"{API}/ticket-views", json={"name": "Everyone's", "shared": True}, headers=desk.headers["ann"]
    )
    assert r.status_code == 403
    r = await desk.client.post(f"{API}/ticket-views", json={"name": "Mine"}, headers=desk.headers["ann"])
    view = r.json()["id"]
    r = await desk.client.patch(f"{API}/ticket-views/{view}", json={"name": "x"}, headers=desk.headers["bob"])
    assert r.status_code == 404
    r = await desk.client.patch(
        f"{API}/ticket-views/{view}", json={"name": "Renamed"}, headers=desk.headers["ann"]
    )
    assert r.status_code == 200 and r.json()["name"] == "Renamed"
    r = await desk.client.get(f"{API}/ticket-views", headers=desk.headers["ann"])
    assert [v["name"] for v in r.json()] == ["Renamed"]
    r = await desk.client.delete(f"{API}/ticket-views/{view}", headers=desk.headers["ann"])
    assert r.status_code == 204
    r = await desk.client.get(f"{API}/ticket-views", headers=desk.headers["ann"])
    assert r.json() == []


async def test_a_bulk_action_changes_every_ticket_with_an_audit_entry_each(desk: Desk) -> None:
    ids = [await desk.ticket(f"t{n}", tags=["old"]) for n in range(3)]
    r = await desk.client.post(
        f"{API}/tickets/bulk",
        json={
            "ticket_ids": ids,
            "assignee_id": desk.ids["bob"],
            "status": "pending",
            "priority": "high",
            "add_tags": ["Billing"],
            "remove_tags": ["old"],
        },
        headers=desk.headers["ann"],
    )
    assert r.status_code == 200, r.text
    for ticket_id in ids:
        t = (await desk.client.get(f"{API}/tickets/{ticket_id}", headers=desk.headers["root"])).json()
        assert (t["assignee_id"], t["status"], t["priority"], t["tags"]) == (
            desk.ids["bob"],
            "pending",
            "high",
            ["billing"],
        )
    async with desk.container.sessions() as s:
        entries = list(await s.scalars(select(AuditEntry).where(AuditEntry.action == "ticket.update")))
    assert sorted(int(e.object_id or 0) for e in entries) == ids
    assert all(e.details["added_tags"] == ["billing"] for e in entries)


async def test_a_bulk_action_that_fails_on_one_ticket_changes_none(desk: Desk) -> None:
    open_one = await desk.ticket("open")
    closed = await desk.ticket("closed")
    r = await desk.client.patch(
        f"{API}/tickets/{closed}", json={"status": "closed"}, headers=desk.headers["root"]
    )
    assert r.status_code == 200
    r = await desk.client.post(
        f"{API}/tickets/bulk",
        json={"ticket_ids": [open_one, closed], "priority": "urgent"},
        headers=desk.headers["root"],
    )
    assert r.status_code == 409 and r.json()["error_id"] == "ticket-closed"
    assert r.json()["details"]["ticket_id"] == closed
    t = (await desk.client.get(f"{API}/tickets/{open_one}", headers=desk.headers["root"])).json()
    assert t["priority"] == "normal"
    r = await desk.client.post(
        f"{API}/tickets/bulk",
        json={"ticket_ids": [open_one, 10**9], "priority": "urgent"},
        headers=desk.headers["root"],
    )
    assert r.status_code == 404 and r.json()["error_id"] == "no-such-ticket"


async def test_merging_moves_contacts_and_tags_and_closes_the_merged_tickets(desk: Desk) -> None:
    target = await desk.ticket("target", tags=["a"])
    other = await desk.ticket("duplicate", tags=["b"])
    foreign = await desk.ticket("another customer's", customer="c2")
    r = await desk.client.post(
        f"{API}/tickets/{target}/merge", json={"ticket_ids": [foreign]}, headers=desk.headers["root"]
    )
    assert r.status_code == 400 and r.json()["error_id"] == "ticket-of-another-customer"
    r = await desk.client.post(
        f"{API}/tickets/{target}/merge", json={"ticket_ids": [other]}, headers=desk.headers["root"]
    )
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == ["a", "b"]
    merged = (await desk.client.get(f"{API}/tickets/{other}", headers=desk.headers["root"])).json()
    assert merged["status"] == "closed" and merged["merged_into_id"] == target
    assert await desk.subjects(view="open") == ["target", "another customer's"]  # the merge changed it


async def test_a_limited_user_lists_only_the_tickets_of_their_projects(desk: Desk) -> None:
    root = desk.headers["root"]
    projects = {}
    for code in ("alpha", "beta"):
        r = await desk.client.post(f"{API}/projects", json={"code": code, "name": code}, headers=root)
        projects[code] = r.json()["id"]
    await desk.ticket("alpha's", project_id=projects["alpha"])
    await desk.ticket("beta's", project_id=projects["beta"])
    lead = await make_user(desk.container, "lead", Role.SUPERVISOR)
    r = await desk.client.put(
        f"{API}/users/{lead}/projects", json={"project_ids": [projects["alpha"]]}, headers=root
    )
    assert r.status_code == 200, r.text
    token = await desk.container.auth.create_token(Actor.system(), "tests", user_id=lead)
    desk.headers["lead"] = {"Authorization": f"Bearer {token.token}"}
    assert await desk.subjects("lead") == ["alpha's"]
    assert await desk.subjects("lead", project_id=projects["beta"]) == []
    assert await desk.subjects(project_id=projects["beta"]) == ["beta's"]
    counts = (await desk.client.get(f"{API}/tickets/counts", headers=desk.headers["lead"])).json()
    assert {c["view"]: c["count"] for c in counts}["open"] == 1


async def test_the_deal_list_filters_by_owner_stage_project_and_close_month(desk: Desk) -> None:
    root = desk.headers["root"]

    async def deal(title: str, **body: Any) -> None:
        desk.clock.advance(1)
        r = await desk.client.post(
            f"{API}/deals",
            json={"customer_id": desk.ids["c1"], "title": title, "currency": "RUB", **body},
            headers=root,
        )
        assert r.status_code == 201, r.text

    await deal("ann's lead", owner_id=desk.ids["ann"], expected_close_on="2027-01-15")
    await deal("won", stage="won", expected_close_on="2026-12-31")
    await deal("proposal", stage="proposal", expected_close_on="2027-01-01")

    async def titles(who: str = "root", **params: Any) -> list[str]:
        r = await desk.client.get(f"{API}/deals", params=params, headers=desk.headers[who])
        assert r.status_code == 200, r.text
        return [d["title"] for d in r.json()["items"]]

    assert await titles() == ["proposal", "won", "ann's lead"]
    assert await titles("ann", owner="me") == ["ann's lead"]
    assert await titles(owner="none") == ["proposal", "won"]
    assert await titles(stage="won") == ["won"]
    assert await titles(open="true") == ["proposal", "ann's lead"]
    assert await titles(close_month="2027-01") == ["proposal", "ann's lead"]
    assert await titles(close_month="2026-12") == ["won"]
    assert await titles(sort="expected_close_on") == ["won", "proposal", "ann's lead"]
    r = await desk.client.get(f"{API}/deals", params={"close_month": "2027-13"}, headers=root)
    assert r.status_code == 422
    pages = await desk.all_pages("/deals", limit=1, sort="expected_close_on")
    assert [d["title"] for d in pages] == ["won", "proposal", "ann's lead"]
