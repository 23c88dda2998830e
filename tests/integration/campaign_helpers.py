"""Shared pieces of the campaign tests: a campaign set up through the API, its contacts and attempts."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from frontoffice.bootstrap import Container
from frontoffice.store.tables import CampaignContact, DialAttempt

API = "/api/v1"
ALL_DAY = [{"days": [0, 1, 2, 3, 4, 5, 6], "start": "00:00", "end": "24:00"}]
# Every outcome final (the domain's rule: an abandoned number waits 72 hours whatever the attempts).
NO_RETRY = {
    **{
        outcome: {"after_s": 0, "max_attempts": 1} for outcome in ("busy", "no_answer", "voicemail", "failed")
    },
    "abandoned": {"after_s": 72 * 3600, "max_attempts": 1},
}


async def create_campaign(
    client: httpx.AsyncClient, admin: dict[str, str], *, numbers: list[str] | None = None, **fields: Any
) -> int:
    body: dict[str, Any] = {
        "name": "Spring offer",
        "mode": "progressive",
        "windows": ALL_DAY,
        "retry": NO_RETRY,
        "message_text": "This is Frontoffice calling about your order. Please call us back.",
        "settings": {"ring_timeout_s": 5},
        **fields,
    }
    r = await client.post(f"{API}/campaigns", json=body, headers=admin)
    assert r.status_code == 201, r.text
    campaign_id = int(r.json()["id"])
    if numbers:
        csv_text = "phone,name\n" + "".join(f"{n},Customer {n[-2:]}\n" for n in numbers)
        r = await client.post(
            f"{API}/campaigns/{campaign_id}/contacts/import",
            files={"file": ("list.csv", csv_text.encode(), "text/csv")},
            headers=admin,
        )
        assert r.status_code == 200 and r.json()["applied"], r.text
    return campaign_id


async def contacts_by_phone(container: Container, campaign_id: int) -> dict[str, CampaignContact]:
    async with container.sessions() as s:
        rows = await s.scalars(select(CampaignContact).where(CampaignContact.campaign_id == campaign_id))
        return {row.phone: row for row in rows}


async def attempts_of(container: Container, campaign_id: int) -> list[DialAttempt]:
    async with container.sessions() as s:
        rows = await s.scalars(
            select(DialAttempt).where(DialAttempt.campaign_id == campaign_id).order_by(DialAttempt.id)
        )
        return list(rows)
