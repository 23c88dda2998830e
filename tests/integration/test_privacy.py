"""Personal data on SQLite and PostgreSQL: one customer's data exported as a ZIP (a job), one customer
erased with the statistics kept, retention per project applied by the server's own daily sweep, and
an audit log that records exports and erasures and shows limited users their projects' entries."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role
from frontoffice.services.acd_schemas import EntryPointIn, QueueIn
from frontoffice.services.context import Actor
from frontoffice.services.privacy import RETENTION_JOB
from frontoffice.store.tables import BackgroundJob, Interaction, Message, MessageAttachment

from ..conftest import ShiftedClock, make_user
from .jobs_helpers import API, accepted_job, finished_job

ATTACHMENT = b"%PDF-1.4 passport scan of Ivan Petrov"


def mail_with_file(to: str, sender: str, body: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = "My passport"
    msg["Date"] = format_datetime(datetime(2026, 12, 7, 10, 0, tzinfo=UTC))
    msg["Message-ID"] = make_msgid(domain="customer.example")
    msg.set_content(body)
    msg.add_attachment(
        ATTACHMENT + sender.encode(), maintype="application", subtype="pdf", filename="passport.pdf"
    )
    return msg.as_bytes(policy=policy.SMTP)


class Site:
    """Two client projects, each with an email entry point."""

    def __init__(self, client: httpx.AsyncClient, container: Container, admin: dict[str, str]) -> None:
        self.client = client
        self.container = container
        self.admin = admin
        self.projects: dict[str, int] = {}

    async def build(self) -> Site:
        for code in ("alpha", "beta"):
            r = await self.client.post(
                f"{API}/projects", json={"code": code, "name": code}, headers=self.admin
            )
            assert r.status_code == 201, r.text
            self.projects[code] = r.json()["id"]
            admin = self.container.routing_admin
            queue = await admin.create_queue(Actor.system(), QueueIn(name=f"{code} mail"))
            await admin.create_entry_point(
                Actor.system(),
                EntryPointIn(
                    name=code,
                    channel="email",  # type: ignore[arg-type]
                    address=f"{code}@shop.example",
                    default_queue_id=queue.id,
                    project_id=self.projects[code],
                ),
            )
        return self

    async def customer_contact(self, code: str, sender: str, body: str) -> dict[str, Any]:
        """An email with a file from ``sender`` to ``code``'s address, ended, with a call recording."""
        received = await self.container.email.receive(
            mail_with_file(f"{code}@shop.example", sender, body), recipients=[f"{code}@shop.example"]
        )
        interaction_id = received.interaction_id
        assert interaction_id is not None
        r = await self.client.post(f"{API}/interactions/{interaction_id}/abandon", headers=self.admin)
        assert r.status_code == 204, r.text
        recording = self.container.settings.data_dir / "recordings" / f"{interaction_id}.wav"
        recording.parent.mkdir(parents=True, exist_ok=True)
        recording.write_bytes(b"RIFF....WAVE recorded voice")
        await self.container.voice_calls.annotate(interaction_id, recordings=[str(recording)])
        r = await self.client.get(f"{API}/interactions/{interaction_id}", headers=self.admin)
        customer_id = r.json()["customer_id"]
        assert customer_id is not None
        r = await self.client.post(
            f"{API}/customers/{customer_id}/notes", json={"body": "Lives at 1 Main St"}, headers=self.admin
        )
        assert r.status_code == 201, r.text
        return {"interaction_id": interaction_id, "customer_id": customer_id, "recording": recording}

    async def limited(self, name: str, code: str) -> dict[str, str]:
        user_id = await make_user(self.container, name, Role.SUPERVISOR)
        r = await self.client.put(
            f"{API}/users/{user_id}/projects", json={"project_ids": [self.projects[code]]}, headers=self.admin
        )
        assert r.status_code == 200, r.text
        token = await self.container.auth.create_token(Actor.system(), "t", user_id=user_id)
        return {"Authorization": f"Bearer {token.token}"}


@pytest.fixture
async def site(client, container, admin_headers) -> Site:
    return await Site(client, container, admin_headers).build()


async def _message(container: Container, interaction_id: int) -> Message:
    async with container.sessions() as s:
        found = await s.scalar(select(Message).where(Message.interaction_id == interaction_id))
        assert found is not None
        return found


