"""CRM over the REST API, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io

import httpx
import pytest
from sqlalchemy import func, select

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Channel, Direction
from frontoffice.store.tables import Customer, InteractionEvent

from .jobs_helpers import export_csv, import_csv

API = "/api/v1"


async def create(client: httpx.AsyncClient, headers: dict[str, str], **body: object) -> dict:
    r = await client.post(f"{API}/customers", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def test_three_spellings_of_one_phone_are_one_identity(client, admin_headers) -> None:
    ivan = await create(
        client,
        admin_headers,
        first_name="Иван",
        last_name="Петров",
        identities=[{"kind": "phone", "value": "8 (495) 123-45-67"}],
    )
    assert ivan["identities"][0]["value"] == "+74951234567"
    for spelling in ("+7 495 1234567", "74951234567"):
        r = await client.get(
            f"{API}/customers/lookup", params={"kind": "phone", "value": spelling}, headers=admin_headers
        )
        assert r.status_code == 200 and r.json()["id"] == ivan["id"]
    r = await client.post(
        f"{API}/customers",
        json={"first_name": "Other", "identities": [{"kind": "phone", "value": "74951234567"}]},
        headers=admin_headers,
    )
    assert r.status_code == 409
    assert r.json()["error_id"] == "identity-taken"
    assert r.json()["details"]["customer_id"] == ivan["id"]


async def test_malformed_phone_and_email_are_rejected_with_the_reason(
    client, admin_headers, container
) -> None:
    for identity, error_id in (
        ({"kind": "phone", "value": "12"}, "invalid-phone"),
        ({"kind": "email", "value": "a@@b"}, "invalid-email"),
    ):
        r = await client.post(
            f"{API}/customers", json={"first_name": "X", "identities": [identity]}, headers=admin_headers
        )
        assert r.status_code == 400
        assert r.json()["error_id"] == error_id
        assert r.json()["message"]
    async with container.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Customer)) == 0


async def test_validation_errors_are_422_with_per_field_details(client, admin_headers) -> None:
    r = await client.post(
        f"{API}/customers", json={"first_name": 5, "vip": "maybe", "surprise": 1}, headers=admin_headers
    )
    assert r.status_code == 422
    body = r.json()
    assert body["error_id"] == "validation-failed"
    locs = {tuple(e["loc"]) for e in body["details"]["errors"]}
    assert ("body", "first_name") in locs and ("body", "vip") in locs and ("body", "surprise") in locs
    r = await client.post(
        f"{API}/customers",
        content=b"{not json",
        headers={**admin_headers, "content-type": "application/json"},
    )
    assert r.status_code == 422
    r = await client.get(f"{API}/customers/not-a-number", headers=admin_headers)
    assert r.status_code == 422


async def test_oversized_body_is_413_not_500(client, admin_headers) -> None:
    r = await client.post(
        f"{API}/customers",
        content=b"x" * 2_000_000,
        headers={**admin_headers, "content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["error_id"] == "body-too-large"


async def test_search_by_name_company_phone_fragment_and_email(client, admin_headers) -> None:
    a = await create(
        client,
        admin_headers,
        first_name="Мария",
        last_name="Смирнова",
        company_name="ООО Ромашка",
        identities=[
            {"kind": "phone", "value": "+7 916 555-12-34"},
            {"kind": "email", "value": "maria@romashka.ru"},
        ],
    )
    b = await create(
        client,
        admin_headers,
        first_name="John",
        last_name="Smith",
        tags=["vip"],
        identities=[{"kind": "email", "value": "john@acme.com"}],
    )
    for q, expected in (("смирн", a), ("ромашка", a), ("555-12", a), ("romashka.ru", a), ("smith", b)):
        r = await client.get(f"{API}/customers", params={"q": q}, headers=admin_headers)
        assert r.status_code == 200
        assert [c["id"] for c in r.json()["items"]] == [expected["id"]], q
    r = await client.get(f"{API}/customers", params={"tag": "vip"}, headers=admin_headers)
    assert [c["id"] for c in r.json()["items"]] == [b["id"]]
    r = await client.get(f"{API}/customers", params={"q": "%"}, headers=admin_headers)
    assert r.json()["items"] == []


async def test_cursor_pagination_walks_every_customer_once(client, admin_headers) -> None:
    ids = {(await create(client, admin_headers, first_name=f"P{i}"))["id"] for i in range(7)}
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(f"{API}/customers", params=params, headers=admin_headers)).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == len(ids)
    r = await client.get(f"{API}/customers", params={"cursor": "garbage!"}, headers=admin_headers)
    assert r.status_code == 400 and r.json()["error_id"] == "invalid-cursor"


async def test_update_tags_custom_fields_and_notes(client, admin_headers) -> None:
    c = await create(client, admin_headers, first_name="Anna", custom={"contract": "D-1"})
    r = await client.patch(
        f"{API}/customers/{c['id']}",
        json={"tags": ["b2b", "vip"], "vip": True, "custom": {"contract": "D-2", "tier": 3}},
        headers=admin_headers,
    )
    assert r.status_code == 200
    assert r.json()["tags"] == ["b2b", "vip"] and r.json()["custom"] == {"contract": "D-2", "tier": 3}
    r = await client.patch(
        f"{API}/customers/{c['id']}", json={"custom": {"nested": {"a": 1}}}, headers=admin_headers
    )
    assert r.status_code == 422
    r = await client.post(
        f"{API}/customers/{c['id']}/notes", json={"body": "Called about invoice"}, headers=admin_headers
    )
    assert r.status_code == 201
    timeline = (await client.get(f"{API}/customers/{c['id']}/timeline", headers=admin_headers)).json()
    assert [i["kind"] for i in timeline["items"]] == ["note"]


async def test_timeline_reads_every_channel_newest_first(client, admin_headers, container: Container) -> None:
    c = await create(client, admin_headers, first_name="Timeline")
    async with container.sessions.begin() as s:
        for channel in (Channel.VOICE, Channel.EMAIL, Channel.CHAT):
            await container.interactions.record(
                s,
                container.interactions.orm_row(s),
                channel=channel,
                direction=Direction.INBOUND,
                customer_id=c["id"],
                subject=channel.value,
            )
    items = (await client.get(f"{API}/customers/{c['id']}/timeline", headers=admin_headers)).json()["items"]
    assert {i["channel"] for i in items} == {"voice", "email", "chat"}
    stamps = [i["at"] for i in items]
    assert stamps == sorted(stamps, reverse=True)


async def test_merge_moves_identities_notes_and_history_and_is_audited(
    client, admin_headers, container
) -> None:
    keep = await create(
        client,
        admin_headers,
        first_name="Иван",
        last_name="Петров",
        identities=[{"kind": "phone", "value": "+74951234567"}],
    )
    dup = await create(
        client,
        admin_headers,
        first_name="Иван",
        last_name="Петров",
        tags=["vip"],
        identities=[{"kind": "email", "value": "ivan@example.ru"}],
    )
    await client.post(
        f"{API}/customers/{dup['id']}/notes", json={"body": "note on the duplicate"}, headers=admin_headers
    )
    async with container.sessions.begin() as s:
        await container.interactions.record(
            s,
            container.interactions.orm_row(s),
            channel=Channel.EMAIL,
            direction=Direction.INBOUND,
            customer_id=dup["id"],
        )
    suggestions = (await client.get(f"{API}/customers/duplicates", headers=admin_headers)).json()
    assert {
        "customer_ids": [keep["id"], dup["id"]],
        "reason": "same-name",
        "detail": "иван петров",
    } in suggestions

    r = await client.post(
        f"{API}/customers/merge", json={"keep_id": keep["id"], "merge_id": dup["id"]}, headers=admin_headers
    )
    assert r.status_code == 200, r.text
    merged = r.json()
    assert {i["value"] for i in merged["identities"]} == {"+74951234567", "ivan@example.ru"}
    assert merged["tags"] == ["vip"]
    kinds = [
        i["kind"]
        for i in (await client.get(f"{API}/customers/{keep['id']}/timeline", headers=admin_headers)).json()[
            "items"
        ]
    ]
    assert sorted(kinds) == ["interaction", "note"]
    assert (await client.get(f"{API}/customers/{dup['id']}", headers=admin_headers)).status_code == 404
    assert await container.crm.history_events(keep["id"]) >= 1
    audit = (
        await client.get(f"{API}/audit", params={"action": "customer.merge"}, headers=admin_headers)
    ).json()
    assert audit["items"][0]["details"]["merged_id"] == dup["id"]
    r = await client.post(
        f"{API}/customers/merge", json={"keep_id": keep["id"], "merge_id": keep["id"]}, headers=admin_headers
    )
    assert r.status_code == 400


async def test_duplicates_suggest_same_email_modulo_tags_and_similar_names(client, admin_headers) -> None:
    a = await create(
        client,
        admin_headers,
        first_name="Ekaterina",
        last_name="Volkova",
        identities=[{"kind": "email", "value": "kate.volkova@gmail.com"}],
    )
    b = await create(
        client,
        admin_headers,
        first_name="Ekaterina",
        last_name="Volkova",
        identities=[{"kind": "email", "value": "katevolkova+shop@gmail.com"}],
    )
    c = await create(client, admin_headers, first_name="Ekaterine", last_name="Volkova")
    pairs = {
        (tuple(s["customer_ids"]), s["reason"])
        for s in (await client.get(f"{API}/customers/duplicates", headers=admin_headers)).json()
    }
    assert ((a["id"], b["id"]), "same-email") in pairs
    assert ((a["id"], c["id"]), "similar-name") in pairs


def _csv(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode()


HEADER = ["first_name", "last_name", "company", "phones", "emails", "tags", "custom:contract"]


async def test_csv_dry_run_reports_row_errors_by_line_and_writes_nothing(
    client, admin_headers, container
) -> None:
    data = _csv(
        [
            HEADER,
            ["Иван", "Петров", "Ромашка", "8 (495) 123-45-67", "ivan@example.ru", "vip", "D-1"],
            ["Bad", "Phone", "", "12345", "", "", ""],
            ["Bad", "Email", "", "", "not-an-email", "", ""],
            ["Dup", "Phone", "", "+7 495 123 45 67", "", "", ""],
        ]
    )
    report = await import_csv(client, admin_headers, data, dry_run=True)
    assert report["rows"] == 4 and report["valid"] == 1 and not report["applied"]
    assert [(e["line"], e["field"]) for e in report["errors"]] == [
        (3, "phones"),
        (4, "emails"),
        (5, "phones"),
    ]
    assert "repeats line 2" in report["errors"][2]["message"]
    assert await container.crm.count_customers() == 0


async def test_csv_all_or_nothing_applies_nothing_when_a_row_is_bad(client, admin_headers, container) -> None:
    data = _csv([HEADER, ["A", "A", "", "+74951111111", "", "", ""], ["B", "B", "", "bad", "", "", ""]])
    report = await import_csv(client, admin_headers, data, dry_run=False, on_errors="all_or_nothing")
    assert report["applied"] is False and report["created"] == 0
    assert await container.crm.count_customers() == 0
    report = await import_csv(client, admin_headers, data, dry_run=False, on_errors="valid_rows")
    assert report["applied"] is True and report["created"] == 1
    assert await container.crm.count_customers() == 1


async def test_csv_rejects_existing_identity_and_unknown_columns(client, admin_headers) -> None:
    await create(
        client, admin_headers, first_name="Has", identities=[{"kind": "email", "value": "x@example.com"}]
    )
    data = _csv([HEADER, ["New", "One", "", "", "X@Example.com", "", ""]])
    report = await import_csv(client, admin_headers, data, dry_run=False)
    assert (
        report["errors"][0]["line"] == 2 and "belongs to another customer" in report["errors"][0]["message"]
    )
    r = await client.post(
        f"{API}/customers/import", files={"file": ("c.csv", b"name,phone\nA,1\n")}, headers=admin_headers
    )
    assert r.status_code == 400 and r.json()["error_id"] == "csv-unknown-columns"


async def test_csv_export_reimports_cleanly(client, admin_headers, container: Container) -> None:
    data = _csv(
        [
            HEADER,
            [
                "Иван",
                "Петров",
                "Ромашка",
                "8 (495) 123-45-67;8 916 111-22-33",
                "ivan@example.ru",
                "vip;b2b",
                "D-1",
            ],
            ["John", "Smith", "", "", "john@acme.com", "", ""],
        ]
    )
    report = await import_csv(client, admin_headers, data, dry_run=False)
    assert report["created"] == 2
    exported = await export_csv(client, admin_headers)
    rows = list(csv.DictReader(io.StringIO(exported)))
    ivan = next(r for r in rows if r["last_name"] == "Петров")
    # A cell starting with '+' that is not a number is written with the spreadsheet's text mark.
    assert ivan["phones"] == "'+74951234567;+79161112233"
    assert ivan["tags"] == "b2b;vip" and ivan["custom:contract"] == "D-1" and ivan["company"] == "Ромашка"


async def test_windows_1251_semicolon_csv_from_excel_imports(client, admin_headers) -> None:
    text = "first_name;last_name;phones\nОльга;Лебедева;8 (812) 123-45-67\n"
    report = await import_csv(client, admin_headers, text.encode("cp1251"), dry_run=False)
    assert report["created"] == 1, report
    found = (await client.get(f"{API}/customers", params={"q": "лебедева"}, headers=admin_headers)).json()
    assert found["items"][0]["identities"][0]["value"] == "+78121234567"


@pytest.mark.parametrize("path", ["/customers/export", "/customers/merge", "/users", "/audit"])
async def test_agents_cannot_reach_supervisor_or_admin_endpoints(client, agent_headers, path: str) -> None:
    method = "POST" if path.endswith("merge") else "GET"
    kwargs = {"json": {"keep_id": 1, "merge_id": 2}} if method == "POST" else {}
    r = await client.request(method, f"{API}{path}", headers=agent_headers, **kwargs)
    assert r.status_code == 403
    assert r.json()["error_id"] == "forbidden"


async def test_events_are_appended_in_the_same_transaction(container: Container) -> None:
    async with container.sessions.begin() as s:
        interaction = await container.interactions.record(
            s,
            container.interactions.orm_row(s),
            channel=Channel.WEBFORM,
            direction=Direction.INBOUND,
            customer_id=None,
        )
    async with container.sessions() as s:
        count = await s.scalar(
            select(func.count())
            .select_from(InteractionEvent)
            .where(InteractionEvent.interaction_id == interaction.id)
        )
    assert count == 1


@pytest.mark.parametrize(
    "path", ["/customers/99999999999999999999999", "/customers/9223372036854775808/timeline"]
)
async def test_ids_beyond_64_bits_are_a_4xx_on_every_database(client, admin_headers, path: str) -> None:
    r = await client.get(f"{API}{path}", headers=admin_headers)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error_id"] in {"value-out-of-range", "no-such-customer"}
