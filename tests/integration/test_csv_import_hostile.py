"""Hostile CSV files (issue 19, hole 9): an unbalanced quote no longer swallows the rest of the file
into one "valid" row, and binary garbage no longer passes as Windows-1251 text. Imports run as jobs:
a refused file is a failed job whose error names the reason and the line, and nothing is written."""

from __future__ import annotations

import random

import httpx

from .jobs_helpers import accepted_job, finished_job, import_csv

API = "/api/v1"


async def _count(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return len((await client.get(f"{API}/customers", headers=headers)).json()["items"])


async def test_an_unclosed_quote_is_reported_with_its_line_and_nothing_is_imported(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    data = (
        b"first_name,last_name,emails\n"
        b"Ivan,Petrov,ivan@example.ru\n"
        b'Olga,"Sidorova,olga@example.ru\n'  # the quote is never closed
        b"Petr,Ivanov,petr@example.ru\n"
        b"Anna,Smirnova,anna@example.ru\n"
    )
    report = await import_csv(client, admin_headers, data, dry_run=False, mode="valid_rows")
    error = report["job_error"]
    assert error["error_id"] == "csv-malformed"
    assert error["details"]["line"] == 3
    assert "quote" in error["details"]["reason"]
    assert await _count(client, admin_headers) == 0


async def test_a_quoted_cell_over_several_lines_is_still_one_cell(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    data = b'first_name,last_name,company\nIvan,Petrov,"Romashka\nLLC"\nOlga,Sidorova,\n'
    report = await import_csv(client, admin_headers, data, dry_run=False, mode="valid_rows")
    assert report["created"] == 2 and report["errors"] == [], report


async def test_binary_garbage_is_refused_rather_than_read_as_windows_1251(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    garbage = random.Random(19).randbytes(4096)
    for data in (
        # 0x98 is the one byte Windows-1251 leaves undefined: without it, random bytes decode.
        b"first_name,last_name\n" + garbage.replace(b"\x98", b"\x99"),
        b"PK\x03\x04\x14\x00\x06\x00first_name\n",  # the start of an .xlsx (a zip file)
        b"first_name,last_name\nIvan,Pet\x00rov\n",
    ):
        r = await client.post(
            f"{API}/customers/import",
            files={"file": ("c.csv", data, "text/csv")},
            params={"dry_run": "false", "mode": "valid_rows"},
            headers=admin_headers,
        )
        if r.status_code == 202:  # refused by the job, after the upload's header check
            job = await finished_job(client, admin_headers, await accepted_job(r))
            assert job["state"] == "failed" and job["error"]["error_id"] == "csv-encoding", job
        else:  # refused at the upload (its header line is not text)
            assert r.status_code == 400, r.text
            assert r.json()["error_id"] in ("csv-encoding", "csv-unknown-columns"), r.text
    assert await _count(client, admin_headers) == 0
    # Real Windows-1251 text is still read.
    report = await import_csv(
        client, admin_headers, "first_name,last_name\nИван,Петров\n".encode("cp1251"), dry_run=False
    )
    assert report["created"] == 1, report