async def _attachments(container: Container, interaction_id: int) -> list[MessageAttachment]:
    async with container.sessions() as s:
        return list(
            await s.scalars(
                select(MessageAttachment)
                .join(Message, Message.id == MessageAttachment.message_id)
                .where(Message.interaction_id == interaction_id)
            )
        )


async def test_a_customers_personal_data_is_exported_as_a_zip_with_recordings_and_attachments(
    site: Site, client, admin_headers
) -> None:
    ivan = await site.customer_contact(
        "alpha", "Ivan Petrov <ivan@customer.example>", "My passport number is 1234"
    )

    keyed = admin_headers | {"Idempotency-Key": "export-ivan"}
    r = await client.post(f"{API}/customers/{ivan['customer_id']}/personal-data", headers=keyed)
    location = await accepted_job(r)
    again = await client.post(f"{API}/customers/{ivan['customer_id']}/personal-data", headers=keyed)
    assert await accepted_job(again) == location  # a repeat answers the first job
    job = await finished_job(client, admin_headers, location)

    assert job["state"] == "succeeded", job
    download = await client.get(job["result_url"], headers=admin_headers)
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(download.content))
    document = json.loads(archive.read("customer.json"))
    assert document["customer"]["id"] == ivan["customer_id"]
    assert document["notes"][0]["body"] == "Lives at 1 Main St"
    (contact,) = document["contacts"]
    assert "1234" in contact["messages"][0]["body"]
    (attachment,) = contact["messages"][0]["attachments"]
    assert archive.read(attachment["file"]).startswith(ATTACHMENT)
    assert archive.read(contact["recordings"][0]) == b"RIFF....WAVE recorded voice"
    audit = (
        await client.get(
            f"{API}/audit", params={"action": "customer.personal_data_export"}, headers=admin_headers
        )
    ).json()
    assert audit["items"][0]["object_id"] == str(ivan["customer_id"])
    assert audit["items"][0]["project_id"] == site.projects["alpha"]


async def test_erasing_a_customer_removes_their_content_and_keeps_the_statistics(
    site: Site, client, admin_headers, container: Container
) -> None:
    ivan = await site.customer_contact(
        "alpha", "Ivan Petrov <ivan@customer.example>", "My passport number is 1234"
    )
    anna = await site.customer_contact("alpha", "Anna <anna@customer.example>", "Hello")
    async with container.sessions() as s:
        before = await s.get(Interaction, ivan["interaction_id"])
        assert before is not None
    blob = container.blobs.path((await _attachments(container, ivan["interaction_id"]))[0].sha256)
    assert blob.exists()

    r = await client.post(f"{API}/customers/{ivan['customer_id']}/erase", headers=admin_headers)

    assert r.status_code == 200, r.text
    assert r.json()["deleted"]["identities"] == 1 and r.json()["deleted"]["notes"] == 1
    assert (
        await client.get(f"{API}/customers/{ivan['customer_id']}", headers=admin_headers)
    ).status_code == 404
    lookup = await client.get(
        f"{API}/customers/lookup",
        params={"kind": "email", "value": "ivan@customer.example"},
        headers=admin_headers,
    )
    assert lookup.status_code == 404
    async with container.sessions() as s:
        after = await s.get(Interaction, ivan["interaction_id"])
        assert after is not None
    # The statistics keep the contact: channel, times, queue, state; its content and customer go.
    assert (after.channel, after.queue_id, after.state, after.created_at, after.ended_at) == (
        before.channel,
        before.queue_id,
        before.state,
        before.created_at,
        before.ended_at,
    )
    assert after.customer_id is None and after.from_address == "" and after.subject == ""
    message = await _message(container, ivan["interaction_id"])
    assert (message.body, message.html_body, message.sender, message.raw_sha256) == ("", None, "", None)
    assert await _attachments(container, ivan["interaction_id"]) == []
    assert not blob.exists() and not ivan["recording"].exists()
    # Another customer's content is untouched.
    assert (await _message(container, anna["interaction_id"])).body.strip() == "Hello"
    assert anna["recording"].exists() and len(await _attachments(container, anna["interaction_id"])) == 1
    audit = (
        await client.get(f"{API}/audit", params={"action": "customer.erase"}, headers=admin_headers)
    ).json()
    (entry,) = audit["items"]
    assert entry["object_id"] == str(ivan["customer_id"]) and entry["project_id"] == site.projects["alpha"]
    assert "ivan@customer.example" not in json.dumps(entry)


