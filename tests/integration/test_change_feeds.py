"""Change feeds for sync: ``GET /{resource}/changes`` with ``updated_since`` or a cursor, in
``(updated_at, id)`` order, with tombstones for deleted and merged records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text, update

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role
from frontoffice.services.change_feeds import DEFAULT_TOMBSTONE_DAYS
from frontoffice.store.tables import Customer, DeletedRecord

from ..conftest import ShiftedClock, token_headers
from .jobs_helpers import finished_job
from .test_acd_api import API, Desk
from .test_project_scoping import Center

LONG_AGO = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _at(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(item["updated_at"])


async def feed(
    client: httpx.AsyncClient, resource: str, headers: dict[str, str], **params: Any
) -> dict[str, Any]:
    r = await client.get(f"{API}/{resource}/changes", params=params, headers=headers)
    assert r.status_code == 200, r.text
    page: dict[str, Any] = r.json()
    return page


async def read_all(
    client: httpx.AsyncClient, resource: str, headers: dict[str, str], **params: Any
) -> tuple[list[dict[str, Any]], str]:
    """Every change from the start given, page by page, and the cursor to poll with next."""
    items: list[dict[str, Any]] = []
    while True:
        page = await feed(client, resource, headers, **params)
        items += page["items"]
        params = {"cursor": page["next_cursor"], "limit": params.get("limit", 100)}
        if not page["has_more"]:
            return items, page["next_cursor"]


async def _customers(client: httpx.AsyncClient, headers: dict[str, str], n: int) -> list[int]:
    ids = []
    for i in range(n):
        r = await client.post(f"{API}/customers", json={"first_name": f"C{i}"}, headers=headers)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


async def test_paging_through_many_changes_that_share_one_timestamp_skips_and_repeats_none(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    ids = await _customers(client, admin_headers, 7)
    async with container.sessions.begin() as s:  # an import: every card stamped in the same instant
        await s.execute(update(Customer).where(Customer.id.in_(ids)).values(updated_at=LONG_AGO))
    items, _ = await read_all(
        client,
        "customers",
        admin_headers,
        updated_since=(LONG_AGO - timedelta(seconds=1)).isoformat(),
        limit=2,
    )
    assert [i["id"] for i in items] == sorted(ids)
    assert all(i["deleted"] is False and i["updated_at"].startswith("2026-01-01T12:00:00") for i in items)
    assert items[0]["record"]["first_name"] == "C0" and "identities" in items[0]["record"]
    # updated_since is inclusive of its instant, and later instants only: nothing before it.
    later = await feed(
        client, "customers", admin_headers, updated_since=(LONG_AGO + timedelta(seconds=1)).isoformat()
    )
    assert later["items"] == []


async def test_a_change_after_the_end_of_the_feed_comes_with_the_next_poll(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    (customer,) = await _customers(client, admin_headers, 1)
    items, cursor = await read_all(client, "customers", admin_headers)
    assert [i["id"] for i in items] == [customer]
    r = await client.patch(
        f"{API}/customers/{customer}", json={"last_name": "Changed"}, headers=admin_headers
    )
    assert r.status_code == 200, r.text
    page = await feed(client, "customers", admin_headers, cursor=cursor)
    latest = [i for i in page["items"] if i["id"] == customer][-1]
    assert latest["record"]["last_name"] == "Changed"
    assert _at(latest) > _at(items[0])


async def test_a_deleted_customer_comes_as_a_tombstone_and_a_merged_one_names_the_kept_card(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    keep, merged, deleted = await _customers(client, admin_headers, 3)
    _, cursor = await read_all(client, "customers", admin_headers)
    r = await client.post(
        f"{API}/customers/merge", json={"keep_id": keep, "merge_id": merged}, headers=admin_headers
    )
    assert r.status_code == 200, r.text
    assert (await client.delete(f"{API}/customers/{deleted}", headers=admin_headers)).status_code == 204
    items, _ = await read_all(client, "customers", admin_headers, cursor=cursor)
    tombstones = {i["id"]: i for i in items if i["deleted"]}
    assert tombstones[merged]["merged_into_id"] == keep and tombstones[merged]["record"] is None
    assert tombstones[deleted]["merged_into_id"] is None
    live = [i["id"] for i in items if not i["deleted"]]
    assert merged not in live and deleted not in live and keep in live
    # Written in the deletion's transaction: the tombstone rows are there with the deletion.
    async with container.sessions() as s:
        rows = (await s.execute(text("SELECT record_id FROM deleted_records WHERE project_id IS NULL"))).all()
    assert sorted(r[0] for r in rows) == sorted([merged, deleted])


async def test_a_contacts_state_changes_move_it_along_the_interactions_feed(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    desk = Desk(client, container, admin_headers)
    await desk.entry("site", await desk.queue("support"))
    contact = (await desk.contact("site"))["interaction"]["id"]
    items, cursor = await read_all(client, "interactions", admin_headers)
    first = next(i for i in items if i["id"] == contact)
    assert first["record"]["state"] == "queued" and first["record"]["channel"] == "webform"
    assert "route_seq" not in first["record"]  # the server's bookkeeping stays out
    r = await client.post(f"{API}/interactions/{contact}/abandon", headers=admin_headers)
    assert r.status_code == 204, r.text
    page = await feed(client, "interactions", admin_headers, cursor=cursor)
    now = [i for i in page["items"] if i["id"] == contact][-1]
    assert now["record"]["state"] == "abandoned" and _at(now) > _at(first)


async def test_companies_tickets_and_deals_have_feeds_too(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    (customer,) = await _customers(client, admin_headers, 1)
    company = (await client.post(f"{API}/companies", json={"name": "Acme"}, headers=admin_headers)).json()[
        "id"
    ]
    ticket = (
        await client.post(
            f"{API}/tickets", json={"customer_id": customer, "subject": "Broken"}, headers=admin_headers
        )
    ).json()["id"]
    deal = (
        await client.post(
            f"{API}/deals",
            json={"customer_id": customer, "title": "Big", "currency": "EUR"},
            headers=admin_headers,
        )
    ).json()["id"]
    for resource, record_id, field, value in (
        ("companies", company, "name", "Acme"),
        ("tickets", ticket, "subject", "Broken"),
        ("deals", deal, "title", "Big"),
    ):
        items, _ = await read_all(client, resource, admin_headers)
        (item,) = [i for i in items if i["id"] == record_id]
        assert item["record"][field] == value, resource


async def test_a_user_limited_to_a_project_gets_only_that_projects_changes_and_tombstones(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    desk = Desk(client, container, admin_headers)
    center = await Center(desk).build()
    contacts = [
        (await desk.contact(f"{code}-site", customer={"first_name": code, "phone": phone}))["interaction"][
            "id"
        ]
        for code, phone in (("alpha", "+7 916 000-00-01"), ("beta", "+7 916 000-00-02"))
    ]
    alpha, beta = contacts
    headers = await token_headers(container, "alpha-sync", Role.SUPERVISOR)
    me = (await client.get(f"{API}/me", headers=headers)).json()["id"]
    assert (await center.limit(me, "alpha")).status_code == 200
    container.auth.forget_tokens()
    items, _ = await read_all(client, "interactions", headers)
    assert {i["id"] for i in items} == {alpha}
    customers, customer_cursor = await read_all(client, "customers", headers)
    customer_of = {
        key: (await client.get(f"{API}/interactions/{iid}", headers=admin_headers)).json()["customer_id"]
        for key, iid in (("alpha", alpha), ("beta", beta))
    }
    assert {i["id"] for i in customers} == {customer_of["alpha"]}
    for key in ("alpha", "beta"):
        r = await client.delete(f"{API}/customers/{customer_of[key]}", headers=admin_headers)
        assert r.status_code == 204
    after, _ = await read_all(client, "customers", headers, cursor=customer_cursor)
    assert [i["id"] for i in after if i["deleted"]] == [customer_of["alpha"]]
    everyone, _ = await read_all(client, "customers", admin_headers)
    assert sorted(i["id"] for i in everyone if i["deleted"]) == sorted(customer_of.values())


async def test_a_bad_cursor_is_a_400_not_a_500(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    for params in ({"cursor": "garbage"}, {"cursor": "eHx5fHo"}, {"updated_since": "2026-01-01T00:00:00"}):
        r = await client.get(f"{API}/deals/changes", params=params, headers=admin_headers)
        assert r.status_code == 400, (params, r.text)
    page = await feed(client, "deals", admin_headers)
    r = await client.get(
        f"{API}/deals/changes",
        params={"cursor": page["next_cursor"], "updated_since": "2026-01-01T00:00:00Z"},
        headers=admin_headers,
    )
    assert r.status_code == 400 and r.json()["error_id"] == "cursor-and-since"


async def test_the_feeds_read_in_index_order(container: Container) -> None:
    """Every feed's table has its (updated_at, id) index, and deleted_records its own."""
    wanted = {
        "customers": "ix_customers_updated",
        "companies": "ix_companies_updated",
        "interactions": "ix_interactions_updated",
        "tickets": "ix_tickets_updated",
        "deals": "ix_deals_updated",
        "deleted_records": "ix_deleted_records_resource_deleted",
    }
    async with container.engine.connect() as conn:

        def indexes(sync_conn: Any) -> dict[str, set[str]]:
            from sqlalchemy import inspect

            inspector = inspect(sync_conn)
            return {table: {ix["name"] or "" for ix in inspector.get_indexes(table)} for table in wanted}

        found = await conn.run_sync(indexes)
    for table, index in wanted.items():
        assert index in found[table], table


