"""Lossless CSV import and export of customers, run as background jobs, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import io
import os
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role
from frontoffice.services import crm_csv
from frontoffice.services.crm_csv import IMPORT_BATCH, IMPORT_JOB, READ_SLICE, CustomerImportJob, Parser
from frontoffice.services.jobs import LEASE_S, JobContext, JobOutcome
from frontoffice.store.tables import AuditEntry, BackgroundJob, Customer

from ..conftest import ShiftedClock, eventually, make_user, token_headers
from .jobs_helpers import API, accepted_job, export_csv, finished_job, import_csv


async def create(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    r = await client.post(f"{API}/customers", json=body, headers=headers)
    assert r.status_code == 201, r.text
    card: dict[str, Any] = r.json()
    return card


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def csv_file(header: list[str], rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


async def two_full_cards(client: httpx.AsyncClient, headers: dict[str, str], container: Container) -> None:
    owner_id = await make_user(container, "olga", Role.AGENT)
    await create(
        client,
        headers,
        first_name="Иван",
        middle_name="Ильич",
        last_name="Петров",
        company_name="Ромашка",
        owner_id=owner_id,
        language="ru",
        vip=True,
        tags=["b2b", "vip"],
        custom={"contract": "D-1", "seats": 12, "paid": False, "formula": "=1+2"},
        identities=[
            {"kind": "phone", "value": "+74951234567", "label": "work; main"},
            {"kind": "phone", "value": "+79161112233", "label": "mobile [personal]"},
            {"kind": "email", "value": "ivan@example.ru", "label": "home"},
            {"kind": "chat", "value": "visitor-42"},
            {"kind": "messenger", "value": "telegram:1234567", "label": "tg"},
        ],
    )
    await create(client, headers, first_name="John", identities=[{"kind": "email", "value": "john@acme.com"}])


async def test_an_export_reimports_into_the_same_database_as_an_update_that_changes_nothing(
    client, admin_headers, container: Container
) -> None:
    await two_full_cards(client, admin_headers, container)
    before = (await client.get(f"{API}/customers", headers=admin_headers)).json()["items"]
    exported = await export_csv(client, admin_headers)
    rows = rows_of(exported)
    ivan = next(r for r in rows if r["last_name"] == "Петров")
    assert ivan["id"] and ivan["vip"] == "true" and ivan["owner"] == "olga"
    assert ivan["chats"] == "visitor-42" and ivan["messengers"] == "telegram:1234567 [tg]"
    assert ivan["phones"] == "'+74951234567 [work; main];+79161112233 [mobile [personal\\]]"
    assert ivan["custom:formula"] == "'=1+2" and ivan["custom:paid"] == "false"

    report = await import_csv(client, admin_headers, exported.encode(), dry_run=False, mode="update")

    assert report["errors"] == [] and report["errors_total"] == 0, report
    assert report["updated"] == 2 and report["created"] == 0 and report["applied"]
    after = (await client.get(f"{API}/customers", headers=admin_headers)).json()["items"]
    strip = ("updated_at",)
    assert [{k: v for k, v in c.items() if k not in strip} for c in after] == [
        {k: v for k, v in c.items() if k not in strip} for c in before
    ]
    assert await export_csv(client, admin_headers) == exported


async def test_update_changes_the_columns_of_the_file_and_upsert_also_creates(
    client, admin_headers, container: Container
) -> None:
    anna = await create(
        client,
        admin_headers,
        first_name="Anna",
        tags=["old"],
        custom={"keep": "me"},
        identities=[
            {"kind": "phone", "value": "+74952000001"},
            {"kind": "email", "value": "anna@example.ru"},
        ],
    )
    # By identity, without an id: the phone names Anna; the file's phones replace hers, tags too.
    data = csv_file(
        ["phones", "last_name", "tags", "vip"],
        [["+74952000001;+74952000002 [home]", "Smirnova", "new", "yes"]],
    )
    report = await import_csv(client, admin_headers, data, dry_run=False, mode="update")
    assert report["updated"] == 1 and report["errors"] == [], report
    card = (await client.get(f"{API}/customers/{anna['id']}", headers=admin_headers)).json()
    assert (card["first_name"], card["last_name"], card["tags"], card["vip"]) == (
        "Anna",
        "Smirnova",
        ["new"],
        True,
    )
    assert card["custom"] == {"keep": "me"}
    assert sorted((i["kind"], i["value"], i["label"]) for i in card["identities"]) == [
        ("email", "anna@example.ru", ""),
        ("phone", "+74952000001", ""),
        ("phone", "+74952000002", "home"),
    ]
    # update refuses a row that names nobody; upsert creates it; create refuses a row naming Anna.
    data = csv_file(["first_name", "emails"], [["Boris", "boris@example.ru"], ["Anna", "anna@example.ru"]])
    report = await import_csv(
        client, admin_headers, data, dry_run=False, mode="update", on_errors="valid_rows"
    )
    assert [e["line"] for e in report["errors"]] == [2] and report["updated"] == 1
    report = await import_csv(
        client, admin_headers, data, dry_run=False, mode="create", on_errors="valid_rows"
    )
    assert report["created"] == 1 and [e["line"] for e in report["errors"]] == [3]
    assert "belongs to another customer" in report["errors"][0]["message"]
    data = csv_file(["first_name", "emails"], [["Vera", "vera@example.ru"], ["Anna", "anna@example.ru"]])
    report = await import_csv(client, admin_headers, data, dry_run=False, mode="upsert")
    assert (report["created"], report["updated"], report["errors"]) == (1, 1, [])
    assert await container.crm.count_customers() == 3


async def test_every_customer_export_neutralises_cells_a_spreadsheet_would_run(client, admin_headers) -> None:
    await create(
        client, admin_headers, first_name="=cmd|' /C calc'!A0", last_name="@SUM(A1)", middle_name="-x"
    )
    for text in (
        await export_csv(client, admin_headers),
        (await client.get(f"{API}/customers/export", headers=admin_headers)).text,
    ):
        row = rows_of(text)[0]
        assert row["first_name"] == "'=cmd|' /C calc'!A0"
        assert row["last_name"] == "'@SUM(A1)" and row["middle_name"] == "'-x"


async def test_an_import_answers_202_with_its_job_and_a_repeat_with_the_same_key_answers_the_same_job(
    client, admin_headers
) -> None:
    data = csv_file(["first_name", "phones"], [["A", "+74951110001"], ["B", "+74951110002"]])
    headers = {**admin_headers, "Idempotency-Key": "import-1"}
    first = await client.post(
        f"{API}/customers/import",
        files={"file": ("c.csv", data)},
        params={"dry_run": "false"},
        headers=headers,
    )
    location = await accepted_job(first)
    again = await client.post(
        f"{API}/customers/import",
        files={"file": ("c.csv", data)},
        params={"dry_run": "false"},
        headers=headers,
    )
    assert await accepted_job(again) == location
    job = await finished_job(client, admin_headers, location)
    assert job["state"] == "succeeded" and job["kind"] == IMPORT_JOB
    assert job["progress"] == job["total"] == 4  # two rows validated, two written
    assert job["result"]["created"] == 2
    listed = (await client.get(f"{API}/jobs", headers=admin_headers)).json()["items"]
    assert [j["id"] for j in listed if j["kind"] == IMPORT_JOB] == [job["id"]]


async def test_another_user_cannot_read_someone_elses_job(client, admin_headers, container) -> None:
    r = await client.post(f"{API}/customers/export", headers=admin_headers)
    location = await accepted_job(r)
    other = await token_headers(container, "sup", Role.SUPERVISOR)
    r = await client.get(location, headers=other)
    assert r.status_code == 404 and r.json()["error_id"] == "no-such-job"
    r = await client.get(f"{location}/result", headers=other)
    assert r.status_code == 404


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"csv_max_rows": 30_000}


async def test_an_import_larger_than_the_body_limit_but_within_the_row_limit_is_accepted(
    client, admin_headers, container: Container
) -> None:
    padding = "x" * 150
    rows = [[f"Name{n}", padding, f"+7495{2_000_000 + n}"] for n in range(8_000)]
    data = csv_file(["first_name", "custom:pad", "phones"], rows)
    assert len(data) > container.settings.max_body_bytes
    report = await import_csv(client, admin_headers, data, dry_run=True)
    assert report["rows"] == 8_000 and report["valid"] == 8_000, report["errors"][:3]
    too_many = csv_file(["first_name"], [[f"N{n}"] for n in range(30_001)])
    report = await import_csv(client, admin_headers, too_many, dry_run=True)
    assert report["job_error"]["error_id"] == "csv-too-large"


async def test_healthz_answers_while_an_import_runs(client, admin_headers) -> None:
    rows = [[f"Name{n}", f"+7495{2_000_000 + n}", f"user{n}@example.ru"] for n in range(10_000)]
    r = await client.post(
        f"{API}/customers/import",
        files={"file": ("c.csv", csv_file(["first_name", "phones", "emails"], rows))},
        params={"dry_run": "false"},
        headers=admin_headers,
    )
    location = await accepted_job(r)
    served_while_running = 0

    async def finished() -> dict[str, Any] | None:
        nonlocal served_while_running
        health = await client.get("/healthz")
        assert health.status_code == 200
        job: dict[str, Any] = (await client.get(location, headers=admin_headers)).json()
        if job["state"] == "running" and job["progress"] > 0:
            served_while_running += 1  # /healthz answered, and the import was still in progress
        return job if job["state"] in ("succeeded", "failed") else None

    job = await eventually(finished, "the import finishes", timeout_s=300, interval_s=0)
    assert job["state"] == "succeeded" and job["result"]["created"] == 10_000, job
    assert served_while_running >= 3


async def test_an_import_parses_in_a_worker_process_reads_in_slices_and_writes_in_batches_of_import_batch(
    client, admin_headers, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What keeps routing going while a file is imported (bench/import_job.py measures the latency):
    # the rows are parsed in a worker process, not on the event loop (where every hop of a contact
    # waited behind a slice of parsing) nor on a thread (which competes with the loop for the GIL);
    # the loop reads at most READ_SLICE rows between turns, and SQLite's write lock is held for one
    # short batch at a time.
    read_since_turn = 0
    most_between_turns = 0
    parsed_here = 0
    read = Parser.read

    def counting_read(self: Parser, *args: Any) -> Any:
        nonlocal read_since_turn
        rows = read(self, *args)
        read_since_turn += len(rows)
        return rows

    def parse_here(*args: Any) -> Any:
        nonlocal parsed_here
        parsed_here += 1
        return crm_csv.parse_line(*args)

    monkeypatch.setattr(Parser, "read", counting_read)
    monkeypatch.setattr(crm_csv, "parse_line", parse_here)
    rows = [[f"Name{n}", f"+7495{2_000_000 + n}", f"user{n}@example.ru"] for n in range(5 * IMPORT_BATCH + 7)]
    r = await client.post(
        f"{API}/customers/import",
        files={"file": ("c.csv", csv_file(["first_name", "phones", "emails"], rows))},
        params={"dry_run": "false"},
        headers=admin_headers,
    )
    location = await accepted_job(r)
    finished = asyncio.create_task(finished_job(client, admin_headers, location))
    loop = asyncio.get_running_loop()

    def turn() -> None:
        """Runs once per turn of the event loop (it schedules itself again): rows read since the last."""
        nonlocal most_between_turns, read_since_turn
        most_between_turns = max(most_between_turns, read_since_turn)
        read_since_turn = 0
        if not finished.done():
            loop.call_soon(turn)

    loop.call_soon(turn)
    job = await finished
    assert job["state"] == "succeeded" and job["result"]["created"] == len(rows), job
    assert parsed_here == 0  # every row was parsed in the worker process
    workers = crm_csv.PARSING.processes()
    assert workers and os.getpid() not in workers
    assert 0 < most_between_turns <= READ_SLICE
    async with container.sessions() as s:
        batches = [
            entry.details["created"]
            for entry in await s.scalars(select(AuditEntry).where(AuditEntry.action == "customer.import"))
        ]
    assert sum(batches) == len(rows) and max(batches) <= IMPORT_BATCH
    assert len(batches) == -(-len(rows) // IMPORT_BATCH)


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_a_17000_row_import_on_postgresql_is_not_refused_for_its_bind_parameters(
    client, admin_headers, container: Container
) -> None:
    rows = [[f"Name{n}", f"+7495{2_000_000 + n}", f"user{n}@example.ru", "t1;t2"] for n in range(17_000)]
    data = csv_file(["first_name", "phones", "emails", "tags"], rows)
    report = await import_csv(client, admin_headers, data, dry_run=False)
    assert report["created"] == 17_000 and report["errors"] == [], report["errors"][:3]
    report = await import_csv(client, admin_headers, data, dry_run=False, mode="update")
    assert report["updated"] == 17_000 and report["errors"] == [], report["errors"][:3]


class _Stopped(BaseException):
    """The node stops in the middle of a job (raised where a batch records its progress)."""


async def test_an_import_interrupted_by_a_stop_resumes_from_its_last_committed_batch(
    client, admin_headers, container: Container, clock: ShiftedClock
) -> None:
    await container.jobs.stop()  # this test runs the jobs itself
    rows = [[f"Name{n}", f"+7495{2_000_000 + n}"] for n in range(2 * IMPORT_BATCH + 200)]  # three batches
    r = await client.post(
        f"{API}/customers/import",
        files={"file": ("c.csv", csv_file(["first_name", "phones"], rows))},
        params={"dry_run": "false"},
        headers=admin_headers,
    )
    location = await accepted_job(r)
    real = CustomerImportJob(container.crm, container.customer_csv.uploads, max_rows=1_000_000)

    class StopsAfterTwoBatches:
        kind = IMPORT_JOB

        async def run(self, job: JobContext) -> JobOutcome:
            record = job.record
            written = 0

            async def stopping(s: Any, progress: int, **kw: Any) -> None:
                nonlocal written
                if (kw.get("checkpoint") or {}).get("line"):
                    written += 1
                    if written == 3:
                        raise _Stopped  # the third batch's transaction rolls back
                await record(s, progress, **kw)

            job.record = stopping  # type: ignore[method-assign]
            return await real.run(job)

    container.jobs.register(StopsAfterTwoBatches())
    job_id = r.json()["id"]
    with pytest.raises(_Stopped):
        await container.jobs.run_next(job_id)
    async with container.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Customer)) == 2 * IMPORT_BATCH
        row = await s.get(BackgroundJob, job_id)
        assert row is not None and row.state == "running" and row.checkpoint["line"] == 2 * IMPORT_BATCH + 1

    container.jobs.register(real)
    # As after a restart: the running job is resumed (on PostgreSQL, where another node may be running
    # it, once its lease has run out).
    clock.advance(LEASE_S + 1)
    await container.jobs.start()
    job = await finished_job(client, admin_headers, location)
    assert job["state"] == "succeeded", job
    assert job["result"]["created"] == len(rows) and job["result"]["errors"] == [], job["result"]
    assert await container.crm.count_customers() == len(rows)