async def test_a_customer_with_a_contact_in_progress_is_not_erased(
    site: Site, client, admin_headers, container
) -> None:
    received = await container.email.receive(
        mail_with_file("alpha@shop.example", "Oleg <oleg@customer.example>", "Hi"),
        recipients=["alpha@shop.example"],
    )
    customer_id = (
        await client.get(f"{API}/interactions/{received.interaction_id}", headers=admin_headers)
    ).json()["customer_id"]
    r = await client.post(f"{API}/customers/{customer_id}/erase", headers=admin_headers)
    assert r.status_code == 409 and r.json()["error_id"] == "customer-has-live-contacts"
    assert (await client.get(f"{API}/customers/{customer_id}", headers=admin_headers)).status_code == 200


async def _sweep(container: Container, client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """Let the server's daily retention job of today run, and return it."""
    (job,) = await container.jobs.run_scheduled()
    return await finished_job(client, headers, f"{API}/jobs/{job.id}")


async def test_retention_deletes_old_recordings_and_message_content_by_the_servers_own_daily_job(
    site: Site, client, admin_headers, container: Container, clock: ShiftedClock
) -> None:
    ivan = await site.customer_contact("alpha", "Ivan Petrov <ivan@customer.example>", "Old secret")
    beta = await site.customer_contact("beta", "Boris <boris@customer.example>", "Beta secret")
    r = await client.put(
        f"{API}/projects/{site.projects['alpha']}/retention",
        json={"recordings_retention_days": 10, "messages_retention_days": 30},
        headers=admin_headers,
    )
    assert r.status_code == 200, r.text

    clock.advance(11 * 86400)
    job = await _sweep(container, client, admin_headers)
    assert job["state"] == "succeeded", job
    assert not ivan["recording"].exists() and beta["recording"].exists()
    assert "Old secret" in (await _message(container, ivan["interaction_id"])).body  # 30 days not over

    clock.advance(20 * 86400)
    job = await _sweep(container, client, admin_headers)
    assert job["state"] == "succeeded", job
    message = await _message(container, ivan["interaction_id"])
    assert message.body == "" and message.raw_sha256 is None
    assert await _attachments(container, ivan["interaction_id"]) == []
    assert "Beta secret" in (await _message(container, beta["interaction_id"])).body
    async with container.sessions() as s:
        kept = await s.get(Interaction, ivan["interaction_id"])
        assert kept is not None and kept.customer_id == ivan["customer_id"]  # the contact stays
        assert "Old secret" not in json.dumps(kept.attributes)  # its summary was content too

    # Once a day: asking again the same day runs nothing new.
    again = await container.jobs.run_scheduled()
    assert [j.id for j in again] == [job["id"]]
    async with container.sessions() as s:
        today = await s.get(BackgroundJob, job["id"])
        assert today is not None and today.idempotency_key is not None
        runs = await s.scalar(
            select(func.count())
            .select_from(BackgroundJob)
            .where(
                BackgroundJob.kind == RETENTION_JOB, BackgroundJob.idempotency_key == today.idempotency_key
            )
        )
    assert runs == 1


async def test_limited_users_read_the_audit_entries_of_their_projects(
    site: Site, client, admin_headers
) -> None:
    ivan = await site.customer_contact("alpha", "Ivan <ivan@customer.example>", "a")
    boris = await site.customer_contact("beta", "Boris <boris@customer.example>", "b")
    for card in (ivan, boris):
        r = await client.post(f"{API}/customers/{card['customer_id']}/erase", headers=admin_headers)
        assert r.status_code == 200, r.text
    alpha_head = await site.limited("alpha-head", "alpha")

    seen = (await client.get(f"{API}/audit", headers=alpha_head)).json()["items"]

    assert [(e["action"], e["object_id"]) for e in seen if e["action"] == "customer.erase"] == [
        ("customer.erase", str(ivan["customer_id"]))
    ]
    # Entries recorded for their project, and on objects of their project (its entry points, queues,
    # the project itself: services/scope.audit_visible); never another project's.
    assert seen and not any(e["project_id"] == site.projects["beta"] for e in seen)
    assert {e["project_id"] for e in seen} <= {site.projects["alpha"], None}
    everything = (
        await client.get(f"{API}/audit", params={"action": "customer.erase"}, headers=admin_headers)
    ).json()
    assert len(everything["items"]) == 2