async def test_old_tombstones_are_pruned_and_a_cursor_older_than_them_is_told_to_resync(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], clock: ShiftedClock
) -> None:
    # Today's retention sweep, queued when the server started, runs in the background. Seen in a full
    # run: it ran late, after the deletion below was made old, and pruned it before tomorrow's sweep
    # could (which then removed nothing). It ends before there is anything old to prune.
    (today,) = await container.jobs.run_scheduled()
    await finished_job(client, admin_headers, f"{API}/jobs/{today.id}")
    gone_long_ago, gone_lately, kept = await _customers(client, admin_headers, 3)
    assert (await client.delete(f"{API}/customers/{gone_long_ago}", headers=admin_headers)).status_code == 204
    long_ago = datetime.now(UTC) - timedelta(days=DEFAULT_TOMBSTONE_DAYS + 1)
    async with container.sessions.begin() as s:
        await s.execute(
            update(DeletedRecord).where(DeletedRecord.record_id == gone_long_ago).values(deleted_at=long_ago)
        )
    # A client that read up to that deletion then, and one that synced just now.
    since = (long_ago - timedelta(days=1)).isoformat()
    page = await feed(client, "customers", admin_headers, updated_since=since, limit=1)
    assert [i["id"] for i in page["items"]] == [gone_long_ago] and page["has_more"]
    stale = page["next_cursor"]
    _, recent = await read_all(client, "customers", admin_headers)
    assert (await client.delete(f"{API}/customers/{gone_lately}", headers=admin_headers)).status_code == 204

    clock.advance(86400)  # tomorrow: today's sweep ran when the server started
    (job,) = await container.jobs.run_scheduled()  # the server's daily retention sweep
    done = await finished_job(client, admin_headers, f"{API}/jobs/{job.id}")
    assert done["state"] == "succeeded" and done["result"]["tombstones_removed"] > 0, done
    async with container.sessions() as s:
        rows = (await s.execute(text("SELECT record_id FROM deleted_records"))).all()
    assert {r[0] for r in rows} == {gone_lately}

    # Reading on from before the pruned deletions would miss one: the client is told to resync.
    for params in ({"cursor": stale}, {"updated_since": since}):
        r = await client.get(f"{API}/customers/changes", params=params, headers=admin_headers)
        assert r.status_code == 410, r.text
        assert r.json()["error_id"] == "cursor-expired"
        assert r.json()["details"]["pruned_before"]
    # A recent cursor still sees the deletions it has not read.
    items, _ = await read_all(client, "customers", admin_headers, cursor=recent)
    assert [i["id"] for i in items if i["deleted"]] == [gone_lately]
    # The resync: everything that exists, and a cursor that works from there.
    items, cursor = await read_all(client, "customers", admin_headers)
    assert [i["id"] for i in items if not i["deleted"]] == [kept]
    assert (await feed(client, "customers", admin_headers, cursor=cursor))["items"] == []
