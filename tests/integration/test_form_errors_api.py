"""Configuration errors name their field: calendars (time zone, hours) and routing rules (rule, column)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from frontoffice.bootstrap import Container
from frontoffice.store.tables import BusinessCalendar

from .test_acd_api import API

BAD_CALENDARS = [
    ({"time_zone": "Mars/Base"}, ["body", "time_zone"], "unknown-time-zone"),
    ({"weekly": {"mon": ["09:00-25:00"]}}, ["body", "weekly", "mon", "0"], "hour-out-of-range"),
    ({"weekly": {"tue": ["09:00-13:00", "18:00-09:00"]}}, ["body", "weekly", "tue", "1"], "end-before-start"),
    ({"weekly": {"wed": ["nine to five"]}}, ["body", "weekly", "wed", "0"], "hours-format"),
    ({"weekly": {"someday": ["09:00-18:00"]}}, ["body", "weekly", "someday"], "unknown-weekday"),
    (
        {"special_days": {"2026-12-31": ["10:00-09:00"]}},
        ["body", "special_days", "2026-12-31", "0"],
        "end-before-start",
    ),
]


@pytest.mark.parametrize(("change", "loc", "kind"), BAD_CALENDARS)
async def test_a_calendar_error_names_its_field_and_nothing_is_saved(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    change: dict[str, Any],
    loc: list[str],
    kind: str,
) -> None:
    body = {"name": "office", "time_zone": "Europe/Moscow", "weekly": {}} | change
    r = await client.post(f"{API}/calendars", json=body, headers=admin_headers)
    assert r.status_code == 422, r.text
    assert r.json()["error_id"] == "validation-failed"
    assert [(e["loc"], e["type"]) for e in r.json()["details"]["errors"]] == [(loc, kind)]
    assert (await client.get(f"{API}/calendars", headers=admin_headers)).json() == []


async def test_calendar_errors_answer_in_the_request_language(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    body = {"name": "office", "time_zone": "Europe/Moscow", "weekly": {"mon": ["18:00-09:00"]}}
    r = await client.post(f"{API}/calendars", json=body, headers=admin_headers | {"Accept-Language": "ru"})
    assert "24:00" in r.json()["details"]["errors"][0]["message"]
    assert "полуноч" in r.json()["details"]["errors"][0]["message"]


async def test_open_past_midnight_is_written_as_two_days_and_stays_open_across_it(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    body = {"name": "night", "time_zone": "UTC", "weekly": {"mon": ["18:00-24:00"], "tue": ["00:00-06:00"]}}
    r = await client.post(f"{API}/calendars", json=body, headers=admin_headers)
    assert r.status_code == 201, r.text


async def test_a_rule_syntax_error_names_the_rule_number_and_column(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    q = (
        await client.post(f"{API}/queues", json={"name": "q", "settings": {}}, headers=admin_headers)
    ).json()["id"]
    rules = [{"rule": 'channel == "email"', "queue_id": q}, {"rule": "subject contains", "queue_id": q}]
    body = {"name": "x", "channel": "webform", "address": "x", "default_queue_id": q, "rules": rules}
    r = await client.post(f"{API}/entry-points", json=body, headers=admin_headers | {"Accept-Language": "ru"})
    assert r.status_code == 422, r.text
    error = r.json()
    assert error["error_id"] == "invalid-rule"
    details = error["details"]
    assert (details["rule_index"], details["column"], details["field"]) == (1, 17, "rules.1.rule")
    assert [(e["loc"], e["type"], e["rule_index"], e["column"]) for e in details["errors"]] == [
        (["body", "rules", "1", "rule"], "invalid-rule", 1, 17)
    ]
    assert "правил" in error["message"]


async def test_a_calendar_saved_with_hours_across_midnight_before_the_check_still_lists(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    definition = {"time_zone": "UTC", "weekly": {"fri": ["22:00-06:00"]}, "holidays": [], "special_days": {}}
    async with container.sessions.begin() as s:
        s.add(BusinessCalendar(name="night", definition=definition, created_at=container.auth.clock()))
    r = await client.get(f"{API}/calendars", headers=admin_headers)
    assert r.status_code == 200, r.text
    assert [(c["name"], c["weekly"]) for c in r.json()] == [("night", {"fri": ["22:00-06:00"]})]
