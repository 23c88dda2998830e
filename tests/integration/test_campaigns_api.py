"""Campaigns and do-not-call lists through the API, without calls: list import with line-numbered
errors, CRM segments, do-not-call import/export and the desk's button, the campaign's life cycle,
preview, dispositions and callbacks, and time-zone calling windows under a fake clock."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role
from frontoffice.store.tables import ClusterNode, Customer, Interaction

from ..conftest import ShiftedClock, make_user, token_headers
from .campaign_helpers import API, attempts_of, contacts_by_phone, create_campaign


async def _queue(client: httpx.AsyncClient, admin: dict[str, str]) -> int:
    r = await client.post(f"{API}/queues", json={"name": "Outbound", "settings": {}}, headers=admin)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def test_a_contact_list_with_bad_rows_is_refused_with_their_line_numbers_and_nothing_is_added(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    campaign_id = await create_campaign(client, admin_headers)
    csv_text = (
        "phone,name,time_zone,priority\n"
        "+74951110010,Anna,,\n"
        "not a number,Boris,,\n"
        "+74951110011,Vera,Mars/Base,\n"
        "+74951110012,Gleb,,high\n"
    )
    r = await client.post(
        f"{API}/campaigns/{campaign_id}/contacts/import",
        files={"file": ("list.csv", csv_text.encode(), "text/csv")},
        headers=admin_headers,
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert not report["applied"] and report["created"] == 0
    assert [(e["line"], e["field"]) for e in report["errors"]] == [
        (3, "phone"),
        (4, "time_zone"),
        (5, "priority"),
    ]
    assert await contacts_by_phone(container, campaign_id) == {}
    good = (
        "phone;name;account\n8 (495) 111-00-10;Anna;A-1\n+74951110010;Anna again;A-1\n+12125550101;John;B-2\n"
    )
    r = await client.post(
        f"{API}/campaigns/{campaign_id}/contacts/import",
        files={"file": ("list.csv", good.encode(), "text/csv")},
        headers=admin_headers,
    )
    assert r.status_code == 200 and r.json()["created"] == 2, r.text  # the same number twice: once
    contacts = await contacts_by_phone(container, campaign_id)
    assert contacts["+74951110010"].time_zone == "Europe/Moscow"
    assert contacts["+12125550101"].time_zone == "America/New_York"
    assert contacts["+74951110010"].data == {"account": "A-1"}


async def test_a_crm_segment_adds_the_customers_with_all_its_tags_and_custom_values_once(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    for phone, tags, custom in (
        ("+74951110020", ["vip", "moscow"], {"plan": "gold"}),
        ("+74951110021", ["vip"], {"plan": "gold"}),
        ("+74951110022", ["vip", "moscow"], {"plan": "silver"}),
        ("+74951110023", ["vip", "moscow"], {"plan": "gold"}),
    ):
        r = await client.post(
            f"{API}/customers",
            json={
                "first_name": "C",
                "tags": tags,
                "custom": custom,
                "identities": [{"kind": "phone", "value": phone}],
            },
            headers=admin_headers,
        )
        assert r.status_code == 201, r.text
    campaign_id = await create_campaign(client, admin_headers)
    segment = {"tags": ["vip", "moscow"], "custom": {"plan": "gold"}}
    r = await client.post(
        f"{API}/campaigns/{campaign_id}/contacts/segment", json=segment, headers=admin_headers
    )
    assert r.status_code == 200 and r.json() == {"added": 2}, r.text
    r = await client.post(
        f"{API}/campaigns/{campaign_id}/contacts/segment", json=segment, headers=admin_headers
    )
    assert r.json() == {"added": 0}
    contacts = await contacts_by_phone(container, campaign_id)
    assert sorted(contacts) == ["+74951110020", "+74951110023"]
    assert all(c.customer_id is not None for c in contacts.values())


async def test_do_not_call_numbers_are_never_claimed_and_the_check_is_logged_on_the_attempt(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    queue_id = await _queue(client, admin_headers)
    r = await client.post(f"{API}/projects", json={"code": "acme", "name": "Acme"}, headers=admin_headers)
    assert r.status_code == 201, r.text
    project_id = r.json()["id"]
    # An import with a bad row adds nothing; its line is named.
    r = await client.post(
        f"{API}/dnc/import",
        files={"file": ("dnc.csv", b"phone,reason\n+74951110030,asked\nabc,\n", "text/csv")},
        headers=admin_headers,
    )
    assert r.status_code == 200 and [e["line"] for e in r.json()["errors"]] == [3], r.text
    r = await client.post(
        f"{API}/dnc/import",
        files={"file": ("dnc.csv", b"phone,reason\n+74951110030,asked\n", "text/csv")},
        headers=admin_headers,
    )
    assert r.json()["created"] == 1, r.text
    r = await client.post(
        f"{API}/dnc",
        json={"phone": "+74951110031", "project_id": project_id, "reason": "client's list"},
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    # Opted out of SMS on another channel (what services/messaging.py records on a STOP).
    r = await client.post(
        f"{API}/customers",
        json={"first_name": "Olga", "identities": [{"kind": "phone", "value": "+74951110032"}]},
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    async with container.sessions.begin() as s:
        customer = await s.get(Customer, r.json()["id"])
        assert customer is not None
        customer.custom = {"sms_opt_out": {"1": {"at": "2026-01-01T00:00:00+00:00", "keyword": "STOP"}}}
    numbers = ["+74951110030", "+74951110031", "+74951110032", "+74951110033"]
    campaign_id = await create_campaign(
        client, admin_headers, numbers=numbers, queue_id=queue_id, project_id=project_id
    )
    r = await client.post(f"{API}/campaigns/{campaign_id}/start", headers=admin_headers)
    assert r.status_code == 200 and r.json()["state"] == "running", r.text
    orders = await container.campaign_attempts.claim(campaign_id, 10)
    assert [o.phone for o in orders] == ["+74951110033"]
    by_phone = {a.phone: a for a in await attempts_of(container, campaign_id)}
    assert {p: (a.dnc_result, a.outcome) for p, a in by_phone.items()} == {
        "+74951110030": ("global", "dnc"),
        "+74951110031": (f"project:{project_id}", "dnc"),
        "+74951110032": ("opt_out", "dnc"),
        "+74951110033": ("clear", None),
    }
    assert all(a.interaction_id is None for p, a in by_phone.items() if p != "+74951110033")
    states = {p: c.state for p, c in (await contacts_by_phone(container, campaign_id)).items()}
    assert states == {
        "+74951110030": "dnc",
        "+74951110031": "dnc",
        "+74951110032": "dnc",
        "+74951110033": "dialling",
    }
    # The lists export as CSV.
    r = await client.get(f"{API}/dnc/export", headers=admin_headers)
    assert r.status_code == 200
    lines = r.text.strip().splitlines()
    assert lines[0] == "phone,project_id,reason,source,added_at" and len(lines) == 3
    r = await client.get(f"{API}/dnc/check", params={"phone": "+74951110032"}, headers=admin_headers)
    assert r.json()["result"] == "opt_out"


async def test_an_agent_puts_the_customer_of_a_call_on_the_do_not_call_list_from_the_desk(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    queue_id = await _queue(client, admin_headers)
    campaign_id = await create_campaign(client, admin_headers, numbers=["+74951110040"], queue_id=queue_id)
    await client.post(f"{API}/campaigns/{campaign_id}/start", headers=admin_headers)
    [order] = await container.campaign_attempts.claim(campaign_id, 1)
    agent = await token_headers(container, "desk-agent", Role.AGENT)
    r = await client.post(
        f"{API}/dnc/from-call",
        json={"interaction_id": order.interaction_id, "reason": "asked on the call"},
        headers=agent,
    )
    assert r.status_code == 201, r.text
    assert (
        r.json()["phone"] == "+74951110040"
        and r.json()["source"] == "agent"
        and r.json()["project_id"] is None
    )
    r = await client.get(f"{API}/dnc/check", params={"phone": "+74951110040"}, headers=agent)
    assert r.json()["result"] == "global"
    # Agents may not import or delete lists.
    r = await client.post(f"{API}/dnc", json={"phone": "+74951110041"}, headers=agent)
    assert r.status_code == 403


async def test_a_campaign_starts_pauses_resumes_and_stops_and_a_wrong_move_is_a_conflict(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    queue_id = await _queue(client, admin_headers)
    # The regulators' rules are the domain's: no redial of an abandoned number within 72 hours, no cap
    # above 3 %, windows that end after they start.
    for bad in (
        {"retry": {"abandoned": {"after_s": 3600, "max_attempts": 2}}},
        {"settings": {"abandon_cap": 0.05}},
        {"windows": [{"days": [0], "start": "18:00", "end": "09:00"}]},
        {"retry": {"answered": {"after_s": 0, "max_attempts": 2}}},
    ):
        r = await client.post(f"{API}/campaigns", json={"name": "Bad", **bad}, headers=admin_headers)
        assert r.status_code == 422, (bad, r.text)
    campaign_id = await create_campaign(client, admin_headers, numbers=["+74951110050"])
    r = await client.post(f"{API}/campaigns/{campaign_id}/start", headers=admin_headers)
    assert r.status_code == 409 and r.json()["error_id"] == "campaign-without-queue"
    r = await client.patch(
        f"{API}/campaigns/{campaign_id}", json={"queue_id": queue_id}, headers=admin_headers
    )
    assert r.status_code == 200, r.text
    r = await client.post(f"{API}/campaigns/{campaign_id}/resume", headers=admin_headers)
    assert r.status_code == 409 and r.json()["error_id"] == "campaign-state"
    for action, state in (
        ("start", "running"),
        ("start", "running"),
        ("pause", "paused"),
        ("resume", "running"),
        ("stop", "stopped"),
    ):
        r = await client.post(f"{API}/campaigns/{campaign_id}/{action}", headers=admin_headers)
        assert r.status_code == 200 and r.json()["state"] == state, (action, r.text)
    # A stopped campaign claims nothing.
    assert await container.campaign_attempts.claim(campaign_id, 5) == []
    agent = await token_headers(container, "someone", Role.AGENT)
    r = await client.post(f"{API}/campaigns/{campaign_id}/start", headers=agent)
    assert r.status_code == 403


async def test_preview_gives_the_agent_a_contact_with_its_card_and_a_skip_needs_a_reason(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    queue_id = await _queue(client, admin_headers)
    r = await client.post(
        f"{API}/customers",
        json={"first_name": "Irina", "identities": [{"kind": "phone", "value": "+74951110060"}]},
        headers=admin_headers,
    )
    customer_id = r.json()["id"]
    campaign_id = await create_campaign(
        client,
        admin_headers,
        numbers=["+74951110060", "+74951110061"],
        queue_id=queue_id,
        mode="preview",
        dispositions=["sale", "not_interested"],
    )
    await client.post(f"{API}/campaigns/{campaign_id}/start", headers=admin_headers)
    agent = await token_headers(container, "previewer", Role.AGENT)
    r = await client.post(f"{API}/campaigns/{campaign_id}/preview", headers=agent)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["contact"]["phone"] == "+74951110060" and first["customer"]["id"] == customer_id
    # Asking again gives the same contact (it is held for this agent).
    r = await client.post(f"{API}/campaigns/{campaign_id}/preview", headers=agent)
    assert r.json()["contact"]["id"] == first["contact"]["id"]
    r = await client.post(
        f"{API}/campaign-contacts/{first['contact']['id']}/skip", json={"reason": ""}, headers=agent
    )
    assert r.status_code == 422
    r = await client.post(
        f"{API}/campaign-contacts/{first['contact']['id']}/skip",
        json={"reason": "wrong person"},
        headers=agent,
    )
    assert r.status_code == 200 and r.json()["state"] == "skipped", r.text
    r = await client.post(f"{API}/campaigns/{campaign_id}/preview", headers=agent)
    second = r.json()["contact"]
    assert second["phone"] == "+74951110061"
    # Dialling needs the agent's phone (the voice channel is not running here).
    r = await client.post(f"{API}/campaign-contacts/{second['id']}/dial", headers=agent)
    assert r.status_code == 409, r.text
    # A disposition not of the campaign is refused; a callback for the agent keeps the contact for them.
    r = await client.post(
        f"{API}/campaign-contacts/{second['id']}/disposition", json={"code": "other"}, headers=agent
    )
    assert r.status_code == 400 and r.json()["error_id"] == "unknown-disposition", r.text
    at = (container.campaigns.clock() + timedelta(hours=2)).isoformat()
    r = await client.post(
        f"{API}/campaign-contacts/{second['id']}/disposition",
        json={"code": "not_interested", "callback_at": at, "callback_to": "me"},
        headers=agent,
    )
    assert r.status_code == 200, r.text
    contact = r.json()
    assert contact["state"] == "pending" and contact["callback_agent_id"] is not None
    r = await client.get(f"{API}/campaign-callbacks", headers=agent)
    assert [c["id"] for c in r.json()] == [second["id"]]
    other = await token_headers(container, "colleague", Role.AGENT)
    r = await client.post(f"{API}/campaigns/{campaign_id}/preview", headers=other)
    assert r.status_code == 200 and r.json() is None  # the callback is not theirs, and not due


async def test_calling_windows_follow_each_contacts_own_time_zone_under_a_fake_clock(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], clock: ShiftedClock
) -> None:
    queue_id = await _queue(client, admin_headers)
    # Monday 07:00 UTC: 10:00 in Moscow, 03:00 in New York.
    monday = datetime(2030, 1, 7, 7, 0, tzinfo=UTC)
    clock.offset = monday - datetime.now(UTC)
    campaign_id = await create_campaign(
        client,
        admin_headers,
        numbers=["+74951110070", "+12125550170"],
        queue_id=queue_id,
        windows=[{"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "21:00"}],
    )
    await client.post(f"{API}/campaigns/{campaign_id}/start", headers=admin_headers)
    orders = await container.campaign_attempts.claim(campaign_id, 10)
    assert [o.phone for o in orders] == ["+74951110070"]
    new_york = (await contacts_by_phone(container, campaign_id))["+12125550170"]
    assert new_york.state == "pending"
    assert new_york.next_attempt_at == datetime(2030, 1, 7, 14, 0, tzinfo=UTC)  # 09:00 in New York
    clock.advance(6 * 3600 + 59 * 60)  # 13:59 UTC: 08:59 in New York
    assert await container.campaign_attempts.claim(campaign_id, 10) == []
    clock.advance(60)
    assert [o.phone for o in await container.campaign_attempts.claim(campaign_id, 10)] == ["+12125550170"]
    # Friday 21:00 in New York is the last minute of the week: the next opening is Monday 09:00.
    clock.offset = datetime(2030, 1, 12, 2, 0, tzinfo=UTC) - datetime.now(UTC)  # Fri 21:00 NY
    campaign2 = await create_campaign(
        client,
        admin_headers,
        numbers=["+12125550171"],
        queue_id=queue_id,
        name="Two",
        windows=[{"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "21:00"}],
    )
    await client.post(f"{API}/campaigns/{campaign2}/start", headers=admin_headers)
    assert await container.campaign_attempts.claim(campaign2, 10) == []
    contact = (await contacts_by_phone(container, campaign2))["+12125550171"]
    assert contact.next_attempt_at == datetime(2030, 1, 14, 14, 0, tzinfo=UTC)


async def test_a_claimed_contact_has_its_outbound_interaction_before_any_call_is_placed(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    queue_id = await _queue(client, admin_headers)
    campaign_id = await create_campaign(client, admin_headers, numbers=["+74951110080"], queue_id=queue_id)
    await client.post(f"{API}/campaigns/{campaign_id}/start", headers=admin_headers)
    [order] = await container.campaign_attempts.claim(campaign_id, 5)
    assert await container.campaign_attempts.claim(campaign_id, 5) == []  # claimed once
    async with container.sessions() as s:
        row = (await s.scalars(select(Interaction).where(Interaction.id == order.interaction_id))).one()
    assert (row.direction, row.channel, row.state, row.to_address) == (
        "outbound",
        "voice",
        "new",
        "+74951110080",
    )
    # A restart finds the attempt in flight: it ends as unknown and the contact waits for its retry.
    assert await container.campaign_attempts.recover() == 1
    [attempt] = await attempts_of(container, campaign_id)
    assert (attempt.state, attempt.outcome) == ("ended", "unknown")
    contact = (await contacts_by_phone(container, campaign_id))["+74951110080"]
    assert contact.state == "failed"  # NO_RETRY: one attempt in all


async def test_the_campaigns_page_is_for_supervisors_and_the_desk_carries_the_outbound_card(
    client: httpx.AsyncClient, container: Container
) -> None:
    from .test_ui_pages import sign_in

    await make_user(container, "lead", Role.SUPERVISOR, language="ru")
    await sign_in(client, "lead")
    page = await client.get("/campaigns")
    assert page.status_code == 200 and "/static/js/campaigns.js" in page.text
    assert "<title>Кампании" in page.text
    found = re.search(r'<script type="application/json" id="fo-messages">(.*?)</script>', page.text)
    assert found and json.loads(found.group(1))["Abandon rate"] == "Доля брошенных"
    client.cookies.clear()
    await make_user(container, "caller", Role.AGENT)
    await sign_in(client, "caller")
    assert (await client.get("/campaigns")).status_code == 303
    desk = await client.get("/desk")
    assert 'id="outbound"' in desk.text and "/static/js/outbound.js" in desk.text


async def test_hostile_contact_and_do_not_call_files_are_refused_with_their_line_not_a_server_error(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    campaign_id = await create_campaign(client, admin_headers)
    hostile = {
        # a NUL byte (the csv module raises on it), a binary file, a quote never closed
        b"phone,name\n+74951110040,An\x00na\n": ("csv-encoding", 2),
        b"PK\x03\x04\x14\x00\x06\x00phone\n": ("csv-encoding", 1),
        b'phone,name\n+74951110041,"Boris\n+74951110042,Vera\n': ("csv-malformed", 2),
    }
    for path in (f"{API}/campaigns/{campaign_id}/contacts/import", f"{API}/dnc/import"):
        for data, (error_id, line) in hostile.items():
            r = await client.post(path, files={"file": ("x.csv", data, "text/csv")}, headers=admin_headers)
            assert r.status_code == 400, (path, data, r.text)
            assert r.json()["error_id"] == error_id and r.json()["details"]["line"] == line, r.text
        r = await client.post(
            path, files={"file": ("x.csv", b"name\nAnna\n", "text/csv")}, headers=admin_headers
        )
        assert r.status_code == 400 and r.json()["error_id"] == "csv-no-phone-column", r.text
    assert await contacts_by_phone(container, campaign_id) == {}


async def test_answering_machine_detection_is_off_by_default_and_its_parameters_are_checked(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    queue_id = await _queue(client, admin_headers)
    r = await client.post(
        f"{API}/campaigns", json={"name": "No AMD", "queue_id": queue_id}, headers=admin_headers
    )
    assert r.status_code == 201, r.text
    settings = r.json()["settings"]
    assert settings["amd"] is False and settings["amd_machine_action"] == "hangup"
    assert settings["amd_parameters"]["maximum_number_of_words"] == 2  # Asterisk's default
    r = await client.post(
        f"{API}/campaigns",
        json={
            "name": "AMD",
            "queue_id": queue_id,
            "settings": {
                "amd": True,
                "amd_machine_action": "message",
                "amd_parameters": {"greeting": 2000, "silence_threshold": 300},
            },
        },
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    settings = r.json()["settings"]
    assert settings["amd"] is True and settings["amd_machine_action"] == "message"
    assert settings["amd_parameters"]["greeting"] == 2000
    assert settings["amd_parameters"]["initial_silence"] == 2500
    bad = {
        "amd_machine_action": ("transfer", "amd_machine_action"),
        "amd_parameters": ({"greeting": -5}, "greeting"),
    }
    for key, (value, loc) in bad.items():
        r = await client.post(
            f"{API}/campaigns",
            json={"name": "Bad AMD", "queue_id": queue_id, "settings": {"amd": True, key: value}},
            headers=admin_headers,
        )
        assert r.status_code == 422, r.text
        assert r.json()["details"]["errors"][0]["loc"][-1] == loc, r.text
    for parameters in ({"greeting": 6000}, {"silense": 100}):  # past the analysis time; a typo
        r = await client.post(
            f"{API}/campaigns",
            json={"name": "Bad AMD", "queue_id": queue_id, "settings": {"amd_parameters": parameters}},
            headers=admin_headers,
        )
        assert r.status_code == 422, r.text
        assert "amd_parameters" in r.json()["details"]["errors"][0]["loc"], r.text


async def test_in_a_cluster_a_restart_ends_only_its_own_attempts_and_a_silent_voice_nodes_end_later(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], clock: ShiftedClock
) -> None:
    """Several voice nodes place calls (the dialler's holder, agents' preview dials): a node's restart
    ends the attempts it left in flight, not the calls up on the others; the routing leader ends those
    of a node that went silent (or stopped) once it has been silent long enough."""
    attempts = container.campaign_attempts
    queue_id = await _queue(client, admin_headers)
    numbers = [f"+7495111009{d}" for d in range(5)]
    campaign_id = await create_campaign(client, admin_headers, numbers=numbers, queue_id=queue_id)
    await client.post(f"{API}/campaigns/{campaign_id}/start", headers=admin_headers)
    claimed: dict[str, str] = {}  # phone -> the node whose attempt it is
    for node in ("fo1", "fo2", "fo3", "fo4"):
        attempts.node = node
        [order] = await attempts.claim(campaign_id, 1)
        claimed[order.phone] = node
    async with container.sessions.begin() as s:
        now = clock()
        for node, heard, role in (
            ("fo2", now, "standby"),  # alive
            ("fo3", now - timedelta(seconds=60), "standby"),  # silent for a minute: died
            ("fo4", now, "stopped"),  # stopped just now
        ):
            row = ClusterNode(node=node, http_url="", version="", role=role, bus="connected")
            row.started_at, row.heartbeat_at = now, heard
            s.add(row)
    clock.advance(1)
    attempts.node = "fo4"  # fo4 started again and dials: this call is up
    [again] = await attempts.claim(campaign_id, 1)
    claimed[again.phone] = "fo4 again"

    attempts.node = "fo1"
    elsewhere = (await attempts.calls_elsewhere())[campaign_id]
    assert (len(elsewhere.dialled_at), elsewhere.answered) == (4, 0), "fo2's, fo3's, fo4's: in fo1's pacing"
    assert await attempts.recover(own_only=True) == 1  # fo1 restarted
    assert len(await attempts.close_calls_of_silent_nodes(15.0)) == 2  # the leader's sweep: fo3, fo4
    ended = {a.phone: (a.state, a.outcome, a.node) for a in await attempts_of(container, campaign_id)}
    assert {claimed[p]: state for p, (state, _, _) in ended.items()} == {
        "fo1": "ended",
        "fo2": "dialling",
        "fo3": "ended",
        "fo4": "ended",
        "fo4 again": "dialling",
    }
    assert {o for _, o, _ in ended.values() if o} == {"unknown"}
    assert {claimed[p].split()[0] for p in ended} == {n for _, _, n in ended.values()}
