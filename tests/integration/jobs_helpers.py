"""Helpers for tests of background jobs (imports, exports, personal data exports)."""

from __future__ import annotations

from typing import Any

import httpx

from ..conftest import eventually

API = "/api/v1"
FINISHED = ("succeeded", "failed")


async def finished_job(client: httpx.AsyncClient, headers: dict[str, str], location: str) -> dict[str, Any]:
    """Wait for the job at ``location`` to finish and return it."""

    async def done() -> dict[str, Any] | None:
        r = await client.get(location, headers=headers)
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()
        return job if job["state"] in FINISHED else None

    job = await eventually(done, "the job finishes", timeout_s=120)
    assert job is not None
    return job


async def accepted_job(r: httpx.Response) -> str:
    """The Location of a ``202 Accepted`` job answer."""
    assert r.status_code == 202, r.text
    location = r.headers["location"]
    assert location == f"{API}/jobs/{r.json()['id']}"
    return location


async def import_csv(
    client: httpx.AsyncClient, headers: dict[str, str], data: bytes, **params: Any
) -> dict[str, Any]:
    """Upload ``data`` for import, wait for the job and return its report (the job's result); a job
    that failed is returned as ``{"job_error": ...}``."""
    r = await client.post(
        f"{API}/customers/import",
        files={"file": ("c.csv", data, "text/csv")},
        params={k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()},
        headers=headers,
    )
    job = await finished_job(client, headers, await accepted_job(r))
    if job["state"] == "failed":
        return {"job_error": job["error"]}
    result: dict[str, Any] = job["result"]
    return result


async def export_csv(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    """Run the customer export job and return the CSV it made."""
    r = await client.post(f"{API}/customers/export", headers=headers)
    job = await finished_job(client, headers, await accepted_job(r))
    assert job["state"] == "succeeded", job
    download = await client.get(job["result_url"], headers=headers)
    assert download.status_code == 200, download.text
    assert download.headers["content-type"].startswith("text/csv")
    return download.text
