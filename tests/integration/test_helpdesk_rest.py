"""What issue 16's last pages need of the API: canned answers edited and deleted, knowledge-base
categories renamed, reordered and deleted, each SLA metric's clock on a ticket, and the @mentions a
user's desk lists until seen. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role
from frontoffice.services.context import Actor

from ..conftest import ShiftedClock, token_headers

API = "/api/v1"
MINUTE = 60


async def post(client: httpx.AsyncClient, headers: dict[str, str], path: str, **body: Any) -> dict[str, Any]:
    r = await client.post(f"{API}{path}", json=body, headers=headers)
    assert r.status_code in (200, 201), r.text
    answer: dict[str, Any] = r.json()
    return answer


async def new_ticket(
    client: httpx.AsyncClient, headers: dict[str, str], subject: str = "Kettle"
) -> dict[str, Any]:
    customer = await post(client, headers, "/customers", first_name="Anna")
    return await post(client, headers, "/tickets", customer_id=customer["id"], subject=subject)


# ---------------------------------------------------------------------- canned answers
async def test_a_canned_answer_is_edited_and_deleted_by_who_may_and_not_while_a_macro_inserts_it(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    agent_headers: dict[str, str],
) -> None:
    shared = await post(
        client, admin_headers, "/canned-answers", shortcut="hi", title="Hello", body="Hello!", shared=True
    )
    mine = await post(client, agent_headers, "/canned-answers", shortcut="bye", title="Bye", body="Bye!")
    other = await token_headers(container, "other", Role.AGENT)

    # The agent edits their own answer; a shared one is the supervisors'; another agent's is not found.
    r = await client.patch(
        f"{API}/canned-answers/{mine['id']}",
        json={"title": "Goodbye", "body": "Goodbye, {{customer.name}}", "language": "ru"},
        headers=agent_headers,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["title"], r.json()["body"], r.json()["language"], r.json()["shortcut"]) == (
        "Goodbye",
        "Goodbye, {{customer.name}}",
        "ru",
        "bye",
    )
    r = await client.patch(f"{API}/canned-answers/{shared['id']}", json={"title": "x"}, headers=agent_headers)
    assert r.status_code == 403, r.text
    r = await client.patch(f"{API}/canned-answers/{mine['id']}", json={"title": "x"}, headers=other)
    assert (r.status_code, r.json()["error_id"]) == (404, "no-such-canned-answer")
    r = await client.patch(f"{API}/canned-answers/{mine['id']}", json={"shared": True}, headers=agent_headers)
    assert r.status_code == 403, r.text
    r = await client.patch(
        f"{API}/canned-answers/{mine['id']}", json={"shortcut": "a b"}, headers=agent_headers
    )
    assert r.status_code == 422 and r.json()["details"]["errors"][0]["loc"] == ["body", "shortcut"]

    # A supervisor shares an answer and renames its shortcut; the picker finds it by the new one.
    r = await client.patch(
        f"{API}/canned-answers/{shared['id']}", json={"shortcut": "hello"}, headers=admin_headers
    )
    assert r.status_code == 200 and r.json()["shared"] is True
    found = (await client.get(f"{API}/canned-answers", params={"q": "hell"}, headers=agent_headers)).json()
    assert [a["shortcut"] for a in found] == ["hello"]

    # Deleting: refused while a macro inserts the answer, then gone from the picker.
    macro = await post(
        client,
        admin_headers,
        "/macros",
        name="Greet",
        actions={"canned_answer_id": shared["id"]},
        shared=True,
    )
    r = await client.delete(f"{API}/canned-answers/{shared['id']}", headers=admin_headers)
    assert (r.status_code, r.json()["error_id"]) == (409, "canned-answer-in-use")
    assert r.json()["details"]["macro_ids"] == [macro["id"]]
    r = await client.delete(f"{API}/canned-answers/{mine['id']}", headers=other)
    assert r.status_code == 404
    r = await client.delete(f"{API}/canned-answers/{mine['id']}", headers=agent_headers)
    assert r.status_code == 204, r.text
    left = (await client.get(f"{API}/canned-answers", params={"q": ""}, headers=agent_headers)).json()
    assert [a["id"] for a in left] == [shared["id"]]
    r = await client.delete(f"{API}/canned-answers/{mine['id']}", headers=agent_headers)
    assert r.status_code == 404


async def test_the_editor_reads_more_canned_answers_than_the_pickers_screenful(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for n in range(25):
        await post(
            client, admin_headers, "/canned-answers", shortcut=f"a{n:02}", title="t", body="b", shared=True
        )
    picker = (await client.get(f"{API}/canned-answers", headers=admin_headers)).json()
    editor = (await client.get(f"{API}/canned-answers", params={"limit": 500}, headers=admin_headers)).json()
    assert (len(picker), len(editor)) == (20, 25)


# ---------------------------------------------------------------------- knowledge base categories
async def test_kb_categories_are_renamed_reordered_and_deleted_and_their_articles_stay(
    client: httpx.AsyncClient, admin_headers: dict[str, str], agent_headers: dict[str, str]
) -> None:
    billing = await post(client, admin_headers, "/kb/categories", name="Billing", position=1)
    returns = await post(client, admin_headers, "/kb/categories", name="Returns", position=2)
    article = await post(
        client,
        admin_headers,
        "/kb/articles",
        language="en",
        title="Refunds",
        body="How",
        category_id=returns["id"],
    )

    async def listed() -> list[tuple[str, int, int]]:
        r = await client.get(f"{API}/kb/categories", headers=agent_headers)
        assert r.status_code == 200, r.text
        return [(c["name"], c["position"], c["articles"]) for c in r.json()]

    assert await listed() == [("Billing", 1, 0), ("Returns", 2, 1)]
    r = await client.patch(
        f"{API}/kb/categories/{returns['id']}",
        json={"name": "Returns and refunds", "position": 0},
        headers=admin_headers,
    )
    assert r.status_code == 200 and r.json()["articles"] == 1, r.text
    assert await listed() == [("Returns and refunds", 0, 1), ("Billing", 1, 0)]

    # Agents read categories but do not change them.
    r = await client.patch(f"{API}/kb/categories/{billing['id']}", json={"name": "x"}, headers=agent_headers)
    assert r.status_code == 403
    r = await client.delete(f"{API}/kb/categories/{billing['id']}", headers=agent_headers)
    assert r.status_code == 403
    r = await client.patch(f"{API}/kb/categories/{billing['id']}", json={"name": ""}, headers=admin_headers)
    assert r.status_code == 422

    r = await client.delete(f"{API}/kb/categories/{returns['id']}", headers=admin_headers)
    assert r.status_code == 204, r.text
    assert await listed() == [("Billing", 1, 0)]
    kept = (await client.get(f"{API}/kb/articles/{article['id']}", headers=agent_headers)).json()
    assert (kept["id"], kept["category_id"]) == (article["id"], None)
    r = await client.delete(f"{API}/kb/categories/{returns['id']}", headers=admin_headers)
    assert (r.status_code, r.json()["error_id"]) == (404, "no-such-kb-category")


# ---------------------------------------------------------------------- SLA clocks per metric
async def test_a_ticket_shows_each_sla_clock_with_its_own_state_due_time_and_pause(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], clock: ShiftedClock
) -> None:
    await post(
        client,
        admin_headers,
        "/sla-policies",
        name="Standard",
        first_response_s=30 * MINUTE,
        next_response_s=60 * MINUTE,
        resolution_s=240 * MINUTE,
        warn_before_s=10 * MINUTE,
    )
    ticket = await new_ticket(client, admin_headers)

    async def clocks() -> dict[str, dict[str, Any]]:
        r = await client.get(f"{API}/tickets/{ticket['id']}", headers=admin_headers)
        assert r.status_code == 200, r.text
        return {c["metric"]: c for c in r.json()["sla_clocks"]}

    start = await clocks()
    assert {m: c["state"] for m, c in start.items()} == {
        "first_response": "running",
        "next_response": "off",
        "resolution": "running",
    }
    assert start["first_response"]["target_s"] == 30 * MINUTE and start["next_response"]["due_at"] is None
    assert start["resolution"]["remaining_s"] <= 240 * MINUTE

    clock.advance(22 * MINUTE)  # eight minutes of the first response left: within the warning
    warned = await clocks()
    assert warned["first_response"]["state"] == "warning"
    assert 7 * MINUTE < warned["first_response"]["remaining_s"] <= 8 * MINUTE
    assert warned["resolution"]["state"] == "running"
    assert warned["first_response"]["due_at"] == start["first_response"]["due_at"]

    # Pending on the customer: every clock stops counting, and none has a due time.
    r = await client.patch(f"{API}/tickets/{ticket['id']}", json={"status": "pending"}, headers=admin_headers)
    assert r.status_code == 200, r.text
    paused_at = await clocks()
    clock.advance(60 * MINUTE)
    paused = await clocks()
    assert {m: c["state"] for m, c in paused.items() if m != "next_response"} == {
        "first_response": "paused",
        "resolution": "paused",
    }
    assert paused["first_response"]["due_at"] is None
    assert paused["resolution"]["remaining_s"] == paused_at["resolution"]["remaining_s"]

    # Open again and past the first response's deadline: breached while it runs, with its due time.
    r = await client.patch(f"{API}/tickets/{ticket['id']}", json={"status": "open"}, headers=admin_headers)
    assert r.status_code == 200, r.text
    clock.advance(10 * MINUTE)
    late = await clocks()
    assert late["first_response"]["state"] == "breached" and late["first_response"]["remaining_s"] < 0
    assert late["first_response"]["due_at"] is not None
    # Answered late: stopped, breached for good (no due time, no time counting); resolution goes on.
    await container.tickets.agent_replied(Actor.system(), ticket["id"])
    answered = await clocks()
    clock.advance(5 * MINUTE)
    later = await clocks()
    assert later["first_response"]["state"] == "breached"
    assert later["first_response"]["due_at"] is None and later["first_response"]["stopped_at"] is not None
    assert later["first_response"]["remaining_s"] == answered["first_response"]["remaining_s"] < 0
    assert later["resolution"]["state"] == "running" and later["resolution"]["due_at"] is not None
    assert later["resolution"]["remaining_s"] < answered["resolution"]["remaining_s"]


async def test_a_ticket_without_a_policy_has_no_clocks_and_lists_carry_none(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    ticket = await new_ticket(client, admin_headers)
    assert (await client.get(f"{API}/tickets/{ticket['id']}", headers=admin_headers)).json()[
        "sla_clocks"
    ] == []


# ---------------------------------------------------------------------- mentions on the desk
async def test_a_mention_is_listed_for_the_mentioned_user_until_they_have_seen_it(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    olga = await token_headers(container, "olga", Role.AGENT)
    petr = await token_headers(container, "petr", Role.AGENT)
    ticket = await new_ticket(client, admin_headers, "Printer on fire")
    await post(
        client, admin_headers, f"/tickets/{ticket['id']}/notes", body="@olga please call   the\ncustomer"
    )
    await post(client, admin_headers, f"/tickets/{ticket['id']}/notes", body="no mention here")

    async def mine(headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
        r = await client.get(f"{API}/me/mentions", params=params, headers=headers)
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    listed = await mine(olga)
    assert [(m["ticket_id"], m["subject"], m["excerpt"], m["seen_at"]) for m in listed] == [
        (ticket["id"], "Printer on fire", "@olga please call the customer", None)
    ]
    assert listed[0]["by_name"] == "root" and await mine(petr) == []

    # Nobody else marks it; its owner does, once or twice alike, and it leaves the unseen list.
    r = await client.post(f"{API}/me/mentions/{listed[0]['id']}/seen", headers=petr)
    assert (r.status_code, r.json()["error_id"]) == (404, "no-such-mention")
    for _ in range(2):
        r = await client.post(f"{API}/me/mentions/{listed[0]['id']}/seen", headers=olga)
        assert r.status_code == 200 and r.json()["seen_at"] is not None, r.text
    assert await mine(olga) == []
    assert [m["id"] for m in await mine(olga, unseen="false")] == [listed[0]["id"]]


async def test_mentions_come_a_page_at_a_time_newest_first_and_not_to_their_author(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    olga = await token_headers(container, "olga", Role.AGENT)
    ticket = await new_ticket(client, admin_headers)
    for n in range(3):
        await post(client, admin_headers, f"/tickets/{ticket['id']}/notes", body=f"@olga note {n} and @root")
    first = (await client.get(f"{API}/me/mentions", params={"limit": 2}, headers=olga)).json()
    assert [m["excerpt"] for m in first["items"]] == ["@olga note 2 and @root", "@olga note 1 and @root"]
    rest = (
        await client.get(
            f"{API}/me/mentions", params={"limit": 2, "cursor": first["next_cursor"]}, headers=olga
        )
    ).json()
    assert [m["excerpt"] for m in rest["items"]] == ["@olga note 0 and @root"] and rest["next_cursor"] is None
    # The author mentioning themselves is no news to them.
    assert (await client.get(f"{API}/me/mentions", headers=admin_headers)).json()["items"] == []


# ---------------------------------------------------------------------- knowledge base next to a ticket
async def test_a_ticket_page_suggests_published_articles_from_the_tickets_subject(
    client: httpx.AsyncClient, admin_headers: dict[str, str], agent_headers: dict[str, str]
) -> None:
    for title, body, publish in (
        ("Возврат денег", "Деньги возвращаются за пять дней.", True),
        ("Доставка", "Курьер приезжает утром.", True),
        ("Возврат товара", "Черновик.", False),
    ):
        article = await post(client, admin_headers, "/kb/articles", language="ru", title=title, body=body)
        if publish:
            r = await client.post(f"{API}/kb/articles/{article['id']}/publish", headers=admin_headers)
            assert r.status_code == 200, r.text
    ticket = await new_ticket(client, agent_headers, "Возврат денег за заказ 7")
    r = await client.get(f"{API}/kb/suggestions", params={"ticket_id": ticket["id"]}, headers=agent_headers)
    assert r.status_code == 200, r.text
    assert [h["title"] for h in r.json()] == ["Возврат денег"]
    r = await client.get(f"{API}/kb/suggestions", params={"ticket_id": 999999}, headers=agent_headers)
    assert r.status_code == 404
    r = await client.get(f"{API}/kb/suggestions", headers=agent_headers)
    assert (r.status_code, r.json()["error_id"]) in ((400, "no-subject-given"), (422, "no-subject-given"))


# ---------------------------------------------------------------------- macros edited and deleted
async def test_a_macro_is_edited_and_deleted_by_who_may(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    agent_headers: dict[str, str],
) -> None:
    shared = await post(
        client, admin_headers, "/macros", name="Pending", actions={"status": "pending"}, shared=True
    )
    mine = await post(client, agent_headers, "/macros", name="Mine", actions={"add_tags": ["x"]})
    other = await token_headers(container, "other", Role.AGENT)

    r = await client.patch(
        f"{API}/macros/{mine['id']}",
        json={"name": "Refund", "actions": {"priority": "high", "add_tags": ["refund"]}},
        headers=agent_headers,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["actions"]["priority"], r.json()["actions"]["add_tags"]) == (
        "Refund",
        "high",
        ["refund"],
    )
    assert (
        await client.patch(f"{API}/macros/{shared['id']}", json={"name": "x"}, headers=agent_headers)
    ).status_code == 403
    r = await client.patch(f"{API}/macros/{mine['id']}", json={"name": "x"}, headers=other)
    assert (r.status_code, r.json()["error_id"]) == (404, "no-such-macro")
    r = await client.patch(
        f"{API}/macros/{shared['id']}", json={"actions": {"canned_answer_id": 999999}}, headers=admin_headers
    )
    assert r.status_code == 404, r.text

    assert (await client.delete(f"{API}/macros/{shared['id']}", headers=agent_headers)).status_code == 403
    assert (await client.delete(f"{API}/macros/{mine['id']}", headers=agent_headers)).status_code == 204
    assert (await client.delete(f"{API}/macros/{shared['id']}", headers=admin_headers)).status_code == 204
    assert (await client.get(f"{API}/macros", headers=agent_headers)).json() == []
